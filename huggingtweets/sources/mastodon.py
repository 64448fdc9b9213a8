"""`mastodon:user@instance`: a Mastodon server's public API, no key.

`GET /api/v1/accounts/lookup?acct=user`, then `GET /api/v1/accounts/:id/statuses`,
40 a page (the most the server gives), newest first, paging back with `max_id`.
Boosts (`reblog`) become "RT @acct: text" so the retweet rule counts them, replies
are marked from `in_reply_to_id`, quotes from `quote`. Status `content` is HTML;
`html_to_text` turns it into the text the author typed, links as their full URL.
Mastodon errors are `{"error": "..."}`; ids are opaque strings.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, quote, urlsplit

from ..errors import SourceError
from ..posts import Post, is_id
from .http import ApiClient, Response, one_line, with_base
from .network import follow_cursor

PAGE = 40  # the most statuses a page holds
BLOCKS = {"p", "div", "blockquote", "pre", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6"}
VOID = {"br", "img", "hr", "wbr", "input", "meta", "link", "area", "base", "col", "embed", "source", "track"}
HIDDEN = {"invisible", "quote-inline"}  # URL parts Mastodon hides; the "RE: url" fallback of a quote
SKIPPED = {"script", "style", "template"}
ACCOUNT_FLAGS = ("id", "acct", "username", "url", "noindex", "discoverable", "indexable", "bot", "locked",
                 "limited", "memorial", "moved")


class MastodonSource:
    def __init__(self, target: str, api_base: str | None = None, say: Callable[[str], None] = print,
                 own_account: bool = False, **client_options: Any):
        user, at, instance = target.lstrip("@").partition("@")
        if not at or not user or not instance:
            raise SourceError(f"`{target}` is not a Mastodon account: write user@instance, like Gargron@mastodon.social")
        self.user, self.instance = user, instance
        self.handle = f"{user}@{instance}"
        self.label = f"Mastodon @{self.handle}"
        self.say = say
        self.own_account = own_account
        self.client = ApiClient(f"Mastodon server {instance}", with_base(f"https://{instance}", api_base),
                                say=say, **client_options)
        self._account: dict[str, Any] | None = None

    def _errors(self) -> dict[int, str]:
        where = f"Mastodon server {self.instance}"
        return {401: f"{where} asks for a login to read its API (401): it does not share posts publicly, "
                     "so huggingtweets cannot fetch them",
                403: f"{where} refused access to @{self.user} (403): the account or the server may be private, "
                     "or it blocks this kind of client",
                404: f"{where} has no account @{self.user}: check the name",
                410: f"{where} has suspended @{self.user} (410): its posts are not available"}

    def _get(self, path: str, params: dict[str, Any]) -> Response:
        return self.client.get(path, params, errors=self._errors())

    def account(self) -> dict[str, Any]:
        if self._account is None:
            r = self._get("/api/v1/accounts/lookup", {"acct": self.user})
            data = r.data
            if not isinstance(data, dict) or not is_id(data.get("id")):
                raise SourceError(f"Mastodon server {self.instance} sent an account of the wrong shape for "
                                  f"@{self.user} (no `id`): check the --api-base URL, or try again later")
            if data.get("suspended"):
                raise SourceError(f"Mastodon server {self.instance} has suspended @{self.user}: "
                                  "its posts are not available")
            # People who opt out of search and discovery have said no to being collected:
            # only the account's owner may fetch it.
            opted_out = [why for flag, bad, why in (("noindex", True, "asks search engines not to index it"),
                                                   ("discoverable", False, "is not discoverable"),
                                                   ("indexable", False, "does not allow its posts to be indexed"))
                         if data.get(flag) is bad]
            if opted_out and not self.own_account:
                raise SourceError(f"@{self.handle} {' and '.join(opted_out)}: its owner opted out, so huggingtweets "
                                  "does not fetch it; if the account is yours, pass --own-account")
            moved = data.get("moved")
            if isinstance(moved, dict) and moved.get("acct"):
                self.say(f"@{self.handle} has moved to @{moved['acct']}; fetching the posts of the old account")
            count = data.get("statuses_count")
            if isinstance(count, int):
                self.say(f"@{self.handle} has {count:,} posts")
            self._account = data
        return self._account

    def display_name(self) -> str | None:
        return self._account.get("display_name") if self._account else None

    def _page(self, params: dict[str, Any]) -> tuple[list[Post], str | None]:
        """One page and the `max_id` of the page after it (None at the end)."""
        account = self.account()
        # The id comes from the server: quoted, so it stays one path segment whatever it holds.
        r = self._get(f"/api/v1/accounts/{quote(str(account['id']), safe='')}/statuses", {"limit": PAGE, **params})
        if not isinstance(r.data, list):
            error = one_line(r.data.get("error")) if isinstance(r.data, dict) else ""
            detail = f" ({error})" if error else ""
            raise SourceError(f"Mastodon server {self.instance} sent a page of the wrong shape "
                              f"(not a list of statuses){detail}: try again later")
        flags = {k: account[k] for k in ACCOUNT_FLAGS if k in account}
        posts = [status_post(s, self.handle, flags) for s in r.data]
        if not posts:
            return posts, None
        link = r.headers.get("link")
        if link is not None:
            # Mastodon links the next page only while pages come back full: no `next` is the end.
            has_next, max_id = next_link(link)
            if not has_next:
                return posts, None
            return posts, max_id or posts[-1].id
        return posts, posts[-1].id

    def backfill(self, cursor: str | None) -> Iterator[tuple[list[Post], str | None]]:
        yield from follow_cursor(lambda c: self._page({"max_id": c}), cursor, lambda: self.say(
            f"Mastodon server {self.instance} sent the same page twice; stopping here"))

    def newer(self, newest: Post, known: set[str]) -> Iterator[list[Post]]:
        """Statuses after `newest` (since_id), newest first, paging back with max_id."""
        cursor = None
        while True:
            posts, next_cursor = self._page({"since_id": newest.id, "max_id": cursor})
            # Decided before yielding: the driver adds what it stores to `known`.
            fresh = [p for p in posts if p.id not in known]
            yield fresh
            if next_cursor is None or next_cursor == cursor or len(fresh) < len(posts):
                return
            cursor = next_cursor


def next_link(link: str) -> tuple[bool, str | None]:
    """Whether a Link header (RFC 8288) has a `rel="next"` URL, and that URL's `max_id`."""
    # Not httpx's Response.links, which keys each link by its whole rel (`rel="next prev"` has no
    # "next"), keeps the last of two `next`s, drops a rel after a quoted `=` or `;` (title="a=b")
    # and takes a bare "next" for a link: it fails tests/test_fuzz.py's Link header tests.
    for part in link.split(","):
        m = re.match(r"\s*<([^>]*)>(.*)", part)
        rel = re.search(r';\s*rel\s*=\s*"?([^";]*)"?', m.group(2)) if m else None
        if m and rel and "next" in rel.group(1).split():
            try:
                values = parse_qs(urlsplit(m.group(1)).query).get("max_id")
            except ValueError:  # not a URL ("http://[..."): the next page is there, its max_id is not
                values = None
            return True, values[-1] if values else None
    return False, None


def _status_shape_error(what: str) -> SourceError:
    return SourceError(f"Mastodon sent a status of the wrong shape ({what}): try again later")


def status_text(status: dict[str, Any]) -> str:
    content = status.get("content")
    if isinstance(content, str) and content:
        return html_to_text(content)
    text = status.get("text")  # the plain source, given for deleted statuses
    return text if isinstance(text, str) else ""


def status_post(status: Any, handle: str, account_flags: dict[str, Any] | None = None) -> Post:
    """One Mastodon Status entity as a Post."""
    if not isinstance(status, dict):
        raise _status_shape_error("not an object")
    sid = status.get("id")
    if not is_id(sid):
        raise _status_shape_error("no `id`")
    text = status_text(status)
    reblog = status.get("reblog")
    if isinstance(reblog, dict):
        kind = "repost"
        acct = (reblog.get("account") or {}).get("acct") if isinstance(reblog.get("account"), dict) else None
        text = f"RT @{acct if isinstance(acct, str) and acct else 'unknown'}: {status_text(reblog)}"
    elif status.get("in_reply_to_id") is not None:
        kind = "reply"
    elif status.get("quote") is not None:
        kind = "quote"
    else:
        kind = "post"
    raw = {k: v for k, v in status.items() if k not in ("id", "created_at", "content", "account")}
    if account_flags is not None:
        raw["account"] = account_flags  # the account once, with its noindex/discoverable choices
    created = status.get("created_at")
    return Post(id=str(sid), text=text, handle=handle, source="mastodon", kind=kind,
                created_at=created if isinstance(created, str) else None, raw=raw)


class _TextParser(HTMLParser):
    """Mastodon's sanitized HTML (p, br, span, a) as plain text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.stack: list[tuple[str, bool]] = []  # open tags, and whether each hides its text
        self.hiding = 0  # how many tags in the stack hide their text
        self.open: dict[str, int] = {}  # how many of each tag are in the stack
        self.link: dict[str, Any] | None = None  # the <a> being read
        self.breaks = 0  # line breaks owed before the next text

    @property
    def hidden(self) -> bool:
        # Counted, not searched: text inside thousands of open tags would be quadratic.
        return self.hiding > 0

    def _emit(self, text: str) -> None:
        if self.link is not None:
            self.link["all"].append(text)
            if not self.hidden:
                self.link["shown"].append(text)
        elif not self.hidden and text:
            if self.out and self.breaks:
                self.out.append("\n" * self.breaks)
            self.breaks = 0
            self.out.append(text)

    def _break(self, lines: int, add: bool = False) -> None:
        """Line breaks before the next text: <br> adds one; a block edge asks for at
        least one (two around a paragraph), so </li><li> is one break, not two."""
        if self.link is None and not self.hidden:
            self.breaks = self.breaks + lines if add else max(self.breaks, lines)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = set(a.get("class", "").split())
        if tag == "br":
            self._break(1, add=True)
            return
        if tag == "img":
            self._emit(a.get("alt", ""))  # custom emoji and the like: their shortcode
            return
        if tag in VOID:
            return
        if tag in BLOCKS:
            self._break(2 if tag == "p" else 1)
        if tag == "a" and self.link is None and not self.hidden:
            self.link = {"href": a.get("href", ""), "classes": classes, "all": [], "shown": [], "depth": len(self.stack)}
        hides = bool(classes & HIDDEN) or tag in SKIPPED
        self.stack.append((tag, hides))
        self.hiding += hides
        self.open[tag] = self.open.get(tag, 0) + 1

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.handle_endtag(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "br":
            self._break(1, add=True)  # </br> counts as <br>, as browsers read it
            return
        if not self.open.get(tag):
            return  # a close tag that closes nothing
        i = len(self.stack) - 1
        while self.stack[i][0] != tag:
            i -= 1
        for closed, hides in self.stack[i:]:
            self.hiding -= hides
            self.open[closed] -= 1
        del self.stack[i:]
        if self.link is not None and len(self.stack) <= self.link["depth"]:
            self._end_link()
        if tag in BLOCKS:
            self._break(2 if tag == "p" else 1)

    def handle_data(self, data: str) -> None:
        self._emit(data)

    def _end_link(self) -> None:
        link, self.link = self.link, None
        if link is None:
            return
        shown, everything = "".join(link["shown"]), "".join(link["all"])
        href = link["href"].strip()
        if "mention" in link["classes"] or "hashtag" in link["classes"]:
            text = shown  # "@user", "#tag"
        elif href.startswith(("http://", "https://")) and (
                everything.strip().startswith(("http://", "https://")) or shown != everything):
            text = href  # a URL Mastodon shortened for show: the whole of it, so cleaning drops it
        else:
            text = shown
        self._emit(text)

    def text(self) -> str:
        self.close()
        if self.link is not None:
            self._end_link()  # an <a> left open
        joined = "".join(self.out)
        joined = re.sub(r"[ \t]*\n[ \t]*", "\n", joined)
        return re.sub(r"\n{3,}", "\n\n", joined).strip()


UNCLOSED_TAG = re.compile(r"<(?![^<>]*>)")


def html_to_text(html: str) -> str:
    """Plain text from a status's HTML: paragraphs and <br> become line breaks,
    mentions `@user`, hashtags `#tag`, links their full URL, entities unescaped.
    Never raises: text that even the lenient parser cannot read loses its tags."""
    if not isinstance(html, str):
        return ""
    try:
        parser = _TextParser()
        # A `<` that opens no complete tag is text, as a browser shows it; escaped first, because
        # html.parser rescans an unclosed tag on every `<` after it (quadratic: "<a" * 100,000 took 33 s).
        parser.feed(UNCLOSED_TAG.sub("&lt;", html))
        return parser.text()
    except Exception:  # noqa: BLE001 - any input string must give some text
        return unescape(re.sub(r"<[^>]*>?", " ", html)).strip()
