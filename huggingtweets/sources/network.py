"""Resumable fetching for every network source.

Pages land in WORK/<name>/fetch/<source>/ as they arrive, each written atomically,
then the state (the cursor for the next page) is written, also atomically. A
fetch that is interrupted anywhere (Ctrl-C, kill -9, a dropped network) and run
again continues from the last page, and because posts are merged by id nothing
is ever duplicated or lost. A fetch of an account fetched before first asks
only for posts newer than the newest it has.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable, Iterator, Protocol

from ..files import atomic_write, read_json, write_json
from ..posts import Post, iter_posts, numeric_id


class NetworkSource(Protocol):
    label: str  # how progress and messages name it: "X @jack", "Bluesky @a.bsky.social"

    def backfill(self, cursor: str | None) -> Iterator[tuple[list[Post], str | None]]:
        """Pages from `cursor` (None: the newest) towards the oldest, each with the
        cursor of the page after it (None at the end)."""

    def newer(self, newest: Post, known: set[str]) -> Iterator[list[Post]]:
        """Pages of posts newer than `newest` (ids in `known` are already stored)."""

    def display_name(self) -> str | None:
        """The name the account's profile shows, once a page has been fetched (None before)."""


def follow_cursor(page: Callable[[str | None], tuple[list[Post], str | None]], cursor: str | None,
                  on_repeat: Callable[[], None]) -> Iterator[tuple[list[Post], str | None]]:
    """Every source's backfill: pages from `cursor` on, each with the cursor of
    the next (None at the end). A server that hands back the cursor it was given
    would loop forever, so that ends it, after `on_repeat` says so."""
    while True:
        posts, next_cursor = page(cursor)
        if next_cursor is not None and next_cursor == cursor:
            on_repeat()
            next_cursor = None
        yield posts, next_cursor
        if next_cursor is None:
            return
        cursor = next_cursor


def stored_posts(folder: Path) -> list[Post]:
    """Every post of every stored page, merged by id, newest first."""
    by_id: dict[str, Post] = {}
    for page in sorted(folder.glob("page-*.jsonl")):
        for post in iter_posts(page):
            by_id[post.id] = post
    return sorted(by_id.values(), key=_newest_first_key, reverse=True)


def _newest_first_key(post: Post) -> tuple:
    # Dates where given (ISO 8601 sorts as text in UTC); numeric ids break ties (X's ids grow with time).
    return (post.created_at or "", numeric_id(post.id), post.id)


def fetch_resumable(source: NetworkSource, folder: Path, max_posts: int | None = None,
                    say: Callable[[str], None] = print) -> list[Post]:
    from tqdm.auto import tqdm

    folder.mkdir(parents=True, exist_ok=True)
    state_path = folder / "state.json"
    state = _read_state(state_path, say)
    have = stored_posts(folder)
    known = {p.id for p in have}
    next_page = len(list(folder.glob("page-*.jsonl"))) + 1

    def store(posts: list[Post]) -> None:
        nonlocal next_page
        with atomic_write(folder / f"page-{next_page:05d}.jsonl") as f:
            for post in posts:
                f.write(post.to_json_line())
        next_page += 1
        known.update(p.id for p in posts)

    bar = tqdm(total=max_posts, initial=len(have), unit="post", desc=f"Fetching {source.label}",
               file=sys.stderr, disable=None)
    try:
        if have and state.get("newest"):
            newest = Post.from_dict(state["newest"])
            say(f"{source.label}: {len(have)} posts stored; asking for newer ones first")
            for posts in source.newer(newest, known):
                fresh = [p for p in posts if p.id not in known]
                if fresh:
                    store(fresh)
                    bar.update(len(fresh))
            # Only now: had we moved it on after a first page, an interrupted
            # update would leave a gap that no later fetch asks for.
            state["newest"] = stored_posts(folder)[0].to_dict()
            write_json(state_path, state)
        if not state.get("exhausted") and (max_posts is None or len(known) < max_posts):
            if state.get("cursor"):
                say(f"{source.label}: continuing an interrupted fetch after {len(known)} posts")
            for posts, cursor in source.backfill(state.get("cursor")):
                fresh = [p for p in posts if p.id not in known]
                if fresh:
                    store(fresh)
                    bar.update(len(fresh))
                state["cursor"] = cursor
                state["exhausted"] = cursor is None
                if fresh and not state.get("newest"):
                    state["newest"] = max(fresh, key=_newest_first_key).to_dict()
                write_json(state_path, state)
                if cursor is None or (max_posts is not None and len(known) >= max_posts):
                    break
    finally:
        bar.close()
    name = display_name_of(source)
    if name and state.get("display_name") != name:
        state["display_name"] = name  # for the card's title, as the original showed it
        write_json(state_path, state)
    everything = stored_posts(folder)
    return everything[:max_posts] if max_posts else everything


def _read_state(path: Path, say: Callable[[str], None]) -> dict:
    """The state of an earlier fetch; a damaged one (or one an older version wrote in
    another shape) is set aside: the pages stay, so starting the paging over loses nothing."""
    if not path.exists():
        return {}
    try:
        state = read_json(path)
        if not isinstance(state, dict):
            raise ValueError("not an object")
        if state.get("newest") is not None:
            Post.from_dict(state["newest"])
        if not isinstance(state.get("cursor"), (str, type(None))):
            raise ValueError("cursor is not text")
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        say(f"{path} is damaged or from an older version: paging the account again from its newest post "
            "(the posts already stored are kept)")
        return {}
    return state


def display_name_of(source: NetworkSource) -> str | None:
    """The account's display name as its profile gives it, fit for one line (text from
    a stranger: escaped wherever it is shown), or None."""
    return _name_line(source.display_name())


def _name_line(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join("".join(c for c in value if c.isprintable() or c.isspace()).split())[:80]
    return value or None


def record_display_name(folder: Path, name: str) -> None:
    """Keep an export's display name where a network fetch keeps it, for the card's title."""
    value = _name_line(name)
    if value:
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / "state.json", {"display_name": value})


def stored_display_name(folder: Path) -> str | None:
    """The display name a fetch into `folder` recorded, if any."""
    try:
        name = read_json(folder / "state.json").get("display_name")
    except (OSError, ValueError, AttributeError):
        return None
    return name if isinstance(name, str) and name else None
