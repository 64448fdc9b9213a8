"""python -m bench --gpu [--quick] [--out FILE]: the GPU targets, on this machine's GPU.

  gpt2           the steps of `huggingtweets run` with GPT-2 124M (random weights, the real GPT-2
                 tokenizer) on 3,200 posts and the default settings (4 passes, bf16 or fp16 chosen
                 by probe): the wall time of `train`, loading and saving the model included
  large-*        GPT-2 large (774M, random weights) under a 16 GiB cap
                 (torch.cuda.set_per_process_memory_fraction), the memory of Colab's T4: the
                 original's recipe (fp32, batch 1, 1,024-token blocks, dropout 0.1), ours, ours with
                 --gradient-checkpointing and ours with --lora, a few steps each: whether it fits,
                 the peak the allocator held, and seconds a step

The posts are the sample data's 2,000 real tweets (lines 1-2,000 of Hutto & Gilbert's
file, the part that is ours to use), 1,200 of them twice: the speed depends on how
many tokens there are, not on what they say. Each part runs in a process of its own,
so its peak and its memory cap are its own.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
CAP_GIB = 16
POSTS = 3200
LARGE = {"n_embd": 1280, "n_layer": 36, "n_head": 20}  # gpt2-large's shape
# What each large-* part changes from the defaults; "original" is the original huggingtweets' recipe.
LARGE_RECIPES = {
    "large-original": {"precision": "fp32", "batch_size": 1, "block_size": 1024, "dropout": -1},
    "large-ours": {},
    "large-checkpointing": {"gradient_checkpointing": True},
    "large-lora": {"lora": True},
}
SECTIONS = ("setup", "gpt2", *LARGE_RECIPES)


def main(quick: bool, out: Path) -> None:
    if not torch.cuda.is_available() and not os.environ.get("BENCH_GPU_TINY"):
        raise SystemExit("python -m bench --gpu needs a CUDA GPU; without one, run python -m bench")
    folder = Path(tempfile.mkdtemp(prefix="bench-gpu-"))
    report: dict = {"machine": {"gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else "none (tiny test)",
                                "torch": torch.__version__, "cuda": torch.version.cuda, "quick": quick,
                                "cap_gib": CAP_GIB}}
    try:
        for name in SECTIONS:
            print(f"bench --gpu: {name} ...", file=sys.stderr, flush=True)
            # stderr passes through: the steps' own progress lines are the progress here
            done = subprocess.run([sys.executable, "-m", "bench.gpu", name, str(folder)] + (["--quick"] if quick else []),
                                  cwd=HERE.parent, stdout=subprocess.PIPE, text=True)
            if done.returncode:  # the rest still runs: GPU time is too dear to lose the other parts
                print(f"bench --gpu: part {name} failed (its output is above)", file=sys.stderr, flush=True)
                report[name] = {"failed": True}
                if name == "setup":
                    raise SystemExit("bench --gpu: nothing to measure without the setup")
                continue
            report[name] = json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    from bench.__main__ import write_report

    write_report(report, markdown(report), out)


def section(name: str, folder: Path, quick: bool) -> dict:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if name == "setup":
        return _setup(folder)
    import huggingtweets as ht

    tiny = bool(os.environ.get("BENCH_GPU_TINY"))
    quiet = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    source = f"file:{folder / 'posts.jsonl'}"
    if name == "gpt2":
        settings = ht.Settings(work=folder / "work-gpt2", sources=[source], model=str(folder / "gpt2"),
                               wandb="disabled", **({"max_steps": 4} if tiny else {}))
        times = {}
        start = time.perf_counter()
        ht.fetch(settings, say=quiet)
        ht.prepare(settings, say=quiet)
        times["fetch_prepare_s"] = time.perf_counter() - start
        mark = time.perf_counter()
        metrics = ht.train(settings, say=quiet, write_card=False)
        times["train_wall_s"] = time.perf_counter() - mark  # loading, evaluating and saving included
        mark = time.perf_counter()
        ht.generate(settings, say=quiet)
        times["sample_s"] = time.perf_counter() - mark
        data = metrics["dataset"]
        return {**times, "posts": POSTS, "kept": data["train_posts"] + data["validation_posts"],
                "train_s": metrics["train_seconds"], "steps": metrics["steps"], "epochs": metrics["epochs"],
                "precision": metrics["precision"], "train_blocks": data["train_blocks"],
                "tokens_per_s": _tokens_per_s(metrics, settings), "peak_gpu_gib": _peak_gib()}
    # large-*: under the cap, a few steps; fits or not
    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, CAP_GIB * 2**30 / total))
    steps = 2 if tiny else (6 if quick else 12)
    settings = ht.Settings(work=folder / f"work-{name}", sources=[source], model=str(folder / "gpt2-large"),
                           wandb="disabled", max_steps=steps, no_checkpoints=True, **LARGE_RECIPES[name])
    try:  # train fetches and prepares first, as each step runs the ones before it that are missing
        metrics = ht.train(settings, say=quiet, write_card=False)
    except ht.errors.OutOfMemoryError as e:
        quiet(f"error: {e}")
        return {"fits": False, "peak_gpu_gib": _peak_gib(), "error": str(e)}
    return {"fits": True, "peak_gpu_gib": _peak_gib(), "steps": metrics["steps"], "precision": metrics["precision"],
            "s_per_step": metrics["train_seconds"] / metrics["steps"],
            "tokens_per_s": _tokens_per_s(metrics, settings),
            "eval_loss_before": metrics["eval_loss_before"], "eval_loss_after": metrics["eval_loss_after"]}


def _tokens_per_s(metrics: dict, settings) -> float:
    """Tokens trained on a second: packed blocks have no padding, so every token counts."""
    return metrics["steps"] * settings.batch_size * settings.block_size / metrics["train_seconds"]


def _peak_gib() -> float | None:
    """The most the caching allocator held at once: what the cap limits."""
    return torch.cuda.max_memory_reserved() / 2**30 if torch.cuda.is_available() else None


def _setup(folder: Path) -> dict:
    """The posts file and the two random-weight base models, with the real GPT-2 tokenizer."""
    from transformers import GPT2Config, GPT2LMHeadModel

    from bench.__main__ import gpt2_tokenizer
    from huggingtweets.posts import write_posts
    from huggingtweets.sources import sample

    real = sample.sample_posts(first=1, last=2000)
    copies = [dataclasses.replace(p, id=f"{p.id}-again") for p in real[:POSTS - len(real)]]
    write_posts(folder / "posts.jsonl", real + copies)
    tokenizer = gpt2_tokenizer()
    tiny = {"n_embd": 64, "n_layer": 2, "n_head": 2} if os.environ.get("BENCH_GPU_TINY") else None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    sizes = {}
    for name, shape in (("gpt2", tiny or {}), ("gpt2-large", tiny or LARGE)):
        torch.manual_seed(0)
        with torch.device(device):  # initialising 774M weights on a GPU takes seconds, not a minute
            model = GPT2LMHeadModel(GPT2Config(**shape))
        model.save_pretrained(folder / name)
        tokenizer.save_pretrained(folder / name)
        sizes[name] = sum(p.numel() for p in model.parameters())
        del model
    return {"posts": POSTS, "params": sizes}


def _gib(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f}"


def markdown(r: dict) -> str:
    m, g = r["machine"], r["gpt2"]
    lines = [f"GPU: {m['gpu']}, torch {m['torch']}, CUDA {m['cuda']}" + (" (quick)" if m["quick"] else ""), ""]
    lines += ["GPT-2 124M on 3,200 posts: failed"] if g.get("failed") else [
             f"GPT-2 124M on {g['posts']:,} posts ({g['kept']:,} kept, {g['train_blocks']:,} blocks), {g['steps']} steps "
             f"({g['epochs']:.0f} passes) in {g['precision']}: `train` {g['train_wall_s']:.0f} s wall "
             f"({g['train_s']:.0f} s of steps, {g['tokens_per_s']:,.0f} tokens/s), sampling {g['sample_s']:.1f} s, "
             f"peak {_gib(g['peak_gpu_gib'])} GiB"]
    lines += ["", f"GPT-2 large (774M) under a {m['cap_gib']} GiB cap:", "",
             "| recipe | fits | peak GiB | s/step | tokens/s |", "| --- | --- | --- | --- | --- |"]
    for name in LARGE_RECIPES:
        x = r[name]
        if x.get("failed"):
            lines.append(f"| {name[6:]} | failed (not for lack of memory) | - | - | - |")
            continue
        lines.append(f"| {name[6:]} | {'yes' if x['fits'] else 'no: out of memory'} | {_gib(x['peak_gpu_gib'])} | "
                     + (f"{x['s_per_step']:.2f} | {x['tokens_per_s']:,.0f} |" if x["fits"] else "- | - |"))
    return "\n".join(lines)


if __name__ == "__main__":
    print(json.dumps(section(sys.argv[1], Path(sys.argv[2]), "--quick" in sys.argv[3:])))
