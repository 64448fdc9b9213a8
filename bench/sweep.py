"""python -m bench.sweep [--voice tweets] [--set KEY=VALUE ...] [--temperatures 1.0,0.8]: one row of the recipe sweep.

Trains one bot on one sample voice with the recipe given (the defaults, changed by
--set), samples 100 posts from the start of a post at each temperature, and says
which share of them the four-voice classifier of `bench --voice` attributes to the
bot's own voice, with the held-out perplexity, the share of empty or one-word
samples, the copy rate, distinct-2 and the training time. Each row is appended to
bench/results/voice-sweep.jsonl and the whole table rewritten to voice-sweep.md.
The sweep ran on `tweets`, the voice the default recipe matched worst; the recipe
it chose was then checked on all four voices with `python -m bench --voice`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results" / "voice-sweep.jsonl"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.sweep", description=__doc__.splitlines()[0])
    parser.add_argument("--voice", default="tweets", choices=("tweets", "reviews", "editorials", "movies"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a setting of the recipe")
    parser.add_argument("--source", help="train on these posts instead of the voice's sample account (file:PATH): "
                        "the GPU batch sweep used the 2,000 tweets of bench --gpu")
    parser.add_argument("--temperatures", default="1.0", help="comma-separated sampling temperatures")
    parser.add_argument("--out", default=str(RESULTS))
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    from datasets import load_from_disk

    import huggingtweets as ht
    from bench.voice import attribute, four_voice_classifier, recipe_from
    from huggingtweets.generate import copy_check, load_bot, unprompted
    from huggingtweets.pipeline import Workspace
    from huggingtweets.train import host_description
    from huggingtweets.voice import distinct_2, short_share

    recipe = recipe_from(args.set)
    source = args.source or ("sample" if args.voice == "tweets" else f"sample:{args.voice}")
    work = Path(tempfile.mkdtemp(prefix="bench-sweep-"))
    quiet = lambda _: None  # noqa: E731
    rows = []
    try:
        settings = ht.Settings(sources=[source], work=work, wandb="disabled", eval_samples=0, **recipe)
        start = time.perf_counter()
        ht.prepare(settings, say=quiet)
        metrics = ht.train(settings, say=quiet, write_card=False)
        train_s = time.perf_counter() - start
        ws = Workspace.of(settings)
        trained_on = list(load_from_disk(str(ws.dataset / "posts"))["train"]["text"])
        classifier = four_voice_classifier()
        model, tokenizer = load_bot(ws.model, settings.precision)
        for temperature in (float(t) for t in args.temperatures.split(",")):
            samples = unprompted(model, tokenizer, num_samples=100, max_new_tokens=settings.max_new_tokens,
                                 top_p=settings.top_p, temperature=temperature, seed=settings.seed)
            attributed = attribute(classifier, samples)
            rows.append({"host": host_description(), "voice": args.voice, "recipe": recipe,
                         **({"source": args.source} if args.source else {}), "temperature": temperature,
                         "own": attributed[args.voice], "attributed": attributed, "short": short_share(samples),
                         "copies": sum(copy_check(t, "", trained_on)[1] for t in samples) / len(samples),
                         "distinct_2": distinct_2(samples), "perplexity": metrics["eval_perplexity_after"],
                         "steps": metrics["steps"], "train_s": train_s, "samples": samples[:3]})
            print(row_line(rows[-1]), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "a", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    all_rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines() if line.strip()]
    out.with_suffix(".md").write_text(markdown(all_rows) + "\n", encoding="utf-8")


def recipe_text(recipe: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in recipe.items()) or "the defaults"


def row_line(r: dict) -> str:
    return (f"{r['voice']} {recipe_text(r['recipe'])} T={r['temperature']:g}: own voice {r['own']:.0%}, "
            f"perplexity {r['perplexity']:.1f}, empty or one word {r['short']:.0%}, copies {r['copies']:.0%}, "
            f"distinct-2 {r['distinct_2']:.2f}, {r['steps']} steps, {r['train_s']:.0f} s")


def share(x: float | None) -> str:
    return "-" if x is None else f"{x:.0%}"


def markdown(rows: list[dict]) -> str:
    hosts = sorted({r["host"] for r in rows})
    lines = [f"Host: {'; '.join(hosts)}. 100 unprompted samples a row, attributed by the four-voice classifier.", "",
             "| voice | recipe | temperature | own voice | held-out perplexity | empty or one word | copies | "
             "distinct-2 | steps | train s |", "| --- |" + " --- |" * 9]
    for r in rows:
        on = f" (on {r['source'].split('/')[-1]})" if r.get("source") else ""
        lines.append(f"| {r['voice']} | {recipe_text(r['recipe'])}{on} | {r['temperature']:g} | {r['own']:.0%} | "
                     f"{r['perplexity']:.1f} | {r['short']:.0%} | {share(r['copies'])} | {r['distinct_2']:.2f} | "
                     f"{r['steps']} | {r['train_s']:.0f}{' (' + r['note'] + ')' if r.get('note') else ''} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
