"""A big archive: 100,000 posts read, counted exactly, in bounded memory.

The tweets are shaped as X writes them (entities, edit history, source), so tweets.js
is 140 MB, about what 100,000 real posts make: parsed whole, as json.loads would, it
took 680 MiB; read and parsed an entry at a time, with the posts waiting on disk, 90."""

import json
import subprocess
import sys
import zipfile

from peak import PEAK


def test_an_archive_of_100000_posts(tmp_path):
    tweets = []
    for i in range(100_000):
        text = (f"RT @someone: a repost number {i}" if i % 10 == 0 else f"hi @friend {i}" if i % 10 == 1
                else f"post number {i} talks about the day &amp; the night http://t.co/{i}")
        tweets.append({"tweet": {
            "edit_info": {"initial": {"editTweetIds": [str(10**15 + i)], "editableUntil": "2018-10-10T21:19:24.000Z",
                                      "editsRemaining": "5", "isEditEligible": True}},
            "retweeted": False, "source": '<a href="http://twitter.com/download/iphone" rel="nofollow">Twitter for iPhone</a>',
            "entities": {"hashtags": [], "symbols": [],
                         "user_mentions": [{"name": "Friend", "screen_name": "friend", "indices": ["3", "10"],
                                            "id_str": "12345", "id": "12345"}],
                         "urls": [{"url": f"http://t.co/{i}", "expanded_url": "https://example.com/a/long/path",
                                   "display_url": "example.com/a/long…", "indices": ["50", "73"]}]},
            "display_text_range": ["0", "73"], "favorite_count": "0", "id_str": str(10**15 + i), "truncated": False,
            "retweet_count": "0", "id": str(10**15 + i), "created_at": "Wed Oct 10 20:19:24 +0000 2018",
            "favorited": False, "full_text": text, "lang": "en"}})
    archive = tmp_path / "twitter-2026-11-25.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("data/account.js", 'window.YTD.account.part0 = [{"account": {"username": "bigaccount"}}]')
        z.writestr("data/tweets.js", "window.YTD.tweets.part0 = " + json.dumps(tweets, indent=2))
    del tweets
    # In its own process, so the peak resident memory is this job's alone.
    code = (PEAK + "import sys; from huggingtweets.cli import main; rc = main(sys.argv[1:]); "
            "print('peak_rss_mib', peak_rss_mib()); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code, "prepare", f"archive:{archive}", "--model", "nonexistent-model"],
                          capture_output=True, text=True, timeout=600)
    # prepare stops at the model (not needed here) after writing the stats of every post: one error line.
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1].startswith("error: model nonexistent-model is not cached here"), \
        done.stderr[-2000:]
    stats = json.loads((tmp_path / "work" / "bigaccount" / "stats.json").read_text())
    assert stats == {"tweets_downloaded": 100_000, "retweets": 10_000, "short_tweets": 10_000, "tweets_kept": 80_000}
    peak = int(done.stdout.split("peak_rss_mib")[1].split()[0])
    print(f"\npeak resident memory reading and filtering 100,000 archive posts: {peak} MiB")
    assert peak < 300  # parsed whole, it was 680
