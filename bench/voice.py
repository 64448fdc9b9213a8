"""python -m bench --voice [--quick] [--set KEY=VALUE ...] [--out FILE]: does each bot sound like its voice?

Trains a bot on each of the four built-in voices (`sample` tweets, `sample:reviews`,
`sample:editorials`, `sample:movies`: 450 lines each, from the first half of each
file) with the default recipe, or with the settings given by --set (the sweep's
way of trying a recipe), runs `eval` on each, then attributes every bot's 100
unprompted samples with a classifier trained on the four voices' reference text
(1,000 other lines each): a 4x4 table whose diagonal is the voice match, beside the
base model's row and the real held-out posts' (the ceiling). With the time per bot,
the held-out bits per byte and the share of empty or one-word samples.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
VOICES = ("tweets", "reviews", "editorials", "movies")


def _value(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False, "none": None}.get(text.lower(), text)


def recipe_from(overrides: list[str]) -> dict[str, Any]:
    """--set KEY=VALUE items as settings, each KEY a field of Settings."""
    import huggingtweets as ht

    given = dict(item.split("=", 1) for item in overrides)
    known = {f.name for f in dataclasses.fields(ht.Settings)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise SystemExit(f"--set {', '.join(unknown)}: not a setting (one of {', '.join(sorted(known))})")
    return {k: _value(v) for k, v in given.items()}


def four_voice_classifier():
    """Which of the four voices a text is in: the eval's features, trained on each voice's reference lines."""
    from huggingtweets.sources.sample import voice_posts
    from huggingtweets.voice import _classifier

    texts, labels = [], []
    for v in VOICES:
        lines = [p.text for p in voice_posts(v, "reference")]
        texts += lines
        labels += [v] * len(lines)
    return _classifier().fit(texts, labels)


def attribute(model, texts: list[str]) -> dict[str, float]:
    predicted = list(model.predict(texts)) if texts else []
    return {v: predicted.count(v) / len(predicted) if predicted else 0.0 for v in VOICES}


def main(quick: bool, out: Path, overrides: list[str]) -> None:
    import huggingtweets as ht
    from huggingtweets import pipeline
    from huggingtweets.models import choose_precision
    from huggingtweets.train import host_description

    recipe = recipe_from(overrides)
    if quick:
        recipe.setdefault("max_steps", 4)
        recipe.setdefault("eval_samples", 20)
    work = Path(tempfile.mkdtemp(prefix="bench-voice-"))
    quiet = lambda _: None  # noqa: E731
    report: dict[str, Any] = {"machine": {"host": host_description(), "precision": choose_precision("auto")[0],
                                          "quick": quick}, "recipe": recipe, "bots": {}}
    try:
        classifier = four_voice_classifier()
        for voice in VOICES:
            source = "sample" if voice == "tweets" else f"sample:{voice}"
            settings = ht.Settings(sources=[source], work=work, wandb="disabled",
                                   **{"eval_samples": 100, **recipe})
            print(f"bench --voice: {source} ...", file=sys.stderr, flush=True)
            start = time.perf_counter()
            ht.prepare(settings, say=quiet)
            metrics = ht.train(settings, say=quiet, write_card=False)
            train_s = time.perf_counter() - start
            mark = time.perf_counter()
            e = ht.evaluate(settings, say=quiet)
            ws = pipeline.Workspace.of(settings)
            from datasets import load_from_disk

            held_out = list(load_from_disk(str(ws.dataset / "posts"))["validation"]["text"])
            report["bots"][voice] = {
                "attributed": attribute(classifier, e.samples), "real": attribute(classifier, held_out),
                "base": attribute(classifier, e.base_samples), "voice_match": e.voice_match,
                "voice_match_base": e.voice_match_base, "voice_match_real": e.voice_match_real, "auc": e.auc,
                "bits_per_byte_before": e.bits_per_byte_before, "bits_per_byte_after": e.bits_per_byte_after,
                "short_share": e.short_share, "copy_share": e.copy_share, "distinct_2": e.distinct_2,
                "train_s": train_s, "eval_s": time.perf_counter() - mark, "steps": metrics["steps"],
                "perplexity_after": metrics["eval_perplexity_after"], "base_model": metrics["base_model"],
                "samples": e.samples[:3]}
            print(f"  {voice}: {report['bots'][voice]['attributed'][voice]:.0%} its own voice, {e.line()}, "
                  f"{train_s:.0f} s to train", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    table = markdown(report)
    out.with_suffix(".md").write_text(table + "\n")
    print(table)
    print(f"\nreport: {out}")


def markdown(r: dict[str, Any]) -> str:
    bots = r["bots"]
    recipe = ", ".join(f"{k}={v}" for k, v in r["recipe"].items()) or "the defaults"
    lines = [f"Host: {r['machine']['host']}; recipe: {recipe}" + (" (quick)" if r["machine"]["quick"] else ""), "",
             "Share of each bot's unprompted samples a four-voice classifier attributes to each voice:", "",
             "| bot | " + " | ".join(VOICES) + " | real posts (own voice) | train s | bits/byte (base) | "
             "empty or one word | copies |",
             "| --- |" + " --- |" * (len(VOICES) + 5)]
    for voice, b in bots.items():
        lines.append(f"| {voice} | " + " | ".join(f"**{b['attributed'][v]:.0%}**" if v == voice else
                                                  f"{b['attributed'][v]:.0%}" for v in VOICES)
                     + f" | {b['real'][voice]:.0%} | {b['train_s']:.0f} | {b['bits_per_byte_after']:.2f} "
                       f"({b['bits_per_byte_before']:.2f}) | {b['short_share']:.0%} | {b['copy_share']:.0%} |")
    if bots:
        base = next(iter(bots.values()))["base"]
        lines.append("| base model | " + " | ".join(f"{base[v]:.0%}" for v in VOICES) + " | | | | | |")
        own = [b["attributed"][v] for v, b in bots.items()]
        lines += ["", f"Own voice: mean {sum(own) / len(own):.0%}, lowest {min(own):.0%}; the eval's own voice match "
                      "(account vs the other voices and the base model): "
                      + ", ".join(f"{v} {b['voice_match']:.0%} (real {b['voice_match_real']:.0%})"
                                  for v, b in bots.items())]
    return "\n".join(lines)
