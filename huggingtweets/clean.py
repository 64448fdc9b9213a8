"""Which posts the model learns from, by the original huggingtweets' rules, in order:

1. a post is a *retweet* when its source marks it a repost or its text starts with "RT @";
2. its text is cleaned: HTML entities unescaped, every token starting with http:// or
   https:// removed, runs of whitespace collapsed to one space, ends stripped;
3. a non-retweet is *short* when fewer than 3 of its words contain none of
   "http", "@", "#" (lower-cased);
4. everything else is *kept*.

The counts go in the card's table, so they must add up:
tweets_downloaded == retweets + short_tweets + tweets_kept.
"""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass, field
from typing import Iterable

from .posts import Post

MIN_WORDS = 3
DROPPED_EXAMPLES = 200  # dropped posts kept as examples (the app and W&B show some); the stats count them all


def is_retweet(post: Post) -> bool:
    return post.kind == "repost" or post.text.startswith("RT @")


def clean_text(text: str) -> str:
    text = html.unescape(text)
    return " ".join(w for w in text.split() if not w.startswith(("http://", "https://")))


def is_short(cleaned: str) -> bool:
    words = [w for w in cleaned.split() if not any(mark in w.lower() for mark in ("http", "@", "#"))]
    return len(words) < MIN_WORDS


@dataclass
class Stats:
    """The card's table. Renders as that table in a terminal and in a notebook."""

    tweets_downloaded: int = 0
    retweets: int = 0
    short_tweets: int = 0
    tweets_kept: int = 0

    LABELS = {"tweets_downloaded": "Tweets downloaded", "retweets": "Retweets",
              "short_tweets": "Short tweets", "tweets_kept": "Tweets kept"}

    def rows(self) -> list[tuple[str, int]]:
        return [(label, getattr(self, key)) for key, label in self.LABELS.items()]

    def to_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> "Stats":
        return cls(**{k: int(data[k]) for k in cls.LABELS})

    def __add__(self, other: "Stats") -> "Stats":
        return Stats(**{k: getattr(self, k) + getattr(other, k) for k in self.LABELS})

    def to_markdown(self) -> str:
        lines = ["| Data | Quantity |", "| --- | --- |"]
        lines += [f"| {label} | {value} |" for label, value in self.rows()]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        body = "".join(f"<tr><td>{html.escape(label)}</td><td style='text-align:right'>{value}</td></tr>"
                       for label, value in self.rows())
        return f"<table><thead><tr><th>Data</th><th>Quantity</th></tr></thead><tbody>{body}</tbody></table>"


def stats_table(by_account: dict[str, Stats]) -> str:
    """The card's table; with several accounts, a column each and a total."""
    if len(by_account) == 1:
        return next(iter(by_account.values())).to_markdown()
    total = sum(by_account.values(), Stats())
    columns = list(by_account.values()) + [total]
    lines = ["| Data | " + " | ".join(list(by_account) + ["Total"]) + " |",
             "| --- |" + " --- |" * len(columns)]
    for key, label in Stats.LABELS.items():
        lines.append(f"| {label} | " + " | ".join(str(getattr(s, key)) for s in columns) + " |")
    return "\n".join(lines)


@dataclass
class Filtered:
    kept: list[Post]  # copies of the kept posts, their text cleaned (without the source's raw fields)
    dropped: list[tuple[Post, str]] = field(default_factory=list)  # the first DROPPED_EXAMPLES: (post, "retweet" | "short")
    stats: Stats = field(default_factory=Stats)

    by_handle: dict[str, Stats] = field(default_factory=dict)  # the same counts, per account

    @property
    def kept_chars(self) -> int:
        return sum(len(p.text) for p in self.kept)


def filter_posts(posts: Iterable[Post]) -> Filtered:
    result = Filtered(kept=[])
    for post in posts:
        cleaned = ""
        if is_retweet(post):
            counter = "retweets"
        else:
            cleaned = clean_text(post.text)
            counter = "short_tweets" if is_short(cleaned) else "tweets_kept"
        for stats in (result.stats, result.by_handle.setdefault(post.handle, Stats())):
            stats.tweets_downloaded += 1
            setattr(stats, counter, getattr(stats, counter) + 1)
        if counter == "tweets_kept":
            result.kept.append(dataclasses.replace(post, text=cleaned, raw={}))
        elif len(result.dropped) < DROPPED_EXAMPLES:
            result.dropped.append((post, "retweet" if counter == "retweets" else "short"))
    return result
