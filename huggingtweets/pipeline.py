"""The steps, as plain functions over one work folder, WORK/<name>/:

    fetch    -> posts.jsonl
    prepare  -> stats.json, dataset/
    train    -> model/ (with README.md, the card), metrics.json
    generate -> samples.jsonl
    card     -> model/README.md

Each step first runs the earlier steps whose outputs are missing, so any one of
them works on its own. The CLI, the notebook and other people's code call these.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .clean import Stats, filter_posts, stats_table
from .errors import MissingStepError, NoPostsError, NotEnoughTextError
from .files import atomic_write, read_json, without_home, write_json
from .generate import Sample
from .posts import Post, iter_posts, read_posts
from .settings import Settings
from .sources import SourceSpec, fetch_posts, model_name, parse_source
from .sources.network import stored_display_name

Say = Callable[[str], None]


def _say(message: str) -> None:
    print(message, flush=True)


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

    @classmethod
    def of(cls, settings: Settings) -> "Workspace":
        specs = [parse_source(s) for s in settings.sources]
        name = model_name(specs)
        return cls(name=name, specs=specs, root=settings.work / name)

    posts = property(lambda self: self.root / "posts.jsonl")
    stats = property(lambda self: self.root / "stats.json")
    stats_by_account = property(lambda self: self.root / "stats-by-account.json")
    dataset = property(lambda self: self.root / "dataset")
    model = property(lambda self: self.root / "model")
    metrics = property(lambda self: self.root / "metrics.json")
    samples = property(lambda self: self.root / "samples.jsonl")
    checkpoints = property(lambda self: self.root / "checkpoints")

    def fetched(self, spec: SourceSpec) -> Path:
        """Where a network source keeps its pages and state."""
        return self.root / "fetch" / f"{spec.kind}-{spec.name}"

    def display_names(self) -> dict[str, str]:
        """Account name -> display name, for the accounts whose profile gave one."""
        names = {s.name: stored_display_name(self.fetched(s)) for s in self.specs}
        return {k: v for k, v in names.items() if v}


def fetch(settings: Settings, say: Say = _say) -> list[Post]:
    """Download every source's posts (nothing filtered) into posts.jsonl, and return them."""
    return read_posts(_fetch(settings, say))


def _fetch(settings: Settings, say: Say) -> Path:
    """fetch without holding every account's posts at once: each is written as it
    comes, into one file that appears whole when the last account is in."""
    ws = Workspace.of(settings)
    new = not ws.root.exists()
    try:
        _write_posts(ws, settings, say)
    except BaseException:
        if new:  # an account with no posts leaves no empty folder behind (fetched pages stay, for resuming)
            with contextlib.suppress(OSError):
                ws.root.rmdir()
        raise
    return ws.posts


def _write_posts(ws: "Workspace", settings: Settings, say: Say) -> None:
    with atomic_write(ws.posts) as f:
        for spec in ws.specs:
            count = 0
            for post in fetch_posts(spec, settings, ws.fetched(spec), say):
                post.handle = spec.name  # one key per account for the stats, whatever the source calls it
                f.write(json.dumps(post.to_dict(), ensure_ascii=False) + "\n")
                count += 1
            if not count:
                raise NoPostsError(f"{spec} gave no posts: check the account or file, or try another source")
            name = stored_display_name(ws.fetched(spec))
            say(f"Fetched {count} posts from {spec}" + (f" ({name})" if name else ""))


def prepare(settings: Settings, say: Say = _say) -> Stats:
    """Filter the posts (stats.json, the card's table) and build the packed dataset."""
    from .dataset import build_dataset
    from .models import load_tokenizer

    ws = Workspace.of(settings)
    tracker = _tracker(settings, ws, say)  # decided up front: a bad W&B setup fails before any work
    if not ws.posts.exists():
        _fetch(settings, say)
    filtered = filter_posts(iter_posts(ws.posts))  # one post at a time: only the kept text stays
    write_json(ws.stats, filtered.stats.to_dict())
    by_account = _by_account(ws, filtered.by_handle)
    if len(ws.specs) > 1:
        write_json(ws.stats_by_account, {k: v.to_dict() for k, v in by_account.items()})
    say(stats_table(by_account))
    chars = filtered.kept_chars
    if filtered.stats.tweets_downloaded == 0:
        raise NoPostsError(f"{ws.posts} holds no posts: fetch again, or check the source")
    if chars < settings.min_chars:
        raise NotEnoughTextError(
            f"only {chars:,} characters of text were kept ({filtered.stats.tweets_kept} of "
            f"{filtered.stats.tweets_downloaded} posts), and at least {settings.min_chars:,} are needed to learn a "
            "voice: add more posts or more accounts")
    if chars < settings.warn_chars:
        say(f"Note: {chars:,} characters of text were kept; below {settings.warn_chars:,} the bot will sound less like "
            "the account (more posts help)")
    base = _base_model(settings, say)
    tokenizer = load_tokenizer(base.path)
    info = build_dataset(filtered.kept, tokenizer, base_model=settings.model, block_size=settings.block_size,
                         validation_fraction=settings.validation_fraction, seed=settings.seed, out=ws.dataset)
    say(f"Dataset: {info.train_posts} posts ({info.train_tokens:,} tokens, {info.train_blocks} blocks) to train on, "
        f"{info.validation_posts} held out ({info.validation_tokens:,} tokens) in {ws.dataset}")
    tracker.prepare(ws.posts, ws.dataset, filtered)
    return filtered.stats


def _by_account(ws: Workspace, by_handle: dict[str, Stats]) -> dict[str, Stats]:
    """Stats per account, named as the card names them, in the order given."""
    return {spec.display: by_handle.get(spec.name, Stats()) for spec in ws.specs}


def _dataset_current(ws: Workspace, settings: Settings) -> bool:
    from .dataset import DatasetInfo

    try:
        info = DatasetInfo.read(ws.dataset)
    except (OSError, ValueError, TypeError):
        return False
    return (info.base_model, info.block_size, info.seed) == (settings.model, settings.block_size, settings.seed)


def train(settings: Settings, say: Say = _say, write_card: bool = True,
          on_log: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Fine-tune the base model; writes model/ (with its card) and metrics.json.
    `on_log` receives each log entry (step, loss or eval_loss, max_steps) as it happens."""
    from .train import process_rank, release_memory, train_model

    ws = Workspace.of(settings)
    rank, world = process_rank()
    if world > 1:
        # Several processes (accelerate launch, torchrun): the data must be there before they start,
        # and only the main one records to W&B and writes metrics and the card.
        if not _dataset_current(ws, settings):
            raise MissingStepError(f"{ws.dataset} is missing or was built for other settings: run "
                                   "`huggingtweets prepare` with the same options first, then launch the training")
        if rank:
            settings = dataclasses.replace(settings, wandb="disabled")
    tracker = _tracker(settings, ws, say)
    if not _dataset_current(ws, settings):
        prepare(settings, say)
        tracker = _tracker(settings, ws, say)  # prepare recorded the dataset's digest
    base = _base_model(settings, say)
    with tracker.training(base.hub_id or base.path) as tracked:
        listeners = [f for f in (on_log, tracked.log if tracked else None) if f]
        metrics = train_model(settings, base, ws.dataset, ws.model, ws.checkpoints, say,
                              on_log=(lambda entry: [f(entry) for f in listeners]) if listeners else None)
        release_memory()
        if rank:
            return metrics
        if tracked:
            tracked.finish_training(metrics, ws.model, _draw(settings, ws.model))
    write_json(ws.metrics, metrics)
    # Published with the model: no loss history, no path of the user's home, only file names of local sources.
    public = {k: v for k, v in metrics.items() if k != "log_history"}
    public["sources"] = [f"{s.kind}:{Path(s.target).name}" if s.kind in ("file", "archive") else str(s)
                         for s in ws.specs]
    write_json(ws.model / "huggingtweets.json", without_home(public))
    if write_card:
        card(settings, say)
    return metrics


def generate(settings: Settings, say: Say = _say) -> list[Sample]:
    """Sample from the trained bot; writes samples.jsonl."""
    import json

    from .dataset import load_post_texts

    ws = Workspace.of(settings)
    if not (ws.model / "config.json").exists():
        train(settings, say)
    samples = _draw(settings, ws.model, load_post_texts(ws.dataset) if ws.dataset.exists() else None)
    with atomic_write(ws.samples) as f:
        for s in samples:
            f.write(json.dumps(s.to_dict(), ensure_ascii=False) + "\n")
    shown = [s for s in samples if not (settings.drop_copies and s.copy)]
    for i, s in enumerate(shown, 1):
        say(f"{i}. {s.text}" + ("   [copies a training tweet]" if s.copy else ""))
    if len(shown) < len(samples):
        say(f"({len(samples) - len(shown)} of {len(samples)} samples left out: they copied a training tweet)")
    return samples


def _draw(settings: Settings, model_dir: Path, training_texts: list[str] | None = None) -> list[Sample]:
    """Samples from the saved bot with the run's sampling settings."""
    from .generate import generate as sample_from, load_bot

    model, tokenizer = load_bot(model_dir, settings.precision)
    return sample_from(model, tokenizer, prompt=settings.prompt, num_samples=settings.num_samples,
                       max_new_tokens=settings.max_new_tokens, top_p=settings.top_p,
                       temperature=settings.temperature, seed=settings.seed, training_texts=training_texts)


def read_samples(settings: Settings) -> list[Sample]:
    import json

    ws = Workspace.of(settings)
    if not ws.samples.exists():
        return []
    with open(ws.samples, encoding="utf-8") as f:
        return [Sample(**json.loads(line)) for line in f if line.strip()]


def card(settings: Settings, say: Say = _say, repo_id: str | None = None, consent: str | None = None,
         out: Path | None = None) -> Path:
    """Write model/README.md (or `out`) from what the earlier steps recorded."""
    from .card import CardInputs, render_card
    from .tracking import card_links

    ws = Workspace.of(settings)
    if not (ws.model / "config.json").exists() or not ws.metrics.exists():
        train(settings, say)  # train writes the card itself
        return ws.model / "README.md"
    metrics = read_json(ws.metrics)
    base = metrics["base"]
    if ws.stats_by_account.exists():
        by_account = {k: Stats.from_dict(v) for k, v in read_json(ws.stats_by_account).items()}
    else:
        by_account = {ws.specs[0].display: Stats.from_dict(read_json(ws.stats))}
    inputs = CardInputs(name=ws.name, specs=ws.specs, stats=by_account, metrics=metrics,
                        base_display=base["display"], base_url=base["url"], base_limitations_url=base["limitations_url"],
                        license=base["license"], repo_id=repo_id, samples=read_samples(settings) or None,
                        wandb_links=card_links(ws.root), consent=consent, display_names=ws.display_names())
    path = out or ws.model / "README.md"
    with atomic_write(path) as f:
        f.write(render_card(inputs))
    say(f"Model card: {path}")
    return path


def run(settings: Settings, say: Say = _say) -> dict[str, Any]:
    """Everything, from the account to a bot with samples and a card."""
    ws = Workspace.of(settings)
    if ws.posts.exists():
        say(f"Using the posts fetched before in {ws.posts} (run `huggingtweets fetch` to fetch again)")
    else:
        _fetch(settings, say)
    stats = prepare(settings, say)
    metrics = train(settings, say, write_card=False)  # the card comes last, with the samples' copy rate
    samples = generate(settings, say)
    card_path = card(settings, say)
    return {"name": ws.name, "stats": stats, "metrics": metrics, "samples": samples, "card": card_path,
            "folder": ws.root}

