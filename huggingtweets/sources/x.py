"""`@handle` or `x:handle`: the X API v2, with a bearer token (X_BEARER_TOKEN).

User lookup, then the user's posts newest first, 100 a page, following
`pagination_token` up to the 3,200 newest the API reaches. Reposts, replies and
quotes are marked from `referenced_tweets`; a repost's text comes back cut at 140
characters, so its full text is taken from the referenced post in `includes`, and
a long post's from `note_tweet`. X bills reads per post (since February 2026), so
the cost is said before anything is spent.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Iterator
from urllib.parse import quote

from ..errors import SourceError
from ..posts import Post, is_id
from .http import ApiClient, one_line, with_base
from .network import follow_cursor

API = "https://api.x.com"
PAGE = 100
API_CAP = 3200  # the newest posts the timeline endpoint reaches
POST_PRICE = 0.005  # USD per post read, pay-per-use, 2026; override with --x-post-price
LOOKUP_PRICE = 0.010  # USD per user lookup
TWEET_FIELDS = "created_at,referenced_tweets,note_tweet,in_reply_to_user_id,lang"


class XSource:
    def __init__(self, handle: str, token: str | None = None, api_base: str | None = None,
                 max_posts: int | None = None, post_price: float = POST_PRICE, lookup_price: float = LOOKUP_PRICE,
                 say: Callable[[str], None] = print, **client_options: Any):
        token = token or os.environ.get("X_BEARER_TOKEN")
        if not token:
            raise SourceError("the X API needs a bearer token: set X_BEARER_TOKEN (developer.x.com), "
                              "or use your own archive with archive:PATH")
        self.handle = handle
        self.label = f"X @{handle}"
        self.say = say
        self.reach = min(max_posts or API_CAP, API_CAP)
        self.post_price, self.lookup_price = post_price, lookup_price
        self.client = ApiClient("the X API", with_base(API, api_base), {"Authorization": f"Bearer {token}"},
                                secrets=(token,), say=say, **client_options)
        self._user: dict[str, Any] | None = None

    def cost_line(self) -> str:
        most = self.reach * self.post_price + self.lookup_price
        return (f"X API, pay per use: fetching up to {self.reach:,} posts of @{self.handle} costs at most ${most:.2f} "
                f"(${self.post_price:g} a post read, ${self.lookup_price:g} the user lookup); --max-posts caps it")

    def user(self) -> dict[str, Any]:
        if self._user is None:
            r = self.client.get(f"/2/users/by/username/{self.handle}",
                                {"user.fields": "name,username,public_metrics,profile_image_url,protected"},
                                errors=self._errors())
            data = r.data.get("data") if isinstance(r.data, dict) else None
            if not isinstance(data, dict) or not is_id(data.get("id")):
                detail = _problem(r.data) or "no such user"
                raise SourceError(f"X has no account @{self.handle} ({detail}): check the handle")
            self._user = data
            count = _tweet_count(data)
            if count is not None:
                self.say(f"@{self.handle} has {count:,} posts; the X API reaches the newest {min(count, self.reach):,}")
        return self._user

    def display_name(self) -> str | None:
        return self._user.get("name") if self._user else None

    def _errors(self) -> dict[int, str]:
        return {401: "the X API refused the bearer token (401): check X_BEARER_TOKEN",
                403: f"the X API refused access to @{self.handle} (403): the account may be protected or suspended, "
                     "or your plan lacks this endpoint",
                404: f"X has no account @{self.handle} (404): check the handle"}

    def _page(self, params: dict[str, Any]) -> tuple[list[Post], str | None]:
        # The id comes from the server: quoted, so it stays one path segment whatever it holds.
        r = self.client.get(f"/2/users/{quote(str(self.user()['id']), safe='')}/tweets",
                            {"max_results": PAGE, "tweet.fields": TWEET_FIELDS,
                             "expansions": "referenced_tweets.id", **params}, errors=self._errors())
        body = r.data if isinstance(r.data, dict) else {}
        tweets = body.get("data") or []
        if not isinstance(tweets, list):
            raise SourceError("the X API sent a page of the wrong shape (no list of posts): try again later")
        includes = body.get("includes") if isinstance(body.get("includes"), dict) else {}
        originals = includes.get("tweets") if isinstance(includes.get("tweets"), list) else []
        included = {str(t["id"]): t for t in originals if isinstance(t, dict) and is_id(t.get("id"))}
        posts = [_post(t, included, self.handle) for t in tweets if isinstance(t, dict) and is_id(t.get("id"))]
        meta = body.get("meta") if isinstance(body.get("meta"), dict) else {}
        next_token = meta.get("next_token")
        return posts, next_token if isinstance(next_token, str) and next_token else None

    def backfill(self, cursor: str | None) -> Iterator[tuple[list[Post], str | None]]:
        def page(token: str | None) -> tuple[list[Post], str | None]:
            posts, next_token = self._page({"pagination_token": token})
            if not posts and not next_token and (_tweet_count(self.user()) or 0) > API_CAP:
                # Past the cap the API answers success with no data.
                self.say(f"The X API stops at the newest {API_CAP:,} posts; the older posts of @{self.handle} "
                         "are only in the account's archive (archive:PATH)")
            return posts, next_token

        yield from follow_cursor(page, cursor, lambda: self.say(
            f"the X API sent the same page twice for @{self.handle}; stopping here"))

    def newer(self, newest: Post, known: set[str]) -> Iterator[list[Post]]:
        cursor = None
        while True:
            posts, next_token = self._page({"since_id": newest.id, "pagination_token": cursor})
            yield posts
            if not next_token or next_token == cursor:
                return
            cursor = next_token


def _tweet_count(user: dict[str, Any]) -> int | None:
    metrics = user.get("public_metrics")
    count = metrics.get("tweet_count") if isinstance(metrics, dict) else None
    return count if isinstance(count, int) and not isinstance(count, bool) else None


def _text(value: Any) -> str | None:
    """The `text` of a post or note object, when it is one."""
    text = value.get("text") if isinstance(value, dict) else None
    return text if isinstance(text, str) else None


def _post(t: dict[str, Any], included: dict[str, dict], handle: str) -> Post:
    if not isinstance(t, dict) or not is_id(t.get("id")):
        raise SourceError("the X API sent a post of the wrong shape (no `id`): try again later")
    references = t.get("referenced_tweets") if isinstance(t.get("referenced_tweets"), list) else []
    refs = {r["type"]: r.get("id") for r in references if isinstance(r, dict) and isinstance(r.get("type"), str)}
    text = _text(t) or ""
    note = _text(t.get("note_tweet"))
    if note is not None:
        text = note  # a long post's whole text
    kind = "post"
    if "retweeted" in refs:
        kind = "repost"
        ref = refs["retweeted"]
        original = included.get(str(ref)) if is_id(ref) else None
        full = (_text(original.get("note_tweet")) or _text(original)) if isinstance(original, dict) else None
        if isinstance(full, str) and text.startswith("RT @") and ": " in text:
            text = text.split(": ", 1)[0] + ": " + full
    elif "quoted" in refs:
        kind = "quote"
    elif "replied_to" in refs:
        kind = "reply"
    raw = {k: v for k, v in t.items() if k not in ("id", "text", "created_at", "note_tweet")}
    created = t.get("created_at")
    return Post(id=str(t["id"]), text=text, handle=handle, source="x", kind=kind,
                created_at=created if isinstance(created, str) else None, raw=raw)


def _problem(body: Any) -> str:
    """The first of X's problem details: {"errors": [{"title", "detail"}]} or a problem JSON."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            return one_line(errors[0].get("detail") or errors[0].get("title"))
        return one_line(body.get("detail") or body.get("title"))
    return ""
