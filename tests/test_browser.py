"""The notebook app in a real browser: `huggingtweets app` (Voila on 127.0.0.1) and
Debian's Chromium driven by Playwright. Nothing leaves the machine: every request
not to 127.0.0.1 is aborted. Left out of the default run; install and run with

    .ci/browser-deps && .venv/bin/python -m pytest -m browser

Screenshots of each step land in the test's tmp folder and in
/tmp/huggingtweets-screenshots/.
"""

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from urllib.parse import urlparse

import pytest

from huggingtweets.app import SOURCE_KINDS
from huggingtweets.sources.sample import sample_posts

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SCREENSHOTS = Path("/tmp/huggingtweets-screenshots")
SCRIPT_POST = "<script>window.__pwned=1</script> this post tries to run a script"
IMG_POST = '<img src=x onerror="window.__pwned=2"> and this one an image that runs code'
MISSING_HTML_FILE = '<img src=x onerror="window.__pwned=3">.txt'
STEP_S = 180_000  # ms: the longest one step may take on a busy 2-core machine


def _missing() -> str | None:
    if not CHROMIUM.exists():
        return "needs Debian's Chromium at /usr/bin/chromium: run .ci/browser-deps (apt-get install -y chromium)"
    if importlib.util.find_spec("playwright") is None:
        return "needs playwright==1.65.2 in the venv: run .ci/browser-deps"
    if importlib.util.find_spec("voila") is None:
        return "needs voila in the venv: run .ci/browser-deps (or pip install 'huggingtweets[app]')"
    return None


pytestmark = [pytest.mark.browser, pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served_app(tmp_path, tiny_gpt2):
    """`huggingtweets app` on a free port, the tiny model and a temp work folder; SIGTERM at the end."""
    port = free_port()
    log = tmp_path / "voila.log"
    env = {**os.environ, "HUGGINGTWEETS_MODEL": str(tiny_gpt2), "HUGGINGTWEETS_WORK": str(tmp_path / "work"),
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "huggingtweets", "app", "--port", str(port)],
                                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"voila exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"voila did not answer on {url} in 60 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        assert f"huggingtweets app: {url}" in log.read_text()
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            pytest.fail("voila did not stop on SIGTERM")


@pytest.fixture
def page(tmp_path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1100, "height": 1300})
        page.blocked = []

        def only_loopback(route):
            if urlparse(route.request.url).hostname == "127.0.0.1":
                route.continue_()
            else:
                page.blocked.append(route.request.url)
                route.abort()

        page.route("**/*", only_loopback)
        page.errors = []
        page.on("pageerror", lambda e: page.errors.append(str(e)))
        yield page
        browser.close()


def shoot(page, tmp_path, name: str) -> Path:
    path = tmp_path / "screenshots" / f"{name}.png"
    # Voila scrolls an inner element, not the page: grow the window to the content so the shot holds it all.
    height = page.evaluate("() => Math.max(...[...document.querySelectorAll('*')].map(e => e.scrollHeight))")
    page.set_viewport_size({"width": 1100, "height": min(max(int(height) + 40, 800), 6000)})
    page.screenshot(path=str(path), full_page=True)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, SCREENSHOTS / path.name)
    return path


def open_app(page, url: str) -> None:
    page.goto(url, wait_until="domcontentloaded", timeout=60_000)
    page.wait_for_selector("button.ht-fetch", state="visible", timeout=STEP_S)


def click_and_wait(page, button: str, done: str) -> None:
    """Click a step's button, wait for `done` to show, then for the button to come back (the step is over)."""
    page.click(f"button.{button}")
    page.wait_for_selector(done, state="visible", timeout=STEP_S)
    page.wait_for_function(f"() => !document.querySelector('button.{button}').disabled", timeout=STEP_S)


def test_the_sample_account_in_a_browser(served_app, page, tmp_path):
    open_app(page, served_app)
    picked = page.locator(".ht-kind select").first.evaluate("s => s.options[s.selectedIndex].text")
    assert picked.replace("\xa0", " ") == "Sample account (no key)"  # ipywidgets shows spaces as &nbsp;
    page.fill(".ht-max-steps input", "4")
    page.press(".ht-max-steps input", "Enter")
    shoot(page, tmp_path, "1-app")

    click_and_wait(page, "ht-fetch", ".ht-stats table")
    rows = page.locator(".ht-stats table tbody tr").all_inner_texts()
    assert [r.split("\t") for r in rows] == [["Tweets downloaded", "450"], ["Retweets", "10"],
                                             ["Short tweets", "15"], ["Tweets kept", "425"]]
    assert "the sample account" in page.inner_text(".ht-stats table thead")
    shoot(page, tmp_path, "2-fetched")

    click_and_wait(page, "ht-train", ".ht-perplexity b")
    assert "before training" in page.inner_text(".ht-perplexity") and "4 steps" in page.inner_text(".ht-perplexity")
    assert page.get_attribute(".ht-plot img", "src").startswith("data:image/png;base64,")
    shoot(page, tmp_path, "3-trained")

    assert page.input_value(".ht-prompt input") == "My dream is"
    click_and_wait(page, "ht-sample", ".ht-samples li")
    samples = page.locator(".ht-samples li").all_inner_texts()
    assert len(samples) == 5 and all(s.startswith("My dream is") for s in samples)
    assert page.inner_text(".ht-error") == ""
    shoot(page, tmp_path, "4-samples")
    assert not page.errors, page.errors
    print("requests kept off the network:", page.blocked)


def test_posts_and_errors_show_as_text_in_a_browser(served_app, page, tmp_path):
    posts = tmp_path / "evil.txt"
    posts.write_text("\n".join([SCRIPT_POST, IMG_POST] + [p.text.replace("\n", " ") for p in sample_posts()]) + "\n",
                     encoding="utf-8")
    open_app(page, served_app)
    page.select_option(".ht-kind select >> nth=0", index=[kind for _, kind in SOURCE_KINDS].index("file"))
    page.fill(".ht-target input >> nth=0", str(posts))
    page.press(".ht-target input >> nth=0", "Tab")

    click_and_wait(page, "ht-fetch", ".ht-posts li")
    shown = page.locator(".ht-posts li").all_inner_texts()
    assert shown[:2] == [SCRIPT_POST, IMG_POST]  # the markup itself, as text
    assert page.locator(".ht-posts script, .ht-posts img").count() == 0
    assert "@evil" in page.inner_text(".ht-stats table thead")
    shoot(page, tmp_path, "5-escaped-posts")

    page.fill(".ht-target input >> nth=0", MISSING_HTML_FILE)
    page.press(".ht-target input >> nth=0", "Tab")
    click_and_wait(page, "ht-fetch", ".ht-error span")
    assert page.inner_text(".ht-error") == \
        f"error: file not found: {MISSING_HTML_FILE}: check the path after `file:`"
    assert page.locator(".ht-error img").count() == 0
    shoot(page, tmp_path, "6-escaped-error")
    page.wait_for_timeout(500)  # time for any handler that was injected to fire
    assert page.evaluate("typeof window.__pwned") == "undefined"
    assert not page.errors, page.errors
