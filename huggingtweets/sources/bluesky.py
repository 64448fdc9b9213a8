"""`bsky:handle`: Bluesky's public AppView, no key.

The author feed (`app.bsky.feed.getAuthorFeed`, `filter=posts_with_replies`, 100
a page, following `cursor`) holds the account's posts, replies and reposts,
newest first. Reposts are marked from `reason` (`app.bsky.feed.defs#reasonRepost`)
and their text becomes "RT @author: text", so the retweet rule counts them as the
original counted retweets; replies from `record.reply`, quotes from a record embed.
Links that Bluesky shortens in the text ("example.com/long/pa...") get their full
URL back from the link facets, so the cleaning rule that drops URLs sees them.

The fast path: the whole public repository in one request. The profile gives the
DID; the DID document (plc.directory, or did:web's own host) names the account's PDS;
`com.atproto.sync.getRepo?did=...` there returns the repository as a CAR, read by car.py
(records, not the AppView's views: a repost's text is "RT @did: "). If any of that fails,
the feed is paged as before. Continuing an interrupted fetch downloads it again; the
posts already stored are skipped.

An account labelled `!no-unauthenticated` asked not to be shown to logged-out
clients, which is what this is: it is refused before any post is read, by either path.
XRPC errors are `{"error": name, "message": text}`.
"""

from __future__ import annotations

import tempfile
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import quote, urlsplit

import httpx

from ..errors import SourceError
from ..posts import Post, json_loads
from .http import ApiClient, one_line, with_base
from .network import follow_cursor

API = "https://public.api.bsky.app"
PAGE = 100  # the lexicon's maximum
FEED = "/xrpc/app.bsky.feed.getAuthorFeed"
PROFILE = "/xrpc/app.bsky.actor.getProfile"
REPOST = "app.bsky.feed.defs#reasonRepost"
NO_UNAUTHENTICATED = "!no-unauthenticated"
QUOTE_EMBEDS = ("app.bsky.embed.record", "app.bsky.embed.recordWithMedia")  # with or without "#view"
LINK_FACET = "app.bsky.richtext.facet#link"
PLC = "https://plc.directory"
GET_REPO = "/xrpc/com.atproto.sync.getRepo"
REPO_CURSOR = "getRepo"  # the cursor of a fetch through getRepo: started again if interrupted
REPO_PAGE = 1000  # posts stored a page from the downloaded repository


class XrpcClient(ApiClient):
    """An ApiClient that reads XRPC's `{error, message}` bodies, so a 400 can say
    which account problem it was (XRPC puts most of them under 400)."""

    explain: Callable[[int, str, str], str | None] | None = None

    def _status_message(self, r: httpx.Response, errors: dict[int, str]) -> str:
        name, message = xrpc_error(r)
        if self.explain is not None:
            said = self.explain(r.status_code, name, message)
            if said:
                return self.scrub(said)
        return super()._status_message(r, errors)


def xrpc_error(r: httpx.Response) -> tuple[str, str]:
    """(error, message) of an XRPC error body; empty strings when it has none."""
    try:
        body = json_loads(r.content)
    except (ValueError, RecursionError):
        return "", ""
    if not isinstance(body, dict):
        return "", ""
    return one_line(body.get("error"), 100), one_line(body.get("message"))


class BlueskySource:
    def __init__(self, handle: str, api_base: str | None = None, say: Callable[[str], None] = print,
                 whole_repo: bool = True, **client_options: Any):
        self.handle = handle
        self.api_base = api_base
        self.whole_repo = whole_repo
        self.label = f"Bluesky @{handle}"
        self.say = say
        self.client = XrpcClient("Bluesky", with_base(API, api_base), say=say, **client_options)
        self.client.explain = self._explain
        self._profile: dict[str, Any] | None = None

    def _explain(self, status: int, error: str, message: str) -> str | None:
        h = self.handle
        detail = f"{error}: {message}" if error and message else (error or message)
        low = f"{error} {message}".lower()
        if error == "AccountTakedown" or "suspended" in low:
            return f"Bluesky has suspended @{h} ({detail}): its posts are not available"
        if error == "AccountDeactivated" or "deactivated" in low:
            return f"@{h} has deactivated their Bluesky account ({detail}): its posts are not available"
        if error == "ActorNotFound" or (status == 400 and any(
                w in low for w in ("not found", "profile", "actor", "handle", "resolve"))):
            return f"Bluesky has no account @{h}: check the handle ({detail})" if detail else \
                f"Bluesky has no account @{h}: check the handle"
        if error in ("BlockedActor", "BlockedByActor"):
            return f"Bluesky will not show @{h} ({detail}): the account blocks, or is blocked by, the viewer"
        if status == 401:
            return (f"Bluesky asked for a login (401{', ' + detail if detail else ''}): the public AppView needs none, "
                    "so check the --api-base URL")
        if status == 403:
            return (f"Bluesky refused access to @{h} (403{', ' + detail if detail else ''}): the account may be "
                    "hidden or taken down")
        if status == 404:
            return (f"Bluesky answered 404{' (' + detail + ')' if detail else ''}: this server has no public AppView "
                    "API; check the --api-base URL")
        return None

    def profile(self) -> dict[str, Any]:
        """The account's profile, checked once: a `!no-unauthenticated` account is refused."""
        if self._profile is None:
            r = self.client.get(PROFILE, {"actor": self.handle})
            if not isinstance(r.data, dict) or not isinstance(r.data.get("did"), str):
                raise SourceError(f"Bluesky sent a profile of the wrong shape for @{self.handle} (no `did`): "
                                  "try again later, or check the --api-base URL")
            if NO_UNAUTHENTICATED in active_labels(r.data.get("labels")):
                raise SourceError(f"@{self.handle} asked Bluesky not to show their posts to logged-out clients "
                                  f"(the {NO_UNAUTHENTICATED} label), so huggingtweets does not fetch them")
            self._profile = r.data
            count = r.data.get("postsCount")
            if isinstance(count, int):
                self.say(f"@{self.handle} has {count:,} posts on Bluesky")
        return self._profile

    def display_name(self) -> str | None:
        return self._profile.get("displayName") if self._profile else None

    def _page(self, cursor: str | None) -> tuple[list[Post], str | None]:
        self.profile()
        r = self.client.get(FEED, {"actor": self.handle, "limit": PAGE, "cursor": cursor,
                                   "filter": "posts_with_replies"})
        body = r.data
        feed = body.get("feed") if isinstance(body, dict) else None
        if not isinstance(feed, list):
            raise SourceError("Bluesky sent a page of the wrong shape (no `feed` list): try again later")
        posts = [feed_item_post(item, self.handle) for item in feed]
        next_cursor = body.get("cursor")
        if not isinstance(next_cursor, str) or not next_cursor or not feed:
            next_cursor = None
        return posts, next_cursor

    def backfill(self, cursor: str | None) -> Iterator[tuple[list[Post], str | None]]:
        if self.whole_repo and cursor in (None, REPO_CURSOR):
            posts = self._repo_posts()
            if posts is not None:
                while page := list(islice(posts, REPO_PAGE)):
                    yield page, REPO_CURSOR
                yield [], None
                return
            cursor = None
        yield from follow_cursor(self._page, cursor, lambda: self.say(
            f"Bluesky sent the same page twice for @{self.handle}; stopping here"))

    def pds(self, did: str) -> str:
        """The account's PDS, from its DID document (did:plc from plc.directory, did:web from its host)."""
        if did.startswith("did:plc:"):
            url = with_base(PLC, self.api_base) + "/" + quote(did, safe=":")
        elif did.startswith("did:web:"):
            url = with_base(f"https://{did.removeprefix('did:web:')}", self.api_base) + "/.well-known/did.json"
        else:
            raise SourceError(f"{did} is not a DID huggingtweets can resolve")
        doc = self.client.get(url).data
        services = doc.get("service") if isinstance(doc, dict) else None
        for service in services if isinstance(services, list) else []:
            if isinstance(service, dict) and str(service.get("id", "")).endswith("#atproto_pds") \
                    and isinstance(service.get("serviceEndpoint"), str):
                endpoint = service["serviceEndpoint"]
                parts = urlsplit(endpoint)
                if parts.scheme == "https" and parts.hostname:
                    return with_base(endpoint, self.api_base)
        raise SourceError(f"the DID document of {did} names no https PDS")

    def _repo_posts(self) -> Iterator[Post] | None:
        """Every post of the account from one getRepo download, newest first; None (said why) when
        that fails, so the feed is paged instead."""
        from .car import MAX_CAR_BYTES, iter_car

        did = self.profile()["did"]
        try:
            base = self.pds(did)
            with tempfile.TemporaryDirectory(prefix="huggingtweets-car-") as folder:
                path = Path(folder) / "repo.car"
                with open(path, "wb") as f:
                    size = self.client.download(base + GET_REPO, {"did": did}, f, MAX_CAR_BYTES)
                self.say(f"Downloaded the repository of @{self.handle} ({size / 1024**2:.1f} MiB) in one request")
                return iter_car(path, self.handle, label=f"the repository of @{self.handle}")
        except SourceError as e:
            self.say(f"Could not download the whole repository of @{self.handle} ({e}); paging the public feed instead")
            return None

    def newer(self, newest: Post, known: set[str]) -> Iterator[list[Post]]:
        """From the top until a page reaches a stored post, or posts no newer than
        the newest stored one (it may have been deleted)."""
        since = when(newest.created_at)
        cursor = None
        while True:
            posts, cursor = self._page(cursor)
            # Decided before yielding: the driver adds what it stores to `known`.
            fresh = [p for p in posts if p.id not in known]
            older = since is not None and any((t := when(p.created_at)) is not None and t <= since for p in posts)
            yield fresh
            if len(fresh) < len(posts) or older or cursor is None:
                return


def active_labels(labels: Any) -> set[str]:
    """Label values in force: the last word of each labeller on each value wins
    (`neg` takes a label back) and expired labels are gone."""
    state: dict[tuple[str, str], bool] = {}
    now = datetime.now(timezone.utc)
    for label in labels if isinstance(labels, list) else []:
        if not isinstance(label, dict) or not isinstance(label.get("val"), str):
            continue
        expires = when(label.get("exp"))
        state[(str(label.get("src")), label["val"])] = not label.get("neg") and (expires is None or expires > now)
    return {val for (_, val), on in state.items() if on}


def when(value: Any) -> datetime | None:
    """An ISO 8601 datetime, always aware (UTC when it names no zone); None if it is not one."""
    if not isinstance(value, str) or not value:
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def _shape_error(what: str) -> SourceError:
    return SourceError(f"Bluesky sent a feed item of the wrong shape ({what}): try again later")


def feed_item_post(item: Any, handle: str) -> Post:
    """One `app.bsky.feed.defs#feedViewPost` as a Post."""
    if not isinstance(item, dict):
        raise _shape_error("not an object")
    post = item.get("post")
    if not isinstance(post, dict) or not isinstance(post.get("uri"), str) or not post["uri"]:
        raise _shape_error("no `post` with a `uri`")
    record = post.get("record")
    if not isinstance(record, dict):
        raise _shape_error("no `record`")
    author = post.get("author") if isinstance(post.get("author"), dict) else {}
    text = link_text(record.get("text"), record.get("facets"))
    created = record.get("createdAt") if isinstance(record.get("createdAt"), str) else post.get("indexedAt")
    reason = item.get("reason") if isinstance(item.get("reason"), dict) else None
    raw = {k: v for k, v in post.items() if k not in ("uri", "record")}
    raw["record"] = {k: v for k, v in record.items() if k != "text"}
    post_id = post["uri"]
    if reason and reason.get("$type") == REPOST:
        kind = "repost"
        # The repost record's own uri when the AppView gives it: the original's uri is taken by the original.
        post_id = reason["uri"] if isinstance(reason.get("uri"), str) and reason["uri"] else \
            f"{post['uri']}#repost-by-{handle}"
        created = reason.get("indexedAt") if isinstance(reason.get("indexedAt"), str) else created
        author_handle = author.get("handle") if isinstance(author.get("handle"), str) else "unknown"
        raw["reposted_uri"] = post["uri"]
        if NO_UNAUTHENTICATED in active_labels(author.get("labels")):
            # Its author asked not to be shown to logged-out clients: keep the count, not the words.
            text, raw = "", {"reposted_uri": post["uri"], "withheld": NO_UNAUTHENTICATED}
        text = f"RT @{author_handle}: {text}"
        raw["reason"] = reason
    elif isinstance(record.get("reply"), dict) or isinstance(item.get("reply"), dict):
        kind = "reply"
    elif _is_quote(post.get("embed")) or _is_quote(record.get("embed")):
        kind = "quote"
    else:
        kind = "post"
    return Post(id=post_id, text=text, handle=handle, source="bsky", kind=kind,
                created_at=created if isinstance(created, str) else None, raw=raw)


def _shows_url(shown: str, uri: str) -> bool:
    shown = shown.strip().removesuffix("...").removesuffix("\u2026")
    bare = uri.split("://", 1)[-1]
    return bool(shown) and any(u.startswith(shown) for u in (uri, bare, bare.removeprefix("www.")))


def _is_quote(embed: Any) -> bool:
    if not isinstance(embed, dict):
        return False
    kind = str(embed.get("$type") or "").split("#", 1)[0]
    return kind in QUOTE_EMBEDS


def link_text(text: Any, facets: Any) -> str:
    """The post's text with each link that Bluesky shortened ("example.com/long/pa...")
    replaced by its full URL. Facets index UTF-8 bytes; a facet that does not fit the
    text, or whose text is words rather than the URL, is left alone."""
    if not isinstance(text, str):
        return ""
    if not isinstance(facets, list):
        return text
    data = text.encode("utf-8", "surrogatepass")  # a lone surrogate comes back as U+FFFD
    links = []
    for facet in facets:
        if not isinstance(facet, dict) or not isinstance(facet.get("index"), dict):
            continue
        start, end = facet["index"].get("byteStart"), facet["index"].get("byteEnd")
        features = facet.get("features") if isinstance(facet.get("features"), list) else []
        uri = next((f.get("uri") for f in features
                    if isinstance(f, dict) and f.get("$type") == LINK_FACET and isinstance(f.get("uri"), str)), None)
        if uri and isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(data):
            links.append((start, end, uri))
    last = len(data) + 1
    for start, end, uri in sorted(links, reverse=True):
        if end > last or not _shows_url(data[start:end].decode("utf-8", errors="replace"), uri):
            continue  # overlaps the link after it, or links words that should stay
        data = data[:start] + uri.encode("utf-8") + data[end:]
        last = start
    return data.decode("utf-8", errors="replace")
