"""The Mastodon archive and the Threads export, read by `archive:PATH` (archive.py finds
which one a path is, from the files in it, and opens the zip, tar or folder).

Mastodon (Preferences > Import and export > Data export): `outbox.json` is an
ActivityStreams OrderedCollection of the account's activities, `actor.json` its profile.
Create activities are posts (a Note: HTML `content`, `contentMap` by language, the content
warning in `summary`), Announce activities are boosts, counted as retweets. Who a post
was addressed to (`to`/`cc`) is its visibility: public and unlisted posts are read,
followers-only ones only with --include-private, direct messages never.

Threads (Meta's "Download your information", JSON): `threads_and_replies.json` holds
`text_post_app_text_posts`, each with its text in `media[].title` (or `title`) and a Unix
`creation_timestamp`. Meta writes each UTF-8 byte of the text as its own \\u00XX escape, so
"café 👍" arrives as "cafÃ© ð\\x9f\\x91\\x8d"; that is undone exactly (Latin-1 back to bytes,
read as UTF-8), and text that is not mojibake is left as it is.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any, Callable, Iterator
from urllib.parse import urlsplit

from ..errors import SourceError
from ..posts import Post
from . import safe_name
from .archive import _Car, _Container, _parse_json, _Text, _unspool, object_items
from .mastodon import html_to_text

PUBLIC = {"https://www.w3.org/ns/activitystreams#Public", "as:Public", "Public"}
QUOTE_FIELDS = ("quote", "quoteUri", "quoteUrl", "_misskey_quote")
MAX_ACTOR_BYTES = 16 * 1024**2  # a profile with its fields; the avatar is a file of its own
META_ZIP = re.compile(r"(?:instagram|threads|facebook|meta)-([A-Za-z0-9._]{1,30})-\d{4}-\d{2}-\d{2}", re.IGNORECASE)


class _Spool:
    """Posts waiting on disk, given back newest first (as the X archive's are)."""

    def __init__(self) -> None:
        self.file: IO[bytes] = tempfile.TemporaryFile()
        self.keys: list[tuple[str, int, int]] = []

    def add(self, post: Post) -> None:
        self.keys.append((post.created_at or "", 0, self.file.tell()))
        self.file.write(post.to_json_line().encode("utf-8"))

    def posts(self) -> Iterator[Post]:
        self.keys.sort(key=lambda k: k[:2], reverse=True)
        return _unspool(self.file, self.keys, [])


def _spooled(box: _Container, wanted: list[str], read: Callable[[str, Iterator[bytes], _Spool], None],
             missing: str) -> Iterator[Post]:
    """Every wanted file of the archive given to `read` (which spools posts), then the posts,
    newest first; `missing` is the error when the last wanted file is not there."""
    spool = _Spool()
    found = False
    try:
        for name, chunks in box.members(wanted):
            found = found or name == wanted[-1]
            read(name, chunks, spool)
        if not found:
            raise SourceError(f"{box.label} has no {wanted[-1]}, {missing}: {box.again}")
    except BaseException:
        spool.file.close()
        raise
    finally:
        box.close()
    return spool.posts()


def _read_small(box: _Container, name: str, chunks: Iterator[bytes], limit: int) -> Any:
    data = b""
    for chunk in chunks:
        data += chunk
        if len(data) > limit:
            raise SourceError(f"{box.display(name)} is over {limit // 1024**2} MiB, far more than a profile: "
                              f"{box.again}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"{box.display(name)} is not UTF-8 text ({e.reason} at byte {e.start}): {box.again}") from None
    return _parse_json(box, name, text)


# --- Mastodon ------------------------------------------------------------------------------------------------


def visibility(activity: dict[str, Any], note: dict[str, Any] | None = None) -> str:
    """public, unlisted, private (followers only) or direct, from whom it was addressed to,
    as Mastodon writes it: Public in `to`, Public in `cc`, the followers collection, or only people."""
    def addresses(key: str) -> list[str]:
        values: list[Any] = []
        for source in (activity, note or {}):
            value = source.get(key)
            values += value if isinstance(value, list) else [value]
        return [v for v in values if isinstance(v, str)]

    to, cc = addresses("to"), addresses("cc")
    if PUBLIC & set(to):
        return "public"
    if PUBLIC & set(cc):
        return "unlisted"
    if any(a.rstrip("/").endswith("/followers") for a in to + cc):
        return "private"
    return "direct"


def _acct_of(url: str) -> str:
    """user@host from a status URL (https://host/users/user/statuses/1, https://host/@user/1)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "unknown"
    segments = [s for s in parts.path.split("/") if s]
    host = parts.hostname or "unknown"
    if len(segments) >= 2 and segments[0] == "users":
        return f"{segments[1]}@{host}"
    if segments and segments[0].startswith("@"):
        return f"{segments[0][1:]}@{host}"
    return host


def _note_html(note: dict[str, Any]) -> tuple[str, str | None]:
    """The Note's HTML and its language: `content`, else the first of `contentMap`."""
    content_map = note.get("contentMap") if isinstance(note.get("contentMap"), dict) else {}
    language = next((k for k, v in content_map.items() if isinstance(k, str) and isinstance(v, str)), None)
    content = note.get("content")
    if not isinstance(content, str):
        content = content_map.get(language, "") if language else ""
    return content, language


def activity_post(activity: Any, handle: str) -> tuple[Post | None, str]:
    """One outbox activity as a Post (None for one that is not a post or a boost), and its visibility."""
    if not isinstance(activity, dict) or activity.get("type") not in ("Create", "Announce"):
        return None, "other"
    obj = activity.get("object")
    published = activity.get("published") if isinstance(activity.get("published"), str) else None
    if activity["type"] == "Announce":
        target = obj.get("id") if isinstance(obj, dict) else obj
        if not isinstance(target, str) or not target:
            return None, "other"
        seen = visibility(activity)
        aid = activity.get("id") if isinstance(activity.get("id"), str) and activity["id"] else f"{target}#boost"
        return Post(id=aid, text=f"RT @{_acct_of(target)}: ", handle=handle, source="mastodon", kind="repost",
                    created_at=published, raw={"reblog": target, "visibility": seen}), seen
    if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or not obj["id"]:
        return None, "other"
    seen = visibility(activity, obj)
    content, language = _note_html(obj)
    if obj.get("inReplyTo"):
        kind = "reply"
    elif any(obj.get(k) for k in QUOTE_FIELDS):
        kind = "quote"
    else:
        kind = "post"
    created = obj.get("published") if isinstance(obj.get("published"), str) else published
    raw: dict[str, Any] = {"visibility": seen, "url": obj.get("url") if isinstance(obj.get("url"), str) else None}
    if language:
        raw["language"] = language  # what the card's language reads
    summary = obj.get("summary")
    if isinstance(summary, str) and summary:
        raw["spoiler_text"] = html_to_text(summary)  # the content warning: kept apart, never in the text
    if isinstance(obj.get("inReplyTo"), str):
        raw["in_reply_to"] = obj["inReplyTo"]
    return Post(id=obj["id"], text=html_to_text(content), handle=handle, source="mastodon", kind=kind,
                created_at=created, raw=raw), seen


def iter_mastodon(box: _Container, handle: str, include_private: bool = False,
                  on_display_name: Callable[[str], None] | None = None,
                  say: Callable[[str], None] | None = None) -> Iterator[Post]:
    """A Mastodon archive's posts and boosts, newest first, read in bounded memory."""
    left_out = {"direct": 0, "private": 0}

    def read(name: str, chunks: Iterator[bytes], spool: _Spool) -> None:
        if name == "actor.json":
            actor = _read_small(box, name, chunks, MAX_ACTOR_BYTES)
            display = actor.get("name") if isinstance(actor, dict) else None
            if isinstance(display, str) and display and on_display_name:
                on_display_name(display)
            return
        others: dict[str, Any] = {}
        for activity in object_items(_Text(box, name, chunks), "orderedItems", others):
            post, seen = activity_post(activity, handle)
            if post is None:
                continue
            if seen == "direct" or (seen == "private" and not include_private):
                left_out[seen] += 1
                continue
            spool.add(post)
        if others.get("type") not in ("OrderedCollection", "OrderedCollectionPage", "Collection") \
                or "orderedItems" not in others:
            raise SourceError(f"{box.display(name)} is not an ActivityStreams outbox (no OrderedCollection with "
                              f"`orderedItems`): {box.again}")

    posts = _spooled(box, ["actor.json", "outbox.json"], read, "which every Mastodon archive has")
    if (left_out["direct"] or left_out["private"]) and say:
        say(f"Left out {left_out['direct']:,} direct messages and {left_out['private']:,} followers-only posts"
            + ("" if include_private else " (--include-private reads the followers-only ones)"))
    return posts


# --- Threads -------------------------------------------------------------------------------------------------


def meta_text(value: Any) -> str:
    """Text as Meta's export wrote it, repaired: every character below U+0100 and the
    whole a valid UTF-8 byte string once encoded as Latin-1 means it was mojibake."""
    if not isinstance(value, str):
        return ""
    if not value or value.isascii() or max(value) > "\u00ff":
        return value
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeDecodeError:
        return value  # real Latin-1 text ("café" written properly): keep it


def _iso_from_timestamp(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        return datetime.fromtimestamp(value, timezone.utc).replace(microsecond=0).isoformat()
    except (OverflowError, OSError, ValueError):
        return None


def threads_post(item: Any, handle: str) -> Post | None:
    """One entry of `text_post_app_text_posts`; None when it has no text (a photo alone)."""
    if not isinstance(item, dict):
        return None
    media = [m for m in item.get("media", []) if isinstance(m, dict)] if isinstance(item.get("media"), list) else []
    text = meta_text(item.get("title")) or next((meta_text(m.get("title")) for m in media if meta_text(m.get("title"))), "")
    if not text.strip():
        return None
    first = media[0] if media else {}
    stamp = item.get("creation_timestamp", first.get("creation_timestamp"))
    app = first.get("text_app_post") if isinstance(first.get("text_app_post"), dict) else {}
    kind = "reply" if app.get("is_reply") is True else "post"
    digest = hashlib.sha1(f"{stamp}\0{text}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
    raw = {"creation_timestamp": stamp if isinstance(stamp, (int, float)) and not isinstance(stamp, bool) else None}
    return Post(id=f"threads-{digest}", text=text, handle=handle, source="threads", kind=kind,
                created_at=_iso_from_timestamp(stamp), raw=raw)


def iter_threads(box: _Container, handle: str) -> Iterator[Post]:
    """A Threads export's posts and replies, newest first, read in bounded memory."""
    def read(name: str, chunks: Iterator[bytes], spool: _Spool) -> None:
        others: dict[str, Any] = {}
        for item in object_items(_Text(box, name, chunks), "text_post_app_text_posts", others):
            post = threads_post(item, handle)
            if post is not None:
                spool.add(post)
        if "text_post_app_text_posts" not in others:
            raise SourceError(f"{box.display(name)} has no `text_post_app_text_posts` list, as Meta's JSON "
                              f"export has: {box.again}")

    return _spooled(box, ["threads_and_replies.json"], read, "where Meta's export keeps the posts")


# --- names -----------------------------------------------------------------------------------------------------


def export_account_name(box: "_Container | _Car", path: Path, fallback: str) -> str:
    """The account's name for a Bluesky, Mastodon or Threads export (never raises):
    Mastodon's user_host (as mastodon:user@host names it), Bluesky's DID unless the file
    has a name of its own, the user name in Meta's zip name; else `fallback`."""
    try:
        if isinstance(box, _Car):
            from .car import repo_did

            did = repo_did(path) if fallback.lower() in ("repo", "") or fallback.lower().startswith("repo-") else None
            return safe_name(did) if did else fallback
        if box.platform == "Threads":
            m = META_ZIP.match(path.name)
            return m.group(1) if m else fallback
        for name, chunks in box.members(["actor.json"]):
            actor = _read_small(box, name, chunks, MAX_ACTOR_BYTES)
            user = actor.get("preferredUsername") if isinstance(actor, dict) else None
            host = urlsplit(actor["id"]).hostname if isinstance(actor.get("id"), str) else None
            if isinstance(user, str) and user:
                return safe_name(f"{user}_{host.lower()}" if host else user)
        return fallback
    except Exception:  # noqa: BLE001 - a damaged export only costs the name
        return fallback
    finally:
        if isinstance(box, _Container):
            box.close()
