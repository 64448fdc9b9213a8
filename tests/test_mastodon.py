"""`mastodon:user@instance` against a fake Mastodon server on 127.0.0.1 that answers
as the API documentation says (Account, Status and Quote entities, `Link` paging,
errors `{"error": "..."}`), and `html_to_text` on the HTML Mastodon sends."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from huggingtweets.errors import SourceError
from huggingtweets.settings import Settings
from huggingtweets.sources import fetch_posts, parse_source
from huggingtweets.sources.mastodon import MastodonSource, html_to_text, next_link, status_post
from loopback import Reply

LOOKUP = "/api/v1/accounts/lookup"
ACCOUNT_ID = "109302851733542108"
STATUSES = f"/api/v1/accounts/{ACCOUNT_ID}/statuses"
START = datetime(2025, 6, 1, 12, 0, tzinfo=timezone.utc)
BASE_ID = 114000000000000000


def stamp(minutes_ago: int) -> str:
    return (START - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def account(username: str, acct: str, id_: str, **extra) -> dict:
    """The Account entity, as the lookup and each status's `account` give it."""
    domain = acct.split("@")[1] if "@" in acct else "mastodon.example"
    return {"id": id_, "username": username, "acct": acct, "display_name": username.title(), "locked": False,
            "bot": False, "discoverable": True, "indexable": True, "group": False,
            "created_at": "2022-11-07T00:00:00.000Z", "note": "<p>Gardens, rain, code.</p>",
            "url": f"https://{domain}/@{username}", "uri": f"https://{domain}/users/{username}",
            "avatar": f"https://files.{domain}/accounts/avatars/{id_}/original/a.png",
            "avatar_static": f"https://files.{domain}/accounts/avatars/{id_}/original/a.png",
            "header": f"https://{domain}/headers/original/missing.png",
            "header_static": f"https://{domain}/headers/original/missing.png",
            "followers_count": 120, "following_count": 80, "statuses_count": 0,
            "last_status_at": "2025-06-01", "hide_collections": False, "noindex": False, "emojis": [], "roles": [],
            "fields": [{"name": "Home", "value": '<a href="https://alice.example" rel="me nofollow noopener" '
                        'target="_blank"><span class="invisible">https://</span><span class="">alice.example</span>'
                        '<span class="invisible"></span></a>', "verified_at": None}], **extra}


ALICE = account("alice", "alice", ACCOUNT_ID)
BOB = account("bob", "bob@other.example", "109000000000000001")


def status(id_: str, when: str, content: str, author: dict = ALICE, **extra) -> dict:
    """The Status entity."""
    return {"id": id_, "created_at": when, "in_reply_to_id": None, "in_reply_to_account_id": None,
            "sensitive": False, "spoiler_text": "", "visibility": "public", "language": "en",
            "uri": f"https://mastodon.example/users/{author['username']}/statuses/{id_}",
            "url": f"https://mastodon.example/@{author['username']}/{id_}", "replies_count": 0, "reblogs_count": 1,
            "favourites_count": 2, "quotes_count": 0, "edited_at": None, "favourited": False, "reblogged": False,
            "muted": False, "bookmarked": False, "content": content, "filtered": [], "reblog": None,
            "application": {"name": "Web", "website": None}, "account": author, "media_attachments": [],
            "mentions": [], "tags": [], "emojis": [], "quote": None, "card": None, "poll": None,
            "quote_approval": {"automatic": ["public"], "manual": [], "current_user": "automatic"}, **extra}


LINK = ('<a href="https://example.com/gardens/{n}/a-long-path" rel="nofollow noopener" target="_blank">'
        '<span class="invisible">https://</span><span class="ellipsis">example.com/gardens/{n}</span>'
        '<span class="invisible">/a-long-path</span></a>')
MENTION = ('<span class="h-card" translate="no"><a href="https://other.example/@bob" class="u-url mention">'
           '@<span>bob</span></a></span>')
HASHTAG = '<a href="https://mastodon.example/tags/rain" class="mention hashtag" rel="tag">#<span>rain</span></a>'


def make_status(n: int, minutes_ago: int) -> dict:
    """Status number n: every 10th a boost, every 7th a reply, every 9th a quote, every
    5th too short to keep, the rest ordinary posts with a link and a hashtag."""
    id_, when = str(BASE_ID + n * 1000), stamp(minutes_ago)
    if n % 10 == 0:
        original = status(str(BASE_ID + n * 1000 - 7), stamp(minutes_ago + 30),
                          f"<p>bob says something worth boosting &amp; sharing, number {n}</p>", BOB)
        return status(id_, when, "", reblog=original, reblogs_count=0, favourites_count=0)
    if n % 7 == 0:
        return status(id_, when, f"<p>{MENTION} my answer to that is number {n}</p>",
                      in_reply_to_id=str(BASE_ID + n * 1000 - 3), in_reply_to_account_id=BOB["id"],
                      mentions=[{"id": BOB["id"], "username": "bob", "url": BOB["url"], "acct": BOB["acct"]}])
    if n % 9 == 0:
        quoted = status(str(BASE_ID + n * 1000 - 5), stamp(minutes_ago + 60), "<p>a post to quote</p>", BOB)
        return status(id_, when, f'<p class="quote-inline">RE: <a href="{quoted["url"]}">{quoted["url"]}</a></p>'
                                 f"<p>look at what bob wrote here {n}</p>",
                      quote={"state": "accepted", "quoted_status": quoted})
    if n % 5 == 0:
        return status(id_, when, f"<p>ok {n}</p>")
    return status(id_, when, f"<p>thinking about gardens today, post {n} {LINK.format(n=n)} {HASHTAG}</p>"
                             "<p>second paragraph<br>with a line break</p>",
                  tags=[{"name": "rain", "url": "https://mastodon.example/tags/rain"}])


class FakeMastodon:
    """Lookup and an account's statuses, newest first, paged as Mastodon pages them:
    max_id/since_id/min_id, at most 40, and a Link header whose `next` appears only
    when the page came back full."""

    def __init__(self, count: int, links: bool = True, **account_extra):
        self.statuses = [make_status(n, minutes_ago=i) for i, n in enumerate(range(count, 0, -1))]
        self.links = links
        self.account_extra = account_extra
        self.next_n = count + 1

    def add_newer(self, count: int) -> None:
        top = datetime.fromisoformat(self.statuses[0]["created_at"].replace("Z", "+00:00"))
        base = -int((top - START).total_seconds() // 60)
        fresh = [make_status(self.next_n + count - 1 - k, base - (count - k)) for k in range(count)]
        self.next_n += count
        self.statuses = fresh + self.statuses

    def lookup(self, req, m):
        if req.query.get("acct") != "alice":
            return Reply(404, {"error": "Record not found"})
        return Reply(200, {**ALICE, "statuses_count": len(self.statuses), **self.account_extra})

    def page(self, req, m):
        q = req.query
        limit = min(int(q.get("limit", 20)), 40)
        rows = [s for s in self.statuses
                if ("max_id" not in q or int(s["id"]) < int(q["max_id"]))
                and ("since_id" not in q or int(s["id"]) > int(q["since_id"]))
                and ("min_id" not in q or int(s["id"]) > int(q["min_id"]))]
        rows = rows[-limit:] if "min_id" in q else rows[:limit]
        headers = {}
        if self.links and rows:
            url = f"https://mastodon.example/api/v1/accounts/{ACCOUNT_ID}/statuses"
            links = [f'<{url}?limit={limit}&max_id={rows[-1]["id"]}>; rel="next"'] if len(rows) == limit else []
            links.append(f'<{url}?limit={limit}&min_id={rows[0]["id"]}>; rel="prev"')
            headers["Link"] = ", ".join(links)
        return Reply(200, rows, headers=headers)

    def serve(self, loopback, page=None, lookup=None) -> None:
        loopback.route(LOOKUP, lookup or self.lookup)
        loopback.route(r"/api/v1/accounts/(\d+)/statuses", page or self.page)


def status_requests(loopback) -> list:
    return [r for r in loopback.requests if r.path == STATUSES]


def fetch(loopback, folder, spec="mastodon:alice@mastodon.example", say=None):
    return fetch_posts(parse_source(spec), Settings(api_base=loopback.url), folder=folder,
                       say=say or (lambda m: None))


@pytest.mark.parametrize("links, requests", [(True, 3), (False, 4)])
def test_pages_to_the_end_and_marks_boosts_replies_quotes(loopback, tmp_path, links, requests):
    FakeMastodon(95, links=links).serve(loopback)
    posts = fetch(loopback, tmp_path / "f")

    assert len(posts) == 95 and len({p.id for p in posts}) == 95
    asked = status_requests(loopback)
    # 40 + 40 + 15: with Link headers the short page is the end; without them an empty page is.
    assert len(asked) == requests
    assert [r.query.get("max_id") for r in asked][:3] == [None, str(BASE_ID + 56000), str(BASE_ID + 16000)]
    assert all(r.query["limit"] == "40" for r in asked)
    assert [r.query for r in loopback.requests if r.path == LOOKUP] == [{"acct": "alice"}]
    assert [p.id for p in posts] == [str(BASE_ID + n * 1000) for n in range(95, 0, -1)]

    kinds = {k: sum(p.kind == k for p in posts) for k in ("post", "reply", "repost", "quote")}
    assert kinds == {"repost": 9, "reply": 12, "quote": 8, "post": 66}
    by_id = {p.id: p for p in posts}
    boost = by_id[str(BASE_ID + 90000)]
    assert (boost.kind, boost.text) == ("repost", "RT @bob@other.example: bob says something worth boosting & sharing, number 90")
    assert boost.raw["reblog"]["account"]["acct"] == "bob@other.example"
    reply = by_id[str(BASE_ID + 7000)]
    assert (reply.kind, reply.text) == ("reply", "@bob my answer to that is number 7")
    quote = by_id[str(BASE_ID + 9000)]
    assert (quote.kind, quote.text) == ("quote", "look at what bob wrote here 9")
    plain = by_id[str(BASE_ID + 1000)]
    assert plain.text == ("thinking about gardens today, post 1 https://example.com/gardens/1/a-long-path #rain\n\n"
                          "second paragraph\nwith a line break")
    assert (plain.kind, plain.source, plain.handle, plain.created_at) == (
        "post", "mastodon", "alice@mastodon.example", stamp(94))
    assert "content" not in plain.raw and plain.raw["tags"][0]["name"] == "rain"
    assert plain.raw["account"] == {k: ALICE[k] for k in ("id", "acct", "username", "url", "noindex", "discoverable",
                                                          "indexable", "bot", "locked")}


@pytest.mark.parametrize("flags, why", [
    ({"noindex": True}, "asks search engines not to index it"),
    ({"discoverable": False}, "is not discoverable"),
    ({"noindex": True, "discoverable": False, "indexable": False},
     "asks search engines not to index it and is not discoverable and does not allow its posts to be indexed"),
])
def test_an_account_that_opted_out_is_refused_unless_it_is_yours(loopback, tmp_path, flags, why):
    FakeMastodon(5, **flags).serve(loopback)
    with pytest.raises(SourceError) as e:
        fetch(loopback, tmp_path / "f")
    assert str(e.value) == (f"@alice@mastodon.example {why}: its owner opted out, so huggingtweets does not fetch it; "
                            "if the account is yours, pass --own-account")
    assert not [r for r in loopback.requests if r.path.endswith("/statuses")]
    posts = fetch_posts(parse_source("mastodon:alice@mastodon.example"),
                        Settings(api_base=loopback.url, own_account=True), tmp_path / "g", lambda m: None)
    assert len(posts) == 5 and all(p.raw["account"]["noindex"] is flags.get("noindex", False) for p in posts)


FAULTS = {
    "429 Retry-After 0": lambda page: Reply(429, {"error": "Too many requests"}, headers={"Retry-After": "0"}),
    "500": lambda page: Reply(500, {"error": "We're sorry, but something went wrong on our end."}),
    "503 html": lambda page: Reply(503, "<html><body>Service Unavailable</body></html>"),
    "broken JSON": lambda page: Reply(200, '[{"id": "1", "content": "<p>cut'),
    "dropped mid-page": lambda page: Reply(200, page.body, headers=page.headers, drop=True),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_a_fault_on_page_two_is_retried_then_the_fetch_goes_on(loopback, tmp_path, fault):
    fake = FakeMastodon(95)
    faulted = []

    def page(req, m):
        reply = fake.page(req, m)
        if req.query.get("max_id") and not faulted:
            faulted.append(req)
            return FAULTS[fault](reply)
        return reply

    fake.serve(loopback, page=page)
    said = []
    posts = fetch(loopback, tmp_path / "f", say=said.append)
    assert len(posts) == 95 and len({p.id for p in posts}) == 95
    assert len(status_requests(loopback)) == 4  # 3 pages and the one retry
    assert any("trying again" in s for s in said)


@pytest.mark.parametrize("where", ["lookup", "statuses"])
def test_broken_json_every_time_is_one_clear_error(loopback, tmp_path, where):
    fake = FakeMastodon(10)
    broken = lambda req, m: Reply(200, "<!DOCTYPE html><html>maintenance</html>")  # noqa: E731
    fake.serve(loopback, **{"lookup" if where == "lookup" else "page": broken})
    with pytest.raises(SourceError, match="Mastodon server mastodon.example sent a page that is not valid JSON, 5 times"):
        fetch(loopback, tmp_path / "f")


@pytest.mark.parametrize("status, body, message", [
    (404, {"error": "Record not found"}, r"^Mastodon server mastodon.example has no account @alice: check the name$"),
    (401, {"error": "This API requires an authenticated user"}, "asks for a login to read its API \\(401\\)"),
    (403, {"error": "Forbidden"}, "refused access to @alice \\(403\\)"),
    (410, "", "has suspended @alice \\(410\\)"),
    (422, {"error": "Validation failed"}, "answered 422.*Validation failed"),
])
def test_lookup_errors_say_what_happened(loopback, tmp_path, status, body, message):
    FakeMastodon(10).serve(loopback, lookup=lambda req, m: Reply(status, body))
    with pytest.raises(SourceError, match=message):
        fetch(loopback, tmp_path / "f")
    assert len(loopback.requests) == 1


def test_an_unknown_account(loopback, tmp_path):
    FakeMastodon(10).serve(loopback)
    with pytest.raises(SourceError, match="^Mastodon server mastodon.example has no account @nobody: check the name$"):
        fetch(loopback, tmp_path / "f", spec="mastodon:nobody@mastodon.example")


def test_a_suspended_account_says_so(loopback, tmp_path):
    FakeMastodon(10, suspended=True).serve(loopback)
    with pytest.raises(SourceError, match="has suspended @alice"):
        fetch(loopback, tmp_path / "f")
    assert not status_requests(loopback)


def test_401_on_the_statuses(loopback, tmp_path):
    FakeMastodon(10).serve(loopback, page=lambda req, m: Reply(401, {"error": "This API requires an authenticated user"}))
    with pytest.raises(SourceError, match="asks for a login"):
        fetch(loopback, tmp_path / "f")


@pytest.mark.parametrize("where, body, message", [
    ("page", {"error": "Record not found"}, r"not a list of statuses\) \(Record not found\)"),
    ("page", {"statuses": []}, "not a list of statuses"),
    ("page", ["not a status"], "status of the wrong shape \\(not an object\\)"),
    ("page", [{"content": "<p>no id</p>"}], "status of the wrong shape \\(no `id`\\)"),
    ("page", [{"id": True, "content": ""}], "no `id`"),
    ("lookup", {"username": "alice"}, "account of the wrong shape"),
    ("lookup", ["alice"], "account of the wrong shape"),
])
def test_answers_of_the_wrong_shape_are_source_errors(loopback, tmp_path, where, body, message):
    FakeMastodon(10).serve(loopback, **{where: lambda req, m: Reply(200, body)})
    with pytest.raises(SourceError, match=message):
        fetch(loopback, tmp_path / "f")


def test_odd_but_valid_statuses_still_become_posts():
    deleted = status_post({"id": 5, "created_at": None, "content": "", "text": "the source text"}, "a@b")
    assert (deleted.id, deleted.text, deleted.kind, deleted.created_at) == ("5", "the source text", "post", None)
    boost = status_post({"id": "6", "content": "", "reblog": {"account": "?", "content": 3}}, "a@b")
    assert (boost.kind, boost.text) == ("repost", "RT @unknown: ")


def test_a_repeat_fetch_asks_only_for_newer_posts(loopback, tmp_path):
    fake = FakeMastodon(95)
    fake.serve(loopback)
    first = fetch(loopback, tmp_path / "f")

    loopback.requests.clear()
    assert [p.id for p in fetch(loopback, tmp_path / "f")] == [p.id for p in first]
    asked = status_requests(loopback)
    assert [r.query for r in asked] == [{"limit": "40", "since_id": first[0].id}]

    fake.add_newer(3)
    loopback.requests.clear()
    more = fetch(loopback, tmp_path / "f")
    assert len(more) == 98 and [p.id for p in more[3:]] == [p.id for p in first]
    assert [r.query.get("since_id") for r in status_requests(loopback)] == [first[0].id]

    fake.add_newer(50)  # more than a page of news: paged back with max_id, above since_id
    loopback.requests.clear()
    most = fetch(loopback, tmp_path / "f")
    assert len(most) == 148 and len({p.id for p in most}) == 148
    asked = status_requests(loopback)
    assert [r.query.get("since_id") for r in asked] == [more[0].id] * 2
    assert asked[1].query["max_id"] == fake.statuses[39]["id"]
    assert [p.id for p in most] == [p.id for p in fetch(loopback, tmp_path / "g")]


def test_a_target_that_names_no_instance_is_refused():
    # Its label and its server: tests/test_network_contract.py
    with pytest.raises(SourceError, match="is not a Mastodon account"):
        MastodonSource("alice")


def test_link_headers():
    url = "https://m.example/api/v1/accounts/1/statuses"
    assert next_link(f'<{url}?max_id=7>; rel="next", <{url}?min_id=9>; rel="prev"') == (True, "7")
    assert next_link(f'<{url}?min_id=9>; rel="prev"') == (False, None)
    assert next_link(f"<{url}?limit=40&max_id=8>; rel=next") == (True, "8")
    assert next_link(f'<{url}?page=2>; rel="next"') == (True, None)
    assert next_link("garbage, <>, ;;") == (False, None)


@pytest.mark.parametrize("html, text", [
    ("<p>Hello world</p>", "Hello world"),
    ("<p>one</p><p>two</p>", "one\n\ntwo"),
    ("line one<br>line two<br/>line three<br />four", "line one\nline two\nline three\nfour"),
    (f"<p>hi {MENTION}!</p>", "hi @bob!"),
    ('<p><span class="h-card"><a href="https://x.example/@carol" class="u-url mention">@<span>carol@x.example</span>'
     '</a></span></p>', "@carol@x.example"),
    (f"<p>wet {HASHTAG} day</p>", "wet #rain day"),
    (LINK.format(n=3), "https://example.com/gardens/3/a-long-path"),
    ('<a href="https://short.example/"><span class="invisible">https://</span><span class="">short.example/</span>'
     '<span class="invisible"></span></a>', "https://short.example/"),
    ('<a href="https://plain.example/x">https://plain.example/x</a>', "https://plain.example/x"),
    ('<a href="https://my.blog/">my blog</a>', "my blog"),
    ("<p>&quot;quoted&quot; &amp; &lt;tags&gt; &#39;a&#x27; &hearts; caf&eacute;</p>", "\"quoted\" & <tags> 'a' ♥ café"),
    ('<p class="quote-inline">RE: <a href="https://m.example/@b/1">https://m.example/@b/1</a></p><p>my take</p>',
     "my take"),
    ('<p>cw <span class="invisible">hidden</span>shown</p>', "cw shown"),
    ("<p>unclosed <a href=\"https://x.example/p\"><span class=invisible>https://</span>x.example/p", "unclosed https://x.example/p"),
    ("<p>unclosed <b>bold", "unclosed bold"),
    ("</span></a></p>stray closers", "stray closers"),
    ("<p>a <a href='javascript:alert(1)'>link</a> b</p>", "a link b"),
    ("<script>alert(1)</script><style>p{}</style>visible", "visible"),
    ("<ul><li>one</li><li>two</li></ul><blockquote>quoted</blockquote>", "one\ntwo\nquoted"),
    ('<p><img alt=":blobcat:" src="x.png"> custom emoji</p>', ":blobcat: custom emoji"),
    ("plain text, no tags", "plain text, no tags"),
    ("", ""),
    ("<", "<"),
    ("a < b > c", "a < b > c"),
    ("<!-- comment -->text<!DOCTYPE html><?php x ?>", "text"),
    ("<![CDATA[x]]>after", "after"),
    ("&#0;&#xD800;&bogus;&amp", "\ufffd\ufffd&bogus;&"),
])
def test_html_to_text(html, text):
    assert html_to_text(html) == text


def test_html_to_text_never_raises():
    pieces = ["<", ">", "</", "/>", "<a", "<p>", "</p>", "<br>", "<span class=\"invisible\">", "</span>", "&",
              "&amp;", "&#", "&#x", ";", "\"", "'", "=", "href=", "<a href=\"https://x.example\">", "</a>", "<!--",
              "-->", "<![", "]]>", "<!", "<?", "\x00", "\ud800", "é", "😀", " ", "\n", "text", "<script>", "<style",
              "<a class=\"mention\">", "#", "@", "<img alt=", "<![if !supportLists]>", "<!DOCTYPE", "<p class='quote-inline'>"]
    rng = random.Random(1234)
    for _ in range(3000):
        html = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 25)))
        assert isinstance(html_to_text(html), str)
    assert html_to_text(None) == "" and html_to_text(b"<p>bytes</p>") == ""  # type: ignore[arg-type]


def test_an_account_id_from_the_server_stays_one_path_segment(loopback, tmp_path):
    FakeMastodon(5).serve(loopback, lookup=lambda req, m: Reply(200, {**ALICE, "id": "../../admin?x=1"}))
    with pytest.raises(SourceError, match="has no account @alice"):
        fetch(loopback, tmp_path / "f")
    assert loopback.requests[-1].path == "/api/v1/accounts/..%2F..%2Fadmin%3Fx%3D1/statuses"
