"""Training runs unchanged under `accelerate launch` (torchrun underneath): two
processes on this CPU, talking over gloo, share the batches; both finish, only
the main one speaks and writes the model, and the validation loss goes down."""

import json
import os
import subprocess
import sys
from pathlib import Path

import huggingtweets as ht


def test_two_processes_under_accelerate_launch(tmp_path, tiny_gpt2):
    settings = ht.Settings(sources=["sample"], model=str(tiny_gpt2), work=tmp_path / "work")
    ht.prepare(settings, say=lambda _: None)  # the data first, as the README says
    accelerate = Path(sys.executable).parent / "accelerate"
    # --multi_gpu picks accelerate's torchrun launcher; without a GPU its processes train on the CPU over gloo.
    # The GPUs are hidden: on a machine with one, two processes on the same device would fail (NCCL).
    done = subprocess.run([str(accelerate), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", "0",
                           "-m", "huggingtweets", "train", "sample", "--model", str(tiny_gpt2), "--max-steps", "6"],
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "HUGGINGTWEETS_WORK": str(tmp_path / "work"), "CUDA_VISIBLE_DEVICES": ""})
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert sorted(line for line in lines if line.startswith("Process ")) == ["Process 0 of 2: done",
                                                                             "Process 1 of 2: done"]
    assert "in each of 2 processes" in done.stdout
    assert sum(line.startswith("Validation perplexity after training") for line in lines) == 1  # the main one speaks
    bot = tmp_path / "work" / "sample"
    assert (bot / "model" / "model.safetensors").is_file() and (bot / "model" / "README.md").is_file()
    assert not (bot / "checkpoints").exists()
    metrics = json.loads((bot / "metrics.json").read_text())
    assert metrics["steps"] == 6 and metrics["eval_loss_after"] < metrics["eval_loss_before"]
    losses = [e["loss"] for e in metrics["log_history"] if "loss" in e]
    assert len(losses) == 6 and losses[-1] < losses[0]
    from transformers import pipeline

    generator = pipeline("text-generation", model=str(bot / "model"))
    assert generator("My dream is", max_new_tokens=3)[0]["generated_text"].startswith("My dream is")


def test_several_processes_need_the_data_first(tmp_path, tiny_gpt2, monkeypatch, capsys):
    from huggingtweets.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    assert main(["train", "sample", "--model", str(tiny_gpt2)]) == 1
    assert "run `huggingtweets prepare` with the same options first" in capsys.readouterr().err


def test_a_line_said_is_one_write_so_processes_cannot_split_it(monkeypatch):
    """Under accelerate launch PYTHONUNBUFFERED is set: print's text and its newline were two writes, so another
    process's line could land between them ('Process 1 of 2: doneValidation perplexity ...' was seen)."""
    from huggingtweets.pipeline import _say

    writes = []

    class Recorder:
        def write(self, text):
            writes.append(text)
            return len(text)

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stdout", Recorder())
    _say("Process 1 of 2: done")
    assert writes == ["Process 1 of 2: done\n"]
