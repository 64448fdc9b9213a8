"""Weights & Biases, only when it is on (wandb is imported only then).

Two runs per bot, as the original: a preprocessing run that logs the fetched
posts (`raw-posts`) and the dataset made from them (`train-dataset`), with the
stats and a table of kept and dropped posts; and a training run that uses
`train-dataset`, logs losses and perplexity, the trained model
(`finetuned-model`) and a `predictions` table.

The mode is decided up front, so nothing ever waits on a network: online when
WANDB_API_KEY is set or the user is logged in, offline when asked
(WANDB_MODE=offline), disabled otherwise. Offline runs cannot call
`use_artifact`, so every artifact also records the name and digest of what it
was made from in its metadata: the chain survives `wandb sync`.
"""

from __future__ import annotations

import contextlib
import netrc
import os
import platform
import sys
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import urlparse

from .errors import SettingsError, TrackingError
from .files import read_json, without_home, write_json

MODES = ("auto", "online", "offline", "disabled")
OFF_LINE = ("W&B tracking is off: set WANDB_API_KEY (or run `wandb login`) to track runs online, "
            "or WANDB_MODE=offline to keep them on disk")
ARTIFACT_TABLE_ROWS = 200  # kept and dropped posts shown in the preprocessing run
INIT_TIMEOUT_SECONDS = 60  # unless WANDB_INIT_TIMEOUT says otherwise
WHAT_TO_DO = ("check WANDB_API_KEY (or `wandb login`), WANDB_BASE_URL and the network, or use --wandb offline to keep "
              "the runs on disk (or --wandb disabled)")


def _reason(e: BaseException) -> str:
    """The first line of what wandb said (its messages run on with advice about its own settings)."""
    lines = [line.strip() for line in str(e).splitlines() if line.strip()]
    return lines[0] if lines else type(e).__name__


def _server() -> str:
    """ at SCHEME://HOST:PORT, of WANDB_BASE_URL (never a user name or password in it), or nothing."""
    try:
        base = urlparse(os.environ.get("WANDB_BASE_URL") or "")
        return f" at {base.scheme}://{base.hostname}" + (f":{base.port}" if base.port else "") if base.hostname else ""
    except ValueError:  # a port that is not a number
        return ""


def _wandb_errors(wandb) -> tuple[type[BaseException], ...]:
    """What wandb raises when the server refuses or cannot be reached (wandb.errors.Error: UsageError,
    CommError, AuthenticationError...); an artifact's failed upload comes out of wait() as a ValueError."""
    return (wandb.errors.Error, ValueError, TimeoutError, ConnectionError)


def _logged_in() -> bool:
    host = urlparse(os.environ.get("WANDB_BASE_URL") or "https://api.wandb.ai").hostname
    try:
        return bool(netrc.netrc().authenticators(host))
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return False


def choose_mode(requested: str = "auto") -> tuple[str, str | None]:
    """(mode, a line to show the user or None)."""
    if requested not in MODES:
        raise SettingsError(f"wandb must be one of {', '.join(MODES)}")
    env = (os.environ.get("WANDB_MODE") or "").strip().lower()
    mode = requested if requested != "auto" else {"dryrun": "offline", "run": "online"}.get(env, env)
    if mode not in ("online", "offline", "disabled"):
        mode = "online" if (os.environ.get("WANDB_API_KEY") or _logged_in()) else "disabled"
        return mode, (OFF_LINE if mode == "disabled" else None)
    if mode == "online" and not (os.environ.get("WANDB_API_KEY") or _logged_in()):
        raise SettingsError("W&B online tracking needs WANDB_API_KEY or `wandb login`; "
                            "or use WANDB_MODE=offline to keep runs on disk")
    return mode, None


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for package in ("huggingtweets", "torch", "transformers", "datasets", "accelerate", "wandb"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found


def public_source(spec: str) -> str:
    """A source as W&B shows it: a file's or an archive's name, never the folders it is in (as the
    model's huggingtweets.json names them)."""
    kind, sep, target = spec.strip().partition(":")
    return f"{kind}:{Path(target).name}" if sep and kind in ("file", "archive") else spec


def _public_arg(arg: str) -> str:
    """A command-line argument as W&B records it: a source or a path of the user's by its name only."""
    if arg.startswith(("file:", "archive:")):
        return public_source(arg)
    option, eq, value = arg.rpartition("=") if arg.startswith("--") else ("", "", arg)
    if os.sep in value and Path(value).expanduser().exists():
        return option + eq + (public_source(value) if value.startswith(("file:", "archive:")) else Path(value).name)
    return arg


def public_model(name: str) -> str:
    """A base model as W&B shows it: a Hub id as it is, a local folder by its name."""
    return Path(name).name if Path(name).expanduser().exists() else name


@contextlib.contextmanager
def _command_line_without_paths() -> Iterator[None]:
    """wandb.init records sys.argv (the `args` of the run's environment): the paths in it are the user's."""
    argv = sys.argv
    sys.argv = argv[:1] + [_public_arg(a) for a in argv[1:]]
    try:
        yield
    finally:
        sys.argv = argv


def run_config(settings, base_model: str | None = None) -> dict[str, Any]:
    """Every hyperparameter and the package versions; no token, no path of the user's (a local source
    by its file name)."""
    config = settings.to_dict()
    config.pop("work", None)
    config["sources"] = [public_source(s) for s in config.get("sources", [])]
    if Path(config.get("model", "")).expanduser().exists():
        config["model"] = "local folder " + Path(config["model"]).name
    config = without_home(config)  # any other value that names the home folder
    if base_model:
        config["base_model"] = public_model(base_model)
    config["learning_rate"] = settings.peak_learning_rate  # the one used, default or not
    config["versions"] = versions()
    return config


class Tracker:
    """A bot's W&B state, kept in WORK/<name>/tracking.json between steps."""

    def __init__(self, settings, name: str, root: Path, say: Callable[[str], None]):
        self.settings = settings
        self.name = name
        self.path = root / "tracking.json"
        self.say = say
        self.mode, line = choose_mode(settings.wandb)
        if line:
            say(line)
        self.state: dict[str, Any] = read_json(self.path) if self.path.exists() else {}

    @property
    def on(self) -> bool:
        return self.mode != "disabled"

    def _init(self, job_type: str, config: dict[str, Any]):
        try:
            import wandb
        except ImportError:
            raise SettingsError("W&B tracking is on but wandb is not installed: pip install wandb, "
                                "or set WANDB_MODE=disabled") from None

        # Settings given here win over the environment: the timeout is set only when WANDB_INIT_TIMEOUT is not.
        timeout = {} if os.environ.get("WANDB_INIT_TIMEOUT") else {"init_timeout": INIT_TIMEOUT_SECONDS}
        settings = wandb.Settings(silent=True, console="off", **timeout)
        try:
            with _command_line_without_paths():
                return wandb.init(project=self.settings.wandb_project, entity=self.settings.wandb_entity or None,
                                  job_type=job_type, name=f"{self.name}-{job_type}", mode=self.mode, config=config,
                                  settings=settings, reinit="finish_previous")
        except _wandb_errors(wandb) as e:
            raise TrackingError(f"W&B could not start the {job_type} run{_server()} ({_reason(e)}): "
                                f"{WHAT_TO_DO}") from None

    def _log_artifact(self, run, artifact, wandb, after: str = "") -> None:
        """Log an artifact; online, wait until the server has it, so a refused upload is an error here,
        not a line lost in wandb's log."""
        try:
            run.log_artifact(artifact, aliases=["latest", self.name])
            if self.mode == "online":
                artifact.wait()
        except _wandb_errors(wandb) as e:
            raise TrackingError(f"W&B could not save the {artifact.name.split(':')[0]} artifact ({_reason(e)})"
                                f"{after}: {WHAT_TO_DO}") from None

    def _record(self, key: str, run, **extra: Any) -> None:
        url = run.url if self.mode == "online" else None
        self.state[key] = {"id": run.id, "mode": self.mode, "url": url, "project": self.settings.wandb_project, **extra}
        write_json(self.path, self.state)

    def prepare(self, posts_path: Path, dataset_dir: Path, filtered) -> None:
        """The preprocessing run: raw-posts, then train-dataset made from it."""
        if not self.on:
            return
        import wandb

        run = self._init("preprocess", run_config(self.settings))
        failed = True
        try:
            sources = [public_source(s) for s in self.settings.sources]
            raw = wandb.Artifact("raw-posts", type="dataset", description=f"Posts fetched for {self.name}",
                                 metadata={"bot": self.name, "sources": sources,
                                           "posts": filtered.stats.tweets_downloaded, "inputs": []})
            raw.add_file(str(posts_path))
            self._log_artifact(run, raw, wandb)
            dataset = wandb.Artifact("train-dataset", type="dataset", description=f"Packed blocks for {self.name}",
                                     metadata={"bot": self.name, "stats": filtered.stats.to_dict(),
                                               "inputs": [{"name": "raw-posts", "digest": raw.digest}]})
            dataset.add_dir(str(dataset_dir))
            self._log_artifact(run, dataset, wandb)
            run.summary.update(filtered.stats.to_dict())
            rows = [[p.id, p.handle, "kept", p.text] for p in filtered.kept[:ARTIFACT_TABLE_ROWS // 2]]
            rows += [[p.id, p.handle, reason, p.text] for p, reason in filtered.dropped[:ARTIFACT_TABLE_ROWS // 2]]
            run.log({"posts": wandb.Table(columns=["id", "handle", "decision", "text"], data=rows)})
            self._record("prepare_run", run, raw_posts_digest=raw.digest, train_dataset_digest=dataset.digest)
            failed = False
        finally:
            _finish(run, failed)

    @contextlib.contextmanager
    def training(self, base_model: str) -> Iterator["_TrainingRun | None"]:
        """The training run, finished whatever happens inside."""
        if not self.on:
            yield None
            return
        import wandb

        run = self._init("train", run_config(self.settings, base_model))
        failed = True
        try:
            prepared = self.state.get("prepare_run") or {}
            if self.mode == "online" and prepared.get("mode") == "online":  # else the server has no train-dataset
                try:
                    run.use_artifact(f"train-dataset:{self.name}")
                except _wandb_errors(wandb) as e:
                    raise TrackingError(f"W&B could not use the train-dataset artifact ({_reason(e)}): "
                                        f"{WHAT_TO_DO}") from None
            yield _TrainingRun(self, run, wandb, prepared.get("train_dataset_digest"))
            failed = False
            self._record("train_run", run, model_artifact="finetuned-model")
        finally:
            _finish(run, failed)


    def evaluation(self, evaluation) -> None:
        """The eval run: the voice figures as its summary, and the unprompted samples it judged."""
        if not self.on:
            return
        import wandb

        run = self._init("eval", run_config(self.settings))
        failed = True
        try:
            figures = {k: v for k, v in evaluation.to_dict().items() if isinstance(v, (int, float))}
            run.summary.update(figures)
            run.log({"eval_samples": wandb.Table(columns=["bot", "base model"],
                                                 data=[list(pair) for pair in zip(evaluation.samples,
                                                                                  evaluation.base_samples)])})
            self._record("eval_run", run)
            failed = False
        finally:
            _finish(run, failed)


def _finish(run, failed: bool) -> None:
    """Finish a run; when it failed, nothing wandb raises while finishing hides the error that ended it."""
    if not failed:
        import wandb

        name = run.name
        try:
            run.finish(exit_code=0)
        except _wandb_errors(wandb) as e:
            raise TrackingError(f"W&B could not finish the run {name} ({_reason(e)}): {WHAT_TO_DO}") from None
        return
    with contextlib.suppress(Exception):
        run.finish(exit_code=1)


class _TrainingRun:
    def __init__(self, tracker: Tracker, run, wandb, dataset_digest: str | None):
        self.tracker, self.run, self.wandb, self.dataset_digest = tracker, run, wandb, dataset_digest
        self.name = tracker.name

    def log(self, entry: dict[str, Any]) -> None:
        values = {k: v for k, v in entry.items() if isinstance(v, (int, float)) and k not in ("step", "max_steps")}
        if values:
            self.run.log(values, step=int(entry.get("step", 0)))

    def finish_training(self, metrics: dict[str, Any], model_dir: Path, samples) -> None:
        # What it trained at: the batch is chosen for the device (and halved if it did not fit), the learning rate
        # with it, after the run's config was logged
        self.run.config.update({k: metrics[k] for k in ("batch_size", "learning_rate")}, allow_val_change=True)
        self.run.summary.update({k: metrics[k] for k in ("eval_perplexity_before", "eval_perplexity_after",
                                                         "eval_loss_before", "eval_loss_after", "train_seconds")})
        model = self.wandb.Artifact("finetuned-model", type="model", description=f"{self.name}, fine-tuned",
                                    metadata={"bot": self.name, "base_model": public_model(metrics["base_model"]),
                                              "eval_perplexity_after": metrics["eval_perplexity_after"],
                                              "inputs": [{"name": "train-dataset", "digest": self.dataset_digest}]})
        model.add_dir(str(model_dir))
        self.tracker._log_artifact(self.run, model, self.wandb, after=f"; the model is saved in {model_dir}")
        table = self.wandb.Table(columns=["prompt", "sample", "seed"], data=[[s.prompt, s.text, s.seed] for s in samples])
        self.run.log({"predictions": table})


def card_links(root: Path) -> dict[str, str]:
    """The card's W&B links, only for runs that exist online: never a dead link."""
    path = root / "tracking.json"
    state = read_json(path) if path.exists() else {}
    links = {}
    prepare, train = state.get("prepare_run") or {}, state.get("train_run") or {}
    if prepare.get("url"):
        links["data"] = prepare["url"].rstrip("/") + "/artifacts"
    if train.get("url"):
        links["run"] = train["url"]
        links["model"] = train["url"].rstrip("/") + "/artifacts"
    return links

