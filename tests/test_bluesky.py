"""`bsky:handle` against a fake public AppView on 127.0.0.1 that answers in the
lexicons' shapes (app.bsky.feed.getAuthorFeed, app.bsky.feed.defs#feedViewPost,
app.bsky.actor.defs#profileViewDetailed, XRPC errors `{error, message}`)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from huggingtweets.errors import SourceError
from huggingtweets.settings import Settings
from huggingtweets.sources import fetch_posts, parse_source
from huggingtweets.sources.bluesky import BlueskySource, feed_item_post, link_text
from loopback import Reply

FEED = "/xrpc/app.bsky.feed.getAuthorFeed"
PROFILE = "/xrpc/app.bsky.actor.getProfile"
START = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)


def stamp(minutes_ago: int) -> str:
    return (START - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def actor(name: str, did: str, labels: list | None = None) -> dict:
    """app.bsky.actor.defs#profileViewBasic"""
    return {"did": did, "handle": name, "displayName": name.split(".")[0].title(),
            "avatar": f"https://cdn.bsky.app/img/avatar/plain/{did}/bafkrei@jpeg", "associated": {"chat": {"allowIncoming": "following"}},
            "labels": labels or [], "createdAt": "2023-04-12T10:00:00.000Z"}


ALICE = actor("alice.bsky.social", "did:plc:alicealicealicealicealic")
BOB = actor("bob.bsky.social", "did:plc:bobbobbobbobbobbobbobbobb")


def post_view(author: dict, n: int, text: str, when: str, **extra) -> dict:
    """app.bsky.feed.defs#postView"""
    record = {"$type": "app.bsky.feed.post", "text": text, "createdAt": when, "langs": ["en"], **extra.pop("record", {})}
    return {"uri": f"at://{author['did']}/app.bsky.feed.post/3lk{n:010d}", "cid": f"bafyreib{n:051d}",
            "author": author, "record": record, "bookmarkCount": 0, "replyCount": n % 3, "repostCount": n % 4,
            "likeCount": n % 7, "quoteCount": 0, "indexedAt": when, "viewer": {}, "labels": [], **extra}


def ref(view: dict) -> dict:
    return {"uri": view["uri"], "cid": view["cid"]}


def feed_item(n: int, minutes_ago: int) -> dict:
    """app.bsky.feed.defs#feedViewPost number n: every 10th a repost, every 7th a reply,
    every 11th a quote, every 5th too short to keep, the rest ordinary posts."""
    when = stamp(minutes_ago)
    if n % 10 == 0:
        original = post_view(BOB, 100000 + n, f"bob says something worth sharing number {n}", stamp(minutes_ago + 30))
        return {"post": original, "reason": {"$type": "app.bsky.feed.defs#reasonRepost", "by": ALICE,
                                             "uri": f"at://{ALICE['did']}/app.bsky.feed.repost/3lr{n:010d}",
                                             "cid": f"bafyreir{n:051d}", "indexedAt": when}}
    if n % 7 == 0:
        parent = post_view(BOB, 200000 + n, "a question for alice", stamp(minutes_ago + 5))
        view = post_view(ALICE, n, f"@bob.bsky.social my answer to that is number {n}", when,
                         record={"reply": {"root": ref(parent), "parent": ref(parent)}})
        return {"post": view, "reply": {"root": parent, "parent": parent}}
    if n % 11 == 0:
        quoted = post_view(BOB, 300000 + n, "a post to quote", stamp(minutes_ago + 60))
        view = post_view(ALICE, n, f"look at what bob wrote here {n}", when,
                         record={"embed": {"$type": "app.bsky.embed.record", "record": ref(quoted)}},
                         embed={"$type": "app.bsky.embed.record#view",
                                "record": {"$type": "app.bsky.embed.record#viewRecord", "uri": quoted["uri"],
                                           "cid": quoted["cid"], "author": BOB, "value": quoted["record"],
                                           "labels": [], "indexedAt": quoted["indexedAt"], "embeds": []}})
        return {"post": view}
    if n % 5 == 0:
        return {"post": post_view(ALICE, n, f"ok {n}", when)}
    return {"post": post_view(ALICE, n, f"thinking about gardens and rain today, post {n} https://example.com/{n}",
                              when)}


class FakeAppView:
    """getProfile and getAuthorFeed over `items`, newest first; the cursor is the
    last item's sort time, as the AppView's is."""

    def __init__(self, count: int, labels: list | None = None):
        self.items = [feed_item(n, minutes_ago=i) for i, n in enumerate(range(count, 0, -1))]
        self.labels = labels or []
        self.next_n = count + 1

    def add_newer(self, count: int) -> None:
        newest = self.items[0]
        top = datetime.fromisoformat(self.sort_at(newest).replace("Z", "+00:00"))
        fresh = []
        for k in range(count):
            minutes_ago = -int((top - START).total_seconds() // 60) - (count - k)
            fresh.append(feed_item(self.next_n + (count - 1 - k), minutes_ago))
        self.next_n += count
        self.items = fresh + self.items

    @staticmethod
    def sort_at(item: dict) -> str:
        return item["reason"]["indexedAt"] if "reason" in item else item["post"]["record"]["createdAt"]

    def profile(self, req, m):
        if req.query.get("actor") != ALICE["handle"]:
            return Reply(400, {"error": "InvalidRequest", "message": "Profile not found"})
        return Reply(200, {**ALICE, "description": "I write about gardens.", "followersCount": 120,
                           "followsCount": 80, "postsCount": len(self.items), "indexedAt": "2025-01-01T00:00:00.000Z",
                           "labels": self.labels, "viewer": {"muted": False, "blockedBy": False}})

    def feed(self, req, m):
        if req.query.get("actor") != ALICE["handle"]:
            return Reply(400, {"error": "InvalidRequest", "message": "Profile not found"})
        limit = int(req.query.get("limit", 50))
        cursor = req.query.get("cursor")
        rest = [i for i in self.items if cursor is None or self.sort_at(i) < cursor]
        page = rest[:limit]
        body = {"feed": page}
        if page:
            body["cursor"] = self.sort_at(page[-1])
        return Reply(200, body)

    def serve(self, loopback, feed=None, profile=None) -> None:
        loopback.route(PROFILE, profile or self.profile)
        loopback.route(FEED, feed or self.feed)


def feed_requests(loopback) -> list:
    return [r for r in loopback.requests if r.path == FEED]


def fetch(loopback, folder, spec="bsky:alice.bsky.social", **settings):
    return fetch_posts(parse_source(spec), Settings(api_base=loopback.url, **settings), folder=folder,
                       say=lambda m: None)


def test_pages_to_the_end_and_marks_reposts_replies_quotes(loopback, tmp_path):
    fake = FakeAppView(250)
    fake.serve(loopback)
    posts = fetch(loopback, tmp_path / "f")

    assert len(posts) == 250 and len({p.id for p in posts}) == 250
    asked = feed_requests(loopback)
    # 100 + 100 + 50, then the AppView's empty page without a cursor (it gives a cursor with every
    # non-empty page, and pages can come back short mid-feed, so a short page is no end).
    assert len(asked) == 4
    assert [r.query.get("cursor") is None for r in asked] == [True, False, False, False]
    assert all(r.query["limit"] == "100" and r.query["filter"] == "posts_with_replies" and
               r.query["actor"] == "alice.bsky.social" for r in asked)
    assert [r.path for r in loopback.requests].count(PROFILE) == 1
    assert all(r.headers["user-agent"].startswith("huggingtweets/") for r in loopback.requests)
    assert [p.created_at for p in posts] == sorted((p.created_at for p in posts), reverse=True)

    kinds = {k: sum(p.kind == k for p in posts) for k in ("post", "reply", "repost", "quote")}
    assert kinds == {"repost": 25, "reply": 32, "quote": 17, "post": 176}  # n%10, then n%7, then n%11
    repost = next(p for p in posts if p.kind == "repost")
    assert repost.text.startswith("RT @bob.bsky.social: bob says something worth sharing")
    assert repost.id.startswith(f"at://{ALICE['did']}/app.bsky.feed.repost/")
    assert repost.raw["reposted_uri"].startswith(f"at://{BOB['did']}/app.bsky.feed.post/")
    assert repost.raw["reason"]["$type"] == "app.bsky.feed.defs#reasonRepost"
    reply = next(p for p in posts if p.kind == "reply")
    assert reply.text.startswith("@bob.bsky.social my answer") and "root" in reply.raw["record"]["reply"]
    quote = next(p for p in posts if p.kind == "quote")
    assert quote.raw["embed"]["$type"] == "app.bsky.embed.record#view"
    plain = next(p for p in posts if p.kind == "post")
    assert plain.id.startswith(f"at://{ALICE['did']}/app.bsky.feed.post/") and plain.source == "bsky"
    assert plain.handle == "alice.bsky.social" and "text" not in plain.raw["record"]


def test_a_repost_does_not_collide_with_the_original(loopback, tmp_path):
    fake = FakeAppView(3)
    own = fake.items[1]["post"]
    fake.items.insert(0, {"post": own, "reason": {"$type": "app.bsky.feed.defs#reasonRepost", "by": ALICE,
                                                  "indexedAt": stamp(-5)}})  # no reason uri: an older AppView
    fake.serve(loopback)
    posts = fetch(loopback, tmp_path / "f")
    assert len(posts) == 4
    assert posts[0].id == own["uri"] + "#repost-by-alice.bsky.social" and posts[0].kind == "repost"
    assert posts[0].text == "RT @alice.bsky.social: " + own["record"]["text"]
    assert own["uri"] in {p.id for p in posts}


def test_shortened_links_get_their_full_url_back():
    text = "read this: example.com/a/very/lo... and that 🌧 bsky.app"
    data = text.encode()
    start = data.index(b"example")
    end = start + len(b"example.com/a/very/lo...")
    emoji_link = data.index(b"bsky.app")
    facets = [{"$type": "app.bsky.richtext.facet", "index": {"byteStart": start, "byteEnd": end},
               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://example.com/a/very/long/path"}]},
              {"index": {"byteStart": emoji_link, "byteEnd": emoji_link + 8},
               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://bsky.app"}]},
              {"index": {"byteStart": 0, "byteEnd": 4},  # words that link somewhere stay words
               "features": [{"$type": "app.bsky.richtext.facet#link", "uri": "https://elsewhere.example"}]},
              {"index": {"byteStart": 5, "byteEnd": 9999}, "features": [{"$type": "app.bsky.richtext.facet#link",
                                                                        "uri": "https://out.of/range"}]},
              "garbage", {"index": "nope"}]
    assert link_text(text, facets) == "read this: https://example.com/a/very/long/path and that 🌧 https://bsky.app"
    assert link_text(None, facets) == "" and link_text("plain", None) == "plain"


def test_reposting_an_author_who_hides_from_logged_out_clients_keeps_the_count_not_the_words():
    hidden = actor("quiet.bsky.social", "did:plc:quietquietquietquietquie",
                   labels=[{"src": "did:plc:quietquietquietquietquie", "uri": "at://did:plc:quietquietquietquietquie/app.bsky.actor.profile/self",
                            "val": "!no-unauthenticated", "cts": "2024-01-01T00:00:00.000Z"}])
    item = {"post": post_view(hidden, 5, "not for everyone", stamp(10)),
            "reason": {"$type": "app.bsky.feed.defs#reasonRepost", "by": ALICE, "indexedAt": stamp(1)}}
    post = feed_item_post(item, "alice.bsky.social")
    assert (post.kind, post.text) == ("repost", "RT @quiet.bsky.social: ")
    assert "not for everyone" not in str(post.raw)


FAULTS = {
    "429 Retry-After 0": lambda page: Reply(429, {"error": "RateLimitExceeded", "message": "Rate Limit Exceeded"},
                                            headers={"Retry-After": "0", "RateLimit-Remaining": "0"}),
    "500": lambda page: Reply(500, {"error": "InternalServerError", "message": "Internal Server Error"}),
    "broken JSON": lambda page: Reply(200, '{"feed": [{"post": '),
    "dropped mid-page": lambda page: Reply(200, page, drop=True),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_on_page_two_is_retried_then_the_fetch_goes_on(loopback, tmp_path, fault):
    fake = FakeAppView(250)
    said = []
    faulted = []

    def feed(req, m):
        reply = fake.feed(req, m)
        if req.query.get("cursor") and not faulted:
            faulted.append(req)
            return FAULTS[fault](reply.body)
        return reply

    fake.serve(loopback, feed=feed)
    posts = fetch_posts(parse_source("bsky:alice.bsky.social"), Settings(api_base=loopback.url),
                        folder=tmp_path / "f", say=said.append)
    assert len(posts) == 250 and len({p.id for p in posts}) == 250
    assert len(feed_requests(loopback)) == 5  # 4 as without the fault, and the one retry
    assert any("trying again" in s for s in said)


def test_broken_json_every_time_is_one_clear_error(loopback, tmp_path):
    fake = FakeAppView(10)
    fake.serve(loopback, feed=lambda req, m: Reply(200, "<html>upstream error</html>"))
    with pytest.raises(SourceError, match="Bluesky sent a page that is not valid JSON, 5 times"):
        fetch(loopback, tmp_path / "f")
    assert len(feed_requests(loopback)) == 5


@pytest.mark.parametrize("status, body, message", [
    (400, {"error": "InvalidRequest", "message": "Profile not found"},
     r"^Bluesky has no account @alice.bsky.social: check the handle"),
    (400, {"error": "ActorNotFound", "message": "Actor not found"}, "Bluesky has no account @alice.bsky.social"),
    (400, {"error": "AccountTakedown", "message": "Account has been suspended"}, "Bluesky has suspended"),
    (400, {"error": "AccountDeactivated", "message": "Account is deactivated"}, "has deactivated their Bluesky"),
    (401, {"error": "AuthenticationRequired", "message": "Authentication Required"}, "asked for a login \\(401"),
    (403, {"error": "Forbidden", "message": "Forbidden"}, "refused access to @alice.bsky.social \\(403"),
    (404, {"error": "MethodNotImplemented", "message": "Method Not Implemented"}, "404.*check the --api-base"),
    (404, "", "404.*check the --api-base"),
])
def test_errors_say_what_happened(loopback, tmp_path, status, body, message):
    fake = FakeAppView(10)
    fake.serve(loopback, profile=lambda req, m: Reply(status, body))
    with pytest.raises(SourceError, match=message):
        fetch(loopback, tmp_path / "f")
    assert len(loopback.requests) == 1  # not retried: asking again cannot help
    assert not feed_requests(loopback)


def test_an_unknown_handle(loopback, tmp_path):
    fake = FakeAppView(10)
    fake.serve(loopback)
    with pytest.raises(SourceError, match=r"Bluesky has no account @nobody.bsky.social: check the handle"):
        fetch(loopback, tmp_path / "f", spec="bsky:nobody.bsky.social")


@pytest.mark.parametrize("negated, refused", [(False, True), (True, False)])
def test_accounts_labelled_no_unauthenticated_are_refused(loopback, tmp_path, negated, refused):
    label = {"ver": 1, "src": ALICE["did"], "uri": f"at://{ALICE['did']}/app.bsky.actor.profile/self",
             "cid": "bafyreiprofile", "val": "!no-unauthenticated", "cts": "2024-02-01T00:00:00.000Z"}
    labels = [{"src": "did:plc:ar7c4by46qjdydhdevvrndac", "uri": ALICE["did"], "val": "bot",
               "cts": "2024-01-01T00:00:00.000Z"}, label]
    if negated:
        labels.append({**label, "neg": True, "cts": "2024-03-01T00:00:00.000Z"})
    fake = FakeAppView(10, labels=labels)
    fake.serve(loopback)
    if refused:
        with pytest.raises(SourceError) as e:
            fetch(loopback, tmp_path / "f")
        assert "\n" not in str(e.value) and "!no-unauthenticated" in str(e.value)
        assert "logged-out" in str(e.value)
        assert not feed_requests(loopback)
    else:
        assert len(fetch(loopback, tmp_path / "f")) == 10


@pytest.mark.parametrize("body, message", [
    ({"feed": {"post": {}}}, "no `feed` list"),
    ([], "no `feed` list"),
    ({"cursor": "x"}, "no `feed` list"),
    ({"feed": ["not an item"]}, "not an object"),
    ({"feed": [{"reason": {}}]}, "no `post` with a `uri`"),
    ({"feed": [{"post": {"uri": 5, "record": {}}}]}, "no `post` with a `uri`"),
    ({"feed": [{"post": {"uri": "at://did:plc:x/app.bsky.feed.post/1", "record": "text"}}]}, "no `record`"),
])
def test_pages_of_the_wrong_shape_are_source_errors(loopback, tmp_path, body, message):
    fake = FakeAppView(10)
    fake.serve(loopback, feed=lambda req, m: Reply(200, body))
    with pytest.raises(SourceError, match=message):
        fetch(loopback, tmp_path / "f")


def test_odd_but_valid_items_still_become_posts():
    item = {"post": {"uri": "at://did:plc:x/app.bsky.feed.post/1", "record": {"createdAt": 7, "embed": "x"},
                     "author": "nobody", "indexedAt": "2025-01-01T00:00:00.000Z"},
            "reason": {"$type": "app.bsky.feed.defs#reasonPin"}}
    post = feed_item_post(item, "alice.bsky.social")
    assert (post.text, post.kind, post.created_at) == ("", "post", "2025-01-01T00:00:00.000Z")
    item = {"post": {"uri": "at://did:plc:x/app.bsky.feed.post/2", "record": {"text": "hi"}, "author": {}},
            "reason": {"$type": "app.bsky.feed.defs#reasonRepost", "uri": 3, "indexedAt": None}}
    post = feed_item_post(item, "alice.bsky.social")
    assert (post.id, post.text, post.created_at) == (
        "at://did:plc:x/app.bsky.feed.post/2#repost-by-alice.bsky.social", "RT @unknown: hi", None)


def test_a_profile_of_the_wrong_shape_is_a_source_error(loopback, tmp_path):
    fake = FakeAppView(10)
    fake.serve(loopback, profile=lambda req, m: Reply(200, ["not", "a", "profile"]))
    with pytest.raises(SourceError, match="profile of the wrong shape"):
        fetch(loopback, tmp_path / "f")


def test_a_server_that_repeats_its_cursor_does_not_loop(loopback, tmp_path):
    fake = FakeAppView(10)
    fake.serve(loopback, feed=lambda req, m: Reply(200, {"feed": fake.items[:5], "cursor": "same"}))
    posts = fetch(loopback, tmp_path / "f")
    assert len(posts) == 5 and len(feed_requests(loopback)) == 2


def test_a_repeat_fetch_asks_only_for_newer_posts(loopback, tmp_path):
    fake = FakeAppView(250)
    fake.serve(loopback)
    first = fetch(loopback, tmp_path / "f")

    loopback.requests.clear()
    again = fetch(loopback, tmp_path / "f")
    assert [p.id for p in again] == [p.id for p in first]
    asked = feed_requests(loopback)
    assert len(asked) == 1 and "cursor" not in asked[0].query  # the newest page, once

    fake.add_newer(3)
    loopback.requests.clear()
    more = fetch(loopback, tmp_path / "f")
    assert len(more) == 253 and [p.id for p in more[3:]] == [p.id for p in first]
    assert len(feed_requests(loopback)) == 1

    fake.add_newer(150)  # more than a page of news
    loopback.requests.clear()
    most = fetch(loopback, tmp_path / "f")
    assert len(most) == 403 and len({p.id for p in most}) == 403
    assert len(feed_requests(loopback)) == 2
    assert [p.id for p in most] == [p.id for p in fetch(loopback, tmp_path / "g")]


def test_newer_stops_at_older_posts_when_the_newest_was_deleted(loopback, tmp_path):
    fake = FakeAppView(250)
    fake.serve(loopback)
    fetch(loopback, tmp_path / "f")
    del fake.items[0]  # the stored newest post is gone from the server
    source = BlueskySource("alice.bsky.social", api_base=loopback.url, say=lambda m: None)
    newest = read_posts_newest(tmp_path / "f")
    loopback.requests.clear()
    pages = list(source.newer(newest, known=set()))
    source.client.close()
    assert len(pages) == 1 and len(feed_requests(loopback)) == 1


def read_posts_newest(folder):
    from huggingtweets.sources.network import stored_posts

    return stored_posts(folder)[0]
