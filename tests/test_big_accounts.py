"""Three 3,200-post accounts (X, Bluesky, Mastodon) from loopback servers in one
bot: every post fetched, the stats exact per account and in total, the peak
memory reported."""

import json
import subprocess
import sys

from peak import PEAK
from test_bluesky import FakeAppView
from test_mastodon import FakeMastodon
from test_x import TOKEN, FakeX


def test_three_full_accounts_in_one_bot(loopback, tmp_path):
    FakeX(loopback, n=3200)
    FakeAppView(3200).serve(loopback)
    FakeMastodon(3200).serve(loopback)
    sources = ["@jack", "bsky:alice.bsky.social", "mastodon:alice@mastodon.example"]
    code = (PEAK + "import sys; from huggingtweets.cli import main; rc = main(sys.argv[1:]); "
            "print('peak_rss_mib', peak_rss_mib()); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "prepare", *sources, "--api-base", loopback.url,
                           "--model", "nonexistent-model"], capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "X_BEARER_TOKEN": TOKEN})
    # prepare stops at the model, which is not needed here, after writing the stats: one error line.
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: model nonexistent-model is not cached here"), \
        done.stderr[-2000:]
    bot = tmp_path / "work" / "-".join(sorted(["jack", "alice.bsky.social", "alice_mastodon.example"]))
    posts = [json.loads(line) for line in (bot / "posts.jsonl").read_text().splitlines()]
    assert len(posts) == 9600 and len({(p["source"], p["id"]) for p in posts}) == 9600
    by_account = json.loads((bot / "stats-by-account.json").read_text())
    total = json.loads((bot / "stats.json").read_text())
    assert list(by_account) == ["@jack", "@alice.bsky.social", "@alice@mastodon.example"]
    assert all(s["tweets_downloaded"] == 3200 for s in by_account.values())
    for key, value in total.items():
        assert value == sum(s[key] for s in by_account.values())
    assert total["tweets_downloaded"] == total["retweets"] + total["short_tweets"] + total["tweets_kept"] == 9600
    peak = int(done.stdout.split("peak_rss_mib")[1].split()[0])
    print(f"\npeak resident memory fetching and filtering 3 x 3,200 posts: {peak} MiB")
    assert peak < 1500
