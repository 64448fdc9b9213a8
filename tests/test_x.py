"""The X API v2 source against a real HTTP server on 127.0.0.1 that speaks the
documented endpoints: user lookup, the user's posts with pagination_token and
since_id, includes for referenced posts, the 3,200 cap, problem JSON errors."""

import json
import time

import pytest

from huggingtweets.cli import main
from huggingtweets.errors import SourceError
from huggingtweets.settings import Settings
from huggingtweets.sources import fetch_posts, parse_source
from loopback import Faults, Reply

TOKEN = "AAAA-test-bearer-token-5e3c1f"
USER_ID = "2244994945"
CAP = 3200


class FakeX:
    """Posts newest first; ids grow with time like X's."""

    def __init__(self, server, n=250, tweet_count=None, name="jack"):
        self.server, self.name = server, name
        self.tweets = [self.make(i) for i in range(n, 0, -1)]
        self.tweet_count = tweet_count if tweet_count is not None else n
        server.route(r"/2/users/by/username/(\w+)", self.lookup)
        server.route(r"/2/users/(\d+)/tweets", self.timeline)

    def make(self, i):
        base = {"id": str(1_000_000 + i), "created_at": f"2024-01-01T00:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                "text": f"post {i} says something about the weather today", "lang": "en"}
        if i % 10 == 0:  # a repost, cut at 140 characters, the full text in includes
            full = f"the original long post {i} " + "with many words " * 12
            base["text"] = ("RT @other: " + full)[:139] + "…"
            base["referenced_tweets"] = [{"type": "retweeted", "id": str(9_000_000 + i)}]
            base["_original"] = {"id": str(9_000_000 + i), "text": full}
        elif i % 10 == 1:
            base["referenced_tweets"] = [{"type": "replied_to", "id": "1"}]
            base["in_reply_to_user_id"] = "12"
        elif i % 10 == 2:
            base["referenced_tweets"] = [{"type": "quoted", "id": "2"}]
        elif i % 10 == 3:
            base["note_tweet"] = {"text": f"a long post {i} " + "that goes on " * 30}
            base["text"] = base["note_tweet"]["text"][:270] + "…"
        return base

    def authorized(self, req):
        return req.headers.get("authorization") == f"Bearer {TOKEN}"

    def unauthorized(self):
        return Reply(401, {"title": "Unauthorized", "type": "about:blank", "status": 401, "detail": "Unauthorized"})

    def lookup(self, req, m):
        if not self.authorized(req):
            return self.unauthorized()
        if m.group(1) != "jack":
            return Reply(200, {"errors": [{"value": m.group(1), "detail": f"Could not find user with username: [{m.group(1)}].",
                                           "title": "Not Found Error", "resource_type": "user", "parameter": "username",
                                           "type": "https://api.twitter.com/2/problems/resource-not-found"}]})
        return Reply(200, {"data": {"id": USER_ID, "name": self.name, "username": "jack",
                                    "public_metrics": {"tweet_count": self.tweet_count, "followers_count": 5}}})

    def timeline(self, req, m):
        if not self.authorized(req):
            return self.unauthorized()
        assert m.group(1) == USER_ID and req.query["max_results"] == "100"
        reachable = self.tweets[:CAP]
        if "since_id" in req.query:
            reachable = [t for t in reachable if int(t["id"]) > int(req.query["since_id"])]
        start = int(req.query.get("pagination_token", "tok-0").split("-")[1])
        page = reachable[start:start + 100]
        if not page:
            return Reply(200, {"meta": {"result_count": 0}})
        meta = {"result_count": len(page), "newest_id": page[0]["id"], "oldest_id": page[-1]["id"]}
        if start + 100 < len(self.tweets) and ("since_id" not in req.query or start + 100 < len(reachable)):
            meta["next_token"] = f"tok-{start + 100}"  # X hands out a token at the cap too; the page after is empty
        includes = [t["_original"] for t in page if "_original" in t]
        data = [{k: v for k, v in t.items() if k != "_original"} for t in page]
        body = {"data": data, "meta": meta}
        if includes:
            body["includes"] = {"tweets": includes}
        return Reply(200, body)


def x_settings(server, **kw):
    return Settings(sources=["@jack"], api_base=server.url, x_bearer_token=TOKEN, **kw)


def fetch(server, folder, say=None, **kw):
    return fetch_posts(parse_source("@jack"), x_settings(server, **kw), folder, say or (lambda m: None))


def test_fetches_every_post_and_marks_kinds(loopback, tmp_path):
    FakeX(loopback, n=250)
    said = []
    posts = fetch(loopback, tmp_path / "f", said.append)
    assert len(posts) == 250 and len({p.id for p in posts}) == 250
    assert [p.id for p in posts] == [str(1_000_000 + i) for i in range(250, 0, -1)]
    kinds = {p.id: p.kind for p in posts}
    assert kinds["1000250"] == "repost" and kinds["1000241"] == "reply" and kinds["1000242"] == "quote"
    assert kinds["1000244"] == "post"
    repost = next(p for p in posts if p.id == "1000250")
    assert repost.text == "RT @other: the original long post 250 " + "with many words " * 12  # not cut at 140
    long_post = next(p for p in posts if p.id == "1000243")
    assert long_post.text == "a long post 243 " + "that goes on " * 30
    assert all(p.source == "x" and p.handle == "jack" and p.created_at.startswith("2024-01-01T") for p in posts)
    pages = [r for r in loopback.requests if r.path.endswith("/tweets")]
    assert [r.query.get("pagination_token") for r in pages] == [None, "tok-100", "tok-200"]
    assert said[0].startswith("X API, pay per use") and said[1] == "@jack has 250 posts; the X API reaches the newest 250"


def test_the_cost_is_said_before_anything_is_spent_and_max_posts_caps_it(loopback, tmp_path, capsys):
    FakeX(loopback, n=250)
    assert main(["fetch", "@jack", "--api-base", loopback.url, "--max-posts", "150"],) == 1  # no token yet
    assert "X_BEARER_TOKEN" in capsys.readouterr().err and not loopback.requests

    said = []
    from huggingtweets.pipeline import fetch as fetch_step

    posts = fetch_step(x_settings(loopback, max_posts=150), say=said.append)
    assert said[0] == ("X API, pay per use: fetching up to 150 posts of @jack costs at most $0.76 ($0.005 a post "
                       "read, $0.01 the user lookup); --max-posts caps it")
    assert len(posts) == 150
    assert len([r for r in loopback.requests if r.path.endswith("/tweets")]) == 2

    said.clear()
    fetch_posts(parse_source("@jack"), x_settings(loopback, x_post_price=0.01), tmp_path / "g", said.append)
    assert said[0].startswith("X API, pay per use: fetching up to 3,200 posts of @jack costs at most $32.01")


def test_past_the_cap_it_stops_and_points_to_the_archive(loopback, tmp_path):
    FakeX(loopback, n=3300, tweet_count=5000)
    said = []
    posts = fetch(loopback, tmp_path / "f", said.append)
    assert len(posts) == CAP
    assert said[1] == "@jack has 5,000 posts; the X API reaches the newest 3,200"
    assert ("The X API stops at the newest 3,200 posts; the older posts of @jack are only in the account's archive "
            "(archive:PATH)") in said


def test_faults_are_retried_politely(loopback, tmp_path):
    fake = FakeX(loopback, n=150)
    loopback.routes.clear()
    reset = str(int(time.time()))
    loopback.route(r"/2/users/by/username/(\w+)", Faults(
        fake.lookup, Reply(500, {"title": "oops"}), Reply(200, {"data": {"id": USER_ID}}, drop=True)))
    loopback.route(r"/2/users/(\d+)/tweets", Faults(
        fake.timeline,
        Reply(429, {"title": "Too Many Requests"}, {"x-rate-limit-remaining": "0", "x-rate-limit-reset": reset}),
        Reply(429, {"title": "Too Many Requests"}, {"Retry-After": "0"}),
        Reply(503, "<html>upstream down</html>"),
        Reply(200, '{"data": [{"id": "1", "te'),
    ))
    said = []
    posts = fetch(loopback, tmp_path / "f", said.append)
    assert len(posts) == 150
    retries = [s for s in said if "trying again" in s]
    assert len(retries) == 6
    assert retries[0].startswith("the X API answered 500")
    assert any("connection to the X API failed" in s for s in retries)
    assert any("not valid JSON" in s for s in retries)


@pytest.mark.parametrize("reply, message", [
    (Reply(401, {"title": "Unauthorized", "status": 401, "detail": "Unauthorized"}),
     "the X API refused the bearer token (401): check X_BEARER_TOKEN"),
    (Reply(403, {"title": "Forbidden", "status": 403}), "the X API refused access to @jack (403)"),
    (Reply(404, {"title": "Not Found", "status": 404}), "X has no account @jack (404): check the handle"),
    (Reply(500, {"title": "oops"}), "the X API answered 500, 5 times: try again later"),
    (Reply(200, "not json at all"), "the X API sent a page that is not valid JSON, 5 times"),
])
def test_errors_are_one_clear_line_without_the_token(loopback, tmp_path, reply, message):
    loopback.route(r"/2/users/by/username/(\w+)", lambda req, m: reply)
    with pytest.raises(SourceError, match="^" + message.replace("(", r"\(").replace(")", r"\)").replace("$", r"\$")) as e:
        fetch(loopback, tmp_path / "f")
    assert TOKEN not in str(e.value)


def test_unknown_user_and_missing_token(loopback, tmp_path, monkeypatch):
    FakeX(loopback)
    with pytest.raises(SourceError, match=r"X has no account @nobody \(Could not find user with username: "):
        fetch_posts(parse_source("@nobody"), x_settings(loopback), tmp_path / "f", lambda m: None)
    monkeypatch.delenv("X_BEARER_TOKEN", raising=False)
    with pytest.raises(SourceError, match="needs a bearer token: set X_BEARER_TOKEN"):
        fetch_posts(parse_source("@jack"), Settings(api_base=loopback.url), tmp_path / "g", lambda m: None)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    assert len(fetch_posts(parse_source("@jack"), Settings(api_base=loopback.url), tmp_path / "h", lambda m: None)) == 250


def test_an_interrupted_fetch_resumes_to_the_same_posts(loopback, tmp_path):
    fake = FakeX(loopback, n=250)
    whole = fetch(loopback, tmp_path / "whole")

    loopback.routes.clear()
    calls = []

    def dies_on_page_3(req, m):
        calls.append(req.query.get("pagination_token"))
        if req.query.get("pagination_token") == "tok-200" and len(calls) < 10:
            return Reply(500, {"title": "down"})
        return fake.timeline(req, m)

    loopback.route(r"/2/users/by/username/(\w+)", fake.lookup)
    loopback.route(r"/2/users/(\d+)/tweets", dies_on_page_3)
    with pytest.raises(SourceError):
        fetch(loopback, tmp_path / "resumed")
    stored = sorted(p.name for p in (tmp_path / "resumed").iterdir())
    assert stored == ["page-00001.jsonl", "page-00002.jsonl", "state.json"]
    again = fetch(loopback, tmp_path / "resumed")
    assert [p.to_dict() for p in again] == [p.to_dict() for p in whole]
    assert calls[-1] == "tok-200" and "tok-100" not in calls[6:]  # it did not start over


def test_a_repeat_fetch_asks_only_for_newer_posts(loopback, tmp_path):
    fake = FakeX(loopback, n=120)
    fetch(loopback, tmp_path / "f")
    fake.tweets = [fake.make(i) for i in range(125, 120, -1)] + fake.tweets  # five new posts
    loopback.requests.clear()
    posts = fetch(loopback, tmp_path / "f")
    assert len(posts) == 125 and posts[0].id == "1000125"
    timeline = [r for r in loopback.requests if r.path.endswith("/tweets")]
    assert [r.query.get("since_id") for r in timeline] == ["1000120"]

