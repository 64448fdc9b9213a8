"""One home for the project: setup.cfg's `url`. The README's Open-in-Colab badge, the
demo notebook's badge and its install cell, the card's "made with" link and the HTTP
User-Agent must all name it; nothing of ours may still point at the original
project's repository (which has no `huggingtweets.app` and cannot be installed)."""

import configparser
import re
import sys

import httpx
import nbformat
import pytest

from conftest import REPO
from huggingtweets.card import CardInputs, render_card
from huggingtweets.project import home_url, user_agent
from huggingtweets.sources import parse_source
from huggingtweets.sources.http import ApiClient

DEMO = "notebooks/huggingtweets-demo.ipynb"
COLAB = "https://colab.research.google.com/github/{owner_name}/blob/{branch}/" + DEMO
ORIGINAL = "borisdayma/huggingtweets"


def setup_cfg_url() -> str:
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg", encoding="utf-8")
    return config.get("metadata", "url")


URL = setup_cfg_url()


def readme_branch() -> str:
    """The branch the README says the install cell installs (and the badges open)."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    (found,) = re.findall(r"installs this project from\s+`([^`]+)` \(setup\.cfg's `url`\), branch `([^`]+)`", readme)
    assert found[0] == URL, "the README's Notebook app section names another repository than setup.cfg"
    return found[1]


def colab_link(branch: str) -> str:
    assert URL.startswith("https://github.com/")
    return COLAB.format(owner_name=URL.removeprefix("https://github.com/"), branch=branch)


def install_cell() -> str:
    nb = nbformat.read(REPO / DEMO, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code")


def run_install_cell(env: dict[str, str]) -> list[tuple[str, str]]:
    """Run the notebook's install cell where huggingtweets does not import yet, with a stand-in for
    IPython's `%pip` that records what it was asked and then lets the import work."""
    calls = []

    class Shell:
        def run_line_magic(self, magic, line):
            calls.append((magic, line))
            sys.modules["huggingtweets"] = saved  # "installed": the import works from now on

    saved = sys.modules["huggingtweets"]
    sys.modules["huggingtweets"] = None  # `import huggingtweets` raises ImportError, as before an install
    try:
        with pytest.MonkeyPatch.context() as mp:
            for name in ("HUGGINGTWEETS_REPO", "HUGGINGTWEETS_BRANCH"):
                mp.delenv(name, raising=False)
            for name, value in env.items():
                mp.setenv(name, value)
            exec(install_cell(), {"get_ipython": Shell, "__name__": "__main__"})
    finally:
        sys.modules["huggingtweets"] = saved
    return calls


def test_setup_cfg_names_this_project_and_the_installed_metadata_carries_it():
    assert re.fullmatch(r"https://github\.com/[\w.-]+/[\w.-]+", URL) and ORIGINAL not in URL
    assert home_url() == URL, "stale metadata: run .venv/bin/pip install --no-deps -e ."


def test_both_badges_open_the_demo_on_the_branch_the_readme_names():
    link = colab_link(readme_branch())
    assert (REPO / DEMO).is_file()
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert re.findall(r"\[!\[Open In Colab\]\([^)]*\)\]\(([^)]*)\)", readme) == [link]
    badge = nbformat.read(REPO / DEMO, as_version=4).cells[0].source
    assert re.findall(r'<a href="([^"]*)"[^>]*><img [^>]*alt="Open In Colab"', badge) == [link]


def test_the_install_cell_installs_setup_cfg_url_on_that_branch(capsys):
    # what Colab runs: no override set
    assert run_install_cell({}) == [("pip", f'install --quiet "huggingtweets @ git+{URL}@{readme_branch()}"')]
    assert f"installed from {URL}@{readme_branch()}" in capsys.readouterr().out
    # a fork (or the fresh-venv test) points it elsewhere without editing the cell
    calls = run_install_cell({"HUGGINGTWEETS_REPO": "file:///srv/fork.git", "HUGGINGTWEETS_BRANCH": "dev"})
    assert calls == [("pip", 'install --quiet "huggingtweets @ git+file:///srv/fork.git@dev"')]


def test_the_install_cell_keeps_colabs_torch_and_ipywidgets():
    (line,) = run_install_cell({})[0][1:]
    # build_app needs ipywidgets and matplotlib, which Colab has: no [app] extras (they would add voila
    # and could move ipywidgets), and nothing pins or reinstalls torch
    for word in ("torch", "ipywidgets", "[app]", "--upgrade", "-U ", "--force", "=="):
        assert word not in line, word


def test_the_user_agent_names_the_version_and_home():
    import huggingtweets

    assert user_agent() == f"huggingtweets/{huggingtweets.__version__} (+{URL})"
    seen = []

    def handler(request):
        seen.append(request.headers["User-Agent"])
        return httpx.Response(200, json={})

    with ApiClient("test", "http://127.0.0.1:9", transport=httpx.MockTransport(handler)) as client:
        client.client.get("/x")
    assert seen == [user_agent()]


def test_the_card_links_this_project():
    text = render_card(CardInputs(name="sample", specs=[parse_source("sample")], stats={}, metrics={},
                                  base_display="gpt2", base_url=None, base_limitations_url=None, license=None))
    assert f"I was made with [huggingtweets]({URL})." in text


def test_nothing_of_ours_points_at_the_original_repository():
    # The README may credit the original project; nothing else may link there. (card.py's links are
    # checked by tests/test_card.py.)
    ours = [REPO / DEMO, REPO / "huggingtweets" / "app.ipynb", REPO / "huggingtweets" / "project.py",
            REPO / "huggingtweets" / "sources" / "http.py", REPO / "setup.cfg"]
    assert [p.name for p in ours if ORIGINAL in p.read_text(encoding="utf-8")] == []
    readme = (REPO / "README.md").read_text(encoding="utf-8").splitlines()
    assert [line for line in readme if ORIGINAL in line and "original" not in line.lower()] == []
