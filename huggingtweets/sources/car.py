"""Bluesky's repository export: a CAR file (`repo.car` from Settings > Account > Export my
data, or `com.atproto.sync.getRepo?did=...`), read by `archive:PATH` and by `bsky:handle`'s
fast path.

A CAR (v1) is a DAG-CBOR header `{version: 1, roots: [commit]}` followed by blocks, each
a varint length, a CID and DAG-CBOR bytes; libipld (MIT, the decoder `atproto` itself
uses) decodes the CIDs and the CBOR. The commit's `data` is the root of the repository's
Merkle Search Tree; walking it in order gives every record its key
(`app.bsky.feed.post/<rkey>`), hence its `at://did/collection/rkey` URI, the same id the
public feed gives it. Posts are `app.bsky.feed.post` records, reposts the separate
`app.bsky.feed.repost` records (their text "RT @did: ", so the retweet rule counts them),
and `app.bsky.actor.profile/self` holds the display name.

The file is read twice and never whole: once to index where each block is (16 bytes a
block, in two arrays) and check its hash, once more to fetch the records the tree names.
"""

from __future__ import annotations

import base64
import hashlib
import json
import tempfile
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Iterator

import libipld
import numpy as np

from ..errors import SourceError
from ..posts import Post
from .bluesky import _is_quote, link_text

MAX_CAR_BYTES = 4 * 1024**3  # a repository with years of posts and likes is tens of MB
MAX_HEADER_BYTES = 64 * 1024
MAX_BLOCK_BYTES = 4 * 1024**2  # records are capped at 1 MiB by the PDS; MST nodes are small
MAX_BLOCKS = 20_000_000  # 16 bytes each in the index: 320 MB at most
SHA256, DAG_CBOR, RAW = 0x12, 0x71, 0x55
POST, REPOST, PROFILE = "app.bsky.feed.post", "app.bsky.feed.repost", "app.bsky.actor.profile"
AGAIN = "export the repository again (Bluesky: Settings > Account > Export my data)"


def looks_like_car(head: bytes) -> bool:
    """Whether a file's first bytes are a CAR header: a varint length, then a CBOR map
    naming `roots` or `version`."""
    try:
        n, i = _varint(head, 0)
    except ValueError:
        return False
    return 0 < n <= MAX_HEADER_BYTES and i < len(head) and head[i] in (0xA1, 0xA2) and \
        (b"roots" in head[i:i + 16] or b"version" in head[i:i + 16])


def _varint(data: bytes, i: int) -> tuple[int, int]:
    """An unsigned LEB128 varint at data[i:]: (value, index after it)."""
    value = shift = 0
    for _ in range(10):
        if i >= len(data):
            raise ValueError("cut short")
        b = data[i]
        i += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, i
        shift += 7
    raise ValueError("varint too long")


def _read_varint(f: IO[bytes]) -> int | None:
    """A varint from the file; None at a clean end of file."""
    data = b""
    while True:
        b = f.read(1)
        if not b:
            if data:
                raise ValueError("cut short in a block's length")
            return None
        data += b
        if not b[0] & 0x80:
            return _varint(data, 0)[0]
        if len(data) >= 10:
            raise ValueError("a block's length is not a varint")


def _cid_length(block: bytes) -> tuple[int, int, int, bytes]:
    """(length of the CID at the start of a block, codec, hash code, digest)."""
    if block[:2] == b"\x12\x20":  # CIDv0: a bare sha2-256 multihash, dag-pb
        return 34, 0x70, SHA256, block[2:34]
    version, i = _varint(block, 0)
    if version != 1:
        raise ValueError(f"CID version {version}")
    codec, i = _varint(block, i)
    code, i = _varint(block, i)
    size, i = _varint(block, i)
    if i + size > len(block):
        raise ValueError("CID cut short")
    return i + size, codec, code, block[i:i + size]


def _key(cid: bytes) -> int:
    """The index key of a CID: 8 bytes of its digest (a hash, so spread evenly); the full
    CID is compared when the block is read, so a shared prefix costs a look, not a mistake."""
    return int.from_bytes(hashlib.blake2b(cid, digest_size=8).digest(), "little")


@dataclass
class Repo:
    """An opened CAR: its commit, and where each block lies in the file."""

    path: Path
    label: str
    f: IO[bytes]
    did: str = ""
    root: bytes = b""  # the commit's CID
    data: bytes = b""  # the tree's root CID
    display_name: str | None = None
    keys: Any = None  # sorted block keys (numpy uint64)
    offsets: Any = None  # where each block's length varint starts, in the same order
    skipped: int = 0
    counts: dict[str, int] = field(default_factory=dict)

    def error(self, what: str) -> SourceError:
        return SourceError(f"{self.label} {what}: {AGAIN}")

    def block(self, cid: Any) -> bytes | None:
        """The DAG-CBOR bytes of the block with this CID, or None when the file has none."""
        if not isinstance(cid, bytes):
            raise self.error("links to something that is not a CID, so it is not a repository as Bluesky writes it")
        k = np.uint64(_key(cid))
        i = int(np.searchsorted(self.keys, k))
        while i < len(self.keys) and self.keys[i] == k:
            self.f.seek(int(self.offsets[i]))
            n = _read_varint(self.f)
            data = self.f.read(n or 0)
            if data.startswith(cid):
                return data[len(cid):]
            i += 1
        return None

    def node(self, cid: Any, what: str) -> Any:
        data = self.block(cid)
        if data is None:
            raise self.error(f"is missing the block of its {what}, so it is not a whole repository")
        try:
            return libipld.decode_dag_cbor(data)
        except (ValueError, RecursionError, OverflowError) as e:
            raise self.error(f"has a block that is not valid DAG-CBOR ({_short(e)})") from None


def _short(e: BaseException) -> str:
    return " ".join(str(e).split())[:120] or type(e).__name__


def open_repo(path: Path, label: str | None = None) -> Repo:
    """Index a CAR file: every block's place, its hash checked. Raises SourceError, one line."""
    label = label or str(path)
    try:
        size = path.stat().st_size
        f = open(path, "rb")
    except OSError as e:
        raise SourceError(f"cannot read {label}: {e.strerror or e}: check the file's permissions") from None
    repo = Repo(path=path, label=label, f=f)
    try:
        if size > MAX_CAR_BYTES:
            raise repo.error(f"is {size / 1024**3:.1f} GiB, more than the {MAX_CAR_BYTES // 1024**3} GiB allowed")
        _index(repo)
        _read_commit(repo)
    except BaseException:
        f.close()
        raise
    return repo


def _index(repo: Repo) -> None:
    f = repo.f
    try:
        n = _read_varint(f)
        if not n or n > MAX_HEADER_BYTES:
            raise repo.error("does not start with a CAR header")
        try:
            header = libipld.decode_dag_cbor(f.read(n))
        except (ValueError, RecursionError, OverflowError) as e:
            raise repo.error(f"has a CAR header that is not DAG-CBOR ({_short(e)})") from None
        if not isinstance(header, dict) or header.get("version") != 1:
            raise repo.error("is not a version 1 CAR file, as Bluesky exports repositories")
        roots = header.get("roots")
        if not isinstance(roots, list) or not roots or not isinstance(roots[0], bytes):
            raise repo.error("names no root in its CAR header, so it has no commit to read")
        repo.root = roots[0]
        keys, offsets = array("Q"), array("Q")
        while True:
            at = f.tell()
            n = _read_varint(f)
            if n is None:
                break
            if n == 0 or n > MAX_BLOCK_BYTES:
                raise repo.error(f"has a block of {n:,} bytes (at byte {at:,}), not one Bluesky writes")
            block = f.read(n)
            if len(block) < n:
                raise repo.error(f"is cut short (in the block at byte {at:,})")
            try:
                cid_len, codec, code, digest = _cid_length(block)
            except ValueError as e:
                raise repo.error(f"has a block whose CID cannot be read ({e}, at byte {at:,})") from None
            if code == SHA256 and hashlib.sha256(block[cid_len:]).digest() != digest:
                raise repo.error(f"is damaged: the block at byte {at:,} does not match its hash")
            if len(keys) >= MAX_BLOCKS:
                raise repo.error(f"has more than {MAX_BLOCKS:,} blocks, more than any Bluesky repository")
            keys.append(_key(block[:cid_len]))
            offsets.append(at)
    except ValueError as e:  # a varint cut short or too long
        raise repo.error(f"is cut short or damaged ({e})") from None
    except OSError as e:
        raise SourceError(f"cannot read {repo.label}: {e.strerror or e}") from None
    k = np.frombuffer(keys, dtype=np.uint64) if len(keys) else np.zeros(0, dtype=np.uint64)
    o = np.frombuffer(offsets, dtype=np.uint64) if len(offsets) else np.zeros(0, dtype=np.uint64)
    order = np.argsort(k, kind="stable")
    repo.keys, repo.offsets = k[order], o[order]


def _read_commit(repo: Repo) -> None:
    commit = repo.node(repo.root, "commit")
    if not isinstance(commit, dict) or not isinstance(commit.get("data"), bytes) or not isinstance(commit.get("did"), str):
        raise repo.error("has a root that is not a repository commit (no `did` and `data`)")
    repo.did = commit["did"]
    repo.data = commit["data"]


def records(repo: Repo, collections: tuple[str, ...]) -> Iterator[tuple[str, str, Any]]:
    """(collection, rkey, record) for every record in these collections, in key order,
    walking the Merkle Search Tree from the commit's `data`."""
    wanted = {c.encode() for c in collections}
    seen: set[bytes] = set()
    stack: list[tuple[str, Any]] = [("node", repo.data)]
    while stack:
        what, item = stack.pop()
        if what == "leaf":
            key, cid = item
            collection, _, rkey = key.partition(b"/")
            if collection not in wanted:
                continue
            data = repo.block(cid)
            if data is None:
                raise repo.error(f"is missing the record {key.decode('utf-8', 'replace')!r}, so it is not a whole repository")
            try:
                record = libipld.decode_dag_cbor(data)
            except (ValueError, RecursionError, OverflowError) as e:
                raise repo.error(f"has a record that is not valid DAG-CBOR ({_short(e)})") from None
            yield collection.decode(), rkey.decode("utf-8", "replace"), record
            continue
        if item in seen:
            raise repo.error("has a tree that loops back on itself, which a repository's cannot")
        seen.add(item)
        node = repo.node(item, "tree")
        entries = node.get("e") if isinstance(node, dict) else None
        if not isinstance(entries, list):
            raise repo.error("has a tree node of the wrong shape (no `e` list)")
        todo: list[tuple[str, Any]] = []
        if node.get("l") is not None:
            todo.append(("node", node["l"]))
        key = b""
        for entry in entries:
            if not isinstance(entry, dict) or not isinstance(entry.get("k"), bytes) \
                    or not isinstance(entry.get("p"), int) or not 0 <= entry["p"] <= len(key):
                raise repo.error("has a tree entry of the wrong shape (its `p`, `k` or `v`)")
            key = key[:entry["p"]] + entry["k"]  # each key shares `p` bytes with the one before it
            todo.append(("leaf", (key, entry.get("v"))))
            if entry.get("t") is not None:
                todo.append(("node", entry["t"]))
        stack.extend(reversed(todo))


def _jsonable(value: Any, depth: int = 0) -> Any:
    """A record's value as JSON, the way atproto writes it: links `{"$link": cid}`, bytes `{"$bytes": ...}`."""
    if depth > 64:
        return None
    if isinstance(value, bytes):
        try:
            return {"$link": libipld.encode_cid(value)}
        except ValueError:
            return {"$bytes": base64.b64encode(value).decode("ascii")}
    if isinstance(value, list):
        return [_jsonable(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v, depth + 1) for k, v in value.items()}
    return value


def record_post(repo: Repo, collection: str, rkey: str, record: Any, handle: str) -> Post | None:
    """One post or repost record as a Post; None for a record of the wrong shape."""
    if not isinstance(record, dict):
        return None
    created = record.get("createdAt") if isinstance(record.get("createdAt"), str) else None
    uri = f"at://{repo.did}/{collection}/{rkey}"
    raw = {"rkey": rkey, "record": _jsonable({k: v for k, v in record.items() if k != "text"})}
    if collection == REPOST:
        subject = record.get("subject") if isinstance(record.get("subject"), dict) else {}
        reposted = subject.get("uri") if isinstance(subject.get("uri"), str) else ""
        author = reposted.removeprefix("at://").split("/", 1)[0] or "unknown"
        raw["reposted_uri"] = reposted
        return Post(id=uri, text=f"RT @{author}: ", handle=handle, source="bsky", kind="repost", created_at=created,
                    raw=raw)
    if not isinstance(record.get("text"), str):
        return None
    if isinstance(record.get("reply"), dict):
        kind = "reply"
    elif _is_quote(record.get("embed")):
        kind = "quote"
    else:
        kind = "post"
    return Post(id=uri, text=link_text(record["text"], record.get("facets")), handle=handle, source="bsky",
                kind=kind, created_at=created, raw=raw)


def iter_car(path: Path, handle: str, label: str | None = None, repo: Repo | None = None) -> Iterator[Post]:
    """The posts and reposts of a repository CAR, newest first, in bounded memory: the
    whole file is read and checked before the first post is given."""
    repo = repo or open_repo(Path(path), label)
    spool = tempfile.TemporaryFile()
    keys: list[tuple[str, int, int]] = []
    try:
        with repo.f:
            for collection, rkey, record in records(repo, (POST, REPOST, PROFILE)):
                if collection == PROFILE:
                    name = record.get("displayName") if isinstance(record, dict) and rkey == "self" else None
                    repo.display_name = name if isinstance(name, str) else repo.display_name
                    continue
                post = record_post(repo, collection, rkey, record, handle)
                if post is None:
                    repo.skipped += 1
                    continue
                repo.counts[post.kind] = repo.counts.get(post.kind, 0) + 1
                keys.append((post.created_at or "", 0, spool.tell()))
                spool.write(post.to_json_line().encode("utf-8"))
    except BaseException:
        spool.close()
        raise
    keys.sort(key=lambda k: k[:2], reverse=True)
    return _unspool(spool, keys)


def _unspool(spool: IO[bytes], keys: list[tuple[str, int, int]]) -> Iterator[Post]:
    with spool:
        for _, _, where in keys:
            spool.seek(where)
            yield Post.from_dict(json.loads(spool.readline()))


def repo_did(path: Path) -> str | None:
    """The DID a CAR's commit names, or None (never raises): for the account's name."""
    try:
        repo = open_repo(Path(path))
    except Exception:  # noqa: BLE001 - a bad file is reported when it is read
        return None
    repo.f.close()
    return repo.did
