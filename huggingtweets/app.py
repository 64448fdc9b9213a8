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

Reading order: the section builders (`_accounts_section` ... `_publish_section`) make
the page and keep its widgets on the App; `Jobs` runs one step at a time in a thread
and keeps its error as one line; the steps (`_fetch` ... `_publish`) call the library
and show what it gives, rendered by the `*_html` functions.
"""

from __future__ import annotations

import base64
import dataclasses
import functools
import html
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
from huggingtweets.errors import one_line
from huggingtweets.plots import loss_history, loss_png

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


def _heading(text: str) -> widgets.HTML:
    return widgets.HTML(f"<h4 style='margin:8px 0 2px'>{text}</h4>")


def _step_row(description: str, icon: str, tooltip: str, css: str, bar: str,
              start: Callable[[], bool]) -> tuple[widgets.Button, widgets.IntProgress]:
    """A step's button, which starts it, and its progress bar."""
    button = widgets.Button(description=description, button_style="primary", icon=icon, tooltip=tooltip)
    button.add_class(css)
    button.on_click(lambda b: start())
    progress = widgets.IntProgress(value=0, min=0, max=1, description=bar, layout=widgets.Layout(width="24rem"))
    return button, progress


def _html(css: str) -> widgets.HTML:
    widget = widgets.HTML()
    widget.add_class(css)
    return widget


def _output(css: str) -> widgets.Output:
    widget = widgets.Output()
    widget.add_class(css)
    return widget


def posts_html(filtered: "ht.Filtered", kept: int = 5, dropped: int = 3) -> str:
    items = [f"<li>{esc(p.text)}</li>" for p in filtered.kept[:kept]]
    gone = [f"<li><i>{esc(reason)}:</i> {esc(p.text)}</li>" for p, reason in filtered.dropped[:dropped]]
    markup = f"<div><b>Some kept posts</b> (cleaned, as the model sees them)<ul>{''.join(items)}</ul>"
    if gone:
        markup += f"<b>Some dropped posts</b><ul>{''.join(gone)}</ul>"
    return markup + "</div>"


def perplexity_html(m: dict[str, Any]) -> str:
    return (f"Validation perplexity: <b>{m['eval_perplexity_before']:.1f}</b> before training, "
            f"<b>{m['eval_perplexity_after']:.1f}</b> after (lower is better), {m['train_seconds']:.0f} s "
            f"of training, {m['steps']} steps")


def evaluation_html(e: "ht.Evaluation") -> str:
    base = f"{e.voice_match_base:.0%}" if e.voice_match_base is not None else "-"
    auc = (f"; a classifier tells the bot's samples from real posts with an AUC of <b>{e.auc:.2f}</b> "
           "(0.5: it cannot)" if e.auc is not None else "")
    return (f"Voice match: <b>{e.voice_match:.0%}</b> of the bot's samples sound like the account (base model "
            f"{base}, held-out real posts {e.voice_match_real:.0%}){auc}. Held-out bits per byte "
            f"{e.bits_per_byte_before:.2f} before, <b>{e.bits_per_byte_after:.2f}</b> after; "
            f"{e.short_share:.0%} of samples empty or one word, {e.copy_share:.0%} copy a training post.")


def samples_html(samples: list, drop_copies: bool) -> str:
    shown = [s for s in samples if not (drop_copies and s.copy)]
    items = "".join(
        f"<li style='white-space:pre-wrap'>{esc(s.text)}"
        + (" <i>(copies a training post)</i>" if s.copy else "") + "</li>" for s in shown)
    left_out = len(samples) - len(shown)
    note = (f"<p><i>{left_out} of {len(samples)} samples left out: they copied a training post.</i></p>"
            if left_out else "")
    return f"<ol>{items}</ol>{note}"


def export_html(path: Path) -> str:
    from .export import ollama_name, size_text

    return (f"<code>{esc(path)}</code> ({size_text(path.stat().st_size)}), with an Ollama "
            f"<code>Modelfile</code> beside it: <code>ollama create {esc(ollama_name(path.stem))} -f "
            f"{esc(path.with_name('Modelfile'))}</code>")


class Jobs:
    """One job at a time, in a background thread; what went wrong is kept as one line.
    `changed()` runs whenever `busy` flips (the app greys its buttons); `ended(error)` when a
    job ends, just before it flips back."""

    def __init__(self, status: widgets.HTML, error: widgets.HTML, changed: Callable[[], None],
                 ended: Callable[[BaseException | None], None]):
        self.status, self.error = status, error
        self._changed, self._ended = changed, ended
        self.busy = False
        self.thread: threading.Thread | None = None
        self.last_error: str | None = None
        self.last_exception: BaseException | None = None
        self._lock = threading.Lock()

    def start(self, what: str, work: Callable[["ht.Settings"], None], settings: Callable[[], "ht.Settings"]) -> bool:
        """Run `work(settings())` in a background thread; False (and nothing done) while busy."""
        with self._lock:
            if self.busy:
                return False
            self.busy = True
        self._changed()
        self.error.value = ""
        self.last_error = None
        try:
            chosen = settings()
        except Exception as e:  # noqa: BLE001 - shown as one line
            self._finish(e)
            return False
        self.status.value = f"<i>{esc(what)}…</i>"
        self.thread = threading.Thread(target=self._run, args=(work, chosen), name=f"huggingtweets-{what}",
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
            # a user's error by its message; anything else is a bug, named by its repr
            text = str(error) if isinstance(error, ht.HuggingtweetsError) else repr(error)
            self.last_error = "error: " + one_line(text, 400)
            self.error.value = f"<span style='color:#b00020'>{esc(self.last_error)}</span>"
        self.status.value = ""
        self._ended(error)
        with self._lock:
            self.busy = False
        self._changed()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background work; True when nothing is running any more."""
        thread = self.thread
        if thread is not None:
            thread.join(timeout)
        return not self.busy


def _rows_from(sources: list[str]) -> list[tuple[str, str]]:
    """(kind, target) of the first accounts among `sources`, for the rows to start with."""
    rows = []
    for source in sources[:MAX_ACCOUNTS]:
        try:
            spec = ht.parse_source(source)
        except ht.HuggingtweetsError:
            continue
        kind = {"snscrape": "x"}.get(spec.kind, spec.kind)
        rows.append((kind, "" if kind == "sample" else spec.target))
    return rows or [("sample", "")]


# Section builders: each makes one part of the page, keeps its widgets on the app (tests and
# notebooks reach them as app.fetch_button, app.rows...) and returns what goes on the page.

def _accounts_section(app: "App") -> list[widgets.Widget]:
    rows = _rows_from(app.base.sources)
    app.count = widgets.Dropdown(options=[1, 2, 3], value=len(rows), description="Accounts",
                                 layout=widgets.Layout(width="12rem"))
    app.count.add_class("ht-count")
    while len(rows) < MAX_ACCOUNTS:
        rows.append(("bsky", ""))
    app.rows = [SourceRow(i + 1, kind, target, uploads=lambda: app.base.work / "uploads")
                for i, (kind, target) in enumerate(rows)]
    app.others_note = widgets.HTML(f"<div style='border-left:4px solid #e0a800;padding:4px 8px;"
                                   f"background:#fff8e1'>{OTHERS_NOTE}</div>")
    app.x_token = widgets.Password(description="X token", placeholder="X API bearer token (kept in memory only)",
                                   continuous_update=False, layout=widgets.Layout(width="30rem"))
    app.x_token_status = widgets.HTML()
    app.x_token_box = widgets.HBox([app.x_token, app.x_token_status])
    app.count.observe(app._accounts_changed, "value")
    for row in app.rows:
        row.kind.observe(app._accounts_changed, "value")
    app.x_token.observe(lambda change: app._token_arrived(change, "x"), "value")
    return [_heading("1. Accounts"), app.count, *app.rows, app.others_note, app.x_token_box]


def _model_section(app: "App") -> list[widgets.Widget]:
    base = app.base
    app.model = widgets.Combobox(value=base.model, options=MODEL_CHOICES, ensure_option=False,
                                 description="Base model", placeholder="a Hub name or a local folder",
                                 layout=widgets.Layout(width="30rem"))
    app.max_steps = widgets.BoundedIntText(value=base.max_steps if (base.max_steps or 0) > 0 else 0,
                                           min=0, max=1_000_000, description="Max steps",
                                           layout=widgets.Layout(width="12rem"))
    app.max_steps.add_class("ht-max-steps")
    app.epochs = widgets.BoundedFloatText(value=base.epochs or 0, min=0, max=100, step=0.5,
                                          description="Epochs", layout=widgets.Layout(width="12rem"))
    length_hint = widgets.HTML("<small>0 = default: 2 passes; on a CPU capped at 120 steps (minutes)</small>")
    return [_heading("2. Base model and training length"), app.model, widgets.HBox([app.max_steps, app.epochs]),
            length_hint]


def _fetch_section(app: "App") -> list[widgets.Widget]:
    app.fetch_button, app.fetch_progress = _step_row(
        "Fetch posts", "download", "download the posts, filter them and build the dataset", "ht-fetch", "Fetch",
        app.start_fetch)
    app.stats_output, app.posts_preview = _output("ht-stats"), _html("ht-posts")
    return [_heading("3. Fetch and filter"), widgets.HBox([app.fetch_button, app.fetch_progress]),
            app.stats_output, app.posts_preview]


def _train_section(app: "App") -> list[widgets.Widget]:
    app.train_button, app.train_progress = _step_row(
        "Train", "play", "fine-tune the base model on the kept posts", "ht-train", "Training", app.start_train)
    app.plot_output = _output("ht-plot")
    app.perplexity, app.voice = _html("ht-perplexity"), _html("ht-voice")  # voice: the evaluation, after training
    return [_heading("4. Train"), widgets.HBox([app.train_button, app.train_progress]), app.plot_output,
            app.perplexity, app.voice]


def _samples_section(app: "App") -> list[widgets.Widget]:
    app.prompt = widgets.Text(value=app.base.prompt, description="Prompt", layout=widgets.Layout(width="24rem"))
    app.prompt.add_class("ht-prompt")
    # As in the CLI (Settings.drop_copies, off): a copy is shown, flagged, so you see how often the bot copies.
    app.drop_copies = widgets.Checkbox(value=app.base.drop_copies, indent=False,
                                       description="Leave out samples that copy a training post")
    app.num_samples = widgets.BoundedIntText(value=app.base.num_samples, min=1, max=20, description="Samples",
                                             layout=widgets.Layout(width="10rem"))
    app.sample_button = widgets.Button(description="Generate", button_style="primary", icon="comment",
                                       tooltip="sample from the trained model")
    app.sample_button.add_class("ht-sample")
    app.samples_html = _html("ht-samples")
    app.sample_button.on_click(lambda b: app.start_sample())
    return [_heading("5. Samples"), widgets.HBox([app.prompt, app.num_samples, app.sample_button]), app.drop_copies,
            app.samples_html]


def _export_section(app: "App") -> widgets.VBox:
    """GGUF for llama.cpp and Ollama; shown once a model exists."""
    app.quant = widgets.Dropdown(options=[("f16 (as trained)", "f16"), ("q8_0 (8-bit, smaller)", "q8_0")],
                                 value="f16", description="GGUF", layout=widgets.Layout(width="16rem"))
    app.export_button = widgets.Button(description="Export", icon="download", disabled=True,
                                       tooltip="write the bot as a GGUF file and an Ollama Modelfile")
    app.export_button.add_class("ht-export")
    app.export_status = _html("ht-export-status")
    app.export_button.on_click(lambda b: app.start_export())
    app.export_box = widgets.VBox([
        widgets.HTML("<h4 style='margin:4px 0'>Take it home: llama.cpp and Ollama</h4>"),
        widgets.HBox([app.quant, app.export_button]), app.export_status])
    app.export_box.layout.display = "none"
    return app.export_box


def _publish_section(app: "App") -> widgets.VBox:
    """Publishing to the Hub; shown once a model exists."""
    app.consent = widgets.Checkbox(value=False, indent=False, layout=widgets.Layout(width="auto"),
                                   description="This is my account, or the person consented to a public bot")
    app.consent_kind = widgets.Dropdown(options=[("it is my account", "self"), ("its owner agreed", "given")],
                                        value="self", layout=widgets.Layout(width="12rem"))
    app.consent_box = widgets.HBox([app.consent, app.consent_kind])
    # Only needed where the base model's own card names no licence (push refuses without one).
    app.license = widgets.Text(description="Licence", placeholder="mit, apache-2.0 ... (default: the base model's)",
                               layout=widgets.Layout(width="28rem"))
    app.repo_id = widgets.Text(description="Repo id", placeholder="ORG/NAME (default: the bot's name, yours)",
                               layout=widgets.Layout(width="30rem"))
    app.hf_token = widgets.Password(description="HF token",
                                    placeholder="a write token (default: HF_TOKEN or your login)",
                                    continuous_update=False, layout=widgets.Layout(width="30rem"))
    app.hf_token_status = widgets.HTML()
    app.publish_button = widgets.Button(description="Publish", icon="upload", disabled=True,
                                        tooltip="upload the model and its card to the Hugging Face Hub")
    app.publish_button.add_class("ht-publish")
    app.publish_status = widgets.HTML()
    app.consent.observe(lambda change: app._set_buttons(), "value")
    app.hf_token.observe(lambda change: app._token_arrived(change, "hf"), "value")
    app.publish_button.on_click(lambda b: app.start_publish())
    app.publish_box = widgets.VBox([
        widgets.HTML("<h4 style='margin:4px 0'>Publish to the Hugging Face Hub</h4>"),
        app.consent_box, app.repo_id, app.license, widgets.HBox([app.hf_token, app.hf_token_status]),
        widgets.HBox([app.publish_button, app.publish_status])])
    app.publish_box.layout.display = "none"
    return app.publish_box


class App(widgets.VBox):
    """The whole app, a VBox. `build_app()` returns one; tests drive its buttons with
    `.click()` and `wait()` for the background work."""

    def __init__(self, settings: "ht.Settings | None" = None):
        super().__init__()
        self.base = settings or ht.Settings()
        self.stats_frame = None
        self.metrics: dict[str, Any] | None = None
        self.samples: list = []
        self.log_history: list[dict[str, Any]] = []
        self.messages: list[str] = []
        self._tokens: dict[str, str] = {}  # "x", "hf": in memory only
        self._last_plot = 0.0
        self.status, self.error, self.details = _html("ht-status"), _html("ht-error"), widgets.HTML()
        self.jobs = Jobs(self.status, self.error, changed=self._set_buttons, ended=self._job_ended)
        details = widgets.Accordion(children=[self.details])
        details.set_title(0, "Details (every message)")
        details.selected_index = None
        self.children = [
            widgets.HTML("<h3 style='margin:0'>huggingtweets</h3>"
                         "<div>Turn an account's posts into a language model that writes like it.</div>"),
            *_accounts_section(self), *_model_section(self), *_fetch_section(self), *_train_section(self),
            *_samples_section(self), _export_section(self), _publish_section(self), self.status, self.error, details]
        self._accounts_changed()

    # The job runner's state, as tests and notebooks read it from the app.
    busy = property(lambda self: self.jobs.busy)
    thread = property(lambda self: self.jobs.thread)
    last_error = property(lambda self: self.jobs.last_error)
    last_exception = property(lambda self: self.jobs.last_exception)

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the background work; True when nothing is running any more."""
        return self.jobs.wait(timeout)

    # ---- inputs -----------------------------------------------------------------

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

    # ---- what the page shows around a job --------------------------------------------

    def _set_buttons(self) -> None:
        for button in (self.fetch_button, self.train_button, self.sample_button, self.export_button):
            button.disabled = self.busy
        self.publish_button.disabled = self.busy or not (self.consent.value or self.sample_only())

    def _job_ended(self, error: BaseException | None) -> None:
        for bar in (self.fetch_progress, self.train_progress):
            if error is not None and bar.bar_style == "info":
                bar.bar_style = "danger"
        try:
            has_model = (ht.Workspace.of(self.settings()).model / "config.json").exists()
        except Exception:  # noqa: BLE001 - inputs half typed: nothing to show yet
            has_model = False
        self.publish_box.layout.display = "" if has_model else "none"
        self.export_box.layout.display = "" if has_model else "none"

    def say(self, message: str) -> None:
        lines = str(message).splitlines() or [""]
        self.messages.extend(lines)
        del self.messages[:-LOG_LINES]
        self.details.value = ("<pre style='white-space:pre-wrap;margin:0;font-size:85%'>"
                              + esc("\n".join(self.messages)) + "</pre>")
        if lines[-1].strip():
            self.status.value = f"<i>{esc(one_line(lines[-1], 200))}</i>"

    def show_stats(self, frame) -> None:
        self.stats_frame = frame
        table = frame.reset_index()  # one header row: Data | account... | Total
        self.stats_output.outputs = (_html_output(table.to_html(index=False, escape=True), frame.to_string()),)

    def show_samples(self, samples: list) -> None:
        self.samples_html.value = samples_html(samples, self.drop_copies.value)

    def draw_plot(self) -> None:
        self._last_plot = time.monotonic()
        steps = sum(1 for e in self.log_history if "loss" in e)
        self.plot_output.outputs = (_png_output(loss_png(self.log_history), f"<loss plot, {steps} steps>"),)

    # ---- the steps (below the class): each calls the library in the background ----

    def start_fetch(self) -> bool:
        return self.jobs.start("Fetching", functools.partial(_fetch, self), self.settings)

    def start_train(self) -> bool:
        return self.jobs.start("Training", functools.partial(_train, self), self.settings)

    def start_sample(self) -> bool:
        return self.jobs.start("Generating", functools.partial(_sample, self), self.settings)

    def start_export(self) -> bool:
        return self.jobs.start("Exporting", functools.partial(_export, self), self.settings)

    def start_publish(self) -> bool:
        if not (self.consent.value or self.sample_only()):
            self.publish_status.value = "Tick the box first: publish only your own account, or with consent."
            return False
        return self.jobs.start("Publishing", functools.partial(_publish, self), self.settings)


# The steps: each calls the library and shows on the app what it gives.

def _fetch(app: "App", settings: "ht.Settings") -> None:
    bar = app.fetch_progress
    bar.max, bar.value, bar.bar_style = len(ht.Workspace.of(settings).specs) + 1, 0, "info"
    app.stats_output.outputs = ()
    app.posts_preview.value = ""

    def say(message: str) -> None:
        if str(message).startswith("Fetched "):
            bar.value = min(bar.max - 1, bar.value + 1)
        app.say(message)

    def filtered(result: "ht.Filtered", by_account: dict[str, "ht.Stats"]) -> None:
        app.show_stats(stats_frame(by_account))
        app.posts_preview.value = posts_html(result)
        app.status.value = "<i>Building the dataset…</i>"

    pipeline.fetch(settings, say)
    pipeline.prepare(settings, app.say, on_filtered=filtered)
    bar.value, bar.bar_style = bar.max, "success"


def _train(app: "App", settings: "ht.Settings") -> None:
    bar = app.train_progress
    bar.value, bar.max, bar.bar_style = 0, 1, "info"
    app.log_history = []
    app.perplexity.value = app.voice.value = ""
    app.plot_output.outputs = ()
    app._last_plot = 0.0

    def on_log(entry: dict[str, Any]) -> None:
        app.log_history.append(dict(entry))
        steps, step = int(entry.get("max_steps") or 0), int(entry.get("step") or 0)
        if steps > 0:
            bar.max = steps
            bar.value = min(step, steps)
        if "loss" in entry:
            app.status.value = f"<i>Training: step {step} of {steps}, loss {entry['loss']:.3f}</i>"
        if "eval_loss" in entry or time.monotonic() - app._last_plot >= PLOT_EVERY_S:
            app.draw_plot()

    app.metrics = pipeline.train(settings, app.say, on_log=on_log)
    # train() starts a fresh history, without the evaluation before the first step
    app.log_history = loss_history(app.metrics.get("log_history") or app.log_history,
                                    app.metrics["eval_loss_before"])
    app.draw_plot()
    bar.value, bar.bar_style = bar.max, "success"
    app.perplexity.value = perplexity_html(app.metrics)
    if settings.eval_samples:
        app.status.value = f"<i>Evaluating: {settings.eval_samples} samples from the bot and its base model</i>"
        app.voice.value = evaluation_html(pipeline.evaluate(settings, app.say))


def _sample(app: "App", settings: "ht.Settings") -> None:
    if not settings.prompt.strip():
        raise ht.HuggingtweetsError("type a prompt for the samples to start with, like \"My dream is\"")
    ws = ht.Workspace.of(settings)
    if not (ws.model / "config.json").exists():
        raise ht.HuggingtweetsError(f"no trained model for {ws.name} yet: click Train first")
    app.samples = pipeline.generate(settings, app.say)
    app.show_samples(app.samples)


def _export(app: "App", settings: "ht.Settings") -> None:
    app.export_status.value = ""
    app.export_status.value = export_html(pipeline.export(settings, quant=app.quant.value, say=app.say))


def _publish(app: "App", settings: "ht.Settings") -> None:
    import importlib
    import importlib.util

    if importlib.util.find_spec("huggingtweets.hub") is None:
        app.publish_status.value = NO_HUB_YET
        return
    hub = importlib.import_module("huggingtweets.hub")
    app.publish_status.value = ""
    url = hub.push(settings, ht.Workspace.of(settings).name, repo_id=app.repo_id.value.strip() or None,
                   consent=None if app.sample_only() else app.consent_kind.value,
                   license=app.license.value.strip() or None, token=app._tokens.get("hf"), say=app.say,
                   gguf=pipeline.read_export(settings) is not None)  # an export made in the app goes along
    app.publish_status.value = f"Published: {esc(url)}"


def build_app(settings: "ht.Settings | None" = None) -> App:
    """The app as one widget: `build_app()` as the last line of a cell shows it."""
    return App(settings)
