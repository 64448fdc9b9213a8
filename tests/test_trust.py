"""Same inputs, same bot: every output knows what made it, and a step whose inputs
changed is made again (issue 20). Each test here failed on the main this started
from: two sources with one name shared a folder, a source given twice counted
twice, a new fetch or a new setting left the old dataset in use, `card` trained,
`run` sampled twice, --max-posts did nothing for files and the sample account."""

import json
import os
import subprocess
import sys

import pytest

import huggingtweets as ht
from conftest import run_cli
from huggingtweets.cli import main
from huggingtweets.sources.sample import sample_posts

WORDS = "the quick brown fox jumps over a lazy dog while birds sing softly".split()


def write_posts(path, n, tag):
    """n distinct posts of ten words or so, each naming `tag` so their owner is plain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{tag} post {i}: " + " ".join(WORDS[(i + j) % len(WORDS)] for j in range(10)) for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def settings(tiny_gpt2, *sources, **kw):
    return ht.Settings(sources=list(sources), model=str(tiny_gpt2), min_chars=0, max_steps=2, **kw)


def dataset_info(bot):
    return json.loads((bot / "dataset" / "info.json").read_text())


def test_two_sources_with_one_name_never_share_a_folder(tmp_path, tiny_gpt2, capsys):
    alice = write_posts(tmp_path / "alice" / "tweets.txt", 40, "alice")
    bob = write_posts(tmp_path / "bob" / "tweets.txt", 25, "bob")
    assert main(["fetch", f"file:{alice}"]) == 0
    capsys.readouterr()

    assert main(["prepare", f"file:{bob}", "--model", str(tiny_gpt2), "--min-chars", "0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "--name NAME" in err[0] and str(alice) in err[0]
    work = tmp_path / "work"
    assert sorted(p.name for p in work.iterdir()) == ["tweets"]  # nothing of Bob's was written over Alice's
    assert len((work / "tweets" / "posts.jsonl").read_text().splitlines()) == 40

    assert main(["prepare", f"file:{bob}", "--name", "bob", "--model", str(tiny_gpt2), "--min-chars", "0"]) == 0
    assert "| Tweets downloaded | 25 |" in capsys.readouterr().out
    assert all(json.loads(line)["text"].startswith("bob ")
               for line in (work / "bob" / "posts.jsonl").read_text().splitlines())


def test_an_x_account_and_its_archive_never_share_a_folder(tmp_path, capsys):
    from test_archive import make_zip, modern_files

    archive = make_zip(tmp_path / "twitter-2026.zip", modern_files())  # alice_x's own archive
    assert main(["fetch", f"archive:{archive}"]) == 0
    capsys.readouterr()
    # refused before any request (no X token is even needed to be told)
    assert main(["prepare", "@alice_x"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"is the bot of archive:{archive}, not of x:alice_x" in err[0] and "--name" in err[0]


def test_the_same_source_given_twice_counts_once(tmp_path, capsys, monkeypatch):
    write_posts(tmp_path / "a" / "t.txt", 3, "a")
    monkeypatch.chdir(tmp_path)
    assert main(["fetch", "file:a/t.txt", "file:./a/t.txt", f"file:{tmp_path / 'a' / 't.txt'}"]) == 0
    out = capsys.readouterr().out
    assert "file:./a/t.txt is the same source as file:a/t.txt: using it once" in out
    assert out.count("Fetched 3 posts") == 1
    assert len((tmp_path / "work" / "t" / "posts.jsonl").read_text().splitlines()) == 3


def test_new_posts_and_new_settings_make_the_dataset_again(tmp_path, tiny_gpt2):
    f = write_posts(tmp_path / "mine.txt", 40, "me")
    lines = []
    ht.train(settings(tiny_gpt2, f"file:{f}"), say=lines.append)
    bot = tmp_path / "work" / "mine"
    info = dataset_info(bot)
    assert info["train_posts"] + info["validation_posts"] == 40

    write_posts(f, 60, "me")  # the account wrote 20 more
    ht.fetch(settings(tiny_gpt2, f"file:{f}"), say=lines.append)
    lines.clear()
    ht.train(settings(tiny_gpt2, f"file:{f}"), say=lines.append)
    assert any(line.startswith("Preparing the dataset again (made from other inputs: the posts changed)")
               for line in lines)
    info = dataset_info(bot)
    assert info["train_posts"] + info["validation_posts"] == 60

    lines.clear()
    ht.train(settings(tiny_gpt2, f"file:{f}", validation_fraction=0.2), say=lines.append)
    assert "Preparing the dataset again (made from other inputs: --validation-fraction 0.1 -> 0.2)" in lines
    assert dataset_info(bot)["validation_posts"] == 12


def test_card_never_trains_and_refuses_a_stale_model(tmp_path, tiny_gpt2, capsys):
    args = ["--model", str(tiny_gpt2), "--max-steps", "2"]
    assert main(["card", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"error: there is no trained model in {tmp_path / 'work' / 'sample' / 'model'}: "
                   "run `huggingtweets train` (or `huggingtweets run`) first"]
    assert not (tmp_path / "work" / "sample" / "model").exists()

    assert main(["train", *args]) == 0
    capsys.readouterr()
    card = tmp_path / "work" / "sample" / "model" / "README.md"
    before = card.stat().st_mtime_ns
    assert main(["card", "--model", str(tiny_gpt2), "--max-steps", "3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is out of date (made from other inputs: --max-steps 2 -> 3)" in err[0]
    assert card.stat().st_mtime_ns == before
    assert main(["card", *args]) == 0
    assert "Model card:" in capsys.readouterr().out


def test_run_samples_once(tmp_path, tiny_gpt2, monkeypatch):
    """With tracking on, the W&B predictions table and the printed samples are one draw."""
    generate_module = sys.modules["huggingtweets.generate"]  # the module: ht.generate is the step

    for var in ("WANDB_DIR", "WANDB_DATA_DIR", "WANDB_CACHE_DIR", "WANDB_CONFIG_DIR"):
        monkeypatch.setenv(var, str(tmp_path / "wandb"))
    monkeypatch.setenv("WANDB_MODE", "offline")
    real, draws = generate_module.generate, []

    def counted(*args, **kwargs):
        draws.append(kwargs.get("num_samples"))
        return real(*args, **kwargs)

    monkeypatch.setattr(generate_module, "generate", counted)
    lines = []
    result = ht.run(settings(tiny_gpt2, "sample", wandb="offline"), say=lines.append)
    assert draws == [5]
    assert [f"{i}. {s.text}" for i, s in enumerate(result["samples"], 1)] == [
        line for line in lines if line[:2] in {f"{i}." for i in range(1, 6)}]


def test_max_posts_caps_files_archives_and_the_sample(tmp_path, tiny_gpt2):
    f = write_posts(tmp_path / "mine.txt", 40, "me")
    assert len(ht.fetch(settings(tiny_gpt2, f"file:{f}", max_posts=7))) == 7
    assert len(ht.fetch(settings(tiny_gpt2, "sample", max_posts=100))) == 100
    # ... and a later step without the cap fetches again rather than train on 100 posts
    lines = []
    ht.prepare(settings(tiny_gpt2, "sample"), say=lines.append)
    assert "Fetching again (made from other inputs: --max-posts 100 -> default)" in lines
    assert "| Tweets downloaded | 450 |" in "\n".join(lines)


def test_options_that_did_nothing_are_gone_and_the_app_agrees_on_copies(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["train", "--resume"])
    assert stop.value.code == 2 and "unrecognized arguments: --resume" in capsys.readouterr().err
    assert not hasattr(ht.Settings, "help")

    from huggingtweets.app import build_app

    assert build_app().drop_copies.value is ht.Settings().drop_copies is False


# --- failures that ended in a traceback -------------------------------------------------------------------------

def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert "Traceback" not in err and lines and lines[-1].startswith("error: "), err[-2000:]
    return lines[-1]


@pytest.mark.parametrize("api_base", ["http://[", "ftp://127.0.0.1:9", "http://127.0.0.1:port"])
def test_a_bad_api_base_is_one_line_before_any_request(api_base, capsys):
    assert main(["fetch", "bsky:alice.bsky.social", "--api-base", api_base]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines() == [
        f"error: --api-base {api_base!r} is not an http:// or https:// URL with a host: "
        "give one like http://127.0.0.1:8080"]


def test_a_work_folder_that_is_a_file_is_one_line(tmp_path):
    sample_posts()  # cached for the child process
    (tmp_path / "afile").write_text("not a folder")
    done = run_cli("fetch", "--work", str(tmp_path / "afile"))
    assert done.returncode == 1
    assert one_error_line(done.stderr) == (f"error: the work folder {tmp_path / 'afile'} is a file: point --work "
                                           "(or HUGGINGTWEETS_WORK) at a folder")
    done = run_cli("fetch", "--work", str(tmp_path / "afile" / "below"))
    assert done.returncode == 1 and "is in the way" in one_error_line(done.stderr)


@pytest.fixture
def tmpfs(tmp_path):
    """A small file system of our own (root, as on these machines and CI): full or read-only on demand."""
    mounted = []

    def mount(name, options):
        target = tmp_path / name
        target.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", "-l", str(target)], check=False)


def test_a_full_disk_and_a_read_only_folder_are_one_line_and_leave_no_half_file(tmp_path, tmpfs):
    sample_posts()
    full = tmpfs("full", "size=64k")  # the sample's posts.jsonl is about 150 kB
    done = run_cli("fetch", "--work", str(full))
    assert done.returncode == 1
    assert "error: the disk is full" in one_error_line(done.stderr)
    assert [p for p in full.rglob("*") if p.is_file()] == []  # the temp file went with the error

    read_only = tmpfs("ro", "ro,size=64k")
    done = run_cli("fetch", "--work", str(read_only / "work"))
    assert done.returncode == 1
    assert one_error_line(done.stderr).startswith(f"error: cannot write {read_only / 'work'}")


def test_damaged_posts_state_and_metrics(tmp_path, tiny_gpt2, loopback, capsys):
    # posts.jsonl cut short (a disk error, a hand edit): fetched again, not a traceback
    args = ["--model", str(tiny_gpt2), "--max-steps", "2"]
    assert main(["fetch", *args]) == 0
    bot = tmp_path / "work" / "sample"
    text = (bot / "posts.jsonl").read_text()
    (bot / "posts.jsonl").write_text(text[: len(text) // 2])
    capsys.readouterr()
    assert main(["train", *args]) == 0
    out = capsys.readouterr().out
    assert "Fetching again (posts.jsonl changed since it was fetched)" in out and "| Tweets downloaded | 450 |" in out

    # metrics.json damaged, or from an older version: card says so in one line
    (bot / "metrics.json").write_text('{"eval_loss_before": 3.0')
    assert main(["card", *args]) == 1
    assert one_error_line(capsys.readouterr().err) == (
        f"error: {bot / 'metrics.json'} is damaged or from an older version: train again with `huggingtweets train`")
    (bot / "metrics.json").write_text('{"eval_perplexity_before": 3.0, "eval_perplexity_after": 2.0}')
    assert main(["card", *args]) == 1
    assert "is damaged or from an older version" in one_error_line(capsys.readouterr().err)
    # ... while generate, which may train, trains again rather than trust it
    assert main(["generate", *args, "-n", "2"]) == 0
    assert "Training again" in capsys.readouterr().out
    assert "eval_perplexity_after" in json.loads((bot / "metrics.json").read_text())

    # a network fetch's state.json damaged: paging starts over, the stored pages stay
    from test_bluesky import FakeAppView

    FakeAppView(30).serve(loopback)
    api = ["bsky:alice.bsky.social", "--api-base", loopback.url]
    assert main(["fetch", *api]) == 0
    state = next((tmp_path / "work").glob("alice.bsky.social/fetch/*/state.json"))
    for damage in ('{"cursor": ', '["not", "a", "state"]', '{"newest": "a string", "cursor": 5}'):
        state.write_text(damage)
        capsys.readouterr()
        assert main(["fetch", *api]) == 0
        out = capsys.readouterr().out
        assert "is damaged or from an older version: paging the account again" in out
        assert "Fetched 30 posts from bsky:alice.bsky.social" in out


def test_ctrl_c_says_which_step_stopped(tmp_path, tiny_gpt2, capsys, monkeypatch):
    import huggingtweets.sources.sample as sample_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sample_module, "sample_posts", interrupted)
    assert main(["run", "--model", str(tiny_gpt2)]) == 130
    assert one_error_line(capsys.readouterr().err) == (
        "error: interrupted while fetching the posts; run the same command again: a network fetch goes on from "
        "its last page, a file or archive is read again")
    monkeypatch.undo()

    import huggingtweets.hub as hub

    assert main(["train", "--model", str(tiny_gpt2), "--max-steps", "2"]) == 0
    monkeypatch.setattr(hub, "stage", interrupted)
    assert main(["push", "sample", "--dry-run", "--license", "mit"]) == 130
    assert "error: interrupted while publishing" in one_error_line(capsys.readouterr().err)


def test_a_killed_save_leaves_nothing_behind_on_the_next_run(tmp_path, tiny_gpt2, capsys):
    args = ["--model", str(tiny_gpt2), "--max-steps", "2"]
    assert main(["train", *args]) == 0
    bot = tmp_path / "work" / "sample"
    # What a kill -9 in the middle of saving the model left: the dead process's half-written folder,
    # and one an older version left (no pid in its name). A live writer's temp file stays.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    half = bot / f".model.{dead.pid}.k2j4h_x1.tmp"
    half.mkdir()
    (half / "model.safetensors").write_bytes(os.urandom(1 << 20))
    old_style = bot / ".model.abc123xy.tmp"
    old_style.mkdir()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        in_use = bot / f".samples.jsonl.{live.pid}.q8w7e6r5.tmp"
        in_use.write_text("being written")
        assert main(["generate", *args, "-n", "1"]) == 0
        assert not half.exists() and not old_style.exists() and in_use.exists()
    finally:
        live.kill()


def test_the_model_records_the_learning_rate_it_trained_at_not_the_word_default(tmp_path, tiny_gpt2, capsys,
                                                                                  monkeypatch):
    """Giving the default's value is the same recipe; a new default makes the old model out of date."""
    args = ["--model", str(tiny_gpt2), "--max-steps", "2"]
    assert main(["train", *args]) == 0
    default = ht.Settings().peak_learning_rate
    capsys.readouterr()
    assert main(["card", *args, "--learning-rate", str(default)]) == 0
    assert "Model card:" in capsys.readouterr().out

    monkeypatch.setattr(ht.Settings, "peak_learning_rate", property(lambda s: s.learning_rate or default * 2))
    assert main(["card", *args]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"--learning-rate {default:g} -> {default * 2:g}" in err[0], err
