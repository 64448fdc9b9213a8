"""The notebook app, headless: its buttons clicked from Python (work runs in a
thread; `app.wait()` joins it), and the demo notebook run by nbclient in a kernel
of this very Python. The browser tests (tests/test_browser.py) drive the same app
in Chromium."""

import base64
import configparser
import dataclasses
import datetime
import importlib.util
import json
import sys
import threading
from pathlib import Path

import nbformat
import pytest

import huggingtweets as ht
from huggingtweets import pipeline
from conftest import REPO
from huggingtweets.app import NO_HUB_YET, build_app, stats_frame
from huggingtweets.cli import app_command, main
from huggingtweets.sources.sample import sample_posts
from test_card import licensed_gpt2  # noqa: F401 (a fixture)
from test_hub import HF_TOKEN
from test_project_url import URL as PROJECT_URL, colab_link, readme_branch, run_install_cell
from test_secrets import WANDB as WANDB_KEY
from test_x import TOKEN as X_TOKEN

DEMO = REPO / "notebooks" / "huggingtweets-demo.ipynb"
SAMPLE_COUNTS = [450, 10, 15, 425]
SCRIPT_POST = "<script>window.__pwned=1</script> this post tries to run a script"
IMG_POST = '<img src=x onerror="window.__pwned=2"> and this one an image that runs code'


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """The tiny model gains nothing from threads, and on a busy 2-core machine they cost a lot."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_env(monkeypatch, tiny_gpt2):
    monkeypatch.setenv("HUGGINGTWEETS_MODEL", str(tiny_gpt2))
    return tiny_gpt2


@pytest.fixture
def licensed_env(monkeypatch, licensed_gpt2):
    """tiny_env with a base model whose own card names its licence, so the bot can be published."""
    monkeypatch.setenv("HUGGINGTWEETS_MODEL", str(licensed_gpt2))
    return licensed_gpt2


def fast_settings() -> ht.Settings:
    """Defaults from the environment, as build_app() reads them; fp32 skips the precision probe."""
    return ht.Settings(precision="fp32")


def tree(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from tree(child)


def rendered_html(app) -> str:
    """Everything the app hands the browser as HTML: HTML widgets and Output widgets' HTML."""
    import ipywidgets as widgets

    parts = []
    for w in tree(app):
        if isinstance(w, widgets.HTML):
            parts.append(w.value)
        if isinstance(w, widgets.Output):
            parts += [o.get("data", {}).get("text/html", "") for o in w.outputs]
    return "\n".join(parts)


def posts_file(path: Path, texts: list[str]) -> Path:
    path.write_text("\n".join(t.replace("\n", " ") for t in texts) + "\n", encoding="utf-8")
    return path


def test_the_sample_account_end_to_end(licensed_env, monkeypatch, loopback):
    app = build_app(dataclasses.replace(fast_settings(), eval_samples=10))  # and evaluated after training
    assert app.model.value == str(licensed_env)  # the default base model is Settings().model
    assert [r.kind.value for r in app.active_rows()] == ["sample"]
    assert app.others_note.layout.display == "none" and app.publish_box.layout.display == "none"

    app.fetch_button.click()
    assert app.wait(120) and app.last_error is None, app.last_error
    frame = app.stats_frame
    assert list(frame.index) == ["Tweets downloaded", "Retweets", "Short tweets", "Tweets kept"]
    assert list(frame.columns) == ["the sample account"]
    assert list(frame["the sample account"]) == SAMPLE_COUNTS
    table = app.stats_output.outputs[0]["data"]["text/html"]
    assert all(f"<td>{n}</td>" in table for n in SAMPLE_COUNTS)
    assert app.fetch_progress.value == app.fetch_progress.max and app.fetch_progress.bar_style == "success"
    assert "Some kept posts" in app.posts_preview.value

    app.max_steps.value = 3
    app.train_button.click()
    assert app.wait(120) and app.last_error is None, app.last_error
    assert [e["step"] for e in app.log_history if "loss" in e] == [1, 2, 3]
    assert app.log_history[0] == {"step": 0, "eval_loss": app.metrics["eval_loss_before"]}
    assert (app.train_progress.value, app.train_progress.max) == (3, 3)
    png = base64.b64decode(app.plot_output.outputs[0]["data"]["image/png"])
    assert png.startswith(b"\x89PNG") and len(png) > 5000
    assert "before training" in app.perplexity.value and f"{app.metrics['eval_perplexity_after']:.1f}" in \
        app.perplexity.value
    assert app.publish_box.layout.display == ""  # a model exists now
    assert app.voice.value.startswith("Voice match: <b>") and "held-out real posts" in app.voice.value

    app.num_samples.value = 3
    app.sample_button.click()
    assert app.wait(120) and app.last_error is None, app.last_error
    assert len(app.samples) == 3 and all(s.text.startswith("My dream is") for s in app.samples)
    assert app.samples_html.value.count("<li") == 3 and "My dream is" in app.samples_html.value

    # take it home: the GGUF export, with its size, which then goes up with the model
    assert app.export_box.layout.display == "" and not app.export_button.disabled
    app.quant.value = "q8_0"
    app.export_button.click()
    assert app.wait(120) and app.last_error is None, app.last_error
    gguf = ht.Workspace.of(app.settings()).export / "sample.gguf"
    assert gguf.is_file() and (gguf.parent / "Modelfile").is_file()
    assert f"<code>{gguf}</code> ({gguf.stat().st_size / 2**20:,.0f} MiB)" in app.export_status.value

    # the sample account needs no consent to publish; a real account does (see the token test)
    assert app.consent_box.layout.display == "none" and not app.publish_button.disabled
    if importlib.util.find_spec("huggingtweets.hub") is None:
        app.publish_button.click()
        assert app.wait(10) and app.publish_status.value == NO_HUB_YET
    else:
        # The real hub.push, to the loopback Hub (tests run with HF_HUB_OFFLINE=1: this one is online).
        import huggingface_hub.constants
        from huggingface_hub import ModelCard
        from test_card import assert_speaks_for_its_trainer
        from test_hub import HUB_USER, FakeHub

        hub = FakeHub(loopback)
        monkeypatch.setenv("HF_ENDPOINT", loopback.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "0")
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
        monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
        app.repo_id.value = "me/x"
        app.hf_token.value = HF_TOKEN
        assert app.hf_token.value == ""
        app.publish_button.click()
        assert app.wait(60) and app.last_error is None, app.last_error
        assert app.publish_status.value == f"Published: {loopback.url}/me/x"
        ((repo, files),) = hub.commits
        assert repo == "me/x" and {"README.md", "config.json", "model.safetensors", "sample.gguf", "Modelfile"} <= \
            set(files)
        readme = files["README.md"].decode()
        card = ModelCard(readme)
        assert card.data.license == "mit" and card.data.base_model == "openai-community/gpt2"
        assert card.data.widget == [{"text": "My dream is"}] and "model='me/x'" in readme
        assert_speaks_for_its_trainer(readme)
        assert "## Evaluation" in readme and any(r.metric_name == "Voice match" for r in card.data.eval_results)
        assert f"*Built by {HUB_USER}*" in readme and HF_TOKEN not in readme
        assert "ollama create sample -f Modelfile" in readme


def test_a_base_model_without_a_known_licence_is_published_under_the_one_typed(tiny_env, monkeypatch, loopback):
    import huggingface_hub.constants
    from huggingface_hub import ModelCard
    from test_hub import FakeHub

    ht.train(ht.Settings(precision="fp32", max_steps=2), say=lambda _: None)
    hub = FakeHub(loopback)
    monkeypatch.setenv("HF_ENDPOINT", loopback.url)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_DISABLE_XET", True)
    app = build_app(fast_settings())
    app.repo_id.value = "me/y"
    app.hf_token.value = HF_TOKEN
    app.publish_button.click()
    assert app.wait(60) and "licence is not known" in app.last_error and not hub.commits
    app.license.value = "apache-2.0"
    app.publish_button.click()
    assert app.wait(60) and app.last_error is None, app.last_error
    ((repo, files),) = hub.commits
    assert repo == "me/y" and ModelCard(files["README.md"].decode()).data.license == "apache-2.0"


def test_posts_samples_handles_and_errors_show_as_text(tiny_env, tmp_path):
    texts = [SCRIPT_POST, IMG_POST] + [p.text for p in sample_posts()]
    app = build_app(fast_settings())
    app.rows[0].kind.value = "file"
    app.rows[0].target.value = str(posts_file(tmp_path / "evil.txt", texts))
    app.fetch_button.click()
    assert app.wait(120) and app.last_error is None, app.last_error
    assert list(app.stats_frame["@evil"]) == [452, 10, 15, 427]
    page = rendered_html(app)
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in app.posts_preview.value
    assert "&lt;img src=x onerror=&quot;window.__pwned=2&quot;&gt;" in app.posts_preview.value
    assert "<script" not in page.lower() and "<img" not in page.lower()

    app.show_samples([ht.Sample(text="My dream is <script>alert(1)</script>", prompt="My dream is", seed=1)])
    assert "My dream is &lt;script&gt;alert(1)&lt;/script&gt;" in app.samples_html.value
    app.show_stats(stats_frame({"<b>@x</b>": ht.Stats(1, 0, 0, 1)}))
    assert "&lt;b&gt;@x&lt;/b&gt;" in app.stats_output.outputs[0]["data"]["text/html"]

    app.rows[0].target.value = "<img src=x onerror=alert(1)>.txt"  # a missing file whose name is HTML
    app.fetch_button.click()
    assert app.wait(30)
    assert app.last_error == "error: file not found: <img src=x onerror=alert(1)>.txt: check the path after `file:`"
    assert "&lt;img src=x onerror=alert(1)&gt;.txt" in app.error.value and "<img" not in app.error.value


@pytest.mark.parametrize("kind, target, error", [
    ("x", "not a handle!", "error: `not a handle!` is not an X handle (1-15 letters, digits or _): check `x:not a handle!`"),
    ("bsky", "", "error: account 1 needs a handle: handle, like jay.bsky.team"),
    ("file", "missing.csv", "error: file not found: missing.csv: check the path after `file:`"),
    ("mastodon", "nobody", "error: `nobody` is not a Mastodon account: write mastodon:user@instance, "
                           "like mastodon:Gargron@mastodon.social"),
])
def test_errors_are_one_readable_line(kind, target, error):
    app = build_app()
    app.rows[0].kind.value = kind
    app.rows[0].target.value = target
    app.fetch_button.click()
    assert app.wait(30)
    assert app.last_error == error
    assert "\n" not in app.error.value and "Traceback" not in app.error.value
    assert not app.busy and not app.fetch_button.disabled  # ready for the next try


def test_an_unexpected_exception_shows_its_repr_on_one_line(monkeypatch):
    def broken(settings, say=print):
        raise RuntimeError("boom\n  with a second line")

    monkeypatch.setattr(pipeline, "fetch", broken)
    app = build_app()
    app.fetch_button.click()
    assert app.wait(30)
    assert app.last_error == "error: RuntimeError('boom\\n with a second line')"
    assert app.fetch_progress.bar_style == "danger" and not app.busy


def test_a_second_click_while_busy_does_nothing(monkeypatch):
    started, release, calls = threading.Event(), threading.Event(), []

    def slow_train(settings, say=print, on_log=None, **kwargs):
        calls.append("train")
        started.set()
        on_log({"step": 1, "loss": 2.5, "max_steps": 2})
        assert release.wait(30)
        on_log({"step": 2, "loss": 2.0, "max_steps": 2})
        return {"log_history": [{"step": 1, "loss": 2.5}, {"step": 2, "loss": 2.0}, {"step": 2, "eval_loss": 2.2}],
                "eval_loss_before": 3.0, "eval_perplexity_before": 20.1, "eval_perplexity_after": 9.0,
                "train_seconds": 1.0, "steps": 2}

    monkeypatch.setattr(pipeline, "train", slow_train)
    monkeypatch.setattr(pipeline, "fetch", lambda *a, **k: calls.append("fetch"))
    app = build_app()
    app.train_button.click()
    assert started.wait(30)
    first = app.thread
    assert app.busy and all(b.disabled for b in (app.fetch_button, app.train_button, app.sample_button))
    assert (app.train_progress.value, app.train_progress.max) == (1, 2)
    for button in (app.train_button, app.fetch_button, app.sample_button):
        button.click()  # .click() calls the handler even on a disabled button: the app must ignore it
    assert app.start_train() is False and app.thread is first
    release.set()
    assert app.wait(30)
    assert calls == ["train"] and app.last_error is None
    assert not app.busy and not any(b.disabled for b in (app.fetch_button, app.train_button, app.sample_button))
    assert "20.1" in app.perplexity.value and "9.0" in app.perplexity.value


def test_several_accounts_get_a_column_each_and_a_total(tiny_env, tmp_path):
    texts = [p.text for p in sample_posts()]
    a, b = posts_file(tmp_path / "alice.txt", texts[:200]), posts_file(tmp_path / "bob.txt", texts[200:])
    app = build_app(fast_settings())
    app.count.value = 2
    assert [r.layout.display for r in app.rows] == ["", "", "none"]
    for row, path in zip(app.rows, (a, b)):
        row.kind.value, row.target.value = "file", str(path)
    app.fetch_button.click()
    assert app.wait(120) and app.last_error is None, app.last_error
    frame = app.stats_frame
    assert list(frame.columns) == ["@alice", "@bob", "Total"]
    assert list(frame["Total"]) == SAMPLE_COUNTS
    assert list(frame["@alice"] + frame["@bob"]) == SAMPLE_COUNTS
    assert app.fetch_progress.max == 3 and app.fetch_progress.value == 3


def test_uploads_land_in_the_work_folder_and_tokens_stay_in_memory(tmp_path):
    app = build_app()
    row = app.rows[0]
    row.kind.value = "archive"
    assert row.upload.layout.display == "" and app.others_note.layout.display == "none"
    row.upload.value = ({"name": "my archive (2024).zip", "type": "application/zip", "size": 4,
                         "content": memoryview(b"PK.."), "last_modified": datetime.datetime.now(datetime.timezone.utc)},)
    saved = tmp_path / "work" / "uploads" / "my_archive_2024_.zip"
    assert row.target.value == str(saved) and saved.read_bytes() == b"PK.."
    assert row.upload.value == ()  # the bytes are not kept in the widget
    assert app.settings().sources == [f"archive:{saved}"]

    token = "AAAA-not-a-real-token-0123456789"
    row.kind.value, row.target.value = "x", "jack"
    assert app.others_note.layout.display == "" and app.x_token_box.layout.display == ""
    assert app.consent_box.layout.display == "" and app.publish_button.disabled  # someone's account: consent first
    app.consent.value = True
    assert not app.publish_button.disabled
    app.x_token.value = token  # what the browser sends when the field loses focus
    assert app.x_token.value == "" and "memory" in app.x_token_status.value
    settings = app.settings()
    assert settings.sources == ["@jack"] and settings.x_bearer_token == token
    state = json.dumps([w.get_state() for w in tree(app)], default=str)
    assert token not in state and token not in json.dumps(settings.to_dict(), default=str)
    app.hf_token.value = "hf_also_not_real"
    assert "hf_also_not_real" not in json.dumps([w.get_state() for w in tree(app)], default=str)
    assert token not in repr(settings)


def test_the_app_command(monkeypatch, capsys):
    notebook = Path(__file__).resolve().parent.parent / "huggingtweets" / "app.ipynb"
    assert app_command(8866) == [sys.executable, "-m", "voila", str(notebook), "--no-browser", "--port=8866",
                                 "--Voila.ip=127.0.0.1", "--Voila.port_retries=0"]
    nb = nbformat.read(notebook, as_version=4)
    assert [c.source for c in nb.cells] == ["from huggingtweets.app import build_app\n\nbuild_app()"]
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    assert "app.ipynb" in cfg["options.package_data"]["huggingtweets"]

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "voila" else real(name, *a))
    assert main(["app"]) == 1
    assert capsys.readouterr().err == "error: the app needs voila: pip install 'huggingtweets[app]'\n"


def test_the_demo_notebook_is_saved_clean():
    nb = nbformat.read(DEMO, as_version=4)
    nbformat.validate(nb)
    # The badge opens this project's demo and the install cell, run, installs this project: both from
    # setup.cfg's url, on the branch the README names (tests/test_project_url.py checks the rest).
    assert colab_link(readme_branch()) in nb.cells[0].source
    ((magic, pip),) = run_install_cell({})
    assert magic == "pip" and pip == f'install --quiet "huggingtweets @ git+{PROJECT_URL}@{readme_branch()}"'
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert "build_app()" in code[2].source
    text = DEMO.read_text()
    assert "widgets" not in nb.metadata and "hf_" not in text and "Bearer " not in text


def kernel_of_this_python(folder: Path) -> Path:
    """A `python3` kernelspec running this interpreter (the project's venv), whatever else is installed."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = folder / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (huggingtweets venv)", "language": "python"}))
    installed = KernelSpecManager().install_kernel_spec(str(spec), "python3", prefix=str(folder / "prefix"))
    return Path(installed).parent.parent  # PREFIX/share/jupyter


def test_the_demo_notebook_runs_headless(tiny_env, tmp_path, monkeypatch):
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", str(kernel_of_this_python(tmp_path / "kernels")))
    monkeypatch.setenv("HUGGINGTWEETS_MAX_STEPS", "2")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernel's torch: see one_torch_thread
    # Recognisable fake tokens, in the environment and typed into the app's password fields:
    # the executed notebook, saved with its widget state, must hold none of them.
    for name, secret in (("X_BEARER_TOKEN", X_TOKEN), ("HF_TOKEN", HF_TOKEN), ("WANDB_API_KEY", WANDB_KEY)):
        monkeypatch.setenv(name, secret)
    nb = nbformat.read(DEMO, as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("import sys; print(sys.executable)"))
    nb.cells.append(nbformat.v4.new_code_cell(  # drive the app the notebook displayed, as a user's clicks would
        "app = next(v for v in Out.values() if type(v).__name__ == 'App')\n"
        "app.max_steps.value = 2\n"
        "import os; app.x_token.value, app.hf_token.value = os.environ['X_BEARER_TOKEN'], os.environ['HF_TOKEN']\n"
        "for button in (app.fetch_button, app.train_button, app.sample_button):\n"
        "    button.click()\n"
        "    assert app.wait(300), 'still busy'\n"
        "print('app:', app.last_error, list(app.stats_frame.iloc[:, 0]), len(app.samples), sorted(app._tokens))"))
    client = NotebookClient(nb, timeout=600, kernel_name="python3", store_widget_state=True,
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    saved = tmp_path / "executed.ipynb"
    nbformat.write(nb, saved)
    assert [s for s in (X_TOKEN, HF_TOKEN, WANDB_KEY) if s in saved.read_text(encoding="utf-8")] == []

    def text(cell):
        out = []
        for o in cell.outputs:
            out.append(o.get("text", ""))
            out += [str(v) for k, v in o.get("data", {}).items() if k.startswith("text/")]
        return "\n".join(out)

    cells = [c for c in nb.cells if c.cell_type == "code"]
    assert text(cells[-2]).strip() == sys.executable  # the kernel is this venv's Python
    # the app ran in the kernel; what its thread printed (Trainer's bars) stayed out of the cell
    assert [o.get("text") for o in cells[-1].outputs] == [f"app: None {SAMPLE_COUNTS} 5 ['hf', 'x']\n"]
    assert "nothing to do" in text(cells[0]) and "GPU" in text(cells[1])

    state = nb.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    (view,) = [o for o in cells[2].outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert view["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] in state
    models = [m["state"] for m in state.values()]
    assert {"Fetch posts", "Train", "Generate", "Publish"} <= {m.get("description") for m in models}
    assert any(m.get("value") == str(tiny_env) and m.get("options") for m in models)  # the base model picker
    # the widget state saved with the notebook holds what the app showed: the table, the plot, the samples
    outputs = [o for m in models for o in m.get("outputs", [])]
    (table_html,) = [o["data"]["text/html"] for o in outputs if "Tweets downloaded" in o["data"].get("text/html", "")]
    assert all(f"<td>{n}</td>" in table_html for n in SAMPLE_COUNTS)
    assert any("image/png" in o["data"] for o in outputs)
    (samples_html,) = [m["value"] for m in models if str(m.get("value", "")).startswith("<ol>")]
    assert samples_html.count("<li") == 5 and samples_html.count("My dream is") == 5

    table = next(c for c in cells if c.source.startswith("# Retweets"))
    (html_table,) = [o["data"]["text/html"] for o in table.outputs if "text/html" in o.get("data", {})]
    for label, n in zip(["Tweets downloaded", "Retweets", "Short tweets", "Tweets kept"], SAMPLE_COUNTS):
        assert f"<td>{label}</td><td style='text-align:right'>{n}</td>" in html_table
    train = next(c for c in cells if c.source.startswith("metrics = ht.train"))
    assert "(2 steps," in text(train)
    plot = next(c for c in cells if "log_history" in c.source)
    assert any("image/png" in o.get("data", {}) for o in plot.outputs)
    samples = text(next(c for c in cells if c.source.startswith("samples = ht.generate")))
    assert all(f"{i}. My dream is" in samples for i in range(1, 6)) and "Model card:" in samples


def test_samples_that_copy_a_training_post_are_flagged_by_default_and_left_out_on_demand():
    from huggingtweets.generate import Sample

    app = build_app()  # as the CLI: shown, flagged (Settings.drop_copies is off)
    samples = [Sample(text="My dream is mine", prompt="My dream is", seed=1),
               Sample(text="My dream is a <b>copy</b>", prompt="My dream is", seed=1, shared_words=9, copy=True)]
    app.show_samples(samples)
    assert "My dream is a &lt;b&gt;copy&lt;/b&gt; <i>(copies a training post)</i>" in app.samples_html.value
    assert "left out" not in app.samples_html.value
    app.drop_copies.value = True
    app.show_samples(samples)
    assert "My dream is mine" in app.samples_html.value and "copy</b>" not in app.samples_html.value
    assert "1 of 2 samples left out: they copied a training post." in app.samples_html.value
