"""The demo notebook's install cell, run as Colab runs it: in a fresh Python where
huggingtweets does not import but torch, transformers, ipywidgets, matplotlib and
IPython are preinstalled, with the repository served as a git URL. Afterwards the app
imports from the new environment, and pip installed none of the big packages over
the preinstalled ones.

Colab's preinstalled packages are played by this venv's: a `.pth` file in the fresh
venv names a folder of links to everything in our site-packages except huggingtweets
itself (its editable install and metadata) and pip/setuptools. The repository is a
bare clone of the committed HEAD (as branch `main`), reached by a `file://` URL through
the cell's own override, HUGGINGTWEETS_REPO: uncommitted work is not what it installs.
About 12 s here (the venv 4 s, the cell with its pip install from git 7 s); a repository without
huggingtweets/app.py (the original project's, or this one before 2217f80) fails it."""

import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import nbformat

from conftest import REPO

DEMO = REPO / "notebooks" / "huggingtweets-demo.ipynb"
# What `python -m venv` installs itself, and what must not be "preinstalled": huggingtweets.
NOT_PREINSTALLED = re.compile(r"huggingtweets|__editable__|_distutils_hack|pkg_resources|(pip|setuptools)([-.]|$)"
                              r"|.*\.pth$|__pycache__$", re.IGNORECASE)
BIG = ("torch", "transformers", "ipywidgets", "matplotlib", "IPython", "datasets")


def install_cell() -> str:
    """The notebook's install cell, as saved: this test runs it, not a copy of it."""
    nb = nbformat.read(DEMO, as_version=4)
    return next(c.source for c in nb.cells if c.cell_type == "code")


def colab_like_venv(root: Path) -> Path:
    """A fresh venv that sees this venv's packages as preinstalled, huggingtweets not among them."""
    env = root / "colab"
    subprocess.run([sys.executable, "-m", "venv", str(env)], check=True, timeout=300)
    python = env / "bin" / "python"
    site = Path(subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())
    ours = Path(sysconfig.get_paths()["purelib"])
    preinstalled = root / "preinstalled"
    preinstalled.mkdir()
    for entry in ours.iterdir():
        if not NOT_PREINSTALLED.match(entry.name):
            (preinstalled / entry.name).symlink_to(entry)
    (site / "colab-preinstalled.pth").write_text(f"{preinstalled}\n", encoding="utf-8")
    return python


def served_repository(root: Path) -> str:
    """The committed HEAD, as branch `main` of a bare repository, as a git URL (a local one)."""
    bare = root / "huggingtweets.git"
    subprocess.run(["git", "init", "--quiet", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "-C", str(REPO), "push", "--quiet", str(bare), "HEAD:refs/heads/main"], check=True,
                   timeout=120)
    # file://localhost/..., not file:///...: the pip that `python -m venv` brings (23.x) rejects a
    # `name @ git+file:///path` requirement with an empty host; git and every pip read this form
    return f"file://localhost{bare.resolve()}"


def clean_env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "HUGGINGTWEETS_REPO", "HUGGINGTWEETS_BRANCH")}
    env.update(PYTHONNOUSERSITE="1", IPYTHONDIR=str(root / "ipython"), MPLCONFIGDIR=str(root / "mpl"), **extra)
    return env


def run(python: Path, args: list[str], root: Path, env: dict[str, str], timeout: float = 120):
    # cwd is the temp folder: `-c` puts the working directory on sys.path, and the repository's root
    # would make huggingtweets importable without any install
    return subprocess.run([str(python), *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def run_install_cell(python: Path, root: Path, env: dict[str, str]):
    """The cell in IPython, where `get_ipython()` and `%pip` are what Colab's kernel has."""
    return run(python, ["-m", "IPython", "--quick", "--no-banner", "--colors=NoColor", "-c", install_cell()],
               root, env, timeout=600)


def test_the_install_cell_installs_the_app_from_a_git_url(tmp_path):
    python = colab_like_venv(tmp_path)
    env = clean_env(tmp_path)
    before = run(python, ["-c", "import huggingtweets"], tmp_path, env)
    assert before.returncode != 0 and "No module named 'huggingtweets'" in before.stderr
    found = run(python, ["-c", f"import importlib.util as u; print([m for m in {BIG!r} if not u.find_spec(m)])"],
                tmp_path, env)
    assert found.stdout.strip() == "[]", found.stderr  # the "preinstalled" packages are there

    url = served_repository(tmp_path)
    cell = run_install_cell(python, tmp_path, clean_env(tmp_path, HUGGINGTWEETS_REPO=url))
    assert f"installed from {url}@main" in cell.stdout, cell.stdout + cell.stderr

    after = run(python, ["-c", "import huggingtweets; from huggingtweets.app import build_app\n"
                               "from huggingtweets.project import home_url\n"
                               "print(huggingtweets.__file__); print(home_url())"], tmp_path, env)
    assert after.returncode == 0, after.stderr
    where, home = after.stdout.split()
    venv = python.parent.parent.resolve()
    assert Path(where).resolve().is_relative_to(venv) and not Path(where).resolve().is_relative_to(REPO)
    assert home == subprocess.run([sys.executable, "-c", "from huggingtweets.project import home_url; "
                                   "print(home_url())"], capture_output=True, text=True).stdout.strip()
    # pip kept the "preinstalled" torch, ipywidgets... rather than installing its own over them
    installed = {p.name.split("-")[0].lower() for p in venv.glob("lib/python*/site-packages/*")}
    assert [m for m in BIG if m.lower() in installed] == []

    again = run_install_cell(python, tmp_path, env)  # run twice, as people do: nothing to do
    assert "is installed: nothing to do" in again.stdout, again.stdout + again.stderr
