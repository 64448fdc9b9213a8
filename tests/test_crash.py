"""Kill -9 in the middle of fetch, prepare and training; the same command run
again resumes and ends where an uninterrupted run ends. Damaged checkpoints are
skipped, never loaded."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from huggingtweets.train import checkpoint_problem

from test_x import TOKEN, FakeX


def start(*args, env=None):
    return subprocess.Popen([sys.executable, "-m", "huggingtweets", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})


def kill_when(proc, ready, timeout=300):
    """SIGKILL the process as soon as `ready()` is true; fail if it ended first."""
    deadline = time.monotonic() + timeout
    while not ready():
        assert proc.poll() is None, f"the run ended before the kill point:\n{proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def finish(*args, env=None):
    proc = start(*args, env=env)
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err[-3000:]
    return out


def test_kill_during_fetch_then_resume(loopback, tmp_path):
    fake = FakeX(loopback, n=600)
    slow = fake.timeline

    def timeline(req, m):
        time.sleep(0.2)  # a slow network, so the kill lands between pages
        return slow(req, m)

    loopback.routes.clear()
    loopback.route(r"/2/users/by/username/(\w+)", fake.lookup)
    loopback.route(r"/2/users/(\d+)/tweets", timeline)
    env = {"X_BEARER_TOKEN": TOKEN}
    args = ["fetch", "@jack", "--api-base", loopback.url]
    pages = tmp_path / "work" / "jack" / "fetch" / "x-jack"
    proc = start(*args, env=env)
    kill_when(proc, lambda: (pages / "page-00003.jsonl").exists())
    assert not (tmp_path / "work" / "jack" / "posts.jsonl").exists()

    loopback.requests.clear()
    finish(*args, env=env)
    tokens = [r.query.get("pagination_token") for r in loopback.requests if r.path.endswith("/tweets")]
    assert "tok-100" not in tokens  # it went on from where it stopped
    resumed = (tmp_path / "work" / "jack" / "posts.jsonl").read_text()
    finish(*args, "--work", str(tmp_path / "clean"), env=env)
    assert resumed == (tmp_path / "clean" / "jack" / "posts.jsonl").read_text()
    assert len(resumed.splitlines()) == 600


# The child holds still once the dataset's first half (the posts) is saved in its temp folder, so the kill
# lands in the middle of the build: with the tokenizer loaded, the blocks made, half the folder written.
HOLD_MID_BUILD = """
import sys, time
from pathlib import Path
import datasets
real = datasets.DatasetDict.save_to_disk
def save_to_disk(self, path, *a, **kw):
    real(self, path, *a, **kw)
    if Path(path).name == "posts":
        (Path(path).parent / "posts-saved").touch()
        time.sleep(120)
datasets.DatasetDict.save_to_disk = save_to_disk
from huggingtweets.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_kill_during_prepare_leaves_nothing_half_written(tmp_path, tiny_gpt2):
    bot = tmp_path / "work" / "sample"
    finish("prepare", "--model", str(tiny_gpt2), "--block-size", "32")
    before = (bot / "dataset" / "info.json").read_text()
    args = ["prepare", "--model", str(tiny_gpt2)]  # blocks of 64: the dataset is built again
    proc = subprocess.Popen([sys.executable, "-c", HOLD_MID_BUILD, *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    kill_when(proc, lambda: any(bot.glob(".dataset.*.tmp/posts-saved")))
    # Killed mid-build: its half-written folder is there, and the dataset in place is the old one, whole.
    assert [p.name for p in bot.glob(".dataset.*.tmp")] and (bot / "dataset" / "info.json").read_text() == before
    from huggingtweets.dataset import load_blocks

    assert len(load_blocks(bot / "dataset")["train"][0]["input_ids"]) == 32

    out = finish(*args)
    assert "Dataset:" in out
    finish(*args, "--work", str(tmp_path / "clean"))
    for name in ("stats.json", "dataset/info.json"):
        assert (bot / name).read_text() == (tmp_path / "clean" / "sample" / name).read_text()
    assert json.loads((bot / "dataset" / "info.json").read_text())["block_size"] == 64
    for split in ("train", "validation"):
        assert load_blocks(bot / "dataset")[split]["input_ids"] == \
            load_blocks(tmp_path / "clean" / "sample" / "dataset")[split]["input_ids"]
    # The killed run's temp folder is gone, and nothing else is left beside the dataset.
    assert sorted(p.name for p in bot.iterdir() if p.name.startswith(".")) == []


@pytest.mark.slow  # over 30 s on 2 cores: keeps the default suite under 15 minutes; CI runs it
def test_kill_during_training_then_the_same_command_resumes(tmp_path, tiny_gpt2):
    # fp32: the losses are compared to 1e-3, and bf16 (auto on a GPU, and on some CPUs) rounds activations to
    # about 0.4%, so nondeterministic GPU kernels could tip a resumed run off an uninterrupted one.
    args = ["train", "--model", str(tiny_gpt2), "--max-steps", "200", "--epochs", "20", "--batch-size", "4",
            "--block-size", "32", "--checkpoint-minutes", "0", "--precision", "fp32"]
    bot = tmp_path / "work" / "sample"
    finish("prepare", "--model", str(tiny_gpt2), "--block-size", "32")
    proc = start(*args)
    kill_when(proc, lambda: (bot / "checkpoints" / "checkpoint-50" / "trainer_state.json").exists()
              and (bot / "checkpoints" / "checkpoint-50" / "rng_state.pth").exists())
    assert not (bot / "model").exists()
    out = finish(*args)
    assert "Resuming from checkpoint-" in out
    resumed = json.loads((bot / "metrics.json").read_text())
    finish("prepare", "--model", str(tiny_gpt2), "--block-size", "32", "--work", str(tmp_path / "clean"))
    finish(*args, "--work", str(tmp_path / "clean"))
    clean = json.loads((tmp_path / "clean" / "sample" / "metrics.json").read_text())
    assert resumed["steps"] == clean["steps"] == 200
    losses = lambda m: {e["step"]: e["loss"] for e in m["log_history"] if "loss" in e}  # noqa: E731
    assert sorted(losses(resumed)) == list(range(1, 201))
    # The loss curve continues: same data order, optimizer and scheduler state after the resume.
    assert all(abs(losses(resumed)[s] - losses(clean)[s]) < 1e-3 for s in range(1, 201))
    assert abs(resumed["eval_loss_after"] - clean["eval_loss_after"]) < 1e-3


def checkpoint(tmp_path, tiny_gpt2):
    """A real checkpoint from a short run that is stopped before it cleans up."""
    from huggingtweets.cli import main

    from transformers import Trainer

    real = Trainer.training_step
    calls = []

    def stop_after_3(self, *a, **kw):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        return real(self, *a, **kw)

    Trainer.training_step = stop_after_3
    try:
        assert main(["train", "--model", str(tiny_gpt2), "--max-steps", "8", "--checkpoint-minutes", "0"]) == 130
    finally:
        Trainer.training_step = real
    return tmp_path / "work" / "sample" / "checkpoints" / "checkpoint-2"


DAMAGE = [
    (lambda c: (c / "optimizer.pt").unlink(), "optimizer.pt missing"),
    (lambda c: (c / "optimizer.pt").write_bytes((c / "optimizer.pt").read_bytes()[:-100]), "optimizer.pt is cut short"),
    (lambda c: (c / "scheduler.pt").write_bytes(b"PK\x03\x04" + b"\0" * 200), "scheduler.pt is cut short or damaged"),
    (lambda c: (c / "model.safetensors").write_bytes((c / "model.safetensors").read_bytes()[:-10]),
     "model.safetensors is cut short"),
    (lambda c: (c / "model.safetensors").write_bytes(b"\xff" * 64), "model.safetensors is damaged"),
    (lambda c: (c / "trainer_state.json").write_text("{\"global_step\": "), "trainer_state.json is damaged"),
    (lambda c: (c / "trainer_state.json").write_text("{\"global_step\": 7}"), "trainer_state.json does not match"),
]


def test_a_damaged_checkpoint_is_skipped_with_a_message(tmp_path, tiny_gpt2, capsys):
    import shutil

    from huggingtweets.cli import main

    ckpt = checkpoint(tmp_path, tiny_gpt2)
    assert checkpoint_problem(ckpt) is None
    pristine = tmp_path / "pristine"
    shutil.copytree(ckpt, pristine)
    for damage, problem in DAMAGE:
        shutil.rmtree(ckpt)
        shutil.copytree(pristine, ckpt)
        damage(ckpt)
        assert checkpoint_problem(ckpt).startswith(problem)
    # The last damage stays: training skips that checkpoint, says why, and starts over.
    capsys.readouterr()
    assert main(["train", "--model", str(tiny_gpt2), "--max-steps", "8"]) == 0
    out = capsys.readouterr().out
    assert "Skipping checkpoint-2: trainer_state.json does not match the checkpoint's step" in out
    assert "Resuming" not in out
