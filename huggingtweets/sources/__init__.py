"""Sources of posts. A source spec on the command line names one account:

    sample           the built-in sample account (real tweets, no key needed)
    file:PATH        your own posts: JSON Lines, CSV with a `text` column, or text, one post a line

Every source returns the same `Post` records, so nothing after fetching cares
where posts came from.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from ..posts import Post

SPEC_HELP = "use `sample` or `file:PATH` (JSON Lines, CSV with a `text` column, or a text file with one post a line)"


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "sample" or "file"
    target: str  # what follows the prefix: a path, a handle
    name: str  # the account's name in folder names and in the card

    def __str__(self) -> str:
        return "sample" if self.kind == "sample" else f"{self.kind}:{self.target}"


def safe_name(text: str) -> str:
    """A name that is safe as one folder name: never a path, never hidden."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "posts"
    return name[:64]


def parse_source(spec: str) -> SourceSpec:
    spec = spec.strip()
    if spec == "sample":
        return SourceSpec("sample", "", "sample")
    prefix, sep, rest = spec.partition(":")
    if sep and prefix == "file":
        if not rest:
            raise SourceError(f"`{spec}` names no file: write file:PATH")
        return SourceSpec("file", rest, safe_name(Path(rest).stem))
    if spec.startswith("@") or (sep and prefix in ("x", "archive", "bsky", "mastodon", "snscrape")):
        raise SourceError(f"source `{spec}` is not available in this version: {SPEC_HELP}")
    raise SourceError(f"unknown source `{spec}`: {SPEC_HELP}")


def fetch_posts(spec: SourceSpec) -> list[Post]:
    """All posts of one source, as the source gives them (nothing filtered yet)."""
    if spec.kind == "sample":
        from .sample import sample_posts

        return sample_posts()
    if spec.kind == "file":
        from .file import read_file

        return read_file(Path(spec.target), handle=spec.name)
    raise SourceError(f"unknown source `{spec}`: {SPEC_HELP}")


def model_name(specs: list[SourceSpec]) -> str:
    """The bot's name: the handle, or several joined as the original did."""
    return "-".join(sorted({s.name for s in specs}))
