"""Fuzzing every parser that reads outside data.

The rule: a parser may raise nothing but `SourceError` (a one-line message that
says what happened and what to do), and what it returns must survive the next
steps (sorting by date and id, writing posts.jsonl as UTF-8, filtering). Network
sources are fed through the real HTTP server on 127.0.0.1 (tests/loopback.py):
one server per test, its reply changed per example.

Examples are derandomized, so CI always tries the same ones; each test counts
what it tried into `fuzz_tried`, printed at the end of the session.
"""

from __future__ import annotations

import contextlib
import html
import io
import json
import re
import signal
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import httpx
import libipld
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from huggingtweets import Post, clean_text, filter_posts, is_short, read_posts, write_posts
from huggingtweets.errors import SourceError
from huggingtweets.posts import json_loads
from huggingtweets.sources import archive, http, network
from huggingtweets.sources.archive import account_name, read_archive
from huggingtweets.sources.bluesky import BlueskySource, feed_item_post, link_text
from huggingtweets.sources.file import read_file
from huggingtweets.sources.mastodon import MastodonSource, html_to_text, next_link, status_post
from huggingtweets.sources.x import XSource, _post
import exports_build as eb
from loopback import Reply


def fuzz(max_examples: int):
    return settings(max_examples=max_examples, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                           HealthCheck.data_too_large, HealthCheck.large_base_example])


def tried(counts: dict[str, int], label: str) -> None:
    counts[label] = counts.get(label, 0) + 1


class TooSlow(BaseException):
    """Not an Exception, so no parser's `except Exception` can swallow it."""


@contextlib.contextmanager
def within(seconds: float):
    """Fail, rather than hang, when a parser takes too long (a regex that backtracks, a quadratic loop)."""
    def alarm(*_):
        raise TooSlow(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_message(e: SourceError) -> None:
    message = str(e)
    assert message.strip(), "a SourceError must say something"
    assert "\n" not in message and "\r" not in message, f"not one line: {message!r}"


def read_checked(read, folder: Path) -> None:
    """`read()` raises only SourceError, with a good message, or returns posts that pass check_posts."""
    try:
        posts = read()
    except SourceError as e:
        check_message(e)
    else:
        check_posts(posts, folder)


def check_posts(posts, folder: Path) -> None:
    """What a parser returns must be Posts that the rest of the pipeline can take."""
    assert isinstance(posts, list)
    for p in posts:
        assert isinstance(p, Post)
        assert isinstance(p.id, str) and isinstance(p.text, str) and isinstance(p.handle, str)
        assert p.created_at is None or isinstance(p.created_at, str)
        assert isinstance(p.raw, dict)
    sorted(posts, key=network._newest_first_key)  # how the fetch driver orders them
    sorted(posts, key=archive._sort_key)
    path = folder / "fuzz-posts.jsonl"
    assert write_posts(path, posts) == len(posts)  # as UTF-8: no lone surrogates anywhere
    as_json = lambda ps: [json.dumps(p.to_dict(), ensure_ascii=False) for p in ps]  # noqa: E731 (NaN == NaN)
    assert as_json(read_posts(path)) == as_json(posts)  # read back the same, field for field
    stats = filter_posts(posts).stats
    assert stats.tweets_downloaded == len(posts)


# --- JSON of any shape ------------------------------------------------------------------------------------------

KEYS = st.sampled_from([
    # X API and X archive
    "id", "id_str", "text", "full_text", "created_at", "referenced_tweets", "type", "note_tweet", "data",
    "includes", "tweets", "meta", "next_token", "public_metrics", "tweet_count", "tweet", "noteTweet", "core",
    "result", "createdAt", "noteTweetId", "account", "username", "dataTypes", "files", "fileName",
    "in_reply_to_status_id_str", "quoted_status_id_str", "errors", "detail", "title",
    # Bluesky
    "feed", "cursor", "post", "uri", "record", "facets", "index", "byteStart", "byteEnd", "features", "$type",
    "author", "handle", "labels", "val", "neg", "exp", "src", "reason", "indexedAt", "reply", "embed", "did",
    "postsCount", "error", "message",
    # Mastodon
    "content", "reblog", "acct", "in_reply_to_id", "quote", "suspended", "moved", "statuses_count",
]) | st.text(max_size=8)

STRINGS = st.text(max_size=20) | st.sampled_from([
    "", "1", "0", "\u00b2", "\u0663", "9" * 5000, "RT @a: b c d", "retweeted", "quoted", "replied_to",
    "2024-01-01T00:00:00Z", "Wed Oct 10 20:19:24 +0000 2018", "Wed Oct 10 20:19:24 +9999 0000", "9999-12-31T23:59:59-23:59",
    "app.bsky.feed.defs#reasonRepost", "app.bsky.richtext.facet#link", "app.bsky.embed.record#view",
    "!no-unauthenticated", "https://example.com/a/long/path", "example.com/a/lo...", "\ud83d", "a\udc00b",
    "<p>hi <a href='https://x.y/z' class='mention'>@<span>bob</span></a></p>", "&#x110000;&#99999999;&amp;&",
    "data/tweets.js", "data/../../etc/passwd", "tweets.js", "https://" * 40 + " x\u2026",
])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | STRINGS
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5),
                    max_leaves=25)


@st.composite
def mutated(draw, template):
    """A realistic document with fields dropped, added, or replaced by JSON of any type."""
    def walk(node):
        if draw(st.integers(0, 15)) == 0:
            return draw(JSON)
        if isinstance(node, dict):
            out = {}
            for key, value in node.items():
                if draw(st.integers(0, 12)) != 0:  # else the field is dropped
                    out[key] = walk(value)
            if draw(st.integers(0, 8)) == 0:
                out[draw(KEYS)] = draw(JSON)
            return out
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node

    return walk(template)


DEEP = 100_000
NASTY = [
    b"", b"{", b"[", b"nul", b"null", b"NaN", b"-Infinity", b"1e999999", b"\xff\xfe{}", b"\xed\xa0\x80",
    b"[" * DEEP + b"]" * DEEP, b'{"a":' * DEEP, b"[" + b"1" * 5000 + b"]", b'"\\ud800"', b'"\xed\xa0\x80"',
    b"[" * 900 + b"]" * 900, b'{"feed": ' + b"[" * 900 + b"]" * 900 + b"}",
]


def as_received(value):
    """A value as a source gets it: through JSON, as the HTTP layer decodes it."""
    return json_loads(json.dumps(value))


def body_of(value) -> bytes:
    return value if isinstance(value, bytes) else json.dumps(value).encode()


def bodies(template):
    """A page as a server could send it: the right shape with wrong fields, any JSON, or broken bytes."""
    return (mutated(template) | JSON | st.sampled_from(NASTY) | st.binary(max_size=100)).map(body_of)


# --- 1. cleaning ------------------------------------------------------------------------------------------------

ENTITY_SOUP = st.lists(st.sampled_from([
    "&#x110000;", "&#99999999;", "&amp;", "&", "&#", "&#x;", "&#0;", "&#xD800;", "&#xdfff;", "&nbsp;", "&NotAnEntity;",
    "&#10;", "&#x85;", "&#x3000;", "&#12288;", "&amp", "&ampx", "\u2028", "\u3000", "\x1c", "\x85", "\u200b", " ", "\n",
    "https://t.co/x", "http://", "@a", "#b", "word", "RT @x:", "\ud800", "RT", "RT @", "HTTP", "xHttp", "Word", "\t",
]), max_size=40).map("".join)
ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=200)  # surrogates included


LINKISH = re.compile("http|@|#", re.IGNORECASE)


def check_clean(text: str) -> None:
    out = clean_text(text)
    assert out == out.strip()
    assert not any(a.isspace() and b.isspace() for a, b in zip(out, out[1:])), f"whitespace run in {out!r}"
    assert not any(w.startswith(("http://", "https://")) for w in out.split())
    # Only links are lost: the words left are the unescaped text's words, in order, but the links.
    words = html.unescape(text).split()
    links = [w for w in words if w.startswith(("http://", "https://"))]
    assert len(out.split()) + len(links) == len(words)
    assert out.split() == [w for w in words if w not in links]
    # Short: fewer than 3 words free of "http", "@" and "#" in any case (the original's rule).
    plain = [w for w in out.split() if not LINKISH.search(w)]
    assert is_short(out) == (len(plain) < 3), (out, plain)
    result = filter_posts([Post(id="1", text=text, handle="h", source="file")])
    s = result.stats
    assert s.tweets_downloaded == 1 == s.retweets + s.short_tweets + s.tweets_kept
    assert s.retweets == text.startswith("RT @")
    assert s.tweets_kept == (not text.startswith("RT @") and len(plain) >= 3)
    assert [p.text for p in result.kept] == ([out] if s.tweets_kept else [])


@fuzz(500)
@given(ANY_TEXT | ENTITY_SOUP | st.tuples(ANY_TEXT, ENTITY_SOUP).map("".join))
def test_clean_any_text(fuzz_tried, text):
    tried(fuzz_tried, "clean_text/is_short (any unicode, entity soup)")
    check_clean(text)


@fuzz(15)
@given(st.sampled_from(["a &amp; b ", "&#x110000;&#99999999;&amp;& ", "https://t.co/x ", "\u3000\n \t", "😀", "&"]),
       st.integers(10_000, 200_000))
def test_clean_huge_text(fuzz_tried, piece, times):
    tried(fuzz_tried, "clean_text/is_short (huge strings)")
    with within(20):
        check_clean(piece * times)


# --- 2. the X archive -------------------------------------------------------------------------------------------

def tweet(i, text, **extra):
    return {"tweet": {"id_str": str(i), "id": str(i), "full_text": text, "created_at": "Wed Oct 10 20:19:24 +0000 2018",
                      "retweeted": False, **extra}}


LONG = "A long post that goes on and on, past the limit, so that its whole text is only in the note file. " * 4
TWEETS = [tweet(1, "a first post with some words in it"), tweet(2, "RT @other: their words"),
          tweet(3, "@friend a reply to a friend", in_reply_to_status_id_str="9"),
          tweet(4, LONG[:200] + "\u2026 https://t.co/abc"), tweet(5, "a quote of a post", quoted_status_id_str="8")]
NOTES = [{"noteTweet": {"noteTweetId": "77", "createdAt": "2018-10-10T20:19:24.000Z", "core": {"text": LONG}}}]
ACCOUNT = [{"account": {"username": "alice_x", "accountId": "1"}}]
MANIFEST = {"userInfo": {"userName": "alice_x"}, "dataTypes": {
    "tweets": {"files": [{"fileName": "data/tweets.js", "globalName": "YTD.tweets.part0", "count": "5"}]},
    "noteTweet": {"files": [{"fileName": "data/note-tweet.js", "globalName": "YTD.note_tweet.part0", "count": "1"}]}}}


def ytd(name: str, data) -> str:
    return f"window.YTD.{name}.part0 = " + (data if isinstance(data, str) else json.dumps(data))


def archive_zip(files: dict[str, bytes | str], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for name, content in files.items():
            z.writestr(name, content)
    return buffer.getvalue()


VALID_FILES = {"data/tweets.js": ytd("tweets", TWEETS), "data/note-tweet.js": ytd("note_tweet", NOTES),
               "data/account.js": ytd("account", ACCOUNT), "data/manifest.js": "window.__THAR_CONFIG = " + json.dumps(MANIFEST)}
VALID_ZIPS = [archive_zip(VALID_FILES, c) for c in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2,
                                                     zipfile.ZIP_LZMA)]


def read_both(path: Path, folder: Path, data: bytes | None = None) -> None:
    """read_archive raises only SourceError; account_name never raises, and names the archive by
    its owner's X username or, failing that, by the file's own name. `data`: written to `path` first."""
    if data is not None:
        path.write_bytes(data)
    name = account_name(path)
    assert name == path.stem or archive.USERNAME.fullmatch(name), name
    read_checked(lambda: read_archive(path, handle="me"), folder)


@st.composite
def damaged(draw, data: bytes):
    """Bytes with a few edits: bytes changed, a piece cut out or repeated, the end cut off."""
    data = bytearray(data)
    for _ in range(draw(st.integers(1, 6))):
        how = draw(st.sampled_from(["set", "set", "cut", "truncate", "insert"]))
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        if how == "set" and data:
            data[at] = draw(st.integers(0, 255))
        elif how == "cut":
            del data[at:at + draw(st.integers(1, 64))]
        elif how == "truncate":
            del data[at:]
        else:
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
    return bytes(data)


ZIP_BYTES = (st.binary(max_size=600) | st.binary(max_size=600).map(lambda b: b"PK\x03\x04" + b)
             | st.binary(max_size=100).map(lambda b: b"PK\x05\x06" + b)
             | st.sampled_from(VALID_ZIPS).flatmap(damaged))


@fuzz(400)
@given(ZIP_BYTES)
def test_archive_random_zips(tmp_path, fuzz_tried, data):
    tried(fuzz_tried, "archive reader (random and damaged zip bytes)")
    read_both(tmp_path / "archive.zip", tmp_path, data)


TWEETS_JS = ytd("tweets", TWEETS)
JS_TEXT = (st.binary(max_size=300)
           | st.binary(max_size=300).map(lambda b: b"window.YTD.tweets.part0 = " + b)
           | st.integers(0, len(TWEETS_JS)).map(lambda n: TWEETS_JS[:n].encode())  # cut short anywhere
           | st.sampled_from(NASTY).map(lambda b: b"window.YTD.tweets.part0 = " + b)
           | st.text(max_size=300).map(lambda t: ("window.YTD.tweets.part0 = " + t).encode()))


@fuzz(400)
@given(JS_TEXT)
def test_archive_random_tweets_js(tmp_path, fuzz_tried, data):
    tried(fuzz_tried, "archive reader (random and truncated tweets.js)")
    read_both(tmp_path / "tweets.js", tmp_path, data)


@fuzz(400)
@given(JSON | mutated(TWEETS), JSON | mutated(NOTES) | st.none(), st.sampled_from(["tweets", "tweet", "account", "x"]))
def test_archive_json_of_any_shape(tmp_path, fuzz_tried, tweets, notes, data_type):
    tried(fuzz_tried, "archive reader (JSON of any shape after window.YTD...)")
    path = tmp_path / "tweets.js"
    # A drawn string goes in raw (ytd): one with a lone surrogate becomes the bytes a broken writer leaves
    path.write_text(ytd(data_type, tweets), encoding="utf-8", errors="surrogatepass")
    note_path = tmp_path / "note-tweet.js"
    if notes is None:
        note_path.unlink(missing_ok=True)
    else:
        note_path.write_text(ytd("note_tweet", notes), encoding="utf-8", errors="surrogatepass")
    read_both(path, tmp_path)


def outcome(path: Path):
    try:
        return [p.to_dict() for p in read_archive(path, handle="me")]
    except SourceError as e:
        return str(e)


@fuzz(300)
@given(JS_TEXT | (JSON | mutated(TWEETS)).map(lambda v: ytd("tweets", v).encode())
       | st.tuples(mutated(TWEETS), st.sampled_from([None, 0, 1, 2]), st.sampled_from(["", ";", " ;\n", "\n\n x"]))
       .map(lambda t: (ytd("tweets", json.dumps(t[0], indent=t[1])) + t[2]).encode()),
       st.integers(1, 64))
def test_archive_read_in_chunks_reads_the_same(tmp_path, fuzz_tried, monkeypatch, data, chunk):
    """tweets.js is parsed as it is read; cut into chunks anywhere (in an entry, a number,
    a UTF-8 character), it gives the same posts, or the same message, as in one piece."""
    tried(fuzz_tried, "archive reader (tweets.js read in chunks of 1-64 bytes vs whole)")
    path = tmp_path / "tweets.js"
    path.write_bytes(data)
    whole = outcome(path)
    monkeypatch.setattr(archive, "CHUNK_BYTES", chunk)
    assert outcome(path) == whole


MEMBER_NAMES = st.sampled_from([
    "data/tweets.js", "data/tweet.js", "data/tweets-part1.js", "data/tweets-part2.js", "data/note-tweet.js",
    "data/account.js", "data/manifest.js", "tweets.js", "account.js", "manifest.js", "x/data/tweets.js",
    "y/data/tweets.js", "data/", "../data/tweets.js", "/etc/tweets.js", "C:/data/tweets.js", "data\\tweets.js",
    "data/TWEETS.JS", "data/deleted-tweets.js", "data/tweets.js/x",
]) | st.text(min_size=1, max_size=20).filter(lambda n: n.split("\0")[0] != "")  # zipfile cuts a name at NUL
MEMBER_CONTENT = (
    st.binary(max_size=200)
    | mutated(TWEETS).map(lambda v: ytd("tweets", v))
    | mutated(NOTES).map(lambda v: ytd("note_tweet", v))
    | mutated(ACCOUNT).map(lambda v: ytd("account", v))
    | STRINGS.map(lambda name: ytd("account", [{"account": {"username": name}}]))
    | (mutated(MANIFEST) | JSON).map(lambda v: "window.__THAR_CONFIG = " + json.dumps(v))
    | JSON.map(lambda v: ytd("tweets", v))
)


@pytest.mark.filterwarnings("ignore:Duplicate name")
@fuzz(300)
@given(st.lists(st.tuples(MEMBER_NAMES, MEMBER_CONTENT), max_size=6),
       st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))
def test_archive_zips_of_random_members(tmp_path, fuzz_tried, members, compression):
    tried(fuzz_tried, "archive reader (zips of random members)")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as z:
        for name, content in members:
            with contextlib.suppress(ValueError):  # names zipfile itself will not write
                z.writestr(name, content)
    path = tmp_path / "archive.zip"
    path.write_bytes(buffer.getvalue())
    read_both(path, tmp_path)


HUGE = ["x" * 2_000_000, "https://" * 60 + " x\u2026", "https://" * 60 + "&am", "@a" * 50_000 + " b\u2026",
        ("word " * 400_000) + "\u2026"]


@fuzz(20)
@given(st.sampled_from(HUGE), st.sampled_from(["full_text", "id_str", "created_at", "text"]), st.booleans())
def test_archive_huge_fields(tmp_path, fuzz_tried, value, field, with_notes):
    tried(fuzz_tried, "archive reader (huge fields)")
    entries = [tweet(1, "an ordinary post of a few words")]
    entries[0]["tweet"][field] = value
    notes = [{"noteTweet": {"noteTweetId": "1", "createdAt": "2018-10-10T20:19:24.000Z",
                            "core": {"text": value + " and more"}}}]
    files = {"data/tweets.js": ytd("tweets", entries)}
    if with_notes:
        files["data/note-tweet.js"] = ytd("note_tweet", notes)
    path = tmp_path / "huge.zip"
    path.write_bytes(archive_zip(files))
    with within(20):
        read_both(path, tmp_path)


@fuzz(300)
@given(st.lists(st.sampled_from(["http://", "https://", "http:/", "a", "x", " ", "\n", "\u3000", "\u2026", "&am"]),
                max_size=14).map("".join))
def test_archive_end_links_cut_as_the_old_regex_did(fuzz_tried, text):
    tried(fuzz_tried, "archive stub links (same cut as the old regex)")
    with within(2):  # short texts: the old pattern's backtracking stays bounded
        assert archive._without_end_links(text) == re.sub(r"(\s*https?://\S+)+\s*$", "", text.rstrip())


def test_a_stub_of_many_links_does_not_backtrack_for_ever():
    with within(2):
        assert archive._stub("https://" * 200 + " x") is None
        assert archive._stub("words " + "https://" * 200 + "a") == ("words", False)
        assert archive._stub("cut short\u2026 https://t.co/a https://t.co/b") == ("cut short", True)
        assert archive._stub("xhttps://t.co/a") == ("x", False)


# --- 2b. the other platforms' archives: Bluesky CAR, Mastodon, Threads -------------------------------------------
# Each built in its real format by tests/exports_build.py, then damaged, cut, or filled with JSON of any shape.


def read_export(path: Path, folder: Path, include_private: bool = False) -> None:
    """read_archive raises only SourceError, in one line; account_name never raises and gives a folder name."""
    from huggingtweets.sources import safe_name

    name = account_name(path)
    assert isinstance(name, str) and name and safe_name(name) == name, name
    read_checked(lambda: read_archive(path, handle="me", include_private=include_private), folder)


VALID_CAR = eb.bsky_car(12)
CAR_RECORDS = eb.bsky_records(6)


@fuzz(300)
@given(st.binary(max_size=400) | st.sampled_from([VALID_CAR]).flatmap(damaged)
       | st.integers(0, len(VALID_CAR)).map(lambda n: VALID_CAR[:n])  # cut short anywhere
       | st.binary(max_size=64).map(lambda b: VALID_CAR[:60] + b))
def test_archive_bluesky_car_random_and_damaged(tmp_path, fuzz_tried, data):
    tried(fuzz_tried, "archive reader: Bluesky CAR (random, damaged and cut bytes)")
    read_export_bytes(tmp_path / "repo.car", data)


def read_export_bytes(path: Path, data: bytes) -> None:
    path.write_bytes(data)
    with within(20):
        read_export(path, path.parent)


def car_of(records: dict, node_change=None) -> bytes:
    """A CAR whose every hash is right, so the reader's tree walk and record reading are what is tested."""
    writer = eb.CarWriter()
    items = sorted((str(k).encode("utf-8", "surrogatepass"), writer.put(v)) for k, v in records.items())
    root = writer.tree(items, max((eb._layer(k) for k, _ in items), default=0)) or writer.put({"l": None, "e": []})
    if node_change is not None:
        root = writer.put(node_change(libipld.decode_dag_cbor(writer.blocks[bytes(root)])))
    return writer.repo_from(eb.DID, root)


@fuzz(200)
@given(mutated(CAR_RECORDS) | st.dictionaries(st.sampled_from(list(CAR_RECORDS)) | KEYS, JSON, max_size=5))
def test_archive_bluesky_car_records_of_any_shape(tmp_path, fuzz_tried, records):
    tried(fuzz_tried, "archive reader: Bluesky CAR (records of any shape)")
    try:
        data = car_of(records if isinstance(records, dict) else {})
    except (ValueError, TypeError, OverflowError):  # not DAG-CBOR at all (an int past 64 bits): no CAR to write
        return
    path = tmp_path / "repo.car"
    path.write_bytes(data)
    read_export(path, tmp_path)


@fuzz(200)
@given(st.data())
def test_archive_bluesky_car_tree_of_any_shape(tmp_path, fuzz_tried, data):
    tried(fuzz_tried, "archive reader: Bluesky CAR (tree nodes of any shape)")

    def change(node):
        node = {"l": node["l"], "e": [{k: (eb.Link(v) if isinstance(v, bytes) and k in "vt" else v) for k, v in e.items()}
                                      for e in node["e"]]}
        return data.draw(mutated(node))

    try:
        car = car_of(CAR_RECORDS, change)
    except (ValueError, TypeError, OverflowError):
        return
    path = tmp_path / "repo.car"
    path.write_bytes(car)
    read_export(path, tmp_path)


MASTODON_FILES = eb.mastodon_files(12)
OUTBOX = json.loads(b"".join(dict(MASTODON_FILES)["outbox.json"]))
VALID_TGZ = (lambda p: (eb.write_tar_gz(p, eb.mastodon_files(8)), p.read_bytes())[1])(
    Path(__import__("tempfile").mkdtemp()) / "a.tar.gz")
VALID_TAR = __import__("gzip").decompress(VALID_TGZ)


@fuzz(300)
@given(st.sampled_from([VALID_TGZ]).flatmap(damaged)
       | st.sampled_from([VALID_TAR]).flatmap(damaged).map(lambda b: __import__("gzip").compress(b, mtime=0))
       | st.integers(0, len(VALID_TAR)).map(lambda n: VALID_TAR[:n])
       | st.binary(max_size=600).map(lambda b: b"\x1f\x8b" + b))
def test_archive_mastodon_tar_random_and_damaged(tmp_path, fuzz_tried, data):
    tried(fuzz_tried, "archive reader: Mastodon tar.gz (damaged gzip, damaged tar, cut short)")
    read_export_bytes(tmp_path / "archive.tar.gz", data)


@fuzz(200)
@given(mutated(OUTBOX) | JSON, mutated(json.loads(eb.actor_json())) | JSON,
       st.sampled_from([eb.write_zip, eb.write_tar_gz]), st.booleans())
def test_archive_mastodon_outbox_of_any_shape(tmp_path, fuzz_tried, outbox, actor, write, include_private):
    tried(fuzz_tried, "archive reader: Mastodon outbox.json and actor.json of any shape")
    files = [("outbox.json", json.dumps(outbox).encode("utf-8", "surrogatepass")),
             ("actor.json", json.dumps(actor).encode("utf-8", "surrogatepass"))]
    read_export(write(tmp_path / f"archive{write.__name__}", files), tmp_path, include_private)


THREADS_NAME = "your_instagram_activity/threads/threads_and_replies.json"
THREADS = {"text_post_app_text_posts": list(eb.threads_items(6))}


@fuzz(300)
@given(mutated(THREADS) | JSON | st.sampled_from(NASTY))
def test_archive_threads_json_of_any_shape(tmp_path, fuzz_tried, value):
    tried(fuzz_tried, "archive reader: Threads threads_and_replies.json of any shape")
    data = value if isinstance(value, bytes) else json.dumps(value).encode("utf-8", "surrogatepass")
    read_export(eb.write_zip(tmp_path / "instagram-me-2025-01-01-x.zip", [(THREADS_NAME, data)]), tmp_path)


WHOLE_CHUNK_BYTES = archive.CHUNK_BYTES


def export_outcome(path: Path):
    try:
        return [p.to_dict() for p in read_archive(path, handle="me", include_private=True)]
    except SourceError as e:
        return str(e)


@fuzz(200)
@given(st.one_of(mutated(OUTBOX).map(lambda v: ("outbox.json", v)), mutated(THREADS).map(lambda v: (THREADS_NAME, v))),
       st.sampled_from([None, 0, 2]), st.integers(1, 64), st.integers(0, 3000))
# found by this test: a number whose fraction or exponent begins at the end of a chunk ("0." then "0}") was read
# as the number before it, and the "." as bad JSON
@example(named=("outbox.json", {"id": 0.0}), indent=None, chunk=1, cut=0)
@example(named=("outbox.json", {"id": 1e-07, "type": "OrderedCollection"}), indent=None, chunk=9, cut=0)
def test_archive_exports_read_in_chunks_read_the_same(tmp_path, fuzz_tried, monkeypatch, named, indent, chunk, cut):
    """outbox.json and threads_and_replies.json are parsed as they are read: in chunks of any size,
    whole or cut short, they give the same posts, or the same message."""
    tried(fuzz_tried, "archive reader: Mastodon and Threads JSON read in chunks of 1-64 bytes vs whole")
    name, value = named
    data = json.dumps(value, indent=indent).encode("utf-8", "surrogatepass")
    data = data[:cut] if cut else data
    path = eb.write_zip(tmp_path / "archive.zip", [(name, data)])
    # monkeypatch lasts the whole test, not one example: read whole with the reader's own chunk size each time
    monkeypatch.setattr(archive, "CHUNK_BYTES", WHOLE_CHUNK_BYTES)
    whole = export_outcome(path)
    monkeypatch.setattr(archive, "CHUNK_BYTES", chunk)
    assert export_outcome(path) == whole


# --- 3. Mastodon HTML -------------------------------------------------------------------------------------------

HTML = st.lists(st.sampled_from([
    "<p>", "</p>", "<br>", "<br/>", "</br>", "<a href=\"https://example.com/x\" class=\"mention\">", "</a>",
    "<a href='https://e.com/long/path'>", "<a>", "<span class=\"invisible\">", "<span class=\"ellipsis\">", "</span>",
    "<span class=\"quote-inline\">", "<script>", "</script>", "<style>", "<!--", "-->", "<![CDATA[", "]]>",
    "<!DOCTYPE html>", "<?xml?>", "<img alt=\":emoji:\">", "<img>", "<li>", "<ul>", "</ul>", "<", ">", "</", "=", "\"",
    "'", "&amp;", "&#x110000;", "&#99999999;", "&", "&#", "text", " ", "\n", "\x00", "\ud800", "<a href=\"",
    "<p class", "<b", "<a/>", "</p >", "<P>", "https://x.y",
]) | st.text(max_size=5), max_size=60).map("".join) | st.text(alphabet=st.characters(blacklist_categories=()))


TAGS_AND_WORDS = st.lists(st.tuples(st.sampled_from([  # each tag with the text after it
    "<p>", "</p>", "<br>", "<br/>", "</br>", "<a href=\"https://example.com/x\" class=\"mention\">", "</a>",
    "<span class=\"invisible\">", "<span class=\"ellipsis\">", "</span>", "<span>", "<b>", "</b>", "<li>", "<ul>",
    "</ul>", "<img alt=\":emoji:\">", "<script>", "</script>", "<P class='x'>", "<em>", "</em>", "<i>", "</i>",
]), st.sampled_from(["word", " word ", "\n", "\u3000", "&amp;", "&quot;", "https://x.y", ""])), min_size=1, max_size=30
).map(lambda pairs: "".join(tag + text for tag, text in pairs))


def shown_as(text: str) -> str:
    """Text as html_to_text lays it out: spaces and tabs at a line break dropped, at most one empty line,
    ends stripped."""
    return re.sub(r"\n{3,}", "\n\n", re.sub(r"[ \t]*\n[ \t]*", "\n", text)).strip()


@fuzz(500)
@given(HTML)
def test_html_to_text_any_string(fuzz_tried, html):
    tried(fuzz_tried, "Mastodon html_to_text")
    text = html_to_text(html)
    assert text == text.strip() and "\n\n\n" not in text


@fuzz(300)
@given(ANY_TEXT | ENTITY_SOUP, st.sampled_from(["{}", "<p>{}</p>", "<p>{}<br></p>", "<span>{}</span>"]))
def test_html_to_text_gives_escaped_text_back(fuzz_tried, text, template):
    """Text escaped into a status comes back as it was (as any text would be laid out)."""
    tried(fuzz_tried, "Mastodon html_to_text (escaped text comes back)")
    assert html_to_text(template.format(html.escape(text))) == shown_as(text)


@fuzz(300)
@given(TAGS_AND_WORDS)
def test_html_to_text_leaves_no_tag(fuzz_tried, markup):
    """Complete tags never show in the text; the words outside hidden spans, scripts and links all do."""
    tried(fuzz_tried, "Mastodon html_to_text (no tag left)")
    text = html_to_text(markup)
    assert "<" not in text and ">" not in text, text
    if "<a " not in markup:  # (a link's text is its URL, or its shown part)
        # a hidden span or a script may hide all the rest
        visible = re.sub(r"<(span class=\"(invisible|ellipsis)\"|script)>.*", "", markup, flags=re.S)
        assert text.count("word") >= visible.count("word"), (markup, text)


@fuzz(300)
@given(st.lists(st.sampled_from(["<", ">", ",", ";", "rel=next", 'rel="next"', "rel=prev", "max_id=", "?", "&", "=",
                                 "http://[", "http://h/?max_id=1", "[::1]", "]", "%", "%zz", " ", "\""])
                | st.text(max_size=5), max_size=30).map("".join))
def test_mastodon_link_headers(fuzz_tried, link):
    tried(fuzz_tried, "Mastodon Link header (next_link)")
    has_next, max_id = next_link(link)
    assert has_next or max_id is None  # no next page, no id for it
    assert "next" in link or not has_next
    assert max_id is None or "max_id=" in link


LINK_ENTRIES = st.lists(st.tuples(
    st.sampled_from(["next", "prev", "next prev", "first", "last", "nextish"]),
    st.integers(0, 10**18) | st.none(),
    st.sampled_from(['; rel="{}"', "; rel={}", ' ;rel = "{}"', '; title="a"; rel="{}"']),
), max_size=4)


@fuzz(300)
@given(LINK_ENTRIES)
def test_mastodon_link_headers_as_servers_write_them(fuzz_tried, entries):
    """A Link header made of well-formed entries: the first `rel` with the token `next`, and its max_id."""
    tried(fuzz_tried, "Mastodon Link header (well-formed, against the expected next page)")
    parts = [f"<https://m.example/api/v1/accounts/1/statuses?limit=40{'' if i is None else f'&max_id={i}'}>"
             + form.format(rel) for rel, i, form in entries]
    expected = next(((True, None if i is None else str(i)) for rel, i, _ in entries if "next" in rel.split()),
                    (False, None))
    assert next_link(", ".join(parts)) == expected


def test_deeply_nested_html_is_not_quadratic():
    with within(5):
        assert html_to_text("<b>a" * 40_000).startswith("aaa")
        assert html_to_text("<span class='invisible'>" * 20_000 + "hidden" + "</i>" * 20_000) == ""
        assert html_to_text("<a" * 100_000) == "<a" * 100_000  # unclosed tags are text (html.parser: 33 s)
        assert html_to_text("3 < 5 <p>and</p>") == "3 < 5\n\nand"


# --- 4. the APIs' JSON pages ------------------------------------------------------------------------------------

def serve(server, pattern: str, reply: Reply) -> None:
    """Route `pattern` on this test's server to `reply`; later calls change the reply."""
    holders = server.__dict__.setdefault("fuzz_replies", {})
    if pattern not in holders:
        holders[pattern] = [reply]
        server.route(pattern, lambda req, m, box=holders[pattern]: box[0])
    holders[pattern][0] = reply


def drain(source, folder: Path, pages: int = 3) -> None:
    """A few pages of backfill(): only SourceError may come out; the posts must be usable."""
    posts = []
    try:
        for n, (page, cursor) in enumerate(source.backfill(None), 1):
            assert cursor is None or isinstance(cursor, str)
            posts.extend(page)
            if n >= pages:
                break
    except SourceError as e:
        check_message(e)
    check_posts(posts, folder)


# One transport for every source in this file (each client would load the CA bundle: 20 ms an example);
# so the clients are never closed, which would close it.
TRANSPORT = httpx.HTTPTransport()
QUIET = {"retries": 0, "sleep": lambda s: None, "say": lambda m: None, "transport": TRANSPORT}
STATUSES = st.sampled_from([200, 200, 200, 400, 401, 403, 404, 410, 422, 429, 500, 503])
HEADER_TEXT = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


RETRY_WORDS = st.sampled_from(["Wed,", " ", "21", "Oct", "2015", "07:28:00", "GMT", "+9999", "-0000", "99999", "0",
                               "nan", "inf", "-1", "1e400", "Feb", "30", "24:61:61", "+2400", "UT"]) | HEADER_TEXT


@fuzz(300)
@given(st.lists(RETRY_WORDS, max_size=8).map("".join), st.lists(RETRY_WORDS, max_size=3).map("".join),
       st.sampled_from(["0", "1", ""]))
def test_retry_after_headers(fuzz_tried, retry_after, reset, remaining):
    tried(fuzz_tried, "HTTP Retry-After / x-rate-limit-reset headers")
    headers = httpx.Headers({"retry-after": retry_after, "x-rate-limit-reset": reset, "x-rate-limit-remaining": remaining})
    wait = http._server_wait(headers)
    assert wait is None or (isinstance(wait, float) and wait >= 0)
    if retry_after.strip().isdigit() and retry_after.strip().isascii():
        assert wait == float(retry_after)  # seconds, as the server said
    elif not retry_after and reset.strip().isdigit() and reset.strip().isascii() and remaining in ("0", ""):
        assert wait is not None and wait <= max(0.0, float(reset) - __import__("time").time()) + 1


def x_tweet(i, **extra):
    return {"id": str(1000 + i), "text": f"post {i} about the weather today", "created_at": "2024-01-01T00:00:00.000Z",
            "lang": "en", **extra}


X_USER = {"data": {"id": "2244994945", "name": "jack", "username": "jack", "public_metrics": {"tweet_count": 5000}}}
X_PAGE = {"data": [x_tweet(1), x_tweet(2, referenced_tweets=[{"type": "retweeted", "id": "9"}], text="RT @o: cut…"),
                   x_tweet(3, referenced_tweets=[{"type": "quoted", "id": "8"}]),
                   x_tweet(4, referenced_tweets=[{"type": "replied_to", "id": "7"}]),
                   x_tweet(5, note_tweet={"text": "a long note " * 30})],
          "includes": {"tweets": [{"id": "9", "text": "the original, whole", "note_tweet": {"text": "whole note"}}]},
          "meta": {"result_count": 5, "next_token": "tok-1"}}


def x_source(server):
    return XSource("jack", token="t0ken", api_base=server.url, **QUIET)


def bsky_actor(name, did):
    return {"did": did, "handle": name, "displayName": "A", "labels": [], "createdAt": "2023-04-12T10:00:00.000Z"}


ALICE = bsky_actor("alice.bsky.social", "did:plc:alicealicealicealicealic")
BOB = bsky_actor("bob.bsky.social", "did:plc:bobbobbobbobbobbobbobbobb")


def bsky_post(author, n, text, **record):
    return {"uri": f"at://{author['did']}/app.bsky.feed.post/{n}", "cid": "bafy", "author": author,
            "record": {"$type": "app.bsky.feed.post", "text": text, "createdAt": "2025-06-01T12:00:00.000Z", **record},
            "indexedAt": "2025-06-01T12:00:00.000Z", "labels": []}


BSKY_PROFILE = {**ALICE, "postsCount": 3, "labels": [{"src": "did:plc:x", "val": "spam", "neg": False,
                                                       "exp": "2999-01-01T00:00:00Z"}]}
BSKY_PAGE = {"cursor": "c1", "feed": [
    {"post": bsky_post(ALICE, 1, "see example.com/a/lo... now", facets=[
        {"index": {"byteStart": 4, "byteEnd": 21},
         "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a/long/path"}]}])},
    {"post": bsky_post(BOB, 2, "bob's words"), "reason": {"$type": "app.bsky.feed.defs#reasonRepost", "by": ALICE,
                                                           "uri": "at://x/app.bsky.feed.repost/1",
                                                           "indexedAt": "2025-06-01T12:00:00.000Z"}},
    {"post": bsky_post(ALICE, 3, "a reply", reply={"root": {}, "parent": {}})},
    {"post": {**bsky_post(ALICE, 4, "a quote"), "embed": {"$type": "app.bsky.embed.record#view"}}},
]}


@fuzz(300)
@given(ANY_TEXT | JSON, JSON | st.just([]) | mutated(BSKY_PAGE["feed"][0]["post"]["record"]["facets"]))
def test_bluesky_link_text(fuzz_tried, text, facets):
    tried(fuzz_tried, "Bluesky link_text (text and facets)")
    out = link_text(text, facets)
    if not isinstance(text, str):
        assert out == ""
    elif not isinstance(facets, list):
        assert out == text
    else:
        same = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")  # a lone surrogate: U+FFFD
        uris = [f.get("uri") for facet in facets if isinstance(facet, dict) and isinstance(facet.get("features"), list)
                for f in facet["features"] if isinstance(f, dict) and isinstance(f.get("uri"), str)]
        if not any(uris):
            assert out == same  # no link to put back: the text as it came
        else:  # only links are put in: what is not in a URL was in the text
            for uri in uris:
                out = out.replace(uri, "") if uri else out
            assert len(out) <= len(same)


URIS = st.sampled_from(["https://example.com/a/long/path?q=1", "https://www.example.org/x", "http://e.co/p/é/ü"])


@fuzz(300)
@given(st.text(max_size=30), st.text(max_size=30), URIS, st.integers(0, 12), st.sampled_from(["...", "\u2026", ""]),
       st.booleans())
def test_bluesky_link_text_puts_the_whole_link_back(fuzz_tried, before, after, uri, cut, ellipsis, with_scheme):
    """A link Bluesky shows shortened ("example.com/a/lo...") comes back whole, whatever is around it."""
    tried(fuzz_tried, "Bluesky link_text (shortened link in any text)")
    bare = uri if with_scheme else uri.split("://", 1)[1].removeprefix("www.")
    shown = bare[:max(1, len(bare) - cut)] + (ellipsis if cut else "")
    text = before + shown + after
    start = len(before.encode("utf-8", "surrogatepass"))
    facets = [{"index": {"byteStart": start, "byteEnd": start + len(shown.encode())},
               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": uri}]}]
    expected = (before + uri + after).encode("utf-8", "surrogatepass").decode("utf-8", "replace")
    assert link_text(text, facets) == expected


M_ACCOUNT = {"id": "109302851733542108", "username": "alice", "acct": "alice", "url": "https://m.example/@alice",
             "statuses_count": 3, "noindex": False, "discoverable": True, "bot": False, "locked": False}
M_BOB = {**M_ACCOUNT, "id": "1", "username": "bob", "acct": "bob@other.example"}


def m_status(i, content, **extra):
    return {"id": str(114000000000000000 + i), "created_at": "2025-06-01T12:00:00.000Z", "in_reply_to_id": None,
            "content": content, "reblog": None, "account": M_ACCOUNT, "quote": None, **extra}


M_PAGE = [m_status(1, '<p>hello <a href="https://example.com/a/long/path"><span class="invisible">https://</span>'
                      '<span class="ellipsis">example.com/a</span><span class="invisible">/long/path</span></a></p>'),
          m_status(2, "", reblog=m_status(9, "<p>bob says &amp; shares</p>", account=M_BOB)),
          m_status(3, "<p>a reply</p>", in_reply_to_id="5"),
          m_status(4, "<p>a quote</p>", quote={"state": "accepted"})]
M_LINKS = st.none() | HEADER_TEXT | st.sampled_from([
    '<http://h/api/v1/accounts/1/statuses?max_id=5>; rel="next"', '<http://[bad/?max_id=5>; rel="next"',
    '<http://h/?max_id=>; rel="next", <http://h/?min_id=9>; rel="prev"', 'rel="next"'])


@dataclass
class FuzzedNetwork:
    """One network source as the fuzz tests below feed it: its lookup and its pages, each
    answered with any status and a body of any shape, and its parser of one post."""
    name: str
    source: Callable[[Any], Any]  # the source, on this test's loopback server
    lookup_route: str  # the account lookup (X's user, Bluesky's profile, Mastodon's account)
    lookup: Any  # a good answer to it, while the pages are fuzzed
    lookup_headers: st.SearchStrategy  # headers sent with a fuzzed lookup
    page_route: str
    page: Any  # the template of the fuzzed pages
    page_headers: st.SearchStrategy  # headers sent with a fuzzed page
    pages_after_lookup: Any  # what the pages answer while the lookup is fuzzed
    parser_input: st.SearchStrategy  # a tuple of `parse`'s arguments
    parse: Callable[..., Post]
    labels: tuple[str, str, str]  # pages, lookup, parser, as the fuzz counts name them


NO_HEADERS = st.just({})
FUZZED = [
    FuzzedNetwork(
        "x", x_source, r"/2/users/by/username/\w+", X_USER, HEADER_TEXT.map(lambda t: {"Retry-After": t}),
        r"/2/users/[^/]+/tweets", X_PAGE, NO_HEADERS, {"meta": {"result_count": 0}},
        st.tuples(JSON | mutated(X_PAGE["data"][1]) | mutated(X_PAGE["data"][4]),
                  JSON | mutated({"9": X_PAGE["includes"]["tweets"][0]})),
        lambda t, included: _post(as_received(t), as_received(included) if isinstance(included, dict) else {}, "jack"),
        ("X API pages (XSource.backfill via 127.0.0.1)", "X API user lookup (via 127.0.0.1)",
         "X _post (one post dict)")),
    FuzzedNetwork(
        "bluesky", lambda server: BlueskySource("alice.bsky.social", api_base=server.url, **QUIET),
        r"/xrpc/app\.bsky\.actor\.getProfile", BSKY_PROFILE, NO_HEADERS,
        r"/xrpc/app\.bsky\.feed\.getAuthorFeed", BSKY_PAGE, NO_HEADERS, BSKY_PAGE,
        st.tuples(JSON | st.sampled_from(BSKY_PAGE["feed"]).flatmap(mutated)),
        lambda item: feed_item_post(as_received(item), "alice.bsky.social"),
        ("Bluesky feed pages (BlueskySource.backfill via 127.0.0.1)", "Bluesky profile (via 127.0.0.1)",
         "Bluesky feed_item_post (one feed item)")),
    FuzzedNetwork(
        "mastodon", lambda server: MastodonSource("alice@m.example", api_base=server.url, **QUIET),
        r"/api/v1/accounts/lookup", M_ACCOUNT, NO_HEADERS,
        r"/api/v1/accounts/[^/]+/statuses", M_PAGE, M_LINKS.map(lambda link: {"Link": link} if link else {}), M_PAGE,
        st.tuples(JSON | st.sampled_from(M_PAGE).flatmap(mutated), st.none() | JSON),
        lambda status, flags: status_post(as_received(status), "alice@m.example",
                                          as_received(flags) if isinstance(flags, dict) else None),
        ("Mastodon status pages (MastodonSource.backfill via 127.0.0.1)", "Mastodon account lookup (via 127.0.0.1)",
         "Mastodon status_post (one status)")),
]
EACH_NETWORK = pytest.mark.parametrize("net", FUZZED, ids=[n.name for n in FUZZED])


@EACH_NETWORK
@pytest.mark.parametrize("fuzzed", ["pages", "lookup"])
def test_network_replies(loopback, tmp_path, fuzz_tried, net, fuzzed):
    """One reply fuzzed, the other as the server gives it: the status pages (400 examples a network), or the
    account lookup (200)."""
    pages = fuzzed == "pages"

    @fuzz(400 if pages else 200)
    @given(st.data(), STATUSES)
    def one(data, status):
        tried(fuzz_tried, net.labels[0 if pages else 1])
        example, headers = (net.page, net.page_headers) if pages else (net.lookup, net.lookup_headers)
        body, headers = data.draw(bodies(example), "body"), data.draw(headers, "headers")
        serve(loopback, net.lookup_route, Reply(status, body, headers=headers) if not pages else Reply(200, net.lookup))
        serve(loopback, net.page_route, Reply(status, body, headers=headers) if pages else
              Reply(200, net.pages_after_lookup))
        drain(net.source(loopback), tmp_path)

    one()


@EACH_NETWORK
@fuzz(500)
@given(st.data())
def test_network_post_parser(tmp_path, fuzz_tried, net, data):
    tried(fuzz_tried, net.labels[2])
    args = data.draw(net.parser_input, "arguments")
    try:
        posts = [net.parse(*args)]
    except SourceError as e:
        check_message(e)
        posts = []
    check_posts(posts, tmp_path)


# --- 5. files of posts ------------------------------------------------------------------------------------------

SUFFIXES = st.sampled_from([".jsonl", ".ndjson", ".json", ".csv", ".txt", ""])


def read_posts_file(folder: Path, suffix: str, data: bytes) -> None:
    path = folder / f"posts{suffix}"
    path.write_bytes(data)
    read_checked(lambda: read_file(path, handle="me"), folder)


@fuzz(300)
@given(SUFFIXES, st.binary(max_size=400) | ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass"))
       | st.text(max_size=300).map(str.encode) | st.sampled_from(NASTY))
def test_files_random_bytes_and_text(tmp_path, fuzz_tried, suffix, data):
    tried(fuzz_tried, "file reader (random bytes and text, any suffix)")
    read_posts_file(tmp_path, suffix, data)


CSV_TEXT = st.tuples(
    st.sampled_from(["text\n", "id,text,kind,created_at\n", "\ufefftext,kind\r\n", "x,y\n", "", '"text\n', "text,text\n"]),
    st.lists(st.sampled_from(['"', ",", "\n", "\r", "\x00", "text", "id", "kind", "repost", "reply", "created_at",
                              "a b c", " ", '""', "\ufeff", "\\", "'", "\t"]) | st.text(max_size=4), max_size=50)
    .map("".join)).map("".join)
HUGE_CSV = st.sampled_from([
    'text\n"' + "a" * 200_000 + '"\n', "text\n" + "a" * 200_000 + "\n", '"' + "t" * 200_000 + '"\nx\n',
    "text," * 50_000 + "\n" + "a," * 50_000 + "\n", "text\n" + "x\x00y\n" * 1000, 'text\n"unclosed quote\n' * 100,
])


@fuzz(300)
@given(CSV_TEXT | HUGE_CSV)
def test_files_csv(tmp_path, fuzz_tried, text):
    tried(fuzz_tried, "file reader (CSV: quoting, NUL bytes, huge fields)")
    read_posts_file(tmp_path, ".csv", text.encode("utf-8"))


POST_RECORD = {"id": "1", "text": "a post of mine", "handle": "me", "source": "file", "kind": "post",
               "created_at": "2024-01-01T00:00:00+00:00", "raw": {"likes": 3}}
SNSCRAPE_RECORD = {"id": 7, "rawContent": "an old tweet", "date": "2020-01-01", "retweetedTweet": None,
                   "quotedTweet": None, "inReplyToTweetId": 5}
JSONL_LINE = (JSON.map(json.dumps) | mutated(POST_RECORD).map(json.dumps) | mutated(SNSCRAPE_RECORD).map(json.dumps)
              | st.sampled_from(NASTY).map(lambda b: b.decode("utf-8", "replace")) | st.text(max_size=20))


@fuzz(400)
@given(st.lists(JSONL_LINE, min_size=1, max_size=5), st.sampled_from([".jsonl", ".ndjson", ".json"]))
def test_files_jsonl(tmp_path, fuzz_tried, lines, suffix):
    tried(fuzz_tried, "file reader (JSONL lines of any JSON)")
    read_posts_file(tmp_path, suffix, "\n".join(lines).encode("utf-8", "surrogatepass"))
