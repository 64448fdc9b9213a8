"""Each platform's export, built in its real format, for the tests.

- Bluesky: a repository CAR v1 as getRepo and the app's export write it: DAG-CBOR blocks
  (encoded here by the DAG-CBOR rules: shortest heads, map keys sorted by length then
  bytes, links as tag 42; checked byte for byte against libipld's encoder), CIDv1
  sha2-256, a signed-commit-shaped root, and a Merkle Search Tree of fanout 4 (a key's
  layer is the count of leading zero bit pairs of its sha256, keys prefix-compressed).
- Mastodon: the archive as Mastodon's backup service writes it: media_attachments/files/...,
  outbox.json (OrderedCollection of Create/Announce activities), likes.json,
  bookmarks.json, actor.json, avatar; a ustar .tar.gz (before 4.3) or a .zip (4.3 on).
- Threads: Meta's "Download your information" zip, JSON written with every UTF-8 byte of
  the text escaped as its own \\u00XX (Meta's mojibake).
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import tarfile
import zipfile
from pathlib import Path
from typing import Any, Iterable

# --- DAG-CBOR and CAR ----------------------------------------------------------------------------------------


class Link(bytes):
    """A CID, encoded as a link (CBOR tag 42)."""


def _head(major: int, n: int) -> bytes:
    if n < 24:
        return bytes([major << 5 | n])
    for extra, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if n < 1 << (8 * size):
            return bytes([major << 5 | extra]) + n.to_bytes(size, "big")
    raise ValueError("integer too big for CBOR")


def dag_cbor(v: Any) -> bytes:
    if v is None:
        return b"\xf6"
    if v is True:
        return b"\xf5"
    if v is False:
        return b"\xf4"
    if isinstance(v, Link):
        inner = b"\x00" + bytes(v)
        return b"\xd8\x2a" + _head(2, len(inner)) + inner
    if isinstance(v, int):
        return _head(0, v) if v >= 0 else _head(1, -1 - v)
    if isinstance(v, float):
        return b"\xfb" + struct.pack(">d", v)
    if isinstance(v, bytes):
        return _head(2, len(v)) + v
    if isinstance(v, str):
        data = v.encode("utf-8", "surrogatepass")  # a lone surrogate: bytes that are not UTF-8, for the fuzz tests
        return _head(3, len(data)) + data
    if isinstance(v, (list, tuple)):
        return _head(4, len(v)) + b"".join(dag_cbor(x) for x in v)
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: (len(k.encode()), k.encode()))
        return _head(5, len(v)) + b"".join(dag_cbor(k) + dag_cbor(v[k]) for k in keys)
    raise TypeError(type(v))


def cid_of(data: bytes) -> Link:
    return Link(b"\x01\x71\x12\x20" + hashlib.sha256(data).digest())  # v1, dag-cbor, sha2-256, 32 bytes


def varint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _layer(key: bytes) -> int:
    """The MST layer of a key: leading zero 2-bit pairs of its sha256 (fanout 4)."""
    count = 0
    for byte in hashlib.sha256(key).digest():
        for shift in (6, 4, 2, 0):
            if (byte >> shift) & 3:
                return count
            count += 1
    return count


class CarWriter:
    def __init__(self) -> None:
        self.blocks: dict[bytes, bytes] = {}

    def put(self, value: Any) -> Link:
        data = dag_cbor(value)
        cid = cid_of(data)
        self.blocks[bytes(cid)] = data
        return cid

    def tree(self, items: list[tuple[bytes, Link]], layer: int) -> Link | None:
        if not items:
            return None
        here = [i for i, (k, _) in enumerate(items) if _layer(k) == layer]
        if layer == 0 or here:
            bounds = [-1] + here + [len(items)]
            left = self.tree(items[:bounds[1]], layer - 1) if layer else None
            entries, prev = [], b""
            for n, i in enumerate(here if layer else range(len(items))):
                key, value = items[i]
                after = items[i + 1:bounds[n + 2]] if layer else []
                p = 0
                while p < min(len(prev), len(key)) and prev[p] == key[p]:
                    p += 1
                entries.append({"p": p, "k": key[p:], "v": value, "t": self.tree(after, layer - 1) if layer else None})
                prev = key
            return self.put({"l": left, "e": entries})
        return self.put({"l": self.tree(items, layer - 1), "e": []})

    def repo(self, did: str, records: dict[str, dict[str, Any]]) -> bytes:
        """A whole repository: `records` maps "collection/rkey" to the record."""
        items = sorted((key.encode(), self.put(record)) for key, record in records.items())
        top = max((_layer(k) for k, _ in items), default=0)
        return self.repo_from(did, self.tree(items, top) or self.put({"l": None, "e": []}))

    def repo_from(self, did: str, data: Link) -> bytes:
        """The CAR of a repository whose tree's root is `data` (its blocks already put)."""
        commit = self.put({"did": did, "version": 3, "data": data, "rev": "3l3qo2vutsw2b", "prev": None,
                           "sig": b"\x00" * 64})
        out = bytearray()
        header = dag_cbor({"version": 1, "roots": [commit]})
        out += varint(len(header)) + header
        order = [bytes(commit)] + [c for c in self.blocks if c != bytes(commit)]
        for cid in order:
            out += varint(len(cid) + len(self.blocks[cid])) + cid + self.blocks[cid]
        return bytes(out)


DID = "did:plc:ewvi7nxzyoun6zhxrhs64oiz"
OTHER = "did:plc:44ybard66vv44zksje25o7dz"


def tid(n: int) -> str:
    """A record key in the TID shape (13 base32-sortable characters)."""
    alphabet = "234567abcdefghijklmnopqrstuvwxyz"
    value, out = 1_700_000_000_000_000 + n, ""
    for _ in range(13):
        out = alphabet[value & 31] + out
        value >>= 5
    return out


def bsky_records(n_posts: int, reposts_every: int = 10) -> dict[str, dict[str, Any]]:
    """n_posts records: posts, replies, quotes and (every `reposts_every`-th) reposts, plus a profile and a like."""
    records: dict[str, dict[str, Any]] = {
        "app.bsky.actor.profile/self": {"$type": "app.bsky.actor.profile", "displayName": "Alice 🦋",
                                        "description": "words"},
        "app.bsky.feed.like/" + tid(10**8): {"$type": "app.bsky.feed.like", "createdAt": "2024-01-01T00:00:00.000Z",
                                            "subject": {"uri": f"at://{OTHER}/app.bsky.feed.post/x", "cid": "bafy"}},
    }
    for i in range(n_posts):
        created = f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}.{i % 1000:03d}Z"
        if reposts_every and i % reposts_every == 0:
            records[f"app.bsky.feed.repost/{tid(i)}"] = {
                "$type": "app.bsky.feed.repost", "createdAt": created,
                "subject": {"uri": f"at://{OTHER}/app.bsky.feed.post/{tid(i)}", "cid": "bafyreib"}}
            continue
        record: dict[str, Any] = {"$type": "app.bsky.feed.post", "createdAt": created, "langs": ["en"],
                                  "text": f"post number {i} says something about the day"}
        if i % 10 == 1:
            record["text"] = f"@friend.bsky.social yes {i}"
            ref = {"uri": f"at://{OTHER}/app.bsky.feed.post/{tid(i)}", "cid": "bafyreic"}
            record["reply"] = {"root": ref, "parent": ref}
        elif i % 10 == 2:
            record["embed"] = {"$type": "app.bsky.embed.record",
                               "record": {"uri": f"at://{OTHER}/app.bsky.feed.post/q{i}", "cid": "bafyreid"}}
        elif i % 10 == 3:
            link = "https://example.com/a/long/path/to/a/page"
            record["text"] = f"read this, number {i}: example.com/a/long/pa..."
            start = len(record["text"].encode()) - len("example.com/a/long/pa...")
            record["facets"] = [{"index": {"byteStart": start, "byteEnd": len(record["text"].encode())},
                                 "features": [{"$type": "app.bsky.richtext.facet#link", "uri": link}]}]
            record["embed"] = {"$type": "app.bsky.embed.images", "images": [{"alt": "", "image": {
                "$type": "blob", "ref": cid_of(b"jpeg"), "mimeType": "image/jpeg", "size": 1234}}]}
        records[f"app.bsky.feed.post/{tid(i)}"] = record
    return records


def bsky_car(n_posts: int = 20, did: str = DID) -> bytes:
    return CarWriter().repo(did, bsky_records(n_posts))


# --- Mastodon ------------------------------------------------------------------------------------------------

HOST = "mastodon.example"
ACTOR = f"https://{HOST}/users/alice"
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def _note(i: int, html: str, to: list[str], cc: list[str], **extra: Any) -> dict[str, Any]:
    published = f"2023-{1 + i % 12:02d}-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:00Z"
    note = {"id": f"{ACTOR}/statuses/{100000 + i}", "type": "Note", "summary": None, "inReplyTo": None,
            "published": published, "url": f"https://{HOST}/@alice/{100000 + i}", "attributedTo": ACTOR,
            "to": to, "cc": cc, "sensitive": False, "atomUri": f"{ACTOR}/statuses/{100000 + i}",
            "conversation": f"tag:{HOST},2023:objectId={i}:objectType=Conversation", "content": html,
            "contentMap": {"en": html}, "attachment": [], "tag": [],
            "replies": {"id": f"{ACTOR}/statuses/{100000 + i}/replies", "type": "Collection"}}
    note.update(extra)
    return {"id": f"{ACTOR}/statuses/{100000 + i}/activity", "type": "Create", "actor": ACTOR,
            "published": published, "to": to, "cc": cc, "object": note}


def mastodon_activities(n: int) -> Iterable[dict[str, Any]]:
    """n activities: public posts, unlisted ones, replies, a content warning, boosts (every 10th),
    followers-only posts (every 10th, from 5) and direct messages (every 10th, from 7)."""
    followers = f"{ACTOR}/followers"
    for i in range(n):
        r = i % 10
        if r == 0:
            yield {"id": f"{ACTOR}/statuses/{100000 + i}/activity", "type": "Announce", "actor": ACTOR,
                   "published": f"2023-05-01T00:00:{i % 60:02d}Z", "to": [PUBLIC],
                   "cc": [f"https://other.example/users/bob", followers],
                   "object": f"https://other.example/users/bob/statuses/{i}"}
        elif r == 5:
            yield _note(i, f"<p>for my followers only, number {i}</p>", [followers], [])
        elif r == 7:
            yield _note(i, f'<p><span class="h-card"><a href="https://other.example/@bob" class="u-url mention">'
                           f'@<span>bob</span></a></span> a secret message {i}</p>',
                        ["https://other.example/users/bob"], [])
        elif r == 1:
            yield _note(i, f'<p><span class="h-card"><a href="https://other.example/@bob" class="u-url mention">'
                           f'@<span>bob</span></a></span> I agree with you {i}</p>', [PUBLIC], [followers],
                        inReplyTo="https://other.example/users/bob/statuses/1")
        elif r == 2:
            yield _note(i, f"<p>spoilers for the film, number {i}, are below</p>", [followers], [PUBLIC],
                        summary="film spoilers", sensitive=True)
        elif r == 3:
            yield _note(i, f'<p>Read <a href="https://example.com/a/long/path" rel="nofollow noopener" target="_blank">'
                           f'<span class="invisible">https://</span><span class="ellipsis">example.com/a/lo</span>'
                           f'<span class="invisible">ng/path</span></a> number {i}</p>', [PUBLIC], [followers])
        else:
            yield _note(i, f"<p>post number {i} talks about the day &amp; the night</p><p>a second paragraph</p>",
                        [PUBLIC], [followers])


def outbox_json(activities: Iterable[dict[str, Any]], total: int) -> Iterable[bytes]:
    """outbox.json's bytes in pieces, as Mastodon's serializer lays it out."""
    yield (b'{"@context":["https://www.w3.org/ns/activitystreams",{"ostatus":"http://ostatus.org#"}],'
           b'"id":"outbox.json","type":"OrderedCollection","totalItems":' + str(total).encode() + b',"orderedItems":[')
    for n, activity in enumerate(activities):
        yield (b"," if n else b"") + json.dumps(activity, ensure_ascii=False).encode()
    yield b"]}"


def actor_json() -> bytes:
    return json.dumps({"@context": ["https://www.w3.org/ns/activitystreams"], "id": ACTOR, "type": "Person",
                       "following": f"{ACTOR}/following", "followers": f"{ACTOR}/followers",
                       "inbox": f"{ACTOR}/inbox", "outbox": "outbox.json", "preferredUsername": "alice",
                       "name": "Alice Ü", "summary": "<p>hello</p>", "url": f"https://{HOST}/@alice",
                       "icon": {"type": "Image", "mediaType": "image/png", "url": "avatar.png"}}).encode()


def mastodon_files(n: int) -> list[tuple[str, bytes | Iterable[bytes]]]:
    """The archive's files in the order Mastodon's backup service writes them."""
    return [("media_attachments/files/109/348/000/original/3f2a.png", b"\x89PNG fake image bytes" * 50),
            ("outbox.json", outbox_json(mastodon_activities(n), n)),
            ("likes.json", json.dumps({"type": "OrderedCollection", "orderedItems": []}).encode()),
            ("bookmarks.json", json.dumps({"type": "OrderedCollection", "orderedItems": []}).encode()),
            ("actor.json", actor_json()), ("avatar.png", b"\x89PNG avatar")]


def write_tar_gz(path: Path, files: list[tuple[str, bytes | Iterable[bytes]]]) -> Path:
    """A ustar .tar.gz, as Ruby's Gem::Package::TarWriter inside a GzipWriter writes it; big
    members are staged in a temporary file so memory stays small."""
    import tempfile

    with tarfile.open(path, "w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for name, content in files:
            with tempfile.TemporaryFile() as tmp:
                for piece in [content] if isinstance(content, bytes) else content:
                    tmp.write(piece)
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = tmp.tell(), 1_700_000_000, 0o644
                tmp.seek(0)
                tar.addfile(info, tmp)
    return path


def write_zip(path: Path, files: list[tuple[str, bytes | Iterable[bytes]]]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, content in files:
            with z.open(name, "w", force_zip64=True) as f:
                for piece in [content] if isinstance(content, bytes) else content:
                    f.write(piece)
    return path


# --- Threads -------------------------------------------------------------------------------------------------

THREADS_TEXTS = ["Hello Threads! 👋 first post from Zürich", "café con leche, s'il vous plaît ☕",
                 "naïve question: is 日本語 text kept? 🤔", "a plain ascii post with a few words"]


def mojibake(value: Any) -> Any:
    """As Meta writes text: each UTF-8 byte as its own character (then escaped \\u00XX by json)."""
    if isinstance(value, str):
        return value.encode("utf-8").decode("latin-1")
    if isinstance(value, list):
        return [mojibake(v) for v in value]
    if isinstance(value, dict):
        return {k: mojibake(v) for k, v in value.items()}
    return value


def threads_items(n: int) -> Iterable[dict[str, Any]]:
    """n entries: texts with emoji and accents, replies every 10th (from 1), a photo alone every 10th (from 9)."""
    for i in range(n):
        stamp = 1_690_000_000 + i * 60
        text = f"{THREADS_TEXTS[i % len(THREADS_TEXTS)]} ({i})"
        media = {"uri": "", "creation_timestamp": stamp, "title": text,
                 "media_metadata": {"camera_metadata": {"has_camera_metadata": False}},
                 "cross_post_source": {"source_app": "THREADS"},
                 "text_app_post": {"reply_control": "everyone", "is_reply": i % 10 == 1}}
        if i % 10 == 9:
            media.update(uri=f"media/posts/202308/{i}.jpg", title="")
        yield mojibake({"media": [media], "title": ""})


def threads_json(items: Iterable[dict[str, Any]]) -> Iterable[bytes]:
    yield b'{\n  "text_post_app_text_posts": [\n'
    for n, item in enumerate(items):
        yield (b",\n" if n else b"") + json.dumps(item, indent=2).encode()  # ensure_ascii: the \u00XX escapes
    yield b"\n  ]\n}"


def threads_files(n: int) -> list[tuple[str, bytes | Iterable[bytes]]]:
    return [("your_instagram_activity/threads/threads_and_replies.json", threads_json(threads_items(n))),
            ("your_instagram_activity/threads/liked_threads.json", b'{"text_post_app_media_likes": []}'),
            ("personal_information/personal_information/personal_information.json", b'{"profile_user": []}'),
            ("media/posts/202308/9.jpg", b"\xff\xd8 fake jpeg")]


def zip_bytes(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return buffer.getvalue()
