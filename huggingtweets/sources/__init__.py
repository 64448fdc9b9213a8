"""Sources of posts. A source spec on the command line names one account:

    sample                   the built-in sample account (real tweets, no key needed)
    sample:VOICE             another built-in voice: reviews, editorials or movies
    file:PATH                your own posts: JSON Lines, CSV with a `text` column, or text, one post a line
    archive:PATH             your own export, recognised by content: X's archive (zip, folder or tweets.js),
                             Bluesky's repo.car, Mastodon's archive (.zip/.tar.gz), Threads' JSON export
    @handle, x:handle        the X API v2 (X_BEARER_TOKEN; billed per post read)
    bsky:handle              Bluesky's public AppView (no key)
    mastodon:user@instance   a Mastodon server's public API (no key)
    snscrape:handle          snscrape, for older setups (its Twitter module no longer works)

Every source returns the same `Post` records, so nothing after fetching cares
where posts came from. Handles are checked before any request, so a bad one
never becomes part of a URL or a path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterable

from ..errors import SourceError
from ..posts import Post

if TYPE_CHECKING:
    from ..settings import Settings

SPEC_HELP = ("use `sample`, `file:PATH`, `archive:PATH` (your X, Bluesky, Mastodon or Threads export), `@handle` (X API), "
             "`bsky:handle` or `mastodon:user@instance`")
NETWORK_KINDS = ("x", "bsky", "mastodon")

X_HANDLE = re.compile(r"[A-Za-z0-9_]{1,15}")
BSKY_HANDLE = re.compile(r"(?=.{3,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
BSKY_DID = re.compile(r"did:(plc:[a-z2-7]{24}|web:[A-Za-z0-9.-]{1,253})")
MASTODON_USER = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,28}[A-Za-z0-9_])?")
HOSTNAME = re.compile(r"(?=.{1,253}(:\d{1,5})?$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                      r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(:\d{1,5})?")


@dataclass(frozen=True)
class SourceSpec:
    kind: str  # "sample", "file", "archive", "x", "bsky", "mastodon", "snscrape"
    target: str  # what follows the prefix: a path, a handle
    name: str  # the account's name in folder names, the model's name and the card

    def __str__(self) -> str:
        if self.kind == "sample":
            return f"sample:{self.target}" if self.target else "sample"
        return f"{self.kind}:{self.target}"

    @property
    def display(self) -> str:
        """How the card names the account."""
        if self.kind == "sample":
            return f"the sample {self.target}" if self.target else "the sample account"
        if self.kind == "mastodon":
            return f"@{self.target}"
        return f"@{self.name}"

    @property
    def identity(self) -> str:
        """What makes two specs one source: a file's resolved path (file:a/t.txt and
        file:./a/t.txt are one file), an account's name in lower case."""
        if self.kind in ("file", "archive"):
            return f"{self.kind}:{Path(self.target).expanduser().resolve()}"
        if self.kind in ("x", "snscrape", "mastodon"):
            return f"{self.kind}:{self.target.lower()}"
        return str(self)

    @property
    def url(self) -> str | None:
        if self.kind in ("x", "snscrape"):
            return f"https://x.com/{self.target}"
        if self.kind == "bsky":
            return f"https://bsky.app/profile/{self.target}"
        if self.kind == "mastodon":
            user, instance = self.target.split("@", 1)
            return f"https://{instance}/@{user}"
        return None


def safe_name(text: str) -> str:
    """A name that is safe as one folder name: never a path, never hidden."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or "posts"
    return name[:64]


def check_api_base(api_base: str) -> str:
    """`--api-base` as given, once it is an http(s) URL with a host: checked before any
    request, so a typo is one line, not a traceback or five retries."""
    from urllib.parse import urlsplit

    url = api_base.strip()
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host, _ = parts.hostname, parts.port  # .port raises on a port that is not a number
    except ValueError:
        host = None
    if not host or parts.scheme not in ("http", "https"):
        raise SourceError(f"--api-base {api_base!r} is not an http:// or https:// URL with a host: "
                          "give one like http://127.0.0.1:8080")
    return url


def parse_source(spec: str) -> SourceSpec:
    spec = spec.strip()
    if spec == "sample":
        return SourceSpec("sample", "", "sample")
    if spec.startswith("sample:"):
        from .sample import voice_of

        voice = voice_of(spec[len("sample:"):]).name
        return SourceSpec("sample", "", "sample") if voice == "tweets" else SourceSpec("sample", voice, f"sample-{voice}")
    if spec.startswith("@"):
        spec = "x:" + spec[1:]
    prefix, sep, rest = spec.partition(":")
    if not sep or prefix not in ("file", "archive", "x", "bsky", "mastodon", "snscrape"):
        raise SourceError(f"unknown source `{spec}`: {SPEC_HELP}")
    if not rest:
        raise SourceError(f"`{spec}` names nothing after the `:`: {SPEC_HELP}")
    if prefix == "file":
        return SourceSpec("file", rest, safe_name(Path(rest).stem))
    if prefix == "archive":
        from .archive import account_name

        return SourceSpec("archive", rest, safe_name(account_name(Path(rest))))
    if prefix in ("x", "snscrape"):
        handle = rest.lstrip("@")
        if not X_HANDLE.fullmatch(handle):
            raise SourceError(f"`{rest}` is not an X handle (1-15 letters, digits or _): check `{spec}`")
        return SourceSpec(prefix, handle, handle)
    if prefix == "bsky":
        handle = rest.lstrip("@").lower() if not rest.startswith("did:") else rest
        if not (BSKY_HANDLE.fullmatch(handle) or BSKY_DID.fullmatch(handle)):
            raise SourceError(f"`{rest}` is not a Bluesky handle (like alice.bsky.social) or DID: check `{spec}`")
        return SourceSpec("bsky", handle, safe_name(handle))
    user, at, instance = rest.lstrip("@").partition("@")
    if not at or not MASTODON_USER.fullmatch(user) or not HOSTNAME.fullmatch(instance):
        raise SourceError(f"`{rest}` is not a Mastodon account: write mastodon:user@instance, "
                          "like mastodon:Gargron@mastodon.social")
    return SourceSpec("mastodon", f"{user}@{instance.lower()}", safe_name(f"{user}_{instance.lower()}"))


def open_network_source(spec: SourceSpec, settings: "Settings", say: Callable[[str], None]):
    if spec.kind == "x":
        from .x import XSource

        source = XSource(spec.target, token=settings.x_bearer_token, api_base=settings.api_base,
                         max_posts=settings.max_posts, post_price=settings.x_post_price,
                         lookup_price=settings.x_lookup_price, say=say)
        say(source.cost_line())
        return source
    if spec.kind == "bsky":
        from .bluesky import BlueskySource

        return BlueskySource(spec.target, api_base=settings.api_base, say=say)
    if spec.kind == "mastodon":
        from .mastodon import MastodonSource

        return MastodonSource(spec.target, api_base=settings.api_base, say=say, own_account=settings.own_account)
    raise SourceError(f"`{spec}` is not a network source")


def fetch_posts(spec: SourceSpec, settings: "Settings | None" = None, folder: Path | None = None,
                say: Callable[[str], None] = print) -> Iterable[Post]:
    """All posts of one source, as the source gives them (nothing filtered yet): a list,
    or for an archive an iterator that holds them on disk until asked.
    Network sources keep their pages in `folder`, so an interrupted fetch resumes."""
    if spec.kind == "sample":
        from .sample import voice_posts

        return voice_posts(spec.target or "tweets")
    if spec.kind == "file":
        from .file import read_file

        return read_file(Path(spec.target), handle=spec.name)
    if spec.kind == "archive":
        from .archive import iter_archive
        from .network import record_display_name

        return iter_archive(Path(spec.target), handle=spec.name,
                            include_private=bool(settings and settings.include_private), say=say,
                            on_display_name=(lambda n: record_display_name(folder, n)) if folder else None)
    if spec.kind == "snscrape":
        from .snscrape import scrape

        return scrape(spec.target, max_posts=settings.max_posts if settings else None)
    if spec.kind in NETWORK_KINDS:
        from ..settings import Settings
        from .network import fetch_resumable

        settings = settings or Settings()
        folder = folder or settings.work / spec.name / "fetch" / f"{spec.kind}-{spec.name}"
        source = open_network_source(spec, settings, say)
        try:
            return fetch_resumable(source, folder, settings.max_posts, say)
        finally:
            source.client.close()
    raise SourceError(f"unknown source `{spec}`: {SPEC_HELP}")


def model_name(specs: list[SourceSpec]) -> str:
    """The bot's name: the handle, or several joined as the original did."""
    return "-".join(sorted({s.name for s in specs}))
