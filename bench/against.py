"""python -m bench.against [REV] [--runs 3]: the main job's training here against another commit's, in turns.

Issue 22's last line asks whether the main job's training time on the sample account at least halves, with its
validation perplexity no worse, on a host kind (Sapphire Rapids with AMX) that no session had at hand while the
work was done: this is that check as one command. It unpacks REV's tree (`git archive`, default BEFORE, the
commit before the issue's work) into a temp folder and runs `huggingtweets train` on the sample account from
each tree in turns (ABBA order, so that the host's drift falls on both alike), each run in a fresh work folder
and a process of its own, with the same virtual environment and the same cache (the base model converted once).
It reads each run's metrics.json (training seconds, perplexity after) and the process's peak memory, and prints
a table: each run, the medians, and their ratio. Extra arguments after `--` go to both `train` commands (a
tiny `--model` in the test).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The commit before issue 22's work (b896e15, freed memory kept for the next step, was its first): packed 64-token
# blocks, batch 8, bf16 autocast on fp32 weights, SDPA attention, torch's fused AdamW, the model's own loss.
BEFORE = "1fdb193"

# Runs `huggingtweets train` as its console script does and writes, whether training ended or stopped with a
# one-line error, the process's peak memory (VmHWM) and which huggingtweets it ran (the tree's, not the installed one).
CHILD = """
import json, os, runpy, sys
sys.argv = ["huggingtweets", *sys.argv[1:]]
try:
    runpy.run_module("huggingtweets", run_name="__main__", alter_sys=True)
finally:
    with open("/proc/self/status") as f:
        peak = next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024**2
    with open(os.environ["BENCH_PEAK_FILE"], "w") as out:
        json.dump({"peak_gib": peak, "code": sys.modules["huggingtweets"].__file__}, out)
"""


def unpack(rev: str, into: Path) -> Path:
    """REV's tracked files (no build outputs, no caches) in a folder of their own."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", "--format=tar", rev], capture_output=True)
    if archive.returncode:
        raise SystemExit(f"bench.against: git cannot read {rev!r} ({archive.stderr.decode().strip()}); "
                         "give a commit this clone has (a shallow clone may lack it: git fetch --unshallow)")
    into.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(into)
    return into


def train_once(tree: Path, work: Path, extra: list[str]) -> dict:
    """`huggingtweets train` on the sample account from `tree`'s code: training seconds, perplexity, peak."""
    peak_file = work.with_suffix(".json")
    env = {**os.environ, "PYTHONPATH": str(tree), "HF_HUB_OFFLINE": "1", "BENCH_PEAK_FILE": str(peak_file),
           "WANDB_MODE": "disabled"}
    done = subprocess.run([sys.executable, "-c", CHILD, "train", "sample",
                           "--work", str(work), *extra], env=env, cwd=tree, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"bench.against: training from {tree} failed:\n{done.stderr[-2000:]}")
    child = json.loads(peak_file.read_text())
    if not Path(child["code"]).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"bench.against: the run meant for {tree} imported {child['code']}")
    metrics = json.loads(next(work.glob("*/metrics.json")).read_text())
    return {"train_s": metrics["train_seconds"], "perplexity": metrics["eval_perplexity_after"],
            "peak_gib": child["peak_gib"]}


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    parser = argparse.ArgumentParser(prog="python -m bench.against", description=__doc__.splitlines()[0])
    parser.add_argument("rev", nargs="?", default=BEFORE, help=f"the commit to compare with (default {BEFORE})")
    parser.add_argument("--runs", type=int, default=3, help="runs of each (default 3)")
    parser.add_argument("--out", default=str(HERE / "results" / "against.json"))
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)

    sys.path.insert(0, str(ROOT))
    from bench.__main__ import _cpu, write_report
    from huggingtweets.train import host_description

    temp = Path(tempfile.mkdtemp(prefix="bench-against-"))
    try:
        trees = {args.rev: unpack(args.rev, temp / "rev"), "here": ROOT}
        runs: dict[str, list[dict]] = {name: [] for name in trees}
        for i in range(args.runs):
            order = list(trees) if i % 2 == 0 else list(reversed(trees))  # ABBA: neither always goes first
            for name in order:
                run = train_once(trees[name], temp / f"work-{name}-{i}", extra)
                runs[name].append(run)
                print(f"run {i + 1}, {name}: {run['train_s']:.1f} s of training, perplexity {run['perplexity']:.2f}, "
                      f"peak {run['peak_gib']:.2f} GiB", flush=True)
    finally:
        shutil.rmtree(temp, ignore_errors=True)

    median = {name: {key: statistics.median(r[key] for r in rs) for key in ("train_s", "perplexity", "peak_gib")}
              for name, rs in runs.items()}
    then, now = median[args.rev], median["here"]
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    changed = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "--untracked-files=no"],
                             capture_output=True, text=True).stdout.strip()
    here = (head.stdout.strip() or "?") + (" with changes" if changed else "")  # what "here" was, for the record
    report = {"host": host_description(), "cpu": _cpu(), "rev": args.rev, "here": here, "extra": extra, "runs": runs,
              "median": median, "speedup": then["train_s"] / now["train_s"],
              "halves": then["train_s"] >= 2 * now["train_s"] and now["perplexity"] <= then["perplexity"]}
    lines = [f"The main job's training, {args.runs} runs each in turns, on {report['host']} ({report['cpu']}); "
             f"here is {here}", "",
             "| code | training s (each run) | median | perplexity after | peak GiB |", "| --- | --- | --- | --- | --- |"]
    for name, rs in runs.items():
        each = ", ".join(f"{r['train_s']:.1f}" for r in rs)
        lines.append(f"| {name} | {each} | {median[name]['train_s']:.1f} | "
                     f"{median[name]['perplexity']:.2f} | {median[name]['peak_gib']:.2f} |")
    lines += ["", f"Training {report['speedup']:.2f}x as fast as {args.rev}; halved with perplexity no worse: "
                  f"{'yes' if report['halves'] else 'no'}"]
    write_report(report, "\n".join(lines), Path(args.out))


if __name__ == "__main__":
    main()
