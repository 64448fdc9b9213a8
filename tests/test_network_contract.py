"""What every network source (X, Bluesky, Mastodon) promises the fetch driver
(sources/network.py), checked on each against its fake server on 127.0.0.1
(tests/test_x.py, test_bluesky.py, test_mastodon.py): an interrupted fetch resumes
where it stopped, to the same posts, and a fetch through the CLI gives the stats
that a file of the same posts gives. What only one platform does is tested in its
own file."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

from huggingtweets import filter_posts, read_posts, write_posts
from huggingtweets.errors import SourceError
from huggingtweets.sources import fetch_posts, parse_source
from huggingtweets.sources.bluesky import BlueskySource
from huggingtweets.sources.mastodon import MastodonSource
from huggingtweets.sources.x import XSource
from loopback import Reply
import test_bluesky as bsky
import test_mastodon as masto
import test_x as x

Handler = Callable[[Any, Any], Reply]


@dataclass
class Network:
    name: str
    spec: str
    folder: str  # the account's folder under the work folder
    source: type  # the source's class: a Ctrl-C is raised from its `_page`
    count: int  # the posts on the fake server
    serve: Callable[[Any, Callable[[Handler], Handler]], None]  # the fake, its page handler wrapped
    cursor: str  # the query parameter that asks for a page after the first
    error: Reply  # a server error, as the platform words it
    fetch: Callable[..., list]  # (loopback, folder): the test file's fetch
    pages: Callable[[Any], list]  # the page requests the loopback server saw
    check_resumed: Callable[[list], None]  # what a resumed fetch asked for
    stats: tuple[int, int, int, int]  # downloaded, retweets, short, kept


def serve_x(loopback, wrap):
    fake = x.FakeX(loopback, n=250)
    loopback.routes.clear()  # FakeX routes itself: routed again with the page handler wrapped
    loopback.route(r"/2/users/by/username/(\w+)", fake.lookup)
    loopback.route(r"/2/users/(\d+)/tweets", wrap(fake.timeline))


def serve_bluesky(loopback, wrap):
    fake = bsky.FakeAppView(250)
    fake.serve(loopback, feed=wrap(fake.feed))


def serve_mastodon(loopback, wrap):
    fake = masto.FakeMastodon(95)
    fake.serve(loopback, page=wrap(fake.page))


def x_resumed(asked):
    # Anything newer than the newest stored (since_id), then on from page 2: no start over.
    assert asked[0].query.get("since_id") == "1000250" and "pagination_token" not in asked[0].query
    assert [r.query.get("pagination_token") for r in asked[1:]] == ["tok-100", "tok-200"]


def bluesky_resumed(asked):
    # The newest page once (anything new since?), then on from page 2: no start over.
    assert [r.query.get("cursor") is None for r in asked] == [True, False, False, False]


def mastodon_resumed(asked):
    # Anything newer than the newest stored (since_id), then on from page 2: no start over.
    assert asked[0].query.get("since_id") == str(masto.BASE_ID + 95000) and "max_id" not in asked[0].query
    assert [r.query.get("max_id") for r in asked[1:]] == [str(masto.BASE_ID + 56000), str(masto.BASE_ID + 16000)]


NETWORKS = [
    Network("x", "@jack", "jack", XSource, 250, serve_x, "pagination_token", Reply(500, {"title": "down"}),
            x.fetch, lambda loopback: [r for r in loopback.requests if r.path.endswith("/tweets")], x_resumed,
            (250, 25, 0, 225)),
    Network("bluesky", "bsky:alice.bsky.social", "alice.bsky.social", BlueskySource, 250, serve_bluesky, "cursor",
            Reply(500, {"error": "InternalServerError", "message": "Internal Server Error"}),
            bsky.fetch, bsky.feed_requests, bluesky_resumed, (250, 25, 19, 206)),  # "ok {n}" for n%5 that are nothing else
    Network("mastodon", "mastodon:alice@mastodon.example", "alice_mastodon.example", MastodonSource, 95,
            serve_mastodon, "max_id", Reply(500, {"error": "Internal server error"}),
            masto.fetch, masto.status_requests, mastodon_resumed, (95, 9, 8, 78)),
]
EACH = pytest.mark.parametrize("net", NETWORKS, ids=[n.name for n in NETWORKS])


@EACH
@pytest.mark.parametrize("how", ["500 forever on page 2", "Ctrl-C after page 1"])
def test_an_interrupted_fetch_resumes_to_the_same_posts(loopback, tmp_path, monkeypatch, net, how):
    broken = {"on": True}

    def wrap(real: Handler) -> Handler:
        def page(req, m):
            if broken["on"] and how.startswith("500") and req.query.get(net.cursor):
                return net.error
            return real(req, m)
        return page

    net.serve(loopback, wrap)
    if how.startswith("Ctrl-C"):
        calls = {"n": 0}
        real = net.source._page

        def interrupted(self, *args):
            calls["n"] += 1
            if calls["n"] == 2 and broken["on"]:
                raise KeyboardInterrupt
            return real(self, *args)

        monkeypatch.setattr(net.source, "_page", interrupted)
    with pytest.raises(SourceError if how.startswith("500") else KeyboardInterrupt):
        net.fetch(loopback, tmp_path / "f")
    assert len(list((tmp_path / "f").glob("page-*.jsonl"))) == 1

    broken["on"] = False
    loopback.requests.clear()
    resumed = net.fetch(loopback, tmp_path / "f")
    net.check_resumed(net.pages(loopback))
    whole = net.fetch(loopback, tmp_path / "g")
    assert [p.id for p in resumed] == [p.id for p in whole]
    assert [p.to_dict() for p in resumed] == [p.to_dict() for p in whole]
    assert len({p.id for p in resumed}) == net.count


@EACH
def test_the_cli_fetches_and_the_stats_match_a_file_of_the_same_posts(loopback, tmp_path, monkeypatch, capsys, net):
    from huggingtweets.cli import main

    net.serve(loopback, lambda real: real)
    monkeypatch.setenv("X_BEARER_TOKEN", x.TOKEN)  # read by X only
    assert main(["fetch", net.spec, "--api-base", loopback.url]) == 0
    out = capsys.readouterr()
    fetched = read_posts(tmp_path / "work" / net.folder / "posts.jsonl")
    assert len(fetched) == net.count

    copy = tmp_path / "copy.jsonl"
    write_posts(copy, fetched)
    from_file = fetch_posts(parse_source(f"file:{copy}"))
    assert [(p.id, p.text, p.kind) for p in from_file] == [(p.id, p.text, p.kind) for p in fetched]
    stats = filter_posts(fetched).stats
    assert stats == filter_posts(from_file).stats
    assert (stats.tweets_downloaded, stats.retweets, stats.short_tweets, stats.tweets_kept) == net.stats
    # A token never reaches a file or the terminal.
    for path in (tmp_path / "work").rglob("*"):
        if path.is_file():
            assert x.TOKEN not in path.read_text(errors="ignore")
    assert x.TOKEN not in out.out + out.err


@pytest.mark.parametrize("source, target, label, default_target, default_base", [
    (XSource, "jack", "X @jack", "jack", "https://api.x.com"),
    (BlueskySource, "alice.bsky.social", "Bluesky @alice.bsky.social", "a.bsky.social", "https://public.api.bsky.app"),
    (MastodonSource, "alice@mastodon.example", "Mastodon @alice@mastodon.example",
     "alice@social.example:8443", "https://social.example:8443"),  # the account's instance, port and all
], ids=[n.name for n in NETWORKS])
def test_the_source_labels_itself_and_asks_its_own_server(loopback, monkeypatch, source, target, label,
                                                          default_target, default_base):
    monkeypatch.setenv("X_BEARER_TOKEN", x.TOKEN)  # read by X only
    opened = source(target, api_base=loopback.url)
    assert opened.label == label
    assert str(opened.client.client.base_url).startswith(loopback.url)
    opened.client.close()
    default = source(default_target)  # no --api-base
    assert str(default.client.client.base_url).startswith(default_base)
    default.client.close()
