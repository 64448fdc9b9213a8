"""The CLI end to end on the sample account with a tiny GPT-2 on the real GPT-2
tokenizer, and every error a user can cause."""

import argparse
import dataclasses
import json
import math
import typing
from pathlib import Path

import pytest
import yaml

from conftest import run_cli
from huggingtweets.cli import main
from huggingtweets.sources.sample import sample_posts

SEED_ROWS = ["| Tweets downloaded | 450 |", "| Retweets | 10 |", "| Short tweets | 15 |", "| Tweets kept | 425 |"]


def front_matter(card_text):
    assert card_text.startswith("---\n")
    return yaml.safe_load(card_text.split("---\n")[1])


def leftovers(folder):
    return [p for p in folder.rglob("*") if p.name.endswith((".tmp", ".old")) or ".tmp" in p.name]


def test_run_makes_a_bot_from_the_sample_account(tmp_path, tiny_gpt2):
    work = tmp_path / "work"
    done = run_cli("run", "--model", str(tiny_gpt2), "--work", str(work))
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    for row in SEED_ROWS:
        assert row in out
    assert "Validation perplexity before training:" in out and "Validation perplexity after training:" in out
    assert all(f"\n{i}. My dream is" in out for i in range(1, 6))
    assert f"Model card: {work / 'sample' / 'model' / 'README.md'}" in out

    bot = work / "sample"
    assert sorted(p.name for p in bot.iterdir()) == [
        "dataset", "made.json", "metrics.json", "model", "posts.jsonl", "samples.jsonl", "stats.json"]
    assert len((bot / "posts.jsonl").read_text().splitlines()) == 450
    assert json.loads((bot / "stats.json").read_text()) == {
        "tweets_downloaded": 450, "retweets": 10, "short_tweets": 15, "tweets_kept": 425}
    metrics = json.loads((bot / "metrics.json").read_text())
    assert metrics["base_model"] == str(tiny_gpt2)
    assert metrics["train_seconds"] > 0 and metrics["steps"] > 0
    assert math.isclose(metrics["eval_perplexity_before"], math.exp(metrics["eval_loss_before"]))
    assert metrics["eval_perplexity_after"] < metrics["eval_perplexity_before"]  # even a random model learns something
    assert [e["step"] for e in metrics["log_history"] if "loss" in e] == list(range(1, metrics["steps"] + 1))
    assert any("eval_loss" in e for e in metrics["log_history"])

    samples = [json.loads(line) for line in (bot / "samples.jsonl").read_text().splitlines()]
    assert len(samples) == 5
    assert all(s["text"].startswith("My dream is") and "<|endoftext|>" not in s["text"] for s in samples)
    assert all(s["seed"] == 42 and isinstance(s["copy"], bool) for s in samples)

    model = bot / "model"
    assert {"config.json", "model.safetensors", "README.md", "generation_config.json", "huggingtweets.json"} <= \
        {p.name for p in model.iterdir()}
    assert not (model / "training_args.bin").exists() and not (bot / "checkpoints").exists()
    assert not leftovers(work)

    card = (model / "README.md").read_text()
    meta = front_matter(card)
    assert meta["language"] == "en" and meta["tags"] == ["huggingtweets"]
    assert meta["widget"] == [{"text": "My dream is"}] and meta["pipeline_tag"] == "text-generation"
    values = [m["value"] for m in meta["model-index"][0]["results"][0]["metrics"]]
    assert values == [round(metrics["eval_perplexity_before"], 2), round(metrics["eval_perplexity_after"], 2)]
    for row in SEED_ROWS:
        assert row in card
    assert "model='huggingtweets/sample'" in card and "Hutto & Gilbert (2014)" in card and "🤖 AI Bot" in card

    from transformers import pipeline

    generator = pipeline("text-generation", model=str(model))
    out = generator("My dream is", max_new_tokens=5, num_return_sequences=2)
    assert len(out) == 2 and all(o["generated_text"].startswith("My dream is") for o in out)


def sample_file(tmp_path, n=450):
    f = tmp_path / "mine.txt"
    f.write_text("\n".join(p.text.replace("\n", " ") for p in sample_posts()[:n]) + "\n", encoding="utf-8")
    return f


def test_a_step_alone_runs_the_steps_before_it(tmp_path, tiny_gpt2, capsys):
    f = sample_file(tmp_path)
    assert main(["prepare", f"file:{f}", "--model", str(tiny_gpt2)]) == 0
    bot = tmp_path / "work" / "mine"
    assert sorted(p.name for p in bot.iterdir()) == ["dataset", "made.json", "posts.jsonl", "stats.json"]
    assert "| Tweets downloaded | 450 |" in capsys.readouterr().out


@pytest.mark.slow  # over 30 s on 2 cores: keeps the default suite under 15 minutes; CI runs it
def test_generate_is_reproducible_with_a_seed_and_training_again_continues_from_its_checkpoint(
        tmp_path, tiny_gpt2, capsys, monkeypatch):
    from transformers import Trainer

    args = ["--model", str(tiny_gpt2), "--max-steps", "8", "--checkpoint-minutes", "0"]
    real_step = Trainer.training_step
    calls = []

    def interrupted_step(self, *a, **kw):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_step(self, *a, **kw)

    monkeypatch.setattr(Trainer, "training_step", interrupted_step)
    assert main(["train", *args]) == 130
    bot = tmp_path / "work" / "sample"
    assert [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")] == [(
        "error: interrupted while training; run the same command again: training goes on from checkpoint-4 in "
        f"{bot / 'checkpoints'}")]
    assert sorted(p.name for p in (bot / "checkpoints").iterdir()) == ["checkpoint-4", "huggingtweets-run.json"]
    assert not (bot / "model").exists()

    monkeypatch.setattr(Trainer, "training_step", real_step)
    assert main(["train", *args]) == 0
    assert "Resuming from checkpoint-4" in capsys.readouterr().out
    metrics = json.loads((bot / "metrics.json").read_text())
    assert metrics["steps"] == 8
    assert [e["step"] for e in metrics["log_history"] if "loss" in e] == list(range(1, 9))

    assert main(["generate", *args, "-n", "3", "--seed", "7"]) == 0
    first = (bot / "samples.jsonl").read_text()
    assert main(["generate", *args, "-n", "3", "--seed", "7"]) == 0
    assert (bot / "samples.jsonl").read_text() == first and len(first.splitlines()) == 3
    assert main(["generate", *args, "-n", "3", "--seed", "8"]) == 0
    assert (bot / "samples.jsonl").read_text() != first


@pytest.mark.parametrize("argv, message", [
    (["fetch", "nonsense"], "error: unknown source `nonsense`: use `sample`, `file:PATH`, `archive:PATH` (your X, Bluesky, Mastodon or Threads export), `@handle` (X API), `bsky:handle` or `mastodon:user@instance`"),
    (["run", "file:missing.csv"], "error: file not found: missing.csv: check the path after `file:`"),
    (["prepare", "--block-size", "2"], "error: block_size must be at least 8 tokens"),
    (["train", "--model", "./no/such/folder"], "error: model folder not found: ./no/such/folder"),
])
def test_user_errors_are_one_line(argv, message, capsys):
    assert main(argv) == 1
    # Progress lines may come first (the sample tweets' first download, when this test runs alone)
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines[-1].startswith(message) and [line for line in lines if line.startswith("error:")] == lines[-1:]
    assert not any("Traceback" in line for line in lines)


def test_too_little_text_and_no_posts_leave_no_half_files(tmp_path, tiny_gpt2, capsys):
    few = tmp_path / "few.txt"
    few.write_text("this is a post\nand here is another one\n", encoding="utf-8")
    assert main(["run", f"file:{few}", "--model", str(tiny_gpt2)]) == 1
    err = capsys.readouterr().err.strip()
    assert err == ("error: only 37 characters of text were kept (2 of 2 posts), and at least 6,000 are needed to "
                   "learn a voice: add more posts or more accounts")
    bot = tmp_path / "work" / "few"
    assert sorted(p.name for p in bot.iterdir()) == ["made.json", "posts.jsonl", "stats.json"]

    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    assert main(["run", f"file:{empty}", "--model", str(tiny_gpt2)]) == 1
    assert capsys.readouterr().err.strip() == f"error: file:{empty} gave no posts: check the account or file, or try another source"
    assert not (tmp_path / "work" / "empty").exists()
    assert not leftovers(tmp_path / "work")


def test_errors_are_one_line_in_a_real_process_and_debug_shows_the_traceback(tmp_path):
    done = run_cli("run", "file:nope.txt")
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines() == ["error: file not found: nope.txt: check the path after `file:`"]
    done = run_cli("--debug", "run", "file:nope.txt")
    assert done.returncode == 1 and "Traceback" in done.stderr and "SourceError" in done.stderr


def test_several_accounts_make_one_bot_with_stats_per_account(tmp_path, tiny_gpt2, capsys):
    posts = sample_posts()
    (tmp_path / "bob.txt").write_text("\n".join(p.text for p in posts[:200]) + "\n", encoding="utf-8")
    (tmp_path / "alice.txt").write_text("\n".join(p.text for p in posts[200:]) + "\n", encoding="utf-8")
    assert main(["run", "file:bob.txt", "file:alice.txt", "--model", str(tiny_gpt2), "--max-steps", "2", "-n", "1"]) == 0
    out = capsys.readouterr().out
    bot = tmp_path / "work" / "alice-bob"
    by_account = json.loads((bot / "stats-by-account.json").read_text())
    total = json.loads((bot / "stats.json").read_text())
    assert list(by_account) == ["@bob", "@alice"]
    for key in total:
        assert total[key] == by_account["@bob"][key] + by_account["@alice"][key]
    assert total["tweets_downloaded"] == 450 and total["retweets"] == 10
    table = "| Data | @bob | @alice | Total |"
    assert table in out
    card = (bot / "model" / "README.md").read_text()
    assert table in card and f"| Tweets downloaded | 200 | 250 | 450 |" in card
    assert "bob &#38; alice 🤖 AI Bot" in card and "@bob @alice bot" in card


def test_a_zero_on_the_command_line_is_a_value_not_a_missing_option():
    from huggingtweets.cli import build_parser, settings_from_args

    settings = settings_from_args(build_parser().parse_args(
        ["train", "--min-chars", "0", "--checkpoint-minutes", "0", "--warn-chars", "0"]))
    assert (settings.min_chars, settings.checkpoint_minutes, settings.warn_chars) == (0, 0, 0)
    assert settings_from_args(build_parser().parse_args(["train"])).checkpoint_minutes == 2


# A value to give each kind of setting on the command line, and what it must parse to
GIVEN = {int: ("3", 3), float: ("0.25", 0.25), str: ("x", "x"), Path: ("some/folder", Path("some/folder"))}


def test_every_setting_parses_to_its_own_type_and_defaults_to_not_given():
    from huggingtweets.cli import build_parser
    from huggingtweets.settings import Settings

    hints = typing.get_type_hints(Settings)
    options = [f for f in dataclasses.fields(Settings) if f.name != "sources" and not f.metadata.get("secret")]
    assert "x_bearer_token" not in [f.name for f in options] and len(options) > 30
    argv, expected = ["train", "@a", "@b"], {}
    for f in options:
        kind = next(k for k in typing.get_args(hints[f.name]) or [hints[f.name]] if k is not type(None))
        flag = "--" + f.name.replace("_", "-")
        if kind is bool:
            argv.append(flag)
            expected[f.name] = True
        else:
            assert kind in GIVEN, f"{f.name}: {hints[f.name]} has no sample value here"
            argv += [flag, GIVEN[kind][0]]
            expected[f.name] = GIVEN[kind][1]
    args = build_parser().parse_args(argv)
    assert args.sources == ["@a", "@b"]
    for name, value in expected.items():
        assert getattr(args, name) == value and type(getattr(args, name)) is type(value), name
    assert not hasattr(args, "x_bearer_token")  # secrets never become options
    assert build_parser().parse_args(["train", "-n", "4"]).num_samples == 4

    nothing = build_parser().parse_args(["train"])
    for f in options:
        assert getattr(nothing, f.name) is (False if hints[f.name] is bool else None), f.name


def test_a_setting_of_a_type_the_cli_cannot_parse_fails_when_the_parser_is_built():
    from huggingtweets.cli import _add_settings

    @dataclasses.dataclass
    class Mapped:
        sources: list = dataclasses.field(default_factory=list)
        mode: typing.Literal["a", "b"] = "a"
        sizes: tuple[int, ...] = (1,)
        names: list[str] = dataclasses.field(default_factory=list)
        cap: typing.Optional[float] = None

    parser = argparse.ArgumentParser()
    _add_settings(parser, Mapped)
    args = parser.parse_args(["--mode", "b", "--sizes", "2", "3", "--names", "p", "q", "--cap", "1"])
    assert (args.mode, args.sizes, args.names, args.cap) == ("b", (2, 3), ["p", "q"], 1.0)
    assert type(args.cap) is float
    with pytest.raises(SystemExit):
        parser.parse_args(["--mode", "c"])

    for hint, default in [(dict[str, int], None), (int | str, None), (set[int], None), (tuple[int, str], None),
                          (bool, True), (typing.Literal["a", 1], "a"), (complex, None)]:
        unmapped = dataclasses.make_dataclass("Unmapped", [("sources", list, dataclasses.field(default_factory=list)),
                                                           ("knob", hint, dataclasses.field(default=default))])
        with pytest.raises(TypeError, match="setting knob"):
            _add_settings(argparse.ArgumentParser(), unmapped)
