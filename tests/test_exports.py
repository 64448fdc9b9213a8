"""`archive:PATH` for the other platforms' exports, each built in its real format
(tests/exports_build.py): Bluesky's repository CAR, Mastodon's archive (.tar.gz and .zip),
Meta's Threads export (a zip with mojibake); and `bsky:handle`'s getRepo fast path
against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import io
import json
import tarfile
import zipfile
from collections import Counter

import libipld
import pytest

import exports_build as eb
from huggingtweets import filter_posts, write_posts
from huggingtweets.card import post_languages
from huggingtweets.cli import main
from huggingtweets.errors import SourceError
from huggingtweets.settings import Settings
from huggingtweets.sources import archive, fetch_posts, parse_source
from huggingtweets.sources.archive import account_name, read_archive
from huggingtweets.sources.exports import meta_text
from loopback import Reply


def kinds(posts):
    return Counter(p.kind for p in posts)


def same_stats_through_a_file(tmp_path, posts):
    """The stats of these posts equal those of the same posts written out and read back by `file:`."""
    f = tmp_path / "posts.jsonl"
    write_posts(f, posts)
    again = fetch_posts(parse_source(f"file:{f}"))
    as_read = lambda ps: [{**p.to_dict(), "handle": None} for p in ps]  # noqa: E731 (file: names its own handle)
    assert as_read(again) == as_read(posts)
    stats = filter_posts(posts).stats
    assert stats == filter_posts(again).stats
    return stats


def one_line_error(path, match, **kw):
    with pytest.raises(SourceError, match=match) as e:
        read_archive(path, handle="a", **kw)
    assert "\n" not in str(e.value) and ": " in str(e.value)
    return str(e.value)


# --- Bluesky: the repository CAR -------------------------------------------------------------------------------


def test_dag_cbor_writer_follows_the_rules_libipld_encodes_by():
    value = {"text": "héllo 🦋", "a": 1, "bb": [0, 23, 24, 255, 256, 65535, 65536, 2**32, -1, -25, -300],
             "bytes": b"\x00\x01", "none": None, "t": True, "f": False, "float": 1.5, "nested": {"z": {}, "y": []}}
    assert eb.dag_cbor(value) == libipld.encode_dag_cbor(value)
    assert libipld.decode_dag_cbor(eb.dag_cbor(value)) == value


def test_bluesky_repository_car(tmp_path):
    car = tmp_path / "repo.car"
    car.write_bytes(eb.bsky_car(40))
    assert account_name(car) == "did_plc_ewvi7nxzyoun6zhxrhs64oiz"  # repo.car names no one; its commit does
    assert parse_source(f"archive:{car}").name == "did_plc_ewvi7nxzyoun6zhxrhs64oiz"
    posts = read_archive(car, handle="alice")
    assert kinds(posts) == {"post": 28, "reply": 4, "quote": 4, "repost": 4} and len(posts) == 40
    assert [p.created_at for p in posts] == sorted((p.created_at for p in posts), reverse=True)  # newest first
    by_rkey = {p.raw["rkey"]: p for p in posts}
    post = by_rkey[eb.tid(5)]
    assert post.id == f"at://{eb.DID}/app.bsky.feed.post/{eb.tid(5)}"  # the URI the public feed gives it too
    assert post.text == "post number 5 says something about the day" and post.source == "bsky"
    assert post.created_at == "2024-06-06T05:05:05.005Z"
    assert by_rkey[eb.tid(3)].text == "read this, number 3: https://example.com/a/long/path/to/a/page"  # facet
    assert by_rkey[eb.tid(3)].raw["record"]["embed"]["images"][0]["image"]["ref"]["$link"].startswith("bafy")
    repost = by_rkey[eb.tid(10)]
    assert repost.kind == "repost" and repost.text == f"RT @{eb.OTHER}: " and \
        repost.id == f"at://{eb.DID}/app.bsky.feed.repost/{eb.tid(10)}"
    assert "like" not in " ".join(p.id for p in posts)  # likes are others' posts
    assert post_languages(posts) == ["en"]  # from the records' langs
    stats = same_stats_through_a_file(tmp_path, posts)
    assert (stats.tweets_downloaded, stats.retweets) == (40, 4)


def test_bluesky_car_through_the_cli_keeps_the_display_name(tmp_path, capsys):
    car = tmp_path / "alice-export.car"
    car.write_bytes(eb.bsky_car(12))
    assert main(["fetch", f"archive:{car}"]) == 0
    assert "Fetched 12 posts" in capsys.readouterr().out
    work = tmp_path / "work" / "alice-export"
    lines = (work / "posts.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    state = json.loads((work / "fetch" / "archive-alice-export" / "state.json").read_text(encoding="utf-8"))
    assert state["display_name"] == "Alice 🦋"


def car_blocks(data: bytes):
    """(offset, length of the block with its varint) for each block after the header."""
    from huggingtweets.sources.car import _varint

    n, i = _varint(data, 0)
    i += n
    out = []
    while i < len(data):
        n, j = _varint(data, i)
        out.append((i, j - i + n))
        i = j + n
    return out


def test_hostile_and_damaged_cars(tmp_path):
    data = eb.bsky_car(8)
    path = tmp_path / "repo.car"
    cases = {
        "cut short": data[: len(data) - 10],
        "does not match its hash": data[:-5] + bytes([data[-5] ^ 1]) + data[-4:],
        "a block of": data[:car_blocks(data)[0][0]] + eb.varint(2**40) + b"\x01",
        "not a version 1 CAR": eb.varint(len(h := eb.dag_cbor({"version": 2, "roots": []}))) + h,
        "names no root": eb.varint(len(h := eb.dag_cbor({"version": 1, "roots": []}))) + h,
        "missing the block of its commit": data[:car_blocks(data)[0][0]],
    }
    # a record's block removed: the tree names a record the file does not have
    first, length = car_blocks(data)[1]
    cases["is missing"] = data[:first] + data[first + length:]
    for match, content in cases.items():
        path.write_bytes(content)
        one_line_error(path, match)
    path.write_bytes(cases["cut short"])
    assert account_name(path) == "repo"  # never raises: a damaged file only costs the name


# --- Mastodon: the account archive ----------------------------------------------------------------------------


def test_mastodon_tar_gz_as_the_backup_service_writes_it(tmp_path):
    path = eb.write_tar_gz(tmp_path / "archive-20240101120000-abcdef.tar.gz", eb.mastodon_files(40))
    assert account_name(path) == "alice_mastodon.example"  # as mastodon:alice@mastodon.example names it
    posts = read_archive(path, handle="alice")
    # 40 activities: 4 boosts, 4 followers-only, 4 direct; the rest public or unlisted
    assert len(posts) == 32 and kinds(posts) == {"post": 24, "reply": 4, "repost": 4}
    texts = " ".join(p.text for p in posts)
    assert "secret message" not in texts and "followers only" not in texts  # direct never; private not asked
    by_id = {p.id: p for p in posts}
    post = by_id[f"{eb.ACTOR}/statuses/100004"]
    assert post.text == "post number 4 talks about the day & the night\n\na second paragraph"
    assert post.raw["language"] == "en" and post.raw["visibility"] == "public"
    warned = by_id[f"{eb.ACTOR}/statuses/100002"]
    assert warned.raw["spoiler_text"] == "film spoilers" and "film spoilers" not in warned.text  # kept apart
    assert warned.raw["visibility"] == "unlisted"
    assert by_id[f"{eb.ACTOR}/statuses/100003"].text == "Read https://example.com/a/long/path number 3"
    assert by_id[f"{eb.ACTOR}/statuses/100011"].text == "@bob I agree with you 11"
    boost = by_id[f"{eb.ACTOR}/statuses/100010/activity"]
    assert boost.kind == "repost" and boost.text == "RT @bob@other.example: "
    assert post_languages(posts) == ["en"]
    stats = same_stats_through_a_file(tmp_path, posts)
    assert (stats.tweets_downloaded, stats.retweets) == (32, 4)

    with_private = read_archive(path, handle="alice", include_private=True)
    assert len(with_private) == 36 and "followers only" in " ".join(p.text for p in with_private)
    assert "secret message" not in " ".join(p.text for p in with_private)


def test_mastodon_zip_and_unpacked_folder_read_the_same(tmp_path):
    tgz = read_archive(eb.write_tar_gz(tmp_path / "a.tar.gz", eb.mastodon_files(20)), handle="a")
    z = eb.write_zip(tmp_path / "archive-20250101.zip", eb.mastodon_files(20))  # Mastodon 4.3 on writes a zip
    assert account_name(z) == "alice_mastodon.example"
    assert [p.to_dict() for p in read_archive(z, handle="a")] == [p.to_dict() for p in tgz]
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(z) as zf:
        zf.extractall(folder)
    assert [p.to_dict() for p in read_archive(folder, handle="a")] == [p.to_dict() for p in tgz]


def test_mastodon_cli_says_what_it_left_out(tmp_path, capsys):
    path = eb.write_tar_gz(tmp_path / "backup.tar.gz", eb.mastodon_files(20))
    assert main(["fetch", f"archive:{path}"]) == 0
    out = capsys.readouterr().out
    assert "Left out 2 direct messages and 2 followers-only posts (--include-private" in out
    assert "Fetched 16 posts" in out and "(Alice Ü)" in out
    assert main(["fetch", f"archive:{path}", "--include-private", "--name", "with-private"]) == 0
    assert "Fetched 18 posts" in capsys.readouterr().out
    assert "include_private" in Settings().to_dict()


def tar_with(tmp_path, members, gz=True):
    """A tar holding these (TarInfo, bytes) members, beside a real outbox."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
        outbox = b"".join(eb.outbox_json(eb.mastodon_activities(5), 5))
        info = tarfile.TarInfo("outbox.json")
        info.size = len(outbox)
        tar.addfile(info, io.BytesIO(outbox))
    path = tmp_path / "archive.tar.gz"
    path.write_bytes(gzip.compress(buffer.getvalue()) if gz else buffer.getvalue())
    return path


def member(name, kind=tarfile.REGTYPE, data=b"x", linkname=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.size = kind, linkname, len(data) if kind == tarfile.REGTYPE else 0
    return info, data if kind == tarfile.REGTYPE else None


@pytest.mark.parametrize("info, match", [
    (member("../outbox.json"), "points outside the archive"),
    (member("media/../../../etc/passwd"), "points outside the archive"),
    (member("/etc/passwd"), "points outside the archive"),
    (member("media/link", tarfile.SYMTYPE, linkname="/etc/passwd"), "has a symbolic link"),
    (member("media/hard", tarfile.LNKTYPE, linkname="outbox.json"), "has a symbolic link"),
    (member("media/dev", tarfile.CHRTYPE), "has a device or pipe"),
    (member("media/fifo", tarfile.FIFOTYPE), "has a device or pipe"),
    (member("media/" + "x" * 300 + "/../../../evil"), "points outside the archive"),  # a GNU long name
])
def test_hostile_mastodon_tar(tmp_path, info, match):
    one_line_error(tar_with(tmp_path, [info]), match)


def test_tar_bombs_and_damage(tmp_path, monkeypatch):
    big = tar_with(tmp_path, [member("media_attachments/zeros.bin", data=b"\0" * 300_000)])
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 100_000)
    one_line_error(big, r"unpacks to more than .* allowed and not how Mastodon archives compress")
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 10**12)
    monkeypatch.setattr(archive, "MAX_ENTRIES", 1)
    one_line_error(big, "has more than 1 entries")
    monkeypatch.setattr(archive, "MAX_ENTRIES", 200_000)
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 100)
    one_line_error(big, r"outbox.json is .*, more than the 100 bytes allowed for one file")
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 10**9)
    # a pax header that claims a gigabyte (tarfile would read it whole into memory)
    header = tarfile.TarInfo("././@PaxHeader")
    header.type, header.size = tarfile.XHDTYPE, 1024**3
    raw = bytearray(header.tobuf(format=tarfile.USTAR_FORMAT))
    path = tmp_path / "pax.tar.gz"
    path.write_bytes(gzip.compress(bytes(raw) + b"\0" * 4096))
    one_line_error(path, "has a tar header of 1.0 GiB")
    data = big.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    one_line_error(path, "is cut short or damaged")
    plain = tar_with(tmp_path, [], gz=False)
    raw = bytearray(plain.read_bytes())
    raw[148:156] = b"0000000\0"  # the first header's checksum
    plain.write_bytes(bytes(raw))
    one_line_error(plain, "checksum does not match")


def test_damaged_or_misshapen_mastodon_archives(tmp_path):
    files = dict(eb.mastodon_files(5))
    outbox = b"".join(files["outbox.json"])
    cases = {
        "cut short or damaged": outbox[: len(outbox) // 2],
        "not the object a Mastodon archive has": b"[1, 2]",
        "is not an ActivityStreams outbox": b'{"type": "Note", "orderedItems": []}',
        "is not UTF-8": b'{"orderedItems": ["\xff"]}',
        "nested too deeply": b'{"orderedItems": [' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
    }
    for match, content in cases.items():
        for write in (eb.write_zip, eb.write_tar_gz):
            one_line_error(write(tmp_path / f"x{write.__name__[-3:]}", [("outbox.json", content)]), match)
    one_line_error(eb.write_tar_gz(tmp_path / "none.tar.gz", [("actor.json", eb.actor_json())]), "has no outbox.json")
    z = eb.write_zip(tmp_path / "slip.zip", [*eb.mastodon_files(3), ("../../evil.json", b"{}")])
    one_line_error(z, "points outside the archive")
    assert account_name(z) == "slip"


# --- Threads: Meta's export ------------------------------------------------------------------------------------


def test_threads_export_with_mojibake(tmp_path):
    path = eb.write_zip(tmp_path / "instagram-alice.example-2025-08-24-AbCdEfGh.zip", eb.threads_files(20))
    raw = zipfile.ZipFile(path).read("your_instagram_activity/threads/threads_and_replies.json")
    assert b"\\u00f0\\u009f\\u0091\\u008b" in raw  # 👋 as Meta writes it, one escape a byte
    assert account_name(path) == "alice.example"
    posts = read_archive(path, handle="alice")
    assert len(posts) == 18 and kinds(posts) == {"post": 16, "reply": 2}  # two photos alone: no text
    texts = {p.text for p in posts}
    assert "Hello Threads! 👋 first post from Zürich (0)" in texts
    assert "café con leche, s'il vous plaît ☕ (1)" in texts
    assert "naïve question: is 日本語 text kept? 🤔 (2)" in texts
    assert posts[0].created_at == "2023-07-22T04:44:40+00:00" and posts[0].source == "threads"
    stats = same_stats_through_a_file(tmp_path, posts)
    assert (stats.tweets_downloaded, stats.retweets) == (18, 0)
    # text that was never mojibake is kept as it is
    assert meta_text("café") == "café" and meta_text("plain") == "plain" and meta_text("日本") == "日本"
    assert meta_text("cafÃ©") == "café"


def test_damaged_or_misshapen_threads_exports(tmp_path):
    name = "your_instagram_activity/threads/threads_and_replies.json"
    good = b"".join(eb.threads_json(eb.threads_items(5)))
    cases = {"cut short or damaged": good[:200], "has no `text_post_app_text_posts`": b'{"other": []}',
             "not the object a Threads archive has": b'"text"', "holds a number too long": b'{"a": ' + b"9" * 5000 + b"}"}
    for match, content in cases.items():
        one_line_error(eb.write_zip(tmp_path / "t.zip", [(name, content)]), match)
    one_line_error(eb.write_zip(tmp_path / "slip.zip", [(name, good), ("/abs/evil", b"")]), "points outside")


# --- bsky:handle through getRepo --------------------------------------------------------------------------------

PROFILE = "/xrpc/app.bsky.actor.getProfile"
FEED = "/xrpc/app.bsky.feed.getAuthorFeed"


def serve_bluesky(loopback, car: bytes | None, labels=()):
    loopback.route(PROFILE, lambda req, m: Reply(200, {"did": eb.DID, "handle": "alice.bsky.social",
                                                       "displayName": "Alice", "labels": list(labels)}))
    loopback.route(f"/{eb.DID}", lambda req, m: Reply(200, {
        "id": eb.DID, "alsoKnownAs": ["at://alice.bsky.social"],
        "service": [{"id": "#atproto_pds", "type": "AtprotoPersonalDataServer",
                     "serviceEndpoint": "https://pds.example.com"}]}))
    loopback.route("/xrpc/com.atproto.sync.getRepo", lambda req, m: Reply(200, car) if car and req.query.get(
        "did") == eb.DID else Reply(404, {"error": "RepoNotFound", "message": "Could not find repo"}))
    loopback.route(FEED, lambda req, m: Reply(200, {"feed": [{"post": {
        "uri": f"at://{eb.DID}/app.bsky.feed.post/3lfeed", "cid": "bafy", "author": {"handle": "alice.bsky.social"},
        "record": {"text": "one post from the feed, paged", "createdAt": "2024-01-01T00:00:00Z"}}}]}))


def fetch_bsky(loopback, tmp_path, said):
    return fetch_posts(parse_source("bsky:alice.bsky.social"), Settings(api_base=loopback.url),
                       folder=tmp_path / "f", say=said.append)


def test_bsky_fetches_the_whole_repository_in_one_request(loopback, tmp_path):
    serve_bluesky(loopback, eb.bsky_car(2500))
    said: list[str] = []
    posts = fetch_bsky(loopback, tmp_path, said)
    assert len(posts) == 2500 and kinds(posts)["repost"] == 250
    paths = [r.path for r in loopback.requests]
    assert paths.count("/xrpc/com.atproto.sync.getRepo") == 1 and FEED not in paths
    assert any("in one request" in s for s in said)
    direct = read_archive(_car_file(tmp_path, eb.bsky_car(2500)), handle="alice.bsky.social")
    assert filter_posts(posts).stats == filter_posts(direct).stats


def _car_file(tmp_path, data):
    path = tmp_path / "direct.car"
    path.write_bytes(data)
    return path


def test_bsky_falls_back_to_the_feed_when_getrepo_fails(loopback, tmp_path):
    serve_bluesky(loopback, None)
    said: list[str] = []
    posts = fetch_bsky(loopback, tmp_path, said)
    assert [p.text for p in posts] == ["one post from the feed, paged"]
    assert any("paging the public feed instead" in s for s in said)


def test_bsky_refuses_an_opted_out_account_before_any_download(loopback, tmp_path):
    serve_bluesky(loopback, eb.bsky_car(5), labels=[{"src": eb.DID, "val": "!no-unauthenticated"}])
    with pytest.raises(SourceError, match="not to show their posts to logged-out clients"):
        fetch_bsky(loopback, tmp_path, [])
    assert not any(r.path.endswith("getRepo") for r in loopback.requests)
