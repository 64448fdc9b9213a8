"""The steps, as plain functions over one work folder, WORK/<name>/:

    fetch    -> posts.jsonl
    prepare  -> stats.json, dataset/
    train    -> model/ (with README.md, the card), metrics.json
    generate -> samples.jsonl
    eval     -> eval.json (does it sound like them? see voice.py)
    card     -> model/README.md

made.json records what each output was made from: the sources and a digest of
posts.jsonl, then for the dataset, the model and the samples the settings that
change them and a fingerprint of the output before. A step asked for always runs;
the earlier steps it needs run first when their output is missing or was made from
other inputs, with one line saying why, so the same inputs always give the same
bot. `card` never trains: it refuses when the model is missing or out of date.
The CLI, the notebook and other people's code call these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import itertools
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

from .clean import Filtered, Stats, filter_posts, stats_table
from .errors import MissingStepError, NoPostsError, NotEnoughTextError, SettingsError, SourceError
from .files import atomic_dir, atomic_write, read_json, remove_leftovers, without_home, write_json
from .generate import Sample
from .posts import Post, iter_posts, read_posts
from .settings import Settings
from .sources import SourceSpec, fetch_posts, model_name, parse_source
from .sources.network import stored_display_name
from .voice import Evaluation  # scikit-learn is imported only when something is measured

Say = Callable[[str], None]


def _say(message: str) -> None:
    # One write with its newline: under accelerate launch (PYTHONUNBUFFERED) print's text and newline are two
    # writes, and another process's line could land between them.
    sys.stdout.write(f"{message}\n")
    sys.stdout.flush()


_announced: set[str] = set()


def _say_once(say: Say) -> Say:
    """Lines about choices (the base model, tracking) are said once a process, not once a step."""

    def once(message: str) -> None:
        if message not in _announced:
            _announced.add(message)
            say(message)

    return once


def _base_model(settings: Settings, say: Say):
    from .models import resolve_model

    base = resolve_model(settings.model)
    if base.note:
        _say_once(say)(base.note)
    return base


def _tracker(settings: Settings, ws: "Workspace", say: Say):
    from .tracking import Tracker

    return Tracker(settings, ws.name, ws.root, _say_once(say))


@dataclass
class Workspace:
    """The files of one bot."""

    name: str
    specs: list[SourceSpec]
    root: Path
    repeats: list[tuple[str, str]] = field(default_factory=list)  # (spec given again, the one it repeats)

    @classmethod
    def of(cls, settings: Settings) -> "Workspace":
        specs: list[SourceSpec] = []
        repeats = []
        for given in settings.sources:
            spec = parse_source(given)
            first = next((s for s in specs if s.identity == spec.identity), None)
            if first:  # one file or account given twice would count its posts twice
                repeats.append((given, str(first)))
            else:
                specs.append(spec)
        name = settings.name or model_name(specs)
        if settings.work.exists() and not settings.work.is_dir():
            raise SettingsError(f"the work folder {settings.work} is a file: point --work (or HUGGINGTWEETS_WORK) "
                                "at a folder")
        return cls(name=name, specs=specs, root=settings.work / name, repeats=repeats)

    posts = property(lambda self: self.root / "posts.jsonl")
    stats = property(lambda self: self.root / "stats.json")
    stats_by_account = property(lambda self: self.root / "stats-by-account.json")
    dataset = property(lambda self: self.root / "dataset")
    model = property(lambda self: self.root / "model")
    metrics = property(lambda self: self.root / "metrics.json")
    samples = property(lambda self: self.root / "samples.jsonl")
    evaluation = property(lambda self: self.root / "eval.json")
    export = property(lambda self: self.root / "export")
    checkpoints = property(lambda self: self.root / "checkpoints")
    record = property(lambda self: self.root / "made.json")

    def fetched(self, spec: SourceSpec) -> Path:
        """Where a network source keeps its pages and state."""
        return self.root / "fetch" / f"{spec.kind}-{spec.name}"

    def display_names(self) -> dict[str, str]:
        """Account name -> display name, for the accounts whose profile gave one."""
        names = {s.name: stored_display_name(self.fetched(s)) for s in self.specs}
        return {k: v for k, v in names.items() if v}


# --- what each output was made from (made.json) ---------------------------------------------------------------
# The settings that change each output; the training ones are those a checkpoint must match (train.FINGERPRINT).
DATASET_SETTINGS = ("model", "block_size", "validation_fraction", "seed")
SAMPLE_SETTINGS = ("prompt", "num_samples", "max_new_tokens", "top_p", "temperature", "seed", "precision")
EVAL_SETTINGS = ("eval_samples", "max_new_tokens", "top_p", "temperature", "seed", "precision")
EVAL_VERSION = 1  # raised whenever the figures are measured differently, so older eval.json files are redone


def _read_record(ws: Workspace) -> dict[str, Any]:
    try:
        record = read_json(ws.record)
    except (OSError, ValueError):  # missing or damaged: nothing is known, so everything is made again
        return {}
    return record if isinstance(record, dict) else {}


def _set_record(ws: Workspace, step: str, inputs: dict[str, Any] | None) -> None:
    """Forget a step's record before its output is rewritten, record it once the output
    is whole: a crash in between leaves the output unrecorded, so it is made again."""
    record = _read_record(ws)
    if inputs is None:
        if step not in record:
            return
        record.pop(step)
    else:
        record[step] = inputs
    write_json(ws.record, record)


def _fingerprint(inputs: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()[:16]


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:16]


def _posts_inputs(ws: Workspace, settings: Settings) -> dict[str, Any]:
    return {"sources": [s.identity for s in ws.specs], "max_posts": settings.max_posts}


def _dataset_inputs(ws: Workspace, settings: Settings) -> dict[str, Any]:
    posts = _read_record(ws).get("posts", {})
    from .dataset import PACKING

    return {"posts": posts.get("digest"), "packing": PACKING, **{k: getattr(settings, k) for k in DATASET_SETTINGS}}


def _model_inputs(ws: Workspace, settings: Settings) -> dict[str, Any]:
    from .train import recipe

    return {"dataset": _fingerprint(_dataset_inputs(ws, settings)), **recipe(settings)}


def _samples_inputs(ws: Workspace, settings: Settings) -> dict[str, Any]:
    return {"model": _fingerprint(_model_inputs(ws, settings)), **{k: getattr(settings, k) for k in SAMPLE_SETTINGS}}


def _eval_inputs(ws: Workspace, settings: Settings) -> dict[str, Any]:
    return {"model": _fingerprint(_model_inputs(ws, settings)), "version": EVAL_VERSION,
            **{k: getattr(settings, k) for k in EVAL_SETTINGS}}


def _why_stale(ws: Workspace, step: str, inputs: dict[str, Any], output: Path) -> str | None:
    """None when `output` exists and was made from `inputs`; else why it must be made again."""
    if not output.exists():
        return "it is missing"
    had = _read_record(ws).get(step)
    if not isinstance(had, dict):
        return "nothing records what it was made from (an older version or an interrupted run made it)"
    inputs = json.loads(json.dumps(inputs))  # tuples and the like, as the record holds them
    if all(k in had and had[k] == v for k, v in inputs.items()):  # the record may hold more (the posts' digest)
        return None
    upstream = {"posts": "the posts changed", "dataset": "the dataset changed", "model": "the model changed",
                "packing": "this version packs blocks differently", "version": "this version measures differently"}
    changes = [upstream.get(k) or f"--{k.replace('_', '-')} {_shown(had.get(k))} -> {_shown(v)}"
               for k, v in inputs.items() if had.get(k) != v]
    return "made from other inputs: " + ", ".join(changes or ["other settings"])


def _shown(value: Any) -> str:
    return "default" if value is None else str(value)


@contextlib.contextmanager
def _step(name: str) -> Iterator[None]:
    """Which step is running, so an interruption can say what stopped and what re-running does."""
    global interrupted_step
    outermost = not _running
    if outermost:
        interrupted_step = None
    _running.append(name)
    try:
        yield
    except KeyboardInterrupt:
        if interrupted_step is None:
            interrupted_step = name
        raise
    finally:
        _running.pop()


_running: list[str] = []
interrupted_step: str | None = None  # the innermost step a Ctrl-C stopped, for the CLI's message


def _workspace(settings: Settings, say: Say) -> Workspace:
    ws = Workspace.of(settings)
    for given, first in ws.repeats:
        _say_once(say)(f"{given} is the same source as {first}: using it once")
    if ws.root.is_dir():
        remove_leftovers(ws.root)  # what a killed run was writing (a model being saved can be gigabytes)
    return ws


def _check_owner(ws: Workspace) -> None:
    """A folder belongs to the sources that made it: two sources with one name never share one."""
    had = _read_record(ws).get("posts", {}).get("sources")
    now = [s.identity for s in ws.specs]
    if had and sorted(had) != sorted(now):
        raise SourceError(f"{ws.root} is the bot of {', '.join(had)}, not of {', '.join(now)}: give this bot its own "
                          f"name with --name NAME (or delete {ws.root} to replace it)")


def _stale_posts(ws: Workspace, settings: Settings) -> str | None:
    why = _why_stale(ws, "posts", _posts_inputs(ws, settings), ws.posts)
    if why is None and _read_record(ws)["posts"].get("digest") != _file_digest(ws.posts):
        why = "posts.jsonl changed since it was fetched"
    return why


def _ensure_posts(ws: Workspace, settings: Settings, say: Say) -> None:
    """posts.jsonl as these sources gave it: fetched when missing, changed since, or fetched otherwise."""
    _check_owner(ws)
    _make_if_stale(_stale_posts(ws, settings), ws.posts, "Fetching again", lambda: _fetch(ws, settings, say), say)


def _make_if_stale(why: str | None, output: Path, again: str, make: Callable[[], Any], say: Say) -> bool:
    """Run an earlier step whose output is missing or stale (`why`), saying why when it is
    there but stale; returns whether it ran."""
    if why is None:
        return False
    if output.exists():
        say(f"{again} ({why})")
    make()
    return True


def fetch(settings: Settings, say: Say = _say) -> list[Post]:
    """Download every source's posts (nothing filtered) into posts.jsonl, and return them."""
    with _step("fetch"):
        ws = _workspace(settings, say)
        _check_owner(ws)
        return read_posts(_fetch(ws, settings, say))


def _fetch(ws: Workspace, settings: Settings, say: Say) -> Path:
    """fetch without holding every account's posts at once: each is written as it
    comes, into one file that appears whole when the last account is in."""
    new = not ws.root.exists()
    try:
        if not new:
            _set_record(ws, "posts", None)
        digest = _write_posts(ws, settings, say)
    except BaseException:
        if new:  # an account with no posts leaves no empty folder behind (fetched pages stay, for resuming)
            with contextlib.suppress(OSError):
                ws.root.rmdir()
        raise
    _set_record(ws, "posts", {**_posts_inputs(ws, settings), "digest": digest})
    return ws.posts


def _write_posts(ws: Workspace, settings: Settings, say: Say) -> str:
    """Writes posts.jsonl; returns its digest."""
    h = hashlib.sha256()
    with atomic_write(ws.posts) as f:
        for spec in ws.specs:
            count = 0
            # --max-posts caps every source: the network ones stop asking, the others stop reading
            for post in itertools.islice(fetch_posts(spec, settings, ws.fetched(spec), say), settings.max_posts):
                post.handle = spec.name  # one key per account for the stats, whatever the source calls it
                line = post.to_json_line()
                f.write(line)
                h.update(line.encode("utf-8"))
                count += 1
            if not count:
                raise NoPostsError(f"{spec} gave no posts: check the account or file, or try another source")
            name = stored_display_name(ws.fetched(spec))
            say(f"Fetched {count} posts from {spec}" + (f" ({name})" if name else ""))
    return h.hexdigest()[:16]


def prepare(settings: Settings, say: Say = _say,
            on_filtered: Callable[[Filtered, dict[str, Stats]], None] | None = None) -> Stats:
    """Filter the posts (stats.json, the card's table) and build the packed dataset.
    `on_filtered` receives the filtered posts and the stats per account (the card's columns)
    as soon as they are counted, before a check can refuse too little text."""
    from .dataset import build_dataset
    from .models import load_tokenizer

    with _step("prepare"):
        ws = _workspace(settings, say)
        tracker = _tracker(settings, ws, say)  # decided up front: a bad W&B setup fails before any work
        _ensure_posts(ws, settings, say)
        _set_record(ws, "dataset", None)
        filtered = filter_posts(iter_posts(ws.posts))  # one post at a time: only the kept text stays
        write_json(ws.stats, filtered.stats.to_dict())
        by_account = _by_account(ws, filtered.by_handle)
        if len(ws.specs) > 1:
            write_json(ws.stats_by_account, {k: v.to_dict() for k, v in by_account.items()})
        if on_filtered:
            on_filtered(filtered, by_account)
        say(stats_table(by_account))
        chars = filtered.kept_chars
        if filtered.stats.tweets_downloaded == 0:
            raise NoPostsError(f"{ws.posts} holds no posts: fetch again, or check the source")
        if chars < settings.min_chars:
            raise NotEnoughTextError(
                f"only {chars:,} characters of text were kept ({filtered.stats.tweets_kept} of "
                f"{filtered.stats.tweets_downloaded} posts), and at least {settings.min_chars:,} are needed to learn "
                "a voice: add more posts or more accounts")
        if chars < settings.warn_chars:
            say(f"Note: {chars:,} characters of text were kept; below {settings.warn_chars:,} the bot will sound less "
                "like the account (more posts help)")
        base = _base_model(settings, say)
        tokenizer = load_tokenizer(base.path)
        info = build_dataset(filtered.kept, tokenizer, base_model=settings.model, block_size=settings.block_size,
                             validation_fraction=settings.validation_fraction, seed=settings.seed, out=ws.dataset)
        say(f"Dataset: {info.train_posts} posts ({info.train_tokens:,} tokens, {info.train_blocks} blocks) to train "
            f"on, {info.validation_posts} held out ({info.validation_tokens:,} tokens) in {ws.dataset}")
        tracker.prepare(ws.posts, ws.dataset, filtered)
        _set_record(ws, "dataset", _dataset_inputs(ws, settings))
        return filtered.stats


def _by_account(ws: Workspace, by_handle: dict[str, Stats]) -> dict[str, Stats]:
    """Stats per account, named as the card names them, in the order given."""
    return {spec.display: by_handle.get(spec.name, Stats()) for spec in ws.specs}


def _stale_dataset(ws: Workspace, settings: Settings) -> str | None:
    """Why the dataset must be built again (None: it is current). Its posts must be current first."""
    if _stale_posts(ws, settings) is not None:
        return "the posts must be fetched first"
    return _why_stale(ws, "dataset", _dataset_inputs(ws, settings), ws.dataset / "info.json")


def _read_metrics(ws: Workspace) -> dict[str, Any] | None:
    """metrics.json, or None when it is damaged or lacks what the card needs (an older version's)."""
    try:
        metrics = read_json(ws.metrics)
        base = metrics["base"]
        base["display"], base["url"], base["limitations_url"], base["license"]  # noqa: B018 (all must be there)
        metrics["eval_perplexity_before"], metrics["eval_perplexity_after"]  # noqa: B018
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return metrics


def _stale_model(ws: Workspace, settings: Settings) -> str | None:
    if not (ws.model / "config.json").exists() or not ws.metrics.exists():
        return "it is missing"
    if _read_metrics(ws) is None:
        return f"{ws.metrics.name} is damaged or from an older version"
    return _why_stale(ws, "model", _model_inputs(ws, settings), ws.model / "config.json")


def train(settings: Settings, say: Say = _say, write_card: bool = True,
          on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Fine-tune the base model; writes model/ (with its card) and metrics.json.
    `on_log` receives each log entry (step, loss or eval_loss, max_steps) as it happens."""
    from .train import process_rank, release_memory, train_model

    with _step("train"):
        ws = _workspace(settings, say)
        rank, world = process_rank()
        if world > 1:
            # Several processes (accelerate launch, torchrun): the data must be there before they start,
            # and only the main one records to W&B and writes metrics and the card.
            _check_owner(ws)
            why = _stale_dataset(ws, settings)
            if why:
                raise MissingStepError(f"{ws.dataset} cannot be used ({why}): run `huggingtweets prepare` with the "
                                       "same options first, then launch the training")
            if rank:
                settings = dataclasses.replace(settings, wandb="disabled")
        tracker = _tracker(settings, ws, say)
        _ensure_posts(ws, settings, say)
        if _make_if_stale(_stale_dataset(ws, settings), ws.dataset, "Preparing the dataset again",
                          lambda: prepare(settings, say), say):
            tracker = _tracker(settings, ws, say)  # prepare recorded the dataset's digest
        base = _base_model(settings, say)
        if not rank:
            _set_record(ws, "model", None)
        with tracker.training(base.hub_id or base.path) as tracked:
            listeners = [f for f in (on_log, tracked.log if tracked else None) if f]
            metrics = train_model(settings, base, ws.dataset, ws.model, ws.checkpoints, say,
                                  on_log=(lambda entry: [f(entry) for f in listeners]) if listeners else None)
            release_memory()
            if rank:
                return metrics
            write_json(ws.metrics, metrics)
            # Published with the model: no loss history, no path of the user's home, only file names of local sources.
            public = {k: v for k, v in metrics.items() if k != "log_history"}
            public["sources"] = [f"{s.kind}:{Path(s.target).name}" if s.kind in ("file", "archive") else str(s)
                                 for s in ws.specs]
            write_json(ws.model / "huggingtweets.json", without_home(public))
            _set_record(ws, "model", _model_inputs(ws, settings))
            if tracked:  # the samples the W&B table shows are the ones `generate` prints: drawn once
                tracked.finish_training(metrics, ws.model, _write_samples(ws, settings))
        if write_card:
            card(settings, say)
        return metrics


def generate(settings: Settings, say: Say = _say) -> list[Sample]:
    """Sample from the trained bot; writes samples.jsonl (drawn again only when the model
    or the sampling settings changed: sampling is seeded, so they would be the same)."""
    with _step("generate"):
        ws = _workspace(settings, say)
        _ensure_posts(ws, settings, say)
        _make_if_stale(_stale_model(ws, settings), ws.model, "Training again", lambda: train(settings, say), say)
        if _why_stale(ws, "samples", _samples_inputs(ws, settings), ws.samples) is None:
            samples = read_samples(settings)
        else:
            samples = _write_samples(ws, settings)
        shown = [s for s in samples if not (settings.drop_copies and s.copy)]
        for i, s in enumerate(shown, 1):
            say(f"{i}. {s.text}" + ("   [copies a training tweet]" if s.copy else ""))
        if len(shown) < len(samples):
            say(f"({len(samples) - len(shown)} of {len(samples)} samples left out: they copied a training tweet)")
        return samples


def _write_samples(ws: Workspace, settings: Settings) -> list[Sample]:
    """Draw samples from the saved bot with the run's sampling settings, checked for
    copies of training posts, into samples.jsonl."""
    from .dataset import load_post_texts
    from .generate import generate as sample_from, load_bot

    _set_record(ws, "samples", None)
    model, tokenizer = load_bot(ws.model, settings.precision)
    samples = sample_from(model, tokenizer, prompt=settings.prompt, num_samples=settings.num_samples,
                          max_new_tokens=settings.max_new_tokens, top_p=settings.top_p,
                          temperature=settings.temperature, seed=settings.seed,
                          training_texts=load_post_texts(ws.dataset) if ws.dataset.exists() else None)
    with atomic_write(ws.samples) as f:
        for s in samples:
            f.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
    _set_record(ws, "samples", _samples_inputs(ws, settings))
    return samples


def read_samples(settings: Settings) -> list[Sample]:
    """The samples in samples.jsonl, or none when it is missing or damaged."""
    ws = Workspace.of(settings)
    try:
        with open(ws.samples, encoding="utf-8") as f:
            return [Sample(**json.loads(line)) for line in f if line.strip()]
    except (OSError, ValueError, TypeError):
        return []


REFERENCE_PER_VOICE = 300  # lines of each built-in voice the account is told apart from


def evaluate(settings: Settings, say: Say = _say) -> Evaluation:
    """Does the bot sound like the account? Writes eval.json (see voice.py for each figure) and says it in
    one line; measured again only when the model or the sampling settings changed, as samples are seeded."""
    with _step("eval"):
        ws = _workspace(settings, say)
        _ensure_posts(ws, settings, say)
        _make_if_stale(_stale_model(ws, settings), ws.model, "Training again", lambda: train(settings, say), say)
        evaluation = read_evaluation(settings) if _why_stale(ws, "eval", _eval_inputs(ws, settings),
                                                             ws.evaluation) is None else None
        if evaluation is None:
            _set_record(ws, "eval", None)
            evaluation = _measure(ws, settings, say)
            write_json(ws.evaluation, evaluation.to_dict())
            _set_record(ws, "eval", _eval_inputs(ws, settings))
            _tracker(settings, ws, say).evaluation(evaluation)
        say(evaluation.line())
        return evaluation


def read_evaluation(settings: Settings) -> Evaluation | None:
    """What eval.json holds, or None when it is missing, damaged or from an older version."""
    try:
        return Evaluation.from_dict(read_json(Workspace.of(settings).evaluation))
    except (OSError, ValueError, TypeError):
        return None


def _measure(ws: Workspace, settings: Settings, say: Say) -> Evaluation:
    from datasets import load_from_disk

    from .generate import copy_check, for_sampling, load_bot, unprompted
    from .models import load_model, load_tokenizer
    from .sources.sample import VOICES, voice_posts
    from .train import release_memory
    from .voice import bits_per_byte, distinct_2, like_for_like, real_vs_bot_auc, short_share, voice_match

    posts = load_from_disk(str(ws.dataset / "posts"))
    trained_on, held_out = list(posts["train"]["text"]), list(posts["validation"]["text"])
    n = settings.eval_samples
    draw = dict(num_samples=n, max_new_tokens=settings.max_new_tokens, top_p=settings.top_p,
                temperature=settings.temperature, seed=settings.seed)

    say(f"Evaluating: {n} samples from the start of a post, from the bot and from its base model, "
        f"and {len(held_out)} held-out posts")
    model, tokenizer = load_bot(ws.model, settings.precision)
    bot_samples = unprompted(model, tokenizer, **draw)
    after = bits_per_byte(model, tokenizer, held_out)
    del model
    release_memory()
    base = _base_model(settings, say)
    model, tokenizer = for_sampling(load_model(base.path), settings.precision), load_tokenizer(base.path)
    base_samples = _base_samples(model, tokenizer, draw, say)
    before = bits_per_byte(model, tokenizer, held_out)
    del model
    release_memory()

    # Reference: the built-in voices, less any this bot was trained on, and the base model's own writing.
    own = {s.target or "tweets" for s in ws.specs if s.kind == "sample"}
    reference = {f"sample:{v}": [p.text for p in voice_posts(v, "reference")[:REFERENCE_PER_VOICE]]
                 for v in VOICES if v not in own}
    match = voice_match(trained_on, [t for texts in reference.values() for t in texts], bot_samples, held_out,
                        base_samples=base_samples, seed=settings.seed)
    copies = sum(copy_check(t, "", trained_on)[1] for t in bot_samples)
    return Evaluation(
        voice_match=match.bot, voice_match_base=match.base, voice_match_real=match.real,
        auc=real_vs_bot_auc(held_out, bot_samples, seed=settings.seed),
        bits_per_byte_before=before, bits_per_byte_after=after,
        distinct_2=distinct_2(bot_samples),
        distinct_2_real=distinct_2(like_for_like(trained_on + held_out, n, settings.seed)),
        short_share=short_share(bot_samples), copy_share=copies / n, num_samples=n, held_out_posts=len(held_out),
        reference={**{k: len(v) for k, v in reference.items()}, "base model samples": len(base_samples)},
        samples=bot_samples, base_samples=base_samples, settings={k: getattr(settings, k) for k in EVAL_SETTINGS})


def _base_samples(model, tokenizer, draw: dict[str, Any], say: Say) -> list[str]:
    """The base model's samples: the same for every account trained from the same base model with the same
    settings on the same host, so kept in the cache and read back (on a 2-core CPU, SmolLM2's 100 take 9 s).
    Kept under the whole of what draws them (`draw_identity`), compared in full when read."""
    from .files import cache_dir
    from .generate import draw_identity, unprompted

    identity = json.loads(json.dumps(draw_identity(model, tokenizer, **draw)))
    kept = cache_dir() / "base-samples" / f"{_fingerprint(identity)}.json"
    try:
        data = read_json(kept)
        if (data["identity"] == identity and isinstance(data["samples"], list)
                and len(data["samples"]) == draw["num_samples"] and all(isinstance(t, str) for t in data["samples"])):
            say(f"The base model's {len(data['samples'])} samples are those it drew before, with the same weights, "
                "settings and host")
            return data["samples"]
    except (OSError, ValueError, TypeError, KeyError):
        pass  # none yet, or damaged: drawn again
    samples = unprompted(model, tokenizer, **draw)
    try:
        kept.parent.mkdir(parents=True, exist_ok=True)
        write_json(kept, {"identity": identity, "samples": samples})
    except OSError:
        pass  # a cache that cannot be written costs the next run time, not this one its figures
    return samples


def _trained(ws: Workspace, settings: Settings) -> dict[str, Any]:
    """The model's metrics, for a step that never trains (card, export): a model that is missing or was
    trained from other inputs than `settings` is one line saying what to run."""
    why = _stale_model(ws, settings)
    if why == "it is missing":
        raise MissingStepError(f"there is no trained model in {ws.model}: run `huggingtweets train` "
                               "(or `huggingtweets run`) first")
    metrics = _read_metrics(ws)
    if metrics is None:
        raise MissingStepError(f"{ws.metrics} is damaged or from an older version: train again with "
                               "`huggingtweets train`")
    why = why or (_stale_posts(ws, settings) and "posts.jsonl changed since it was trained on")
    if why:
        raise MissingStepError(f"the model in {ws.model} is out of date ({why}): train it again with "
                               "`huggingtweets train` and these options, or give the options it was trained with")
    return metrics


def export(settings: Settings, quant: str = "f16", say: Say = _say) -> Path:
    """WORK/<name>/export/: the bot as <name>.gguf (llama.cpp's converter, f16 or q8_0) and an Ollama
    Modelfile beside it (raw completion, the bot's sampling settings). Never trains, as `card`."""
    from .export import modelfile, ollama_name, size_text, to_gguf
    from .models import load_tokenizer

    with _step("export"):
        ws = _workspace(settings, say)
        _check_owner(ws)
        _trained(ws, settings)
        say(f"Exporting {ws.model} to GGUF ({quant}) with llama.cpp's converter ...")
        end_of_post = load_tokenizer(str(ws.model)).eos_token
        with atomic_dir(ws.export) as tmp:
            gguf_file = to_gguf(ws.model, tmp / f"{ws.name}.gguf", quant)
            (tmp / "Modelfile").write_text(modelfile(gguf_file.name, end_of_post, settings.temperature,
                                                     settings.top_p, settings.max_new_tokens), encoding="utf-8")
            write_json(tmp / "export.json", {"file": gguf_file.name, "quant": quant,
                                             "bytes": gguf_file.stat().st_size,
                                             "model": _fingerprint(_model_inputs(ws, settings))})
        out = ws.export / f"{ws.name}.gguf"
        say(f"GGUF: {out} ({size_text(out.stat().st_size)}); for Ollama: "
            f"ollama create {ollama_name(ws.name)} -f {ws.export / 'Modelfile'}")
        return out


def read_export(settings: Settings) -> Path | None:
    """The GGUF export in WORK/<name>/export/, or None when there is none or it was made from another model."""
    ws = Workspace.of(settings)
    try:
        made = read_json(ws.export / "export.json")
        current = _fingerprint(_model_inputs(ws, settings))
    except (OSError, ValueError):
        return None
    gguf_file = ws.export / str(made.get("file")) if isinstance(made, dict) else None
    if gguf_file is None or made.get("model") != current or not gguf_file.is_file():
        return None
    return gguf_file


def card(settings: Settings, say: Say = _say, repo_id: str | None = None, consent: str | None = None,
         out: Path | None = None, author: str | None = None, license: str | None = None,
         gguf: str | None = None) -> Path:
    """Write model/README.md (or `out`) from what the earlier steps recorded. Never trains:
    a missing or out-of-date model is one line saying what to run."""
    from .card import CardInputs, render_card
    from .tracking import card_links

    with _step("card"):
        ws = _workspace(settings, say)
        _check_owner(ws)
        metrics = _trained(ws, settings)
        base = metrics["base"]
        if _why_stale(ws, "samples", _samples_inputs(ws, settings), ws.samples) is not None:
            samples = None  # drawn with other settings or from another model: not this card's
        else:
            samples = read_samples(settings) or None
        if ws.stats_by_account.exists():
            by_account = {k: Stats.from_dict(v) for k, v in read_json(ws.stats_by_account).items()}
        else:
            by_account = {ws.specs[0].display: Stats.from_dict(read_json(ws.stats))}
        evaluation = None
        measured = _read_record(ws).get("eval")
        if isinstance(measured, dict) and measured.get("model") == _eval_inputs(ws, settings)["model"] and \
                measured.get("version") == EVAL_VERSION:
            found = read_evaluation(settings)  # measured on this model (with whatever eval settings): this card's
            evaluation = found.to_dict() if found else None
        from .card import base_facts, post_languages_of

        base_license, base_model = base_facts(base)  # `author` (About) and `license` (push --license) are the caller's
        inputs = CardInputs(name=ws.name, specs=ws.specs, stats=by_account, metrics=metrics,
                            base_display=base["display"], base_url=base["url"], base_limitations_url=base["limitations_url"],
                            license=license or base_license, repo_id=repo_id, samples=samples,
                            wandb_links=card_links(ws.root), consent=consent, display_names=ws.display_names(),
                            prompt=samples[0].prompt if samples else settings.prompt,
                            language=post_languages_of(ws.posts), author=author, base_license=base_license,
                            base_model=base_model, evaluation=evaluation, gguf_file=gguf)
        path = out or ws.model / "README.md"
        with atomic_write(path) as f:
            f.write(render_card(inputs))
        say(f"Model card: {path}")
        return path


def run(settings: Settings, say: Say = _say) -> dict[str, Any]:
    """Everything, from the account to a bot with samples and a card."""
    ws = _workspace(settings, say)
    with _step("fetch"):
        _check_owner(ws)
        if _stale_posts(ws, settings) is None:
            say(f"Using the posts fetched before in {ws.posts} (run `huggingtweets fetch` to fetch again)")
        _ensure_posts(ws, settings, say)
    stats = prepare(settings, say)
    metrics = train(settings, say, write_card=False)  # the card comes last, with the samples' copy rate
    samples = generate(settings, say)
    evaluation = evaluate(settings, say) if settings.eval_samples else None
    card_path = card(settings, say)
    return {"name": ws.name, "stats": stats, "metrics": metrics, "samples": samples, "evaluation": evaluation,
            "card": card_path, "folder": ws.root}
