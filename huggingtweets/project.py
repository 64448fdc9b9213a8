"""Where this project lives. `url` in setup.cfg is the one place that says it: the
installed package's metadata carries it (Home-page), and the card's link, the HTTP
User-Agent, the README's badge and the notebook's install cell all come from it
(tests/test_project_url.py checks the static ones agree with setup.cfg)."""

from __future__ import annotations

import configparser
import functools
from importlib import metadata
from pathlib import Path


@functools.lru_cache(maxsize=1)
def home_url() -> str:
    """This project's home page (its repository), as setup.cfg's `url` says."""
    try:
        url = metadata.metadata("huggingtweets").get("Home-page")
    except metadata.PackageNotFoundError:
        url = None
    if not url:  # run from a source tree that was never installed
        config = configparser.ConfigParser()
        config.read(Path(__file__).resolve().parent.parent / "setup.cfg", encoding="utf-8")
        url = config.get("metadata", "url", fallback="")
    return url.rstrip("/")


@functools.lru_cache(maxsize=1)
def user_agent() -> str:
    """The User-Agent every HTTP client of the sources sends: name/version, then (+URL)
    the page that says what this client is."""
    from . import __version__  # at call time: the package is fully imported by then

    return f"huggingtweets/{__version__} (+{home_url()})"
