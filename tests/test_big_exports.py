"""100,000 posts in each of the other platforms' exports, read and counted exactly, in
bounded memory (slow: building the exports takes most of the time; run with -m slow).

Each export is built in its real format (tests/exports_build.py) and read by
`huggingtweets prepare` in a process of its own, which reports its own peak resident
memory (VmHWM), as tests/test_big.py does for X's archive."""

import json
import subprocess
import sys

import pytest

import exports_build as eb
from peak import PEAK

N = 100_000
LIMIT_MIB = 200


def prepare(path, tmp_path):
    code = (PEAK + "import sys; from huggingtweets.cli import main; rc = main(sys.argv[1:]); "
            "print('peak_rss_mib', peak_rss_mib()); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "prepare", f"archive:{path}", "--model", "nonexistent-model",
                           "--name", "big"], capture_output=True, text=True, timeout=900)
    # prepare stops at the model (not needed here) after writing the stats of every post: one error line.
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: model nonexistent-model is not cached here"), \
        done.stderr[-2000:]
    stats = json.loads((tmp_path / "work" / "big" / "stats.json").read_text())
    return stats, int(done.stdout.split("peak_rss_mib")[1].split()[0])


@pytest.mark.slow
def test_a_bluesky_car_of_100000_posts(tmp_path):
    path = tmp_path / "repo.car"
    path.write_bytes(eb.bsky_car(N))
    stats, peak = prepare(path, tmp_path)
    print(f"\nBluesky CAR, {N:,} records ({path.stat().st_size / 1024**2:.0f} MiB): peak {peak} MiB")
    assert stats == {"tweets_downloaded": N, "retweets": 10_000, "short_tweets": 10_000, "tweets_kept": 80_000}
    assert peak < LIMIT_MIB


@pytest.mark.slow
@pytest.mark.parametrize("write", [eb.write_tar_gz, eb.write_zip], ids=["tar.gz", "zip"])
def test_a_mastodon_archive_of_100000_activities(tmp_path, write):
    path = write(tmp_path / f"archive.{write.__name__.removeprefix('write_').replace('_', '.')}", eb.mastodon_files(N))
    stats, peak = prepare(path, tmp_path)
    print(f"\nMastodon {write.__name__}, {N:,} activities ({path.stat().st_size / 1024**2:.0f} MiB): peak {peak} MiB")
    # 10,000 followers-only posts and 10,000 direct messages are left out; boosts count as retweets
    assert stats == {"tweets_downloaded": 80_000, "retweets": 10_000, "short_tweets": 0, "tweets_kept": 70_000}
    assert peak < LIMIT_MIB


@pytest.mark.slow
def test_a_threads_export_of_100000_posts(tmp_path):
    path = eb.write_zip(tmp_path / "instagram-big-2025-08-24-AbCd.zip", eb.threads_files(N))
    stats, peak = prepare(path, tmp_path)
    print(f"\nThreads zip, {N:,} entries ({path.stat().st_size / 1024**2:.0f} MiB): peak {peak} MiB")
    assert stats == {"tweets_downloaded": 90_000, "retweets": 0, "short_tweets": 0, "tweets_kept": 90_000}
    assert peak < LIMIT_MIB
