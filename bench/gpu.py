"""python -m bench --gpu [--quick] [--out FILE]: the GPU targets, on this machine's GPU.

  gpt2           the steps of `huggingtweets run` with GPT-2 124M (random weights, the real GPT-2
                 tokenizer) on 3,200 posts and the default settings (2 passes, the batch chosen for
                 the GPU, bf16 or fp16 chosen by probe): the wall time of `train`, loading and saving
                 the model included, and the steps' own throughput (evaluation pauses and the first
                 step left out), timed on the GPU between the log entries of consecutive steps
  gpt2-launched  the same with --no-cuda-graphs: each step's kernels launched one by one, as before
                 the steps were replayed as CUDA graphs (huggingtweets/cuda_graphs.py)
  gpt2-batch8    the same with 8 blocks a step, as on a CPU (the GPU default before issue 22)
  profile        one training step of GPT-2 124M at the GPU's batch, by op: how much of the step
                 the GPU is busy, and its biggest kernels
  profile-graphs the same step with its forward and backward replayed as CUDA graphs, as train does
  profile-bf16   the same step with the weights of the matrix products stored in bf16 and fp32
                 copies of them in the optimizer (grads copied to fp32, fused AdamW, copied back,
                 each a multi-tensor launch): what a step costs without autocast's weight casts
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
GPT2_RECIPES = {"gpt2": {}, "gpt2-launched": {"no_cuda_graphs": True}, "gpt2-batch8": {"batch_size": 8}}
PROFILES = ("profile", "profile-graphs", "profile-bf16")
SECTIONS = ("setup", *GPT2_RECIPES, *PROFILES, *LARGE_RECIPES)


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


def section(name: str, folder: Path, quick: bool, overrides: dict | None = None) -> dict:
    """One part; `overrides` (settings, from --set KEY=VALUE) change its recipe, to try other ones."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if name == "setup":
        return _setup(folder)
    if name in PROFILES:
        return _profile(folder, overrides or {}, bf16_weights=name == "profile-bf16", graphs=name == "profile-graphs")
    import huggingtweets as ht

    tiny = bool(os.environ.get("BENCH_GPU_TINY"))
    quiet = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    source = f"file:{folder / 'posts.jsonl'}"
    if name in GPT2_RECIPES:
        settings = ht.Settings(work=folder / f"work-{name}", sources=[source], model=str(folder / "gpt2"),
                               wandb="disabled", **{**({"max_steps": 4} if tiny else {}), **GPT2_RECIPES[name],
                                                    **(overrides or {})})
        times = {}
        start = time.perf_counter()
        ht.fetch(settings, say=quiet)
        ht.prepare(settings, say=quiet)
        times["fetch_prepare_s"] = time.perf_counter() - start
        mark = time.perf_counter()
        clock = StepClock()
        metrics = ht.train(settings, say=quiet, write_card=False, on_log=clock)
        times["train_wall_s"] = time.perf_counter() - mark  # loading, evaluating and saving included
        mark = time.perf_counter()
        ht.generate(settings, say=quiet)
        times["sample_s"] = time.perf_counter() - mark
        data = metrics["dataset"]
        return {**times, "posts": POSTS, "kept": data["train_posts"] + data["validation_posts"],
                "train_s": metrics["train_seconds"], "steps": metrics["steps"], "epochs": metrics["epochs"],
                "precision": metrics["precision"], "train_blocks": data["train_blocks"],
                "batch_size": metrics["batch_size"], "learning_rate": metrics["learning_rate"],
                "cuda_graphs": metrics["cuda_graphs"], "tokens_per_s": _tokens_per_s(metrics), **clock.throughput(metrics),
                "eval_loss_after": metrics["eval_loss_after"], "peak_gpu_gib": _peak_gib()}
    # large-*: under the cap, a few steps; fits or not
    if torch.cuda.is_available():
        total = torch.cuda.get_device_properties(0).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, CAP_GIB * 2**30 / total))
    steps = 2 if tiny else (16 if quick else 32)  # 16: 12 steps timed between the 4 evaluations
    settings = ht.Settings(work=folder / f"work-{name}", sources=[source], model=str(folder / "gpt2-large"),
                           wandb="disabled", max_steps=steps, no_checkpoints=True,
                           **{**LARGE_RECIPES[name], **(overrides or {})})
    clock = StepClock()
    try:  # train fetches and prepares first, as each step runs the ones before it that are missing
        metrics = ht.train(settings, say=quiet, write_card=False, on_log=clock)
    except ht.errors.OutOfMemoryError as e:
        quiet(f"error: {e}")
        return {"fits": False, "peak_gpu_gib": _peak_gib(), "error": str(e)}
    return {"fits": True, "peak_gpu_gib": _peak_gib(), "steps": metrics["steps"], "precision": metrics["precision"],
            "batch_size": metrics["batch_size"], "block_size": settings.block_size, "cuda_graphs": metrics["cuda_graphs"],
            "s_per_step": metrics["train_seconds"] / metrics["steps"],
            "tokens_per_s": _tokens_per_s(metrics), **clock.throughput(metrics),
            "eval_loss_before": metrics["eval_loss_before"], "eval_loss_after": metrics["eval_loss_after"]}


def _tokens_per_s(metrics: dict) -> float:
    """Tokens trained on a second of `trainer.train()` (evaluation pauses, the first step's warm-up included):
    packed blocks have no padding, so every token counts."""
    return metrics["steps"] * metrics["batch_size"] * metrics["dataset"]["block_size"] / metrics["train_seconds"]


class StepClock:
    """The steps' own throughput: a CUDA event recorded at each step's log entry (logged every step on runs this
    short), so the time between two consecutive steps' entries is that step's on the GPU's own clock; intervals
    with an evaluation in them, and the first step (warm-up), are left out."""

    def __init__(self) -> None:
        self.marks: list[tuple[int, str, object]] = []

    def __call__(self, entry: dict) -> None:
        if torch.cuda.is_available() and ("loss" in entry or "eval_loss" in entry):
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            self.marks.append((entry["step"], "eval" if "eval_loss" in entry else "train", event))

    def throughput(self, metrics: dict) -> dict:
        if not torch.cuda.is_available():
            return {}
        torch.cuda.synchronize()
        seconds = steps = 0
        for (step0, kind0, e0), (step1, kind1, e1) in zip(self.marks, self.marks[1:]):
            if kind0 == kind1 == "train" and step1 > step0:  # no evaluation between them
                seconds += e0.elapsed_time(e1) / 1000
                steps += step1 - step0
        if not steps:
            return {}
        tokens = metrics["batch_size"] * metrics["dataset"]["block_size"]
        return {"step_s": seconds / steps, "steps_timed": steps, "step_tokens_per_s": tokens * steps / seconds}


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


def _rate(x: dict, key: str) -> str:
    return f"{x[key]:,.0f}" if x.get(key) is not None else "-"


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [f"GPU: {m['gpu']}, torch {m['torch']}, CUDA {m['cuda']}" + (" (quick)" if m["quick"] else ""), "",
             f"GPT-2 124M on {POSTS:,} posts:", "",
             "| recipe | batch | steps | `train` wall s | tokens/s of `train` | tokens/s of the steps | eval loss | "
             "peak GiB |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name in GPT2_RECIPES:
        g = r.get(name, {"failed": True})
        if g.get("failed"):
            lines.append(f"| {name} | failed | - | - | - | - | - | - |")
            continue
        lines.append(f"| {name} | {g['batch_size']} | {g['steps']} ({g['epochs']:.2g} passes over {g['train_blocks']:,} "
                     f"blocks) | {g['train_wall_s']:.1f} | {_rate(g, 'tokens_per_s')} | {_rate(g, 'step_tokens_per_s')} | "
                     f"{g['eval_loss_after']:.2f} | {_gib(g['peak_gpu_gib'])} |")
    for p in (r.get(name, {}) for name in PROFILES):
        if not p or p.get("failed"):
            continue
        busy = (f", the GPU busy {p['gpu_busy_s'] * 1000:.1f} ms of it in {p['launches']} kernels"
                if p.get("gpu_busy_s") else "")
        how = ", replayed as CUDA graphs" if p.get("graphs") else ""
        lines += ["", f"One step at batch {p['batch_size']}, {p['weights']} weights{how}: {p['step_s'] * 1000:.1f} ms{busy}; "
                  "by kernel: " + ", ".join(f"{k['op']} {k['share']:.0%}" for k in p["kernels"][:6])]
    lines += ["", f"GPT-2 large (774M) under a {m['cap_gib']} GiB cap:", "",
              "| recipe | fits | batch x block | peak GiB | s/step of the steps | tokens/s of `train` | "
              "tokens/s of the steps |", "| --- | --- | --- | --- | --- | --- | --- |"]
    for name in LARGE_RECIPES:
        x = r.get(name, {"failed": True})
        if x.get("failed"):
            lines.append(f"| {name[6:]} | failed (not for lack of memory) | - | - | - | - | - |")
            continue
        if not x["fits"]:
            lines.append(f"| {name[6:]} | no: out of memory | - | {_gib(x['peak_gpu_gib'])} | - | - | - |")
            continue
        step = f"{x['step_s']:.3f}" if x.get("step_s") else "-"
        lines.append(f"| {name[6:]} | yes | {x['batch_size']} x {x['block_size']} | {_gib(x['peak_gpu_gib'])} | {step} | "
                     f"{_rate(x, 'tokens_per_s')} | {_rate(x, 'step_tokens_per_s')} |")
    return "\n".join(lines)


def _profile(folder: Path, overrides: dict, bf16_weights: bool = False, graphs: bool = False) -> dict:
    """One training step of GPT-2 124M as train.py runs it on a GPU (autocast, the model's own loss, clipping,
    fused AdamW), at the batch `train` would choose for the 3,200 posts: the GPU's busy time against the step's
    wall time, and the biggest kernels. `graphs`: the forward and backward replayed as CUDA graphs (GraphedLoss)."""
    from torch.profiler import ProfilerActivity, profile
    from transformers import GPT2LMHeadModel

    import huggingtweets as ht
    from huggingtweets.cuda_graphs import GraphedLoss
    from huggingtweets.train import one_kernel_gelu, plan_steps

    on_gpu = torch.cuda.is_available()
    device = "cuda" if on_gpu else "cpu"
    settings = ht.Settings(**overrides)
    plan = plan_steps(settings, train_blocks=830, on_gpu=on_gpu)  # the gpt2 part's blocks
    model = GPT2LMHeadModel.from_pretrained(folder / "gpt2").to(device)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    one_kernel_gelu(model)  # as train.setup_model does
    model.train()
    ids = torch.randint(0, model.config.vocab_size, (plan.batch_size, settings.block_size), device=device)
    dtype = torch.bfloat16 if not on_gpu or torch.cuda.is_bf16_supported() else torch.float16
    if bf16_weights:
        from huggingtweets.master import fp32_output, matmul_params

        low = list(matmul_params(model))
        masters = [p.detach().float().clone() for p in low]  # fp32 copies, for the optimizer
        for p in low:
            p.data = p.data.to(dtype)
        model.get_input_embeddings().register_forward_hook(fp32_output)  # the residual stream in fp32, as autocast
        others = [p for p in model.parameters() if p.dtype == torch.float32]
        grads32 = [torch.empty_like(m) for m in masters]
        optimizer = torch.optim.AdamW(masters + others, lr=plan.learning_rate, fused=True)
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=plan.learning_rate, fused=True)
    graphed = GraphedLoss(model, dtype, say=lambda line: print(line, file=sys.stderr)) if graphs and on_gpu else None

    def step() -> None:
        loss = graphed(ids, ids) if graphed else None
        if loss is None:
            with torch.autocast(device, dtype=dtype):
                loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        if bf16_weights:
            torch._foreach_copy_(grads32, [p.grad for p in low])
            for m, g in zip(masters, grads32):
                m.grad = g
        optimizer.step()
        if bf16_weights:
            with torch.no_grad():
                torch._foreach_copy_(low, masters)
        optimizer.zero_grad(set_to_none=True)
        model.zero_grad(set_to_none=True)

    for _ in range(3):
        step()
    if on_gpu:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(10):
        step()
    if on_gpu:
        torch.cuda.synchronize()
    step_s = (time.perf_counter() - start) / 10
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_gpu else [])
    with profile(activities=activities) as prof:
        step()
        if on_gpu:
            torch.cuda.synchronize()
    from torch.autograd import DeviceType

    # Kernels only (the ops that launched them carry their time too): the GPU's busy time; on a CPU, the ops
    kind = DeviceType.CUDA if on_gpu else DeviceType.CPU
    key = "self_device_time_total" if on_gpu else "self_cpu_time_total"
    rows = [e for e in prof.key_averages() if e.device_type == kind and getattr(e, key) > 0]
    busy = sum(getattr(e, key) for e in rows) / 1e6
    top = sorted(rows, key=lambda e: getattr(e, key), reverse=True)[:8]
    return {"batch_size": plan.batch_size, "weights": "bf16, fp32 copies in the optimizer" if bf16_weights else "fp32",
            "graphs": graphed is not None and graphed.replaying, "step_s": step_s, "gpu_busy_s": busy if on_gpu else None,
            "tokens_per_s": plan.batch_size * settings.block_size / step_s, "launches": sum(e.count for e in rows),
            "kernels": [{"op": e.key[:80], "share": getattr(e, key) / 1e6 / busy, "calls": e.count} for e in top]}


if __name__ == "__main__":
    import argparse

    from bench.voice import recipe_from

    parser = argparse.ArgumentParser(prog="python -m bench.gpu", description="One part of the GPU bench in a process "
                                     "of its own, its figures as JSON on the last line (python -m bench --gpu runs "
                                     "them all in turn).")
    parser.add_argument("part", choices=SECTIONS, help="setup first: it makes the posts and models the others use")
    parser.add_argument("folder", type=Path, help="the parts' shared folder")
    parser.add_argument("--quick", action="store_true", help="fewer steps for GPT-2 large")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting changed from the part's recipe, to try another one (repeatable)")
    args = parser.parse_args()
    print(json.dumps(section(args.part, args.folder, args.quick, recipe_from(args.set))))
