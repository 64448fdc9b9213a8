"""The record every source produces: one post, whatever platform it came from."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from .errors import DamagedFileError
from .files import atomic_write

KINDS = ("post", "reply", "repost", "quote")


@dataclass
class Post:
    id: str
    text: str
    handle: str
    source: str  # "sample", "file", later "x", "bsky", ...
    kind: str = "post"  # one of KINDS, as the source marks it
    created_at: str | None = None  # ISO 8601 when the source gives a date
    raw: dict[str, Any] = field(default_factory=dict)  # the source's own fields, kept aside

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {self.kind!r}")
        self.id = str(self.id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json_line(self) -> str:
        """The post as one line of JSON Lines, the one format of every posts file and spool:
        UTF-8 text as it is, not \\u escapes (posts.jsonl's digest is taken over these bytes)."""
        return json.dumps(self.to_dict(), ensure_ascii=False) + "\n"

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Post":
        known = {k: data[k] for k in ("id", "text", "handle", "source", "kind", "created_at", "raw") if k in data}
        return cls(**known)


def is_id(value: Any, floats: bool = False) -> bool:
    """Whether a source's id field holds an id: a non-empty string, or an integer (and a float
    too with `floats`, as files of posts may have); never a bool, a list or an object."""
    numbers = (int, float) if floats else int
    return (isinstance(value, str) and value != "") or (isinstance(value, numbers) and not isinstance(value, bool))


def numeric_id(post_id: str) -> int:
    """An id as the number it is, for sorting: X's ids grow with time. Any other id sorts as 0:
    int() reads only ASCII digits here ("²".isdigit() is True) and refuses over 4,300 digits."""
    return int(post_id) if post_id.isascii() and post_id.isdigit() and len(post_id) <= 4000 else 0


_SURROGATE = re.compile(r"[\ud800-\udfff]|\\u[dD][89abcdefABCDEF]")  # one, or its JSON escape
_LONE_SURROGATE = re.compile(r"[\ud800-\udfff]")


def json_loads(data: str | bytes) -> Any:
    """`json.loads` for data from outside, whose strings must be writable as UTF-8:
    a lone surrogate (`"\\ud83d"`, half an emoji, as X cuts long posts) becomes U+FFFD.
    Raises what json.loads raises (ValueError, RecursionError)."""
    if isinstance(data, bytes):
        data = data.decode(json.detect_encoding(data), "surrogatepass")  # as json.loads decodes bytes
    value = json.loads(data)
    return _without_surrogates(value) if _SURROGATE.search(data) else value


def _without_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_surrogates(v) for v in value]
    if isinstance(value, dict):
        return {_without_surrogates(k): _without_surrogates(v) for k, v in value.items()}
    return value


def write_posts(path: Path, posts: Iterable[Post]) -> int:
    """Write posts as JSON Lines, atomically; returns how many were written."""
    count = 0
    with atomic_write(path) as f:
        for post in posts:
            f.write(post.to_json_line())
            count += 1
    return count


def iter_posts(path: Path) -> Iterator[Post]:
    """The posts of a JSON Lines file that huggingtweets wrote; a damaged one (a line cut
    short, edited by hand, or in an older version's shape) is one line saying so."""
    with open(path, encoding="utf-8", errors="strict") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                post = Post.from_dict(data)
                if not isinstance(post.text, str):
                    raise ValueError("text is not a string")
            except (ValueError, TypeError, AttributeError, RecursionError) as e:
                raise DamagedFileError(f"{path} line {n} is not a post as huggingtweets writes it "
                                       f"({type(e).__name__}): delete the file and run the same command again, "
                                       "which makes it anew") from None
            yield post


def read_posts(path: Path) -> list[Post]:
    return list(iter_posts(path))
