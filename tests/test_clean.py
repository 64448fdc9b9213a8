from hypothesis import given, settings
from hypothesis import strategies as st

from huggingtweets import Post, Stats, clean_text, filter_posts, is_retweet, is_short


def post(text, kind="post"):
    return Post(id="1", text=text, handle="someone", source="file", kind=kind)


def test_html_entities_are_unescaped():
    assert clean_text("fish &amp; chips &lt;3 &gt;_&lt; &quot;hi&quot; &#39;yo&#39; caf&eacute;") == \
        "fish & chips <3 >_< \"hi\" 'yo' café"


def test_urls_are_removed_mid_text_and_at_both_ends():
    assert clean_text("https://t.co/abc look at this http://x.y/z now https://t.co/end") == "look at this now"


def test_only_tokens_that_start_with_a_url_scheme_go():
    # The rule is "starts with http:// or https://", nothing cleverer.
    assert clean_text("see (https://t.co/x) and xhttp://a ftp://b") == "see (https://t.co/x) and xhttp://a ftp://b"


def test_whitespace_runs_and_newlines_collapse_and_ends_are_stripped():
    assert clean_text("  one\n\n\ntwo\t\tthree \r\n four  ") == "one two three four"


def test_entity_for_a_newline_collapses_too():
    assert clean_text("a&#10;&#10;b") == "a b"


def test_retweet_by_text_and_by_kind():
    assert is_retweet(post("RT @bob: what a day it has been"))
    assert is_retweet(post("an ordinary looking text", kind="repost"))
    assert not is_retweet(post("rt @bob lower case is not the marker"))
    assert not is_retweet(post("RT@bob without the space"))
    assert not is_retweet(post("I said RT @bob in the middle"))
    assert not is_retweet(post("a quote of someone", kind="quote"))


def test_words_with_mentions_hashtags_or_links_do_not_count():
    assert is_short("@a #b http c d")
    assert is_short("@Alice #Tag HTTPS-thing two words")
    assert not is_short("@alice hello big world")
    assert not is_short("three plain words")


def test_emoji_are_words_and_empty_text_is_short():
    assert not is_short("😀 😀 😀")
    assert is_short("😀 😀")
    assert is_short("")
    assert is_short(clean_text("   \n "))


def test_a_retweet_is_counted_as_a_retweet_even_when_short():
    result = filter_posts([post("RT @x: hi"), post("hi"), post("this one is kept &amp; cleaned https://t.co/z")])
    assert result.stats == Stats(tweets_downloaded=3, retweets=1, short_tweets=1, tweets_kept=1)
    assert [p.text for p in result.kept] == ["this one is kept & cleaned"]
    assert [reason for _, reason in result.dropped] == ["retweet", "short"]


def test_stats_render_as_the_seed_cards_table():
    stats = Stats(tweets_downloaded=434, retweets=67, short_tweets=73, tweets_kept=294)
    assert str(stats) == ("| Data | Quantity |\n| --- | --- |\n| Tweets downloaded | 434 |\n| Retweets | 67 |\n"
                          "| Short tweets | 73 |\n| Tweets kept | 294 |")
    assert "<td>Short tweets</td><td style='text-align:right'>73</td>" in stats._repr_html_()
    assert Stats.from_dict(stats.to_dict()) == stats
    assert stats + stats == Stats(868, 134, 146, 588)


posts_strategy = st.lists(st.builds(
    lambda text, kind, rt: post(("RT @" + text) if rt else text, kind),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=80) | st.sampled_from(
        ["", "http://x", "@a #b", "a b c", "&amp; &lt; x y z", "one\n\ntwo three", "https://t.co/a b c d"]),
    st.sampled_from(["post", "reply", "repost", "quote"]),
    st.booleans(),
), max_size=60)


@settings(max_examples=300, deadline=None)
@given(posts_strategy)
def test_counts_always_add_up(posts):
    result = filter_posts(posts)
    s = result.stats
    assert s.tweets_downloaded == len(posts) == s.retweets + s.short_tweets + s.tweets_kept
    assert len(result.kept) == s.tweets_kept
    for kept in result.kept:
        assert kept.text == kept.text.strip() and "  " not in kept.text and "\n" not in kept.text
        assert not any(w.startswith(("http://", "https://")) for w in kept.text.split())
        assert not is_short(kept.text)
