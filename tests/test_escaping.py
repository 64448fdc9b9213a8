"""A display name is a stranger's text: in the card's title and in the app it shows
as the same text, never as a tag, a script or a link."""

import html
import re

from markdown_it import MarkdownIt

from huggingtweets.app import build_app
from huggingtweets.cli import main
from test_x import TOKEN, FakeX

HOSTILE = "</div><script>alert(1)</script> [x](javascript:alert(1)) **bold** O'Neil & co 🤖"


def test_a_hostile_display_name_is_text_in_the_card_and_the_app(loopback, tmp_path, tiny_gpt2, monkeypatch, capsys):
    FakeX(loopback, n=450, name=HOSTILE)
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    assert main(["run", "@jack", "--api-base", loopback.url, "--model", str(tiny_gpt2), "--max-steps", "2",
                 "-n", "1"]) == 0
    out = capsys.readouterr().out
    (fetched,) = [line for line in out.splitlines() if line.startswith("Fetched ")]
    assert fetched == f"Fetched 450 posts from x:jack ({HOSTILE})"

    card = (tmp_path / "work" / "jack" / "model" / "README.md").read_text(encoding="utf-8")
    (title,) = [line for line in card.splitlines() if "AI Bot" in line]
    rendered = MarkdownIt("commonmark").render(card)  # raw HTML on, as the Hub renders cards
    assert "<script" not in rendered
    assert not re.search(r"<a [^>]*javascript", rendered) and "<strong>" not in rendered
    # What a reader sees is the name itself, then the seed's "🤖 AI Bot".
    shown = re.search(r'font-weight: 800">(.*?)</div>', rendered).group(1)
    assert html.unescape(shown) == f"{HOSTILE} 🤖 AI Bot "
    assert title.count("<") == 2  # the div's own tags, nothing from the name

    app = build_app()
    app.say(fetched)  # the app's log shows the same line, escaped
    assert "<script" not in app.details.value and html.escape(HOSTILE) in app.details.value
