"""`file:PATH`: posts a user already has. JSON Lines (our own posts.jsonl, or what
`snscrape --jsonl twitter-user` wrote), CSV with a `text` column, or plain text
with one post a line. The format is chosen by the file's extension."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from ..errors import SourceError
from ..posts import KINDS, Post, is_id, json_loads

JSONL_SUFFIXES = {".jsonl", ".ndjson", ".json"}


def read_file(path: Path, handle: str) -> list[Post]:
    if not path.exists():
        raise SourceError(f"file not found: {path}: check the path after `file:`")
    if path.is_dir():
        raise SourceError(f"{path} is a folder: give file:PATH a file of posts")
    try:
        if path.suffix.lower() in JSONL_SUFFIXES:
            return _read_jsonl(path, handle)
        if path.suffix.lower() == ".csv":
            return _read_csv(path, handle)
        return _read_text(path, handle)
    except UnicodeDecodeError as e:
        raise SourceError(f"{path} is not UTF-8 text ({e.reason} at byte {e.start}): save it as UTF-8") from None
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror}") from None


def _read_text(path: Path, handle: str) -> list[Post]:
    with open(path, encoding="utf-8-sig") as f:
        lines = [line.rstrip("\r\n") for line in f]
    return [Post(id=str(i), text=line, handle=handle, source="file") for i, line in enumerate(lines, 1) if line.strip()]


def _read_csv(path: Path, handle: str) -> list[Post]:
    with open(path, encoding="utf-8-sig", newline="") as f:
        reader = csv.DictReader(f)
        try:
            columns = reader.fieldnames or []  # reads the first row
        except csv.Error as e:
            raise SourceError(f"{path} has a first row that is not valid CSV ({e}): check its quoting, "
                              "or use a .txt file with one post a line") from None
        if "text" not in columns:
            shown = ", ".join(" ".join(c.split())[:40] for c in columns[:10]) or "none"
            raise SourceError(f"{path} has no `text` column (columns: {shown}): name the column that holds the posts `text`")
        posts = []
        try:
            for i, row in enumerate(reader, 1):
                text = row.get("text") or ""
                if not text.strip():
                    continue
                kind = row.get("kind") if row.get("kind") in KINDS else "post"
                raw = {k: v for k, v in row.items() if k not in ("text", "id", "created_at", "kind") and k is not None}
                posts.append(Post(id=row.get("id") or str(i), text=text, handle=handle, source="file", kind=kind,
                                  created_at=row.get("created_at") or None, raw=raw))
        except csv.Error as e:
            raise SourceError(f"{path} is not valid CSV ({e}): check its quoting, or use a .txt file with one post a line") from None
    return posts


def _read_jsonl(path: Path, handle: str) -> list[Post]:
    posts = []
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                obj = json_loads(line)
            except json.JSONDecodeError as e:
                raise SourceError(f"{path} line {n} is not JSON ({e.msg}): each line must be one JSON object") from None
            except ValueError:
                raise SourceError(f"{path} line {n} holds a number too long to read: "
                                  "each line must be one post as a JSON object") from None
            except RecursionError:
                raise SourceError(f"{path} line {n} is nested too deeply to be a post: "
                                  "each line must be one post as a JSON object") from None
            if not isinstance(obj, dict):
                raise SourceError(f"{path} line {n} is not a JSON object: each line must be one post as an object")
            post = _post_from_json(obj, handle, n)
            if post is None:
                raise SourceError(f"{path} line {n} has no post text (no `text`, `full_text`, `rawContent` or `content` field)")
            posts.append(post)
    return posts


def _post_from_json(obj: dict[str, Any], handle: str, n: int) -> Post | None:
    """Our own records, X-style and snscrape-style objects: the text field and
    whatever marks a repost, reply or quote."""
    if obj.get("source") and obj.get("handle") and isinstance(obj.get("text"), str) and obj.get("kind") in KINDS \
            and is_id(obj.get("id"), floats=True):
        created, raw = obj.get("created_at"), obj.get("raw")
        return Post(id=str(obj["id"]), text=obj["text"], handle=handle,
                    source=obj["source"] if isinstance(obj["source"], str) else "file", kind=obj["kind"],
                    created_at=created if isinstance(created, str) else None, raw=raw if isinstance(raw, dict) else {})
    text = next((obj[k] for k in ("text", "full_text", "rawContent", "content") if isinstance(obj.get(k), str)), None)
    if text is None:
        return None
    kind = "post"
    if obj.get("retweetedTweet") or obj.get("retweeted_status"):
        kind = "repost"
    elif obj.get("quotedTweet") or obj.get("quoted_status"):
        kind = "quote"
    elif obj.get("inReplyToTweetId") or obj.get("in_reply_to_status_id_str") or obj.get("in_reply_to_status_id"):
        kind = "reply"
    created = obj.get("created_at") or obj.get("date")
    post_id = obj.get("id_str") or obj.get("id")
    return Post(id=str(post_id) if is_id(post_id, floats=True) else str(n), text=text, handle=handle, source="file", kind=kind,
                created_at=str(created) if isinstance(created, (str, int, float)) and created else None,
                raw={k: v for k, v in obj.items() if k not in ("text", "full_text", "rawContent", "content")})
