"""`archive:PATH` (an X archive, built here in each layout X has used) and
`snscrape:handle` (which must explain itself and never reach X)."""

import json
import os
import stat
import sys
import zipfile

import pytest

from huggingtweets import filter_posts, write_posts
from huggingtweets.cli import main
from huggingtweets.errors import SourceError
from huggingtweets.sources import archive, fetch_posts, parse_source
from huggingtweets.sources.archive import account_name, read_archive

LONG = ("This is a long post that goes on well past the old limit of two hundred and eighty characters, "
        "because notes let people write at length &amp; they do, and an archive keeps the stub in tweets.js "
        "while the whole text lives in note-tweet.js, which is where this reader has to look for it when it "
        "builds the posts a model learns from. The end.")


def tweet(id_, text, created="Wed Oct 10 20:19:24 +0000 2018", **extra):
    return {"tweet": {"id_str": str(id_), "id": str(id_), "full_text": text, "created_at": created,
                      "retweeted": False, "favorite_count": "1", **extra}}


TWEETS = [
    tweet(100, "my first post here, plain words", "Mon Jan 01 10:00:00 +0000 2018"),
    tweet(300, "@friend yes I agree with you", "Wed Oct 10 20:19:24 +0000 2018", in_reply_to_status_id_str="299",
          in_reply_to_screen_name="friend"),
    tweet(200, "RT @other: their words, not mine", "Fri Mar 02 12:00:00 +0100 2018"),
    tweet(400, "look at this one, good stuff https://t.co/q", "Sat Nov 10 08:00:00 +0000 2018",
          quoted_status_id_str="42"),
    tweet(500, LONG[:270] + "\u2026 https://t.co/abc", "Tue Jan 01 00:00:05 +0000 2019"),
]
EXPECTED = [("500", "post"), ("400", "quote"), ("300", "reply"), ("200", "repost"), ("100", "post")]


def ytd(name, data, part=0):
    return f"window.YTD.{name}.part{part} = {json.dumps(data, indent=2)}"


def account_js(username="alice_x"):
    return ytd("account", [{"account": {"username": username, "accountId": "1", "accountDisplayName": "Alice"}}])


def note_js():
    return ytd("note_tweet", [{"noteTweet": {"noteTweetId": "9001", "createdAt": "2019-01-01T00:00:05.000Z",
                                              "core": {"text": LONG, "urls": [], "mentions": [], "hashtags": []}}}])


def manifest_js(files, notes=("data/note-tweet.js",)):
    config = {"userInfo": {"userName": "alice_x"}, "dataTypes": {
        "tweets": {"files": [{"fileName": f, "globalName": f"YTD.tweets.part{i}", "count": "1"}
                             for i, f in enumerate(files)]},
        "noteTweet": {"files": [{"fileName": f, "globalName": "YTD.note_tweet.part0", "count": "1"} for f in notes]},
        "account": {"files": [{"fileName": "data/account.js", "globalName": "YTD.account.part0", "count": "1"}]}}}
    return "window.__THAR_CONFIG = " + json.dumps(config, indent=2)


def modern_files():
    return {"data/tweets.js": ytd("tweets", TWEETS), "data/account.js": account_js(), "data/note-tweet.js": note_js(),
            "data/manifest.js": manifest_js(["data/tweets.js"]), "data/tweet-headers.js": ytd("tweet_headers", []),
            "data/deleted-tweets.js": ytd("deleted_tweets", [tweet(1, "gone, never read")]),
            "Your archive.html": "<html></html>", "assets/js/app.js": "nothing"}


def make_zip(path, files):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def make_folder(root, files):
    for name, text in files.items():
        p = root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    return root


def summary(posts):
    return [(p.id, p.kind) for p in posts]


# --- layouts ---------------------------------------------------------------------------------------------------


def test_modern_zip(tmp_path):
    z = make_zip(tmp_path / "twitter-2024-01-01-abc.zip", modern_files())
    assert account_name(z) == "alice_x"
    assert parse_source(f"archive:{z}").name == "alice_x"
    posts = read_archive(z, handle="alice_x")
    assert summary(posts) == EXPECTED  # newest first; tweet-headers.js and deleted-tweets.js not read
    by_id = {p.id: p for p in posts}
    assert by_id["300"].created_at == "2018-10-10T20:19:24+00:00"
    assert by_id["200"].created_at == "2018-03-02T11:00:00+00:00"  # +0100 converted to UTC
    assert by_id["500"].text == LONG and by_id["500"].raw["note_tweet_id"] == "9001"
    assert by_id["100"].text == "my first post here, plain words"
    assert all(p.source == "archive" and p.handle == "alice_x" for p in posts)
    assert "full_text" not in by_id["300"].raw and by_id["300"].raw["in_reply_to_screen_name"] == "friend"
    assert by_id["300"].raw["created_at"] == "Wed Oct 10 20:19:24 +0000 2018"


def test_older_tweet_js_without_wrapper(tmp_path):
    old = [t["tweet"] for t in TWEETS[:4]]  # objects without {"tweet": ...}
    old[0] = {k: v for k, v in old[0].items() if k != "id_str"}  # `id` only
    z = make_zip(tmp_path / "old.zip", {"data/tweet.js": ytd("tweet", old), "data/account.js": account_js("bob")})
    assert account_name(z) == "bob"
    posts = read_archive(z, handle="bob")
    assert summary(posts) == EXPECTED[1:]


def test_split_parts_listed_in_the_manifest(tmp_path):
    files = {"data/tweets-part1.js": ytd("tweets", TWEETS[:3], part=1),
             "data/tweets-part2.js": ytd("tweets", TWEETS[3:], part=2),
             "data/note-tweet.js": note_js(), "data/account.js": account_js(),
             # a stray part the manifest does not list is not read
             "data/tweets-part9.js": ytd("tweets", [tweet(999, "stray part not in manifest")], part=9),
             "data/manifest.js": manifest_js(["data/tweets-part1.js", "data/tweets-part2.js"])}
    posts = read_archive(make_zip(tmp_path / "big.zip", files), handle="alice_x")
    assert summary(posts) == EXPECTED
    assert posts[0].text == LONG


def test_split_parts_without_a_manifest_are_globbed(tmp_path):
    files = {"data/tweets-part1.js": ytd("tweets", TWEETS[:3], part=1),
             "data/tweets-part2.js": ytd("tweets", TWEETS[3:], part=2)}
    posts = read_archive(make_zip(tmp_path / "big.zip", files), handle="a")
    assert summary(posts) == EXPECTED
    assert posts[0].text.endswith("https://t.co/abc")  # no note-tweet.js: the stub stays


def test_long_reply_keeps_its_mentions(tmp_path):
    stub = tweet(5, "@friend @other " + LONG[:150] + "\u2026", "Sun Jan 06 00:00:00 +0000 2019",
                 in_reply_to_status_id_str="4")
    notes = ytd("note_tweet", [{"noteTweet": {"noteTweetId": "6", "createdAt": "2019-01-01T00:00:00.000Z",
                                              "core": {"text": LONG}}}])  # made at another time: matched by text
    posts = read_archive(make_zip(tmp_path / "r.zip", {"data/tweets.js": ytd("tweets", [stub]),
                                                       "data/note-tweet.js": notes}), handle="a")
    assert [(p.kind, p.text) for p in posts] == [("reply", "@friend @other " + LONG)]


def test_note_matched_by_time_and_other_field_names(tmp_path):
    # The stub does not begin the note's text (edited), but was made in the same second.
    stub = tweet(77, "Something else entirely, cut\u2026", "Tue Jan 01 00:00:05 +0000 2019")
    notes = ytd("note_tweet", [{"note_tweet": {"noteTweetId": "5", "createdAt": "2019-01-01T00:00:05.000Z",
                                               "core": {"text": "A whole different and much longer text, in full."}}}])
    posts = read_archive(make_zip(tmp_path / "n.zip", {"data/tweets.js": ytd("tweets", [stub]),
                                                       "data/note-tweet.js": notes}), handle="a")
    assert posts[0].text == "A whole different and much longer text, in full."


def test_notes_go_only_to_their_own_stubs(tmp_path):
    second = "Tue Jan 01 00:00:05 +0000 2019"  # everything made in the same second as the note
    rows = [tweet(1, "a plain post that just ends in a link https://t.co/z", second),
            tweet(2, "RT @other: someone else's long post, cut\u2026", second),
            tweet(3, LONG[:200] + "\u2026", second)]
    posts = read_archive(make_zip(tmp_path / "n.zip", {"data/tweets.js": ytd("tweets", rows),
                                                       "data/note-tweet.js": note_js()}), handle="a")
    assert [p.text for p in posts] == [LONG, rows[1]["tweet"]["full_text"], rows[0]["tweet"]["full_text"]]
    # Without the matching stub, the note is not handed to a post that merely ends in a link, nor to a repost.
    posts = read_archive(make_zip(tmp_path / "m.zip", {"data/tweets.js": ytd("tweets", rows[:2]),
                                                       "data/note-tweet.js": note_js()}), handle="a")
    assert LONG not in [p.text for p in posts]


def test_unzipped_folder_data_folder_and_bare_tweets_js(tmp_path):
    folder = make_folder(tmp_path / "twitter-2024-01-01-abc", modern_files())
    assert account_name(folder) == "alice_x"
    assert summary(read_archive(folder, handle="alice_x")) == EXPECTED
    data = folder / "data"
    assert account_name(data) == "alice_x"
    assert summary(read_archive(data, handle="alice_x")) == EXPECTED
    # a zip unzipped into a folder of its own name, inside the one given
    assert summary(read_archive(tmp_path, handle="alice_x")) == EXPECTED
    bare = data / "tweets.js"
    assert account_name(bare) == "tweets"
    posts = read_archive(bare, handle="me")
    assert summary(posts) == EXPECTED and posts[0].text == LONG  # note-tweet.js beside it is used
    alone = tmp_path / "alone" / "tweets.js"
    alone.parent.mkdir()
    alone.write_text(ytd("tweets", TWEETS), encoding="utf-8")
    assert summary(read_archive(alone, handle="me")) == EXPECTED


def test_zip_of_the_unzipped_folder(tmp_path):
    files = {f"twitter-2024/{k}": v for k, v in modern_files().items()}
    z = make_zip(tmp_path / "rezipped.zip", files)
    assert account_name(z) == "alice_x"
    assert summary(read_archive(z, handle="alice_x")) == EXPECTED


def test_folder_ignores_links_that_point_outside(tmp_path):
    outside = tmp_path / "elsewhere.js"
    outside.write_text(ytd("tweets", [tweet(1, "not from this archive at all")]), encoding="utf-8")
    folder = make_folder(tmp_path / "arch", {"data/account.js": account_js()})
    os.symlink(outside, folder / "data" / "tweets.js")
    with pytest.raises(SourceError, match="has no tweets file"):
        read_archive(folder, handle="a")
    (folder / "data" / "tweets.js").unlink()
    make_folder(folder, {"data/real.js": ytd("tweets", TWEETS)})
    os.symlink(folder / "data" / "real.js", folder / "data" / "tweets.js")  # inside: followed
    assert len(read_archive(folder, handle="a")) == 5


def test_entries_without_id_or_text_are_skipped(tmp_path):
    rows = TWEETS[:2] + [{"tweet": {"id_str": "7"}}, {"tweet": {"full_text": "no id here"}}, "a string", 5,
                         {"tweet": {"id_str": "8", "full_text": "   "}}, {"tweet": {"id_str": "9", "full_text": ["x"]}}]
    posts = read_archive(make_zip(tmp_path / "a.zip", {"data/tweets.js": ytd("tweets", rows)}), handle="a")
    assert summary(posts) == [("300", "reply"), ("100", "post")]


def test_empty_tweets_file_gives_no_posts(tmp_path):
    assert read_archive(make_zip(tmp_path / "a.zip", {"data/tweets.js": ytd("tweets", [])}), handle="a") == []


def test_unparseable_date_is_none_not_a_crash(tmp_path):
    rows = [tweet(1, "a post with an odd date", "yesterday"), tweet(2, "and one with none at all", None)]
    posts = read_archive(make_zip(tmp_path / "a.zip", {"data/tweets.js": ytd("tweets", rows)}), handle="a")
    assert [(p.id, p.created_at) for p in posts] == [("2", None), ("1", None)]


# --- bad inputs ------------------------------------------------------------------------------------------------


def one_line_error(path, match):
    with pytest.raises(SourceError, match=match) as e:
        read_archive(path, handle="a")
    assert "\n" not in str(e.value) and ": " in str(e.value)
    return str(e.value)


def test_missing_path(tmp_path):
    missing = tmp_path / "nope.zip"
    assert account_name(missing) == "nope"  # never raises; reading says what is wrong
    assert "check the path" in one_line_error(missing, "archive not found")


def test_random_bytes_named_zip(tmp_path):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(os.urandom(2048))
    assert account_name(junk) == "junk"
    one_line_error(junk, "is not a readable zip")


def test_truncated_zip(tmp_path):
    z = make_zip(tmp_path / "a.zip", modern_files())
    data = z.read_bytes()
    z.write_bytes(data[: len(data) // 2])
    one_line_error(z, "is not a readable zip")


def test_corrupt_member_in_zip(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("data/tweets.js", ytd("tweets", TWEETS))
    data = bytearray(z.read_bytes())
    i = data.index(b"my first post")
    data[i:i + 2] = b"XX"  # CRC no longer matches
    z.write_bytes(bytes(data))
    one_line_error(z, "is damaged")


def test_not_an_archive(tmp_path):
    f = tmp_path / "notes.txt"
    f.write_text("just some text\n")
    one_line_error(f, "is not an archive huggingtweets reads")


def test_empty_folder_names_what_was_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    msg = one_line_error(tmp_path / "empty", "has no tweets file")
    assert "data/tweets.js" in msg and "data/tweet.js" in msg


def test_zip_without_tweet_file(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"data/account.js": account_js(), "data/like.js": ytd("like", [])})
    one_line_error(z, r"has no tweets file \(looked for data/tweets.js")


def test_manifest_lists_a_missing_part(tmp_path):
    z = make_zip(tmp_path / "a.zip", {"data/tweets-part1.js": ytd("tweets", TWEETS, part=1),
                                      "data/manifest.js": manifest_js(["data/tweets-part1.js", "data/tweets-part2.js"])})
    one_line_error(z, "lists data/tweets-part2.js in its manifest.js but does not have it")


@pytest.mark.parametrize("content, match", [
    (ytd("tweets", TWEETS)[:300], r"tweets.js is cut short or damaged \(bad JSON"),
    (json.dumps([t for t in TWEETS]), r"tweets.js does not start with `window.YTD.<name>.partN = `"),
    ("window.YTD.tweets.part0 = {\"tweet\": {}}", r"tweets.js holds a JSON dict, not the list"),
    ("window.YTD.tweets.part0 = [{\"tweet\": {\"id_str\": \"1\"}}, {\"other\": 1}]",
     r"none of the 2 entries in .*tweets.js has an id and a `full_text`"),
    ("window.YTD.tweets.part0 = " + "[" * 100_000 + "]" * 100_000, "nested too deeply|cut short or damaged"),
])
def test_broken_tweets_js(tmp_path, content, match):
    z = make_zip(tmp_path / "a.zip", {"data/tweets.js": content})
    one_line_error(z, match)
    f = tmp_path / "tweets.js"  # the same, given on its own
    f.write_text(content, encoding="utf-8")
    one_line_error(f, match)


def test_not_utf8_and_wrong_file_given(tmp_path):
    z = tmp_path / "a.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("data/tweets.js", b"window.YTD.tweets.part0 = [\xff\xfe]")
    one_line_error(z, "is not UTF-8 text")
    like = tmp_path / "like.js"
    like.write_text(ytd("like", [{"like": {"tweetId": "1", "fullText": "x"}}]), encoding="utf-8")
    one_line_error(like, "holds like, not posts")


def test_broken_manifest_and_note_files(tmp_path):
    files = modern_files()
    one_line_error(make_zip(tmp_path / "a.zip", {**files, "data/manifest.js": "var x = 1"}), "manifest.js does not start")
    one_line_error(make_zip(tmp_path / "b.zip", {**files, "data/note-tweet.js": note_js()[:50]}),
                   "note-tweet.js is cut short or damaged")
    # A damaged account.js only costs the name.
    z = make_zip(tmp_path / "c.zip", {**files, "data/account.js": "window.YTD.account.part0 = [{]"})
    assert account_name(z) == "c"
    assert len(read_archive(z, handle="c")) == 5


@pytest.mark.parametrize("evil", ["../evil.js", "data/../../evil.js", "/etc/evil.js", "C:/evil.js", "..\\evil.js"])
def test_zip_with_escaping_names_is_rejected(tmp_path, evil):
    z = make_zip(tmp_path / "a.zip", {**modern_files(), evil: "x"})
    one_line_error(z, "points outside the archive")
    assert account_name(z) == "a"


def test_zip_with_a_symlink_entry_is_rejected(tmp_path):
    z = make_zip(tmp_path / "a.zip", modern_files())
    with zipfile.ZipFile(z, "a") as zf:
        info = zipfile.ZipInfo("data/link.js")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(info, "/etc/passwd")
    one_line_error(z, "has a symbolic link")


def test_zip_bomb_caps(tmp_path, monkeypatch):
    z = make_zip(tmp_path / "a.zip", {**modern_files(), "data/padding.bin": "0" * 200_000})  # compresses to little
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 100_000)
    one_line_error(z, r"unzips to \d+\.\d KiB from \d+\.\d KiB, more than the 97.7 KiB allowed")
    # Big but barely compressed (photos, videos) is how real archives are big: allowed.
    media = make_zip(tmp_path / "media.zip", {**modern_files(), "data/tweets_media/1.jpg": os.urandom(200_000)})
    assert len(read_archive(media, handle="a")) == 5
    monkeypatch.setattr(archive, "MAX_TOTAL_BYTES", 10**9)
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 1_000)
    one_line_error(z, r"tweets.js is \d+\.\d KiB, more than the 1000 bytes allowed for one file")
    monkeypatch.setattr(archive, "MAX_FILE_BYTES", 10**9)
    largest = max(len(v.encode()) for v in modern_files().values())
    monkeypatch.setattr(archive, "MAX_READ_BYTES", largest + 1)  # each file fits, all of them together do not
    one_line_error(z, "allowed in the files to read")
    monkeypatch.setattr(archive, "MAX_READ_BYTES", 10**9)
    monkeypatch.setattr(archive, "MAX_ENTRIES", 3)
    one_line_error(z, "has 9 entries, more than")


# --- the same posts, whichever way they arrive ------------------------------------------------------------------


def test_stats_match_the_same_posts_from_a_file(tmp_path):
    z = make_zip(tmp_path / "a.zip", modern_files())
    posts = read_archive(z, handle="alice_x")
    f = tmp_path / "posts.jsonl"
    write_posts(f, posts)
    again = fetch_posts(parse_source(f"file:{f}"))
    assert filter_posts(posts).stats == filter_posts(again).stats
    stats = filter_posts(posts).stats
    assert (stats.tweets_downloaded, stats.retweets, stats.tweets_kept) == (5, 1, 4)
    assert [p.text for p in filter_posts(posts).kept][0].startswith("This is a long post") and \
        "& they do" in filter_posts(posts).kept[0].text


def test_cli_fetch_archive(tmp_path, capsys):
    z = make_zip(tmp_path / "twitter-2024-01-01-abc.zip", modern_files())
    assert main(["fetch", f"archive:{z}"]) == 0
    lines = (tmp_path / "work" / "alice_x" / "posts.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == [i for i, _ in EXPECTED]
    assert "Fetched 5 posts" in capsys.readouterr().out


def test_cli_fetch_broken_archive_is_one_line(tmp_path, capsys):
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not really")
    assert main(["fetch", f"archive:{junk}"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


# --- snscrape --------------------------------------------------------------------------------------------------


@pytest.fixture
def no_snscrape(monkeypatch):
    """snscrape is not installed here; make sure of it, so nothing can ever reach X."""
    monkeypatch.setitem(sys.modules, "snscrape", None)
    monkeypatch.setitem(sys.modules, "snscrape.modules", None)


def test_snscrape_explains_what_works(no_snscrape, capsys):
    from huggingtweets.sources.snscrape import scrape

    with pytest.raises(SourceError, match="mid-2023.*Python 3.12"):
        scrape("jack")
    assert main(["fetch", "snscrape:jack"]) == 1
    captured = capsys.readouterr()
    err = captured.err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert "archive:" in err and "@handle" in err


def test_snscrape_refused_by_x_and_maps_tweets(monkeypatch):
    """A fake snscrape module in place of the real one: no network either way."""
    import types
    from datetime import datetime, timezone

    from huggingtweets.sources.snscrape import scrape

    class T:
        def __init__(self, id, rawContent, **kw):
            self.id, self.rawContent, self.date = id, rawContent, datetime(2021, 5, 1, 10, tzinfo=timezone.utc)
            self.retweetedTweet = self.quotedTweet = self.inReplyToTweetId = None
            self.__dict__.update(kw)

    items = [T(1, "my own words here"), T(2, "RT @a: theirs", retweetedTweet=T(9, "x")),
             T(3, "@a I agree", inReplyToTweetId=1), T(4, "look", quotedTweet=T(8, "y"))]
    refuse = False

    class Scraper:
        def __init__(self, handle):
            self.handle = handle

        def get_items(self):
            if refuse:
                raise RuntimeError("4 requests to https://x.com/... failed,\ngiving up.")
            yield from items

    twitter = types.ModuleType("snscrape.modules.twitter")
    twitter.TwitterUserScraper = Scraper
    modules = types.ModuleType("snscrape.modules")
    modules.twitter = twitter
    pkg = types.ModuleType("snscrape")
    pkg.modules = modules
    monkeypatch.setitem(sys.modules, "snscrape", pkg)
    monkeypatch.setitem(sys.modules, "snscrape.modules", modules)
    monkeypatch.setitem(sys.modules, "snscrape.modules.twitter", twitter)

    posts = scrape("jack")
    assert [(p.id, p.kind, p.source) for p in posts] == [
        ("1", "post", "snscrape"), ("2", "repost", "snscrape"), ("3", "reply", "snscrape"), ("4", "quote", "snscrape")]
    assert posts[0].created_at == "2021-05-01T10:00:00+00:00" and posts[1].raw["retweetedTweet"] == {"id": "9"}
    assert len(scrape("jack", max_posts=2)) == 2
    refuse = True
    with pytest.raises(SourceError, match="could not read @jack from X") as e:
        scrape("jack")
    assert "\n" not in str(e.value) and "archive:PATH" in str(e.value) and "@handle" in str(e.value)
