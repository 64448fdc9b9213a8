"""The notebook app: pick accounts, fetch, train with a live loss plot, sample.

    from huggingtweets.app import build_app
    build_app()

Built only from the library's public functions and the core ipywidgets (the only
widgets Colab renders without extra set-up); plots are matplotlib PNGs in an
`Output`. Work runs in a background thread, so the notebook stays responsive;
while it runs the buttons are disabled and a second click does nothing. Every
post, sample, handle and error is shown as text (HTML-escaped). Tokens live in
memory only: the password field is emptied as soon as its value arrives, so the
token never sits in the widget state a notebook can save.

Headless (tests, nbclient), output is written by assigning `Output.outputs`,
never with `with out:` from a click handler or a thread (that can hang there).
"""

from __future__ import annotations

import base64
import dataclasses
import html
import io
import re
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable

import ipywidgets as widgets

import huggingtweets as ht
# The steps through their module (the same functions as ht.fetch, ht.train...): the attribute
# ht.train is replaced by the submodule huggingtweets.train once that is first imported.
from huggingtweets import pipeline

# (label, kind) for the source picker; kind is what the spec starts with
SOURCE_KINDS = [
    ("Sample account (no key)", "sample"),
    ("X API: @handle (bearer token, paid)", "x"),
    ("X archive: your own (upload or path)", "archive"),
    ("Bluesky: handle", "bsky"),
    ("Mastodon: user@instance", "mastodon"),
    ("File of posts (upload or path)", "file"),
]
PLACEHOLDERS = {
    "sample": "", "x": "handle, like jack", "archive": "path of the .zip or folder, or upload data/tweets.js",
    "bsky": "handle, like jay.bsky.team", "mastodon": "user@instance, like Gargron@mastodon.social",
    "file": "path of a .txt, .csv or .jsonl, or upload it",
}
SOMEONE_ELSES = ("x", "bsky", "mastodon")  # sources that can name anyone's account
MODEL_CHOICES = ["gpt2", "HuggingFaceTB/SmolLM2-135M-Instruct", "distilgpt2"]
MAX_ACCOUNTS = 3
PLOT_EVERY_S = 0.5  # redraw the loss plot at most this often while training
LOG_LINES = 200

OTHERS_NOTE = (
    "<b>Before you fetch someone else's account:</b> the model imitates a real person. Its card calls it a bot, "
    "and so should you wherever you share what it writes. Your own X archive is the source we recommend. "
    "X's developer terms forbid using X content to train foundation models and redistributing the posts: "
    "keep them to yourself, and make bots of your own account or with the person's consent.")
NO_HUB_YET = ("Publishing comes with the Hub integration: once it is installed, this button (or "
              "<code>huggingtweets push</code> in a terminal) uploads the model and its card.")


def esc(text: Any) -> str:
    return html.escape(str(text), quote=True)


def one_line(text: Any, limit: int = 400) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def stats_frame(by_account: dict[str, "ht.Stats"]):
    """The card's table as a DataFrame: a column per account, plus Total when several."""
    import pandas as pd

    columns = dict(by_account)
    if len(columns) > 1:
        columns["Total"] = sum(by_account.values(), ht.Stats())
    labels = [label for label, _ in ht.Stats().rows()]
    frame = pd.DataFrame({name: [value for _, value in s.rows()] for name, s in columns.items()}, index=labels)
    frame.index.name = "Data"
    return frame


def loss_png(log_history: list[dict[str, Any]]) -> bytes:
    """Train and validation loss against the step, as a PNG (no pyplot: safe in a thread)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    train = [(e["step"], e["loss"]) for e in log_history if "loss" in e and "step" in e]
    evals = [(e["step"], e["eval_loss"]) for e in log_history if "eval_loss" in e and "step" in e]
    fig = Figure(figsize=(6.4, 3.4), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if train:
        ax.plot(*zip(*train), label="train loss", color="#1f77b4", linewidth=1.2)
    if evals:
        ax.plot(*zip(*evals), "o-", label="validation loss", color="#d62728", linewidth=1.2, markersize=4)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("step")
    ax.set_ylabel("loss (cross-entropy)")
    ax.set_title("Training: train and validation loss")
    ax.grid(alpha=0.3)
    if train or evals:
        ax.legend(loc="upper right")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return buf.getvalue()


def _png_output(png: bytes, text: str) -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text}}


def _html_output(markup: str, text: str) -> dict[str, Any]:
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": markup, "text/plain": text}}


def _quiet_thread_output() -> None:
    """In a Jupyter kernel, what a background thread prints or displays (progress bars, Trainer's notebook
    table, library warnings) lands in whichever cell ran last. Give this thread a parent message no cell owns,
    so frontends drop it: everything the app says goes to its Details instead. A no-op outside a kernel."""
    try:
        from IPython import get_ipython

        shell = get_ipython()
    except ImportError:
        shell = None
    for stream in (sys.stdout, sys.stderr, getattr(shell, "display_pub", None)):
        set_thread_parent = getattr(stream, "set_thread_parent", None)  # ipykernel's OutStream and display publisher
        if callable(set_thread_parent):
            try:
                set_thread_parent({"header": {"msg_id": "huggingtweets-app-worker", "msg_type": "stream",
                                              "session": "", "username": "", "date": "", "version": "5.3"}})
            except Exception:  # noqa: BLE001 - only cosmetic
                pass


class SourceRow(widgets.HBox):
    """One account: a kind, a handle or path, and an upload for archives and files."""

    def __init__(self, number: int, kind: str = "sample", target: str = "", uploads: Callable[[], Path] | None = None):
        super().__init__()
        self.number = number
        self._uploads = uploads or (lambda: Path("huggingtweets-uploads"))
        self.kind = widgets.Dropdown(options=SOURCE_KINDS, value=kind, description=f"Account {number}",
                                     layout=widgets.Layout(width="22rem"))
        self.target = widgets.Text(value=target, layout=widgets.Layout(width="22rem"))
        self.upload = widgets.FileUpload(accept=".zip,.js,.txt,.csv,.jsonl,.json,.ndjson", multiple=False,
                                         description="Upload")
        self.uploaded = widgets.HTML()
        self.kind.add_class("ht-kind")
        self.target.add_class("ht-target")
        self.kind.observe(self._kind_changed, "value")
        self.upload.observe(self._upload_changed, "value")
        self.children = [self.kind, self.target, self.upload, self.uploaded]
        self._kind_changed()

    def _kind_changed(self, change=None) -> None:
        kind = self.kind.value
        self.target.placeholder = PLACEHOLDERS[kind]
        self.target.layout.display = "none" if kind == "sample" else ""
        self.upload.layout.display = "" if kind in ("archive", "file") else "none"
        self.uploaded.value = ""

    def _upload_changed(self, change) -> None:
        """Write the uploaded file into the work folder, put its path in the field and
        forget the bytes (so they never sit in a saved notebook's widget state)."""
        if not change["new"]:
            return
        item = change["new"][0]
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", item.get("name") or "upload").strip("._") or "upload"
        folder = self._uploads()
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / name
        path.write_bytes(bytes(item["content"]))
        self.upload.value = ()
        self.target.value = str(path)
        self.uploaded.value = f"<small>uploaded {esc(name)} ({path.stat().st_size:,} bytes)</small>"

    def spec(self) -> str:
        kind, target = self.kind.value, self.target.value.strip()
        if kind == "sample":
            return "sample"
        if not target:
            what = "a path or an upload" if kind in ("archive", "file") else "a handle"
            raise ht.HuggingtweetsError(f"account {self.number} needs {what}: {PLACEHOLDERS[kind]}")
        if kind == "x":
            return "@" + target.lstrip("@")
        return f"{kind}:{target}"


class App(widgets.VBox):
    """The whole app, a VBox. `build_app()` returns one; tests drive its buttons with
    `.click()` and `wait()` for the background work."""

    def __init__(self, settings: "ht.Settings | None" = None):
        super().__init__()
        self.base = settings or ht.Settings()
        self.busy = False
        self.thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.last_exception: BaseException | None = None
        self.stats_frame = None
        self.metrics: dict[str, Any] | None = None
        self.samples: list = []
        self.log_history: list[dict[str, Any]] = []
        self.messages: list[str] = []
        self._lock = threading.Lock()
        self._tokens: dict[str, str] = {}  # "x", "hf": in memory only
        self._last_plot = 0.0

        title = widgets.HTML("<h3 style='margin:0'>huggingtweets</h3>"
                             "<div>Turn an account's posts into a language model that writes like it.</div>")

        # Accounts
        rows = self._rows_from(self.base.sources)
        self.count = widgets.Dropdown(options=[1, 2, 3], value=len(rows), description="Accounts",
                                      layout=widgets.Layout(width="12rem"))
        while len(rows) < MAX_ACCOUNTS:
            rows.append(("bsky", ""))
        self.rows = [SourceRow(i + 1, kind, target, uploads=lambda: self.base.work / "uploads")
                     for i, (kind, target) in enumerate(rows)]
        self.others_note = widgets.HTML(f"<div style='border-left:4px solid #e0a800;padding:4px 8px;"
                                        f"background:#fff8e1'>{OTHERS_NOTE}</div>")
        self.x_token = widgets.Password(description="X token", placeholder="X API bearer token (kept in memory only)",
                                        continuous_update=False, layout=widgets.Layout(width="30rem"))
        self.x_token_status = widgets.HTML()
        self.x_token_box = widgets.HBox([self.x_token, self.x_token_status])
        self.count.observe(self._accounts_changed, "value")
        for row in self.rows:
            row.kind.observe(self._accounts_changed, "value")
        self.x_token.observe(lambda change: self._token_arrived(change, "x"), "value")

        # Model and training length
        self.model = widgets.Combobox(value=self.base.model, options=MODEL_CHOICES, ensure_option=False,
                                      description="Base model", placeholder="a Hub name or a local folder",
                                      layout=widgets.Layout(width="30rem"))
        self.max_steps = widgets.BoundedIntText(value=self.base.max_steps if (self.base.max_steps or 0) > 0 else 0,
                                                min=0, max=1_000_000, description="Max steps",
                                                layout=widgets.Layout(width="12rem"))
        self.epochs = widgets.BoundedFloatText(value=self.base.epochs or 0, min=0, max=100, step=0.5,
                                               description="Epochs", layout=widgets.Layout(width="12rem"))
        length_hint = widgets.HTML("<small>0 = default: 2 passes; on a CPU capped at "
                                   "120 steps (minutes)</small>")

        # Step 1: fetch and prepare
        self.fetch_button = widgets.Button(description="Fetch posts", button_style="primary", icon="download",
                                           tooltip="download the posts, filter them and build the dataset")
        self.fetch_progress = widgets.IntProgress(value=0, min=0, max=1, description="Fetch",
                                                  layout=widgets.Layout(width="24rem"))
        self.stats_output = widgets.Output()
        self.posts_preview = widgets.HTML()

        # Step 2: train
        self.train_button = widgets.Button(description="Train", button_style="primary", icon="play",
                                           tooltip="fine-tune the base model on the kept posts")
        self.train_progress = widgets.IntProgress(value=0, min=0, max=1, description="Training",
                                                  layout=widgets.Layout(width="24rem"))
        self.plot_output = widgets.Output()
        self.perplexity = widgets.HTML()
        self.voice = widgets.HTML()  # the evaluation, once training is done

        # Step 3: samples
        self.prompt = widgets.Text(value=self.base.prompt, description="Prompt", layout=widgets.Layout(width="24rem"))
        # As in the CLI (Settings.drop_copies, off): a copy is shown, flagged, so you see how often the bot copies.
        self.drop_copies = widgets.Checkbox(value=self.base.drop_copies, indent=False,
                                            description="Leave out samples that copy a training post")
        self.num_samples = widgets.BoundedIntText(value=self.base.num_samples, min=1, max=20, description="Samples",
                                                  layout=widgets.Layout(width="10rem"))
        self.sample_button = widgets.Button(description="Generate", button_style="primary", icon="comment",
                                            tooltip="sample from the trained model")
        self.samples_html = widgets.HTML()

        # Export: GGUF for llama.cpp and Ollama, appears once a model exists
        self.quant = widgets.Dropdown(options=[("f16 (as trained)", "f16"), ("q8_0 (8-bit, smaller)", "q8_0")],
                                      value="f16", description="GGUF", layout=widgets.Layout(width="16rem"))
        self.export_button = widgets.Button(description="Export", icon="download", disabled=True,
                                            tooltip="write the bot as a GGUF file and an Ollama Modelfile")
        self.export_status = widgets.HTML()
        self.export_box = widgets.VBox([
            widgets.HTML("<h4 style='margin:4px 0'>Take it home: llama.cpp and Ollama</h4>"),
            widgets.HBox([self.quant, self.export_button]), self.export_status])
        self.export_box.layout.display = "none"

        # Publish: appears once a model exists
        self.consent = widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="auto"),
                                        description="This is my account, or the person consented to a public bot")
        self.consent_kind = widgets.Dropdown(options=[("it is my account", "self"), ("its owner agreed", "given")],
                                             value="self", layout=widgets.Layout(width="12rem"))
        self.consent_box = widgets.HBox([self.consent, self.consent_kind])
        # Only needed where the base model's own card names no licence (push refuses without one).
        self.license = widgets.Text(description="Licence", placeholder="mit, apache-2.0 ... (default: the base model's)",
                                    layout=widgets.Layout(width="28rem"))
        self.repo_id = widgets.Text(description="Repo id", placeholder="ORG/NAME (default: the bot's name, yours)",
                                    layout=widgets.Layout(width="30rem"))
        self.hf_token = widgets.Password(description="HF token",
                                         placeholder="a write token (default: HF_TOKEN or your login)",
                                         continuous_update=False, layout=widgets.Layout(width="30rem"))
        self.hf_token_status = widgets.HTML()
        self.publish_button = widgets.Button(description="Publish", icon="upload", disabled=True,
                                             tooltip="upload the model and its card to the Hugging Face Hub")
        self.publish_status = widgets.HTML()
        self.consent.observe(lambda change: self._set_buttons(), "value")
        self.hf_token.observe(lambda change: self._token_arrived(change, "hf"), "value")
        self.publish_box = widgets.VBox([
            widgets.HTML("<h4 style='margin:4px 0'>Publish to the Hugging Face Hub</h4>"),
            self.consent_box, self.repo_id, self.license, widgets.HBox([self.hf_token, self.hf_token_status]),
            widgets.HBox([self.publish_button, self.publish_status])])
        self.publish_box.layout.display = "none"

        # Status, errors, details
        self.status = widgets.HTML()
        self.error = widgets.HTML()
        self.details = widgets.HTML()
        details = widgets.Accordion(children=[self.details])
        details.set_title(0, "Details (every message)")
        details.selected_index = None

        for w, name in [(self.fetch_button, "ht-fetch"), (self.train_button, "ht-train"),
                        (self.sample_button, "ht-sample"), (self.publish_button, "ht-publish"),
                        (self.export_button, "ht-export"), (self.export_status, "ht-export-status"),
                        (self.stats_output, "ht-stats"), (self.posts_preview, "ht-posts"),
                        (self.plot_output, "ht-plot"), (self.perplexity, "ht-perplexity"), (self.voice, "ht-voice"),
                        (self.samples_html, "ht-samples"), (self.status, "ht-status"), (self.error, "ht-error"),
                        (self.count, "ht-count"), (self.prompt, "ht-prompt"), (self.max_steps, "ht-max-steps")]:
            w.add_class(name)
        self.fetch_button.on_click(lambda b: self.start_fetch())
        self.train_button.on_click(lambda b: self.start_train())
        self.sample_button.on_click(lambda b: self.start_sample())
        self.publish_button.on_click(lambda b: self.start_publish())
        self.export_button.on_click(lambda b: self.start_export())

        heading = lambda text: widgets.HTML(f"<h4 style='margin:8px 0 2px'>{text}</h4>")  # noqa: E731
        self.children = [
            title,
            heading("1. Accounts"), self.count, *self.rows, self.others_note, self.x_token_box,
            heading("2. Base model and training length"), self.model, widgets.HBox([self.max_steps, self.epochs]),
            length_hint,
            heading("3. Fetch and filter"), widgets.HBox([self.fetch_button, self.fetch_progress]),
            self.stats_output, self.posts_preview,
            heading("4. Train"), widgets.HBox([self.train_button, self.train_progress]), self.plot_output,
            self.perplexity,
            self.voice,
            heading("5. Samples"), widgets.HBox([self.prompt, self.num_samples, self.sample_button]), self.drop_copies,
            self.samples_html,
            self.export_box,
            self.publish_box,
            self.status, self.error, details,
        ]
        self._accounts_changed()

    # ---- inputs -----------------------------------------------------------------

    @staticmethod
    def _rows_from(sources: list[str]) -> list[tuple[str, str]]:
        rows = []
        for source in sources[:MAX_ACCOUNTS]:
            try:
                spec = ht.parse_source(source)
            except ht.HuggingtweetsError:
                continue
            kind = {"snscrape": "x"}.get(spec.kind, spec.kind)
            rows.append((kind, "" if kind == "sample" else spec.target))
        return rows or [("sample", "")]

    def active_rows(self) -> list[SourceRow]:
        return self.rows[: self.count.value]

    def _accounts_changed(self, change=None) -> None:
        for i, row in enumerate(self.rows):
            row.layout.display = "" if i < self.count.value else "none"
        kinds = {row.kind.value for row in self.active_rows()}
        self.others_note.layout.display = "" if kinds & set(SOMEONE_ELSES) else "none"
        self.x_token_box.layout.display = "" if "x" in kinds else "none"
        self.consent_box.layout.display = "none" if kinds == {"sample"} else ""
        self._set_buttons()

    def _token_arrived(self, change, which: str) -> None:
        """Keep the token in memory and empty the field at once: never echoed, never in saved widget state."""
        value = (change["new"] or "").strip()
        if not value:
            return
        field, status = (self.x_token, self.x_token_status) if which == "x" else (self.hf_token, self.hf_token_status)
        self._tokens[which] = value
        field.value = ""
        field.placeholder = "token set for this session (type again to replace)"
        status.value = "<small>✓ token kept in memory only, never saved</small>"

    def sample_only(self) -> bool:
        return all(row.kind.value == "sample" for row in self.active_rows())

    def settings(self) -> "ht.Settings":
        """The Settings the inputs describe (raises HuggingtweetsError on a bad one)."""
        sources = []
        for row in self.active_rows():
            spec = row.spec()
            ht.parse_source(spec)  # a bad handle is refused here, before any request
            if spec not in sources:
                sources.append(spec)
        model = self.model.value.strip() or self.base.model
        return dataclasses.replace(
            self.base, sources=sources, model=model,
            max_steps=self.max_steps.value if self.max_steps.value > 0 else self.base.max_steps,
            epochs=self.epochs.value if self.epochs.value > 0 else self.base.epochs,
            prompt=self.prompt.value, num_samples=self.num_samples.value,
            x_bearer_token=self._tokens.get("x") or self.base.x_bearer_token)

    # ---- running work -----------------------------------------------------------

    def _set_buttons(self) -> None:
        for button in (self.fetch_button, self.train_button, self.sample_button, self.export_button):
            button.disabled = self.busy
        self.publish_button.disabled = self.busy or not (self.consent.value or self.sample_only())

    def _start(self, what: str, work: Callable[["ht.Settings"], None]) -> bool:
        """Run `work(settings)` in a background thread; False (and nothing done) while busy."""
        with self._lock:
            if self.busy:
                return False
            self.busy = True
        self._set_buttons()
        self.error.value = ""
        self.last_error = None
        try:
            settings = self.settings()
        except Exception as e:  # noqa: BLE001 - shown as one line
            self._finish(e)
            return False
        self.status.value = f"<i>{esc(what)}…</i>"
        self.thread = threading.Thread(target=self._run, args=(work, settings), name=f"huggingtweets-{what}",
                                       daemon=True)
        self.thread.start()
        return True

    def _run(self, work: Callable[["ht.Settings"], None], settings: "ht.Settings") -> None:
        _quiet_thread_output()
        error = None
        try:
            work(settings)
        except BaseException as e:  # noqa: BLE001 - shown as one line, never a traceback
            error = e
        self._finish(error)

    def _finish(self, error: BaseException | None) -> None:
        if error is not None:
            self.last_exception = error
            if isinstance(error, ht.HuggingtweetsError):
                self.last_error = "error: " + one_line(error)
            else:
                self.last_error = "error: " + one_line(repr(error))
            self.error.value = f"<span style='color:#b00020'>{esc(self.last_error)}</span>"
            self.status.value = ""
            for bar in (self.fetch_progress, self.train_progress):
                if bar.bar_style == "info":
                    bar.bar_style = "danger"
        else:
            self.status.value = ""
        self._refresh_model_state()
        with self._lock:
            self.busy = False
        self._set_buttons()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background work; True when nothing is running any more."""
        thread = self.thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy

    def say(self, message: str) -> None:
        lines = str(message).splitlines() or [""]
        self.messages.extend(lines)
        del self.messages[:-LOG_LINES]
        self.details.value = ("<pre style='white-space:pre-wrap;margin:0;font-size:85%'>"
                              + esc("\n".join(self.messages)) + "</pre>")
        if lines[-1].strip():
            self.status.value = f"<i>{esc(one_line(lines[-1], 200))}</i>"

    def _refresh_model_state(self) -> None:
        try:
            ws = ht.Workspace.of(self.settings())
            has_model = (ws.model / "config.json").exists()
        except Exception:  # noqa: BLE001 - inputs half typed: nothing to show yet
            has_model = False
        self.publish_box.layout.display = "" if has_model else "none"
        self.export_box.layout.display = "" if has_model else "none"

    # ---- the steps ----------------------------------------------------------------

    def start_fetch(self) -> bool:
        return self._start("Fetching", self._fetch)

    def _fetch(self, settings: "ht.Settings") -> None:
        ws = ht.Workspace.of(settings)
        bar = self.fetch_progress
        bar.max, bar.value, bar.bar_style = len(ws.specs) + 1, 0, "info"
        self.stats_output.outputs = ()
        self.posts_preview.value = ""

        def say(message: str) -> None:
            if str(message).startswith("Fetched "):
                bar.value = min(bar.max - 1, bar.value + 1)
            self.say(message)

        posts = pipeline.fetch(settings, say)
        filtered = ht.filter_posts(posts)
        by_account = {}
        for spec in ws.specs:
            by_account.setdefault(spec.display, filtered.by_handle.get(spec.name, ht.Stats()))
        self.show_stats(stats_frame(by_account))
        self.show_posts(filtered)
        self.status.value = "<i>Building the dataset…</i>"
        pipeline.prepare(settings, self.say)
        bar.value, bar.bar_style = bar.max, "success"

    def show_stats(self, frame) -> None:
        self.stats_frame = frame
        table = frame.reset_index()  # one header row: Data | account... | Total
        self.stats_output.outputs = (_html_output(table.to_html(index=False, escape=True), frame.to_string()),)

    def show_posts(self, filtered: "ht.Filtered", kept: int = 5, dropped: int = 3) -> None:
        items = [f"<li>{esc(p.text)}</li>" for p in filtered.kept[:kept]]
        gone = [f"<li><i>{esc(reason)}:</i> {esc(p.text)}</li>" for p, reason in filtered.dropped[:dropped]]
        markup = f"<div><b>Some kept posts</b> (cleaned, as the model sees them)<ul>{''.join(items)}</ul>"
        if gone:
            markup += f"<b>Some dropped posts</b><ul>{''.join(gone)}</ul>"
        self.posts_preview.value = markup + "</div>"

    def start_train(self) -> bool:
        return self._start("Training", self._train)

    def _train(self, settings: "ht.Settings") -> None:
        bar = self.train_progress
        bar.value, bar.max, bar.bar_style = 0, 1, "info"
        self.log_history = []
        self.perplexity.value = ""
        self.voice.value = ""
        self.plot_output.outputs = ()
        self._last_plot = 0.0

        def on_log(entry: dict[str, Any]) -> None:
            self.log_history.append(dict(entry))
            steps, step = int(entry.get("max_steps") or 0), int(entry.get("step") or 0)
            if steps > 0:
                bar.max = steps
                bar.value = min(step, steps)
            if "loss" in entry:
                self.status.value = f"<i>Training: step {step} of {steps}, loss {entry['loss']:.3f}</i>"
            if "eval_loss" in entry or time.monotonic() - self._last_plot >= PLOT_EVERY_S:
                self.draw_plot()

        self.metrics = pipeline.train(settings, self.say, on_log=on_log)
        history = list(self.metrics.get("log_history") or self.log_history)
        if not any("eval_loss" in e and e.get("step") == 0 for e in history):  # train() starts a fresh history
            history.insert(0, {"step": 0, "eval_loss": self.metrics["eval_loss_before"]})
        self.log_history = history
        self.draw_plot()
        bar.value, bar.bar_style = bar.max, "success"
        m = self.metrics
        self.perplexity.value = (
            f"Validation perplexity: <b>{m['eval_perplexity_before']:.1f}</b> before training, "
            f"<b>{m['eval_perplexity_after']:.1f}</b> after (lower is better), {m['train_seconds']:.0f} s "
            f"of training, {m['steps']} steps")
        if settings.eval_samples:
            self.status.value = f"<i>Evaluating: {settings.eval_samples} samples from the bot and its base model</i>"
            self.show_evaluation(pipeline.evaluate(settings, self.say))

    def show_evaluation(self, e: "ht.Evaluation") -> None:
        base = f"{e.voice_match_base:.0%}" if e.voice_match_base is not None else "-"
        auc = (f"; a classifier tells the bot's samples from real posts with an AUC of <b>{e.auc:.2f}</b> "
               "(0.5: it cannot)" if e.auc is not None else "")
        self.voice.value = (
            f"Voice match: <b>{e.voice_match:.0%}</b> of the bot's samples sound like the account (base model "
            f"{base}, held-out real posts {e.voice_match_real:.0%}){auc}. Held-out bits per byte "
            f"{e.bits_per_byte_before:.2f} before, <b>{e.bits_per_byte_after:.2f}</b> after; "
            f"{e.short_share:.0%} of samples empty or one word, {e.copy_share:.0%} copy a training post.")

    def draw_plot(self) -> None:
        self._last_plot = time.monotonic()
        steps = sum(1 for e in self.log_history if "loss" in e)
        self.plot_output.outputs = (_png_output(loss_png(self.log_history), f"<loss plot, {steps} steps>"),)

    def start_sample(self) -> bool:
        return self._start("Generating", self._sample)

    def _sample(self, settings: "ht.Settings") -> None:
        if not settings.prompt.strip():
            raise ht.HuggingtweetsError("type a prompt for the samples to start with, like \"My dream is\"")
        ws = ht.Workspace.of(settings)
        if not (ws.model / "config.json").exists():
            raise ht.HuggingtweetsError(f"no trained model for {ws.name} yet: click Train first")
        self.samples = pipeline.generate(settings, self.say)
        self.show_samples(self.samples)

    def show_samples(self, samples: list) -> None:
        shown = [s for s in samples if not (self.drop_copies.value and s.copy)]
        items = "".join(
            f"<li style='white-space:pre-wrap'>{esc(s.text)}"
            + (" <i>(copies a training post)</i>" if s.copy else "") + "</li>" for s in shown)
        left_out = len(samples) - len(shown)
        note = (f"<p><i>{left_out} of {len(samples)} samples left out: they copied a training post.</i></p>"
                if left_out else "")
        self.samples_html.value = f"<ol>{items}</ol>{note}"

    def start_export(self) -> bool:
        return self._start("Exporting", self._export)

    def _export(self, settings: "ht.Settings") -> None:
        from .export import ollama_name, size_text

        self.export_status.value = ""
        path = pipeline.export(settings, quant=self.quant.value, say=self.say)
        self.export_status.value = (f"<code>{esc(path)}</code> ({size_text(path.stat().st_size)}), with an Ollama "
                                    f"<code>Modelfile</code> beside it: <code>ollama create {esc(ollama_name(path.stem))} -f "
                                    f"{esc(path.with_name('Modelfile'))}</code>")

    def start_publish(self) -> bool:
        if not (self.consent.value or self.sample_only()):
            self.publish_status.value = "Tick the box first: publish only your own account, or with consent."
            return False
        return self._start("Publishing", self._publish)

    def _publish(self, settings: "ht.Settings") -> None:
        import importlib
        import importlib.util

        if importlib.util.find_spec("huggingtweets.hub") is None:
            self.publish_status.value = NO_HUB_YET
            return
        hub = importlib.import_module("huggingtweets.hub")
        self.publish_status.value = ""
        url = hub.push(settings, ht.Workspace.of(settings).name, repo_id=self.repo_id.value.strip() or None,
                       consent=None if self.sample_only() else self.consent_kind.value,
                       license=self.license.value.strip() or None, token=self._tokens.get("hf"), say=self.say,
                       gguf=pipeline.read_export(settings) is not None)  # an export made in the app goes along
        self.publish_status.value = f"Published: {esc(url)}"


def build_app(settings: "ht.Settings | None" = None) -> App:
    """The app as one widget: `build_app()` as the last line of a cell shows it."""
    return App(settings)
