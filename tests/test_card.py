"""The card speaks for whoever trained the bot: no third person's name or badges,
this project's link, the account owner's consent, the prompt the bot was sampled
with, the posts' own language, and the licence and base_model from the base
model's own card (a local folder's README.md, the Hub's metadata, the known list)."""

import shutil

import pytest
from huggingface_hub import ModelCard

from huggingtweets import models
from huggingtweets.card import declared_languages, post_languages
from huggingtweets.cli import main
from huggingtweets.posts import Post
from huggingtweets.project import home_url
from loopback import Reply

THIRD_PERSON = ("Boris", "borisdayma", "Dayma", "favorite user", "wandb.ai/wandb/huggingtweets", "pipeline.png",
                "img.shields.io", "huggingtweets-demo.ipynb")
BASE_CARD = "---\nlicense: mit\nbase_model: openai-community/gpt2\n---\n# A tiny GPT-2 for tests\n"


def licensed_model(tiny_gpt2, folder):
    """The tiny GPT-2 with a model card of its own, as a model folder from the Hub has."""
    shutil.copytree(tiny_gpt2, folder)
    (folder / "README.md").write_text(BASE_CARD, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def licensed_gpt2(tiny_gpt2, tmp_path_factory):
    """`licensed_model`, made once a session (outside every test's own folder)."""
    return licensed_model(tiny_gpt2, tmp_path_factory.mktemp("licensed") / "tiny-gpt2")


def assert_speaks_for_its_trainer(text):
    for name in THIRD_PERSON:
        assert name not in text, name
    assert f"I was made with [huggingtweets]({home_url()})." in text
    assert "your own account, or of an account whose owner agreed" in text


def test_a_card_from_the_sample_names_no_third_person_and_the_hub_parses_it(tmp_path, licensed_gpt2, capsys):
    model = licensed_gpt2
    options = ["--model", str(model), "--max-steps", "2", "-n", "2", "--prompt", "Today I", "--precision", "fp32"]
    assert main(["run", *options]) == 0
    card_file = tmp_path / "work" / "sample" / "model" / "README.md"
    text = card_file.read_text(encoding="utf-8")
    assert_speaks_for_its_trainer(text)
    assert "## About" not in text and "Built by" not in text  # nobody said who trained it

    card = ModelCard(text)
    assert card.data.license == "mit" and card.data.base_model == "openai-community/gpt2"
    assert card.data.language == "en"  # the sample tweets carry no language field: py3langid's answer
    assert card.data.widget == [{"text": "Today I"}]
    assert 'generator("Today I", num_return_sequences=5)' in text and "My dream is" not in text
    assert "It carries its base model's licence, `mit`." in text
    assert "GPT-2 is by OpenAI" in text  # the model the folder derives from, credited

    capsys.readouterr()
    assert main(["card", *options, "--author", "Jane *Doe*"]) == 0
    text = card_file.read_text(encoding="utf-8")
    assert_speaks_for_its_trainer(text)
    about = text.split("## About\n", 1)[1]
    assert about.strip().splitlines()[0] == "*Built by Jane &#42;Doe&#42;*"  # her words, never Markdown
    assert f"[the project repository]({home_url()})" in about


def test_a_card_without_a_known_licence_says_so(tmp_path, tiny_gpt2):
    assert main(["run", "--model", str(tiny_gpt2), "--max-steps", "1", "-n", "1", "--precision", "fp32"]) == 0
    text = (tmp_path / "work" / "sample" / "model" / "README.md").read_text(encoding="utf-8")
    card = ModelCard(text)
    assert card.data.license is None and card.data.base_model is None
    assert "The base model's licence is not known" in text
    assert_speaks_for_its_trainer(text)


def post(text, **raw):
    return Post(id=str(abs(hash(text))), text=text, handle="a", source="file", raw=raw)


ENGLISH = "I went to the market this morning and bought some fresh bread for everyone"
FRENCH = "Je suis allé au marché ce matin et j'ai acheté du pain frais pour tout le monde"


def test_the_language_comes_from_the_sources_own_fields_else_the_detector():
    assert declared_languages(post("x", lang="en")) == ["en"]  # X API, X archive, snscrape
    assert declared_languages(post("x", language="pt-BR")) == ["pt"]  # Mastodon
    assert declared_languages(post("x", record={"langs": ["ja", "en-US"]})) == ["ja", "en"]  # Bluesky
    assert declared_languages(post("x", lang="in")) == ["id"]  # X's old code for Indonesian
    for unknown in ("und", "zxx", "qme", "qht", "", "not a code", 7):
        assert declared_languages(post("x", lang=unknown)) == []

    # What the source declares wins over what the text looks like; retweets are someone else's words.
    assert post_languages([post(ENGLISH, lang="de")] * 5) == ["de"]
    assert post_languages([post(ENGLISH)] * 5 + [post("RT @x " + FRENCH)] * 9) == ["en"]
    assert post_languages([post(FRENCH)] * 3 + [post(ENGLISH, lang="und")]) == ["fr", "en"]
    assert post_languages([post(FRENCH, language="fr")] * 9 + [post(ENGLISH)]) == ["fr"]  # 10%: not named
    assert post_languages([post("https://example.com")]) == []


def test_licence_and_base_model_come_from_a_local_folders_own_card(tmp_path, tiny_gpt2):
    base = models.resolve_model(str(licensed_model(tiny_gpt2, tmp_path / "m")))
    assert (base.license, base.base_model, base.hub_id) == ("mit", "openai-community/gpt2", None)
    assert base.limitations_url == models.KNOWN_MODELS["openai-community/gpt2"][2]

    (tmp_path / "m" / "README.md").write_text("---\nlicense: [not, a, licence]\nbase_model: ../../etc\n---\n")
    base = models.resolve_model(str(tmp_path / "m"))
    assert (base.license, base.base_model) == (None, None)
    (tmp_path / "m" / "README.md").write_text("---\n: : not yaml [\n---\n")
    assert models.resolve_model(str(tmp_path / "m")).license is None
    (tmp_path / "m" / "README.md").unlink()
    assert models.resolve_model(str(tmp_path / "m")).license is None


@pytest.fixture
def online_hub(loopback, monkeypatch):
    """The Hub is the loopback server, and reachable (tests run with HF_HUB_OFFLINE=1)."""
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", loopback.url)
    models.hub_facts.cache_clear()
    yield loopback
    models.hub_facts.cache_clear()


def test_the_hubs_metadata_where_the_hub_is_reachable_else_the_known_list(online_hub, monkeypatch):
    online_hub.route(r"/api/models/someone/llama-ish(/revision/main)?",
                     lambda req, m: Reply(200, {"id": "someone/llama-ish", "cardData": {"license": "LLaMA3.1"}}))
    online_hub.route(r"/api/models/openai-community/gpt2(/revision/main)?",
                     lambda req, m: Reply(200, {"id": "openai-community/gpt2", "cardData": {"license": "mit"}}))
    assert models.hub_facts("someone/llama-ish") == ("llama3.1", "the Hub")
    assert models.hub_facts("openai-community/gpt2") == ("mit", "the Hub")
    assert models.hub_facts("someone/missing") == (None, "nowhere")  # a 404 is no answer, and no error
    assert any(r.path.startswith("/api/models/someone/llama-ish") for r in online_hub.requests)

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    models.hub_facts.cache_clear()
    asked = len(online_hub.requests)
    assert models.hub_facts("gpt2") == ("mit", "the known list")
    assert models.hub_facts("someone/llama-ish") == (None, "nowhere")
    assert len(online_hub.requests) == asked  # offline: not one request


HOSTILE_PROMPTS = ['He said "hi"', "O'Neil's", "a\\b", "```\nrm -rf /\n```", "key: value", "# no comment", "- item",
                   "&a *a !tag %YAML @x {a: 1} [1]", "no", "null", "~", "1e3", "---\nlanguage: xx\n---", "a\r\nb\tc",
                   "a\x00b", "a\u2028b", "DEL \x7f and C1 \x80", "🤖 日本", "word " * 40]


def test_a_hostile_prompt_is_the_widgets_text_and_the_snippets_string():
    """The prompt is a stranger's text in the YAML front matter and in the Python snippet: both read it back whole."""
    import ast
    import re

    from huggingtweets.card import CardInputs, render_card
    from huggingtweets.sources import parse_source

    for prompt in HOSTILE_PROMPTS:
        text = render_card(CardInputs(name="sample", specs=[parse_source("sample")], stats={},
                                      metrics={"eval_perplexity_before": 99.999, "eval_perplexity_after": 12.345},
                                      base_display="gpt2", base_url=None, base_limitations_url=None, license="mit",
                                      prompt=prompt, language=["no"]))
        card = ModelCard(text)  # the Hub's own parser reads it (a DEL or C1 character in hand-written YAML it refused)
        assert card.data.widget == [{"text": prompt}], prompt
        assert card.data.language == "no" and card.data.license == "mit" and card.data.tags == ["huggingtweets"]
        assert [r.metric_value for r in card.data.eval_results] == [100.0, 12.35]
        assert [line for line in text.split("\n") if line.startswith("---")] == ["---", "---"]  # hers: indented
        (call,) = re.findall(r"^generator\((.*), num_return_sequences=5\)$", card.text, re.M)
        assert ast.literal_eval(call) == prompt  # one line, a Python string, and no ``` to close the code block
