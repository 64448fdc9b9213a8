"""`snscrape:handle`: the original huggingtweets' scraper, kept for setups that still
have it. Its Twitter module has not worked since mid-2023, when X closed the
endpoints it used, and snscrape does not import on Python 3.12+; so this source
mostly explains what to use instead. snscrape is never installed by this package,
and is imported only here, when asked for."""

from __future__ import annotations

from datetime import datetime
from itertools import islice
from typing import Any

from ..errors import SourceError
from ..posts import Post

INSTEAD = "use `archive:PATH` with your own X archive (recommended) or `@handle` / `x:handle` (the X API, X_BEARER_TOKEN)"


def scrape(handle: str, max_posts: int | None = None) -> list[Post]:
    try:
        from snscrape.modules import twitter  # lazily: it is optional, and broken on Python 3.12+
    except Exception as e:  # ImportError, and whatever a half-working install raises on import
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise SourceError(f"snscrape does not work here ({reason}; its Twitter module stopped working in mid-2023, and "
                          f"snscrape does not import on Python 3.12+): {INSTEAD}") from None
    posts = []
    try:
        tweets = twitter.TwitterUserScraper(handle).get_items()
        for tweet in islice(tweets, max_posts):
            post = _post(tweet, handle)
            if post is not None:
                posts.append(post)
    except Exception as e:  # X refuses it: snscrape raises its own ScraperException, or anything else
        reason = " ".join(str(e).split())[:160] or type(e).__name__
        raise SourceError(f"snscrape could not read @{handle} from X ({reason}); its Twitter module stopped working in "
                          f"mid-2023: {INSTEAD}") from None
    return posts


def _post(tweet: Any, handle: str) -> Post | None:
    """A snscrape Tweet (a dataclass; `content` was renamed `rawContent` in 0.5)."""
    text = getattr(tweet, "rawContent", None) or getattr(tweet, "content", None)
    tweet_id = getattr(tweet, "id", None)
    if not isinstance(text, str) or tweet_id is None:
        return None
    if getattr(tweet, "retweetedTweet", None) is not None:
        kind = "repost"
    elif getattr(tweet, "quotedTweet", None) is not None:
        kind = "quote"
    elif getattr(tweet, "inReplyToTweetId", None):
        kind = "reply"
    else:
        kind = "post"
    date = getattr(tweet, "date", None)
    created = date.isoformat() if isinstance(date, datetime) else (str(date) if date else None)
    raw: dict[str, Any] = {}
    url = getattr(tweet, "url", None)
    if isinstance(url, str):
        raw["url"] = url
    for name in ("inReplyToTweetId", "lang", "likeCount", "retweetCount", "replyCount", "quoteCount"):
        value = getattr(tweet, name, None)
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            raw[name] = value
    for name in ("retweetedTweet", "quotedTweet"):
        other = getattr(tweet, name, None)
        if other is not None and getattr(other, "id", None) is not None:
            raw[name] = {"id": str(other.id)}
    return Post(id=str(tweet_id), text=text, handle=handle, source="snscrape", kind=kind, created_at=created, raw=raw)
