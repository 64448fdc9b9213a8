"""Every knob of a run, in one place. The CLI, the notebook app and library calls
all fill this same dataclass; its defaults are read when it is created, never at
import, so HUGGINGTWEETS_MODEL and HUGGINGTWEETS_WORK set in a notebook count."""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import SettingsError
from .files import default_work_dir
from .sources import check_api_base, safe_name

DEFAULT_MODEL = "gpt2"  # as the original; falls back to the embedded SmolLM2 where the Hub is out of reach
PRECISIONS = ("auto", "fp32", "bf16", "fp16")


def _env_model() -> str:
    return os.environ.get("HUGGINGTWEETS_MODEL") or DEFAULT_MODEL


def _env_eval_samples() -> int:
    """100, or HUGGINGTWEETS_EVAL_SAMPLES (the test suite sets 0: only the tests of the evaluation pay for it)."""
    value = os.environ.get("HUGGINGTWEETS_EVAL_SAMPLES", "").strip()
    try:
        return int(value) if value else 100
    except ValueError:
        raise SettingsError(f"HUGGINGTWEETS_EVAL_SAMPLES={value!r} is not a number: unset it, or give one "
                            "like 100 (0 leaves the evaluation out)") from None


@dataclass
class Settings:
    sources: list[str] = field(default_factory=lambda: ["sample"],
                               metadata={"help": "Accounts to learn from: `sample`, `file:PATH`."})
    work: Path = field(default_factory=default_work_dir,
                       metadata={"help": "Work folder; each bot gets WORK/<name>/ (env HUGGINGTWEETS_WORK)."})
    name: str | None = field(default=None, metadata={
        "help": "The bot's name, its folder WORK/NAME (default: the accounts' names joined with -): give one when "
                "two sources share a name, like file:alice/posts.txt and file:bob/posts.txt."})
    model: str = field(default_factory=_env_model,
                       metadata={"help": "Base causal LM: a Hub name or a local folder (env HUGGINGTWEETS_MODEL)."})

    # Fetching
    max_posts: int | None = field(default=None, metadata={"help": "Fetch at most this many posts per account."})
    api_base: str | None = field(default=None, metadata={
        "help": "Replace the scheme, host and port of the API (tests, self-hosted servers); paths stay."})
    own_account: bool = field(default=False, metadata={
        "help": "The accounts are yours: fetch them even where they opted out of indexing (Mastodon noindex)."})
    include_private: bool = field(default=False, metadata={
        "help": "A Mastodon archive's followers-only posts too (your own words, but written for your followers); "
                "direct messages are never read."})
    x_post_price: float = field(default=0.005, metadata={"help": "USD per post read on the X API, for the cost estimate."})
    x_lookup_price: float = field(default=0.010, metadata={"help": "USD per user lookup on the X API."})
    x_bearer_token: str | None = field(default=None, repr=False, metadata={
        "secret": True, "help": "X API bearer token (default: the X_BEARER_TOKEN environment variable)."})

    # Dataset
    block_size: int = field(default=64, metadata={"help": "Tokens per packed training block."})
    validation_fraction: float = field(default=0.1, metadata={"help": "Share of kept posts held out for evaluation."})
    min_chars: int = field(default=6000, metadata={"help": "Refuse to train on fewer characters of kept text."})
    warn_chars: int = field(default=40000, metadata={"help": "Warn below this many characters of kept text."})

    # Training
    epochs: float | None = field(default=None, metadata={"help": "Passes over the data (default: 2)."})
    max_steps: int | None = field(default=None, metadata={
        "help": "Stop after this many optimizer steps (default: no cap on a GPU, 120 on a CPU; -1 for no cap)."})
    learning_rate: float | None = field(default=None, metadata={
        "help": "Peak learning rate, cosine schedule after warmup (default: 2e-4 at 8 blocks a step, times the square "
                "root of batch/8 at other batches; 1e-3 with --lora, which needs it, scaled the same)."})
    batch_size: int | None = field(default=None, metadata={
        "help": "Blocks per optimizer step (default: 8 on a CPU; on a GPU 32, or fewer where that would leave "
                "under 50 steps, and halved while it does not fit the GPU's memory)."})
    precision: str = field(default="auto", metadata={"help": "auto (measured on this machine), fp32, bf16 or fp16."})
    dropout: float = field(default=0.0, metadata={
        "help": "Dropout while fine-tuning; 0 is faster and, on a few hundred posts, no worse; -1 keeps the model's own."})
    freeze_embeddings: bool = field(default=False, metadata={
        "help": "Keep the token embeddings (and a tied output layer) as they are: less memory and work a step."})
    lora: bool = field(default=False, metadata={
        "help": "Train low-rank adapters (LoRA, needs peft) instead of every weight; merged into the saved model."})
    lora_rank: int = field(default=16, metadata={"help": "Rank of the LoRA adapters."})
    gradient_checkpointing: bool = field(default=False, metadata={
        "help": "Recompute activations in the backward pass: less memory for big models, about a third slower."})
    checkpoint_minutes: float = field(default=2.0, metadata={
        "help": "Save a checkpoint (to resume after a crash or a disconnect) at an evaluation once this many minutes "
                "have passed since the last; 0 saves at every evaluation. Short runs save none: a 135M model's "
                "checkpoint is 1.6 GB, 15 percent of a CPU run's time."})
    no_checkpoints: bool = field(default=False, metadata={
        "help": "Save no checkpoints while training: for big models (gpt2-large's is 9 GB with its optimizer state), "
                "but nothing to resume from after a crash."})
    no_cuda_graphs: bool = field(default=False, metadata={
        "help": "On a GPU, launch each step's kernels one by one instead of replaying the step as CUDA graphs "
                "(to compare, or to rule them out when something looks wrong)."})
    seed: int = field(default=42, metadata={"help": "Seed for shuffling, training and sampling."})

    # Tracking (Weights & Biases)
    wandb: str = field(default="auto", metadata={
        "help": "auto (online with WANDB_API_KEY or `wandb login`, offline with WANDB_MODE=offline, else off), "
                "online, offline or disabled."})
    wandb_project: str = field(default="huggingtweets", metadata={"help": "W&B project."})
    wandb_entity: str | None = field(default=None, metadata={"help": "W&B entity (team or user); default: yours."})

    # Generation
    prompt: str = field(default="My dream is", metadata={"help": "Text the samples start with."})
    num_samples: int = field(default=5, metadata={"help": "How many samples to write."})
    max_new_tokens: int = field(default=40, metadata={"help": "Longest continuation, in tokens."})
    top_p: float = field(default=0.95, metadata={"help": "Nucleus sampling: keep the smallest set of tokens with this much probability."})
    temperature: float = field(default=1.0, metadata={"help": "Sampling temperature."})
    eval_samples: int = field(default_factory=_env_eval_samples, metadata={
        "help": "Samples (default 100) the evaluation draws from the start of a post, from the bot and from its base model, "
                "to measure how much the bot sounds like the account; 0 leaves the evaluation out of `run` "
                "(env HUGGINGTWEETS_EVAL_SAMPLES)."})
    # Off everywhere (CLI, app, library): a copy is shown and flagged, so you see how often the bot copies.
    drop_copies: bool = field(default=False, metadata={
        "help": "Do not show samples that copy a training post (8 words in a row, or 80 percent of it); "
                "they are still counted in the card's copy rate."})

    @property
    def peak_learning_rate(self) -> float:
        """learning_rate, or its default, chosen by voice match (bench/results/voice-sweep.md): on the sample
        account, SmolLM2-135M, 36 steps, 2e-4 put 96% of the bot's samples in its voice (1e-4: 56%, 3e-4: 88%,
        6e-4: 91% but perplexity 66.6 against 54.5). LoRA needs more: 1e-3 (86%; at 1e-4 perplexity 140.6)."""
        return self.learning_rate or (1e-3 if self.lora else 2e-4)

    def learning_rate_at(self, batch_size: int) -> float:
        """The peak learning rate at `batch_size` blocks a step: learning_rate as given, or the default (chosen at 8
        blocks a step) times sqrt(batch_size / 8), Adam's square-root rule. On 2,000 real tweets (SmolLM2-135M,
        2 passes) batch 32 at 4e-4 came within 0.5% of batch 8's held-out perplexity at 2e-4 (68.4 vs 68.1)."""
        return self.learning_rate or self.peak_learning_rate * math.sqrt(batch_size / 8)

    def __post_init__(self) -> None:
        if isinstance(self.sources, str):
            self.sources = [self.sources]
        self.sources = list(self.sources) or ["sample"]
        self.work = Path(self.work).expanduser()
        checks = [
            (self.block_size >= 8, "block_size must be at least 8 tokens"),
            (0 < self.validation_fraction < 0.5, "validation_fraction must be between 0 and 0.5"),
            (self.epochs is None or self.epochs > 0, "epochs must be positive"),
            (self.max_steps is None or self.max_steps == -1 or self.max_steps > 0, "max_steps must be positive, or -1 for no cap"),
            (self.learning_rate is None or self.learning_rate > 0, "learning_rate must be positive"),
            (self.batch_size is None or self.batch_size >= 1, "batch_size must be at least 1"),
            (self.precision in PRECISIONS, f"precision must be one of {', '.join(PRECISIONS)}"),
            (self.dropout == -1 or 0 <= self.dropout < 1, "dropout must be from 0 up to (not including) 1, or -1"),
            (self.lora_rank >= 1, "lora_rank must be at least 1"),
            (self.checkpoint_minutes >= 0, "checkpoint_minutes must not be negative (--no-checkpoints saves none)"),
            (not self.lora or importlib.util.find_spec("peft") is not None,
             "--lora needs peft: pip install 'huggingtweets[lora]'"),
            (self.wandb in ("auto", "online", "offline", "disabled"), "wandb must be auto, online, offline or disabled"),
            (self.num_samples >= 1, "num_samples must be at least 1"),
            (self.eval_samples == 0 or self.eval_samples >= 10, "eval_samples must be 0 (no evaluation) or at least 10"),
            (self.max_new_tokens >= 1, "max_new_tokens must be at least 1"),
            (0 < self.top_p <= 1, "top_p must be in (0, 1]"),
            (self.temperature > 0, "temperature must be positive"),
            (self.min_chars >= 0, "min_chars must not be negative"),
            (self.max_posts is None or self.max_posts > 0, "max_posts must be positive"),
            (self.x_post_price >= 0 and self.x_lookup_price >= 0, "prices must not be negative"),
        ]
        for ok, message in checks:
            if not ok:
                raise SettingsError(message)
        if self.name is not None and (not self.name or safe_name(self.name) != self.name):
            raise SettingsError(f"--name {self.name!r} cannot be a folder name: use letters, digits, _ . and -, "
                                "not starting with . or _")
        if self.api_base:
            self.api_base = check_api_base(self.api_base)

    def to_dict(self) -> dict[str, Any]:
        """Every setting but the secrets: safe to log, save and publish."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if not f.metadata.get("secret")}
        data["work"] = str(self.work)
        data["sources"] = list(self.sources)
        return data
