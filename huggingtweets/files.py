"""Where things live on disk, and writing files so a crash never leaves half of one."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator, TextIO


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_dir() -> Path:
    """Downloads and converted models, shared by every work folder.

    Read at call time (never at import) so tests and notebooks can point it
    elsewhere with HUGGINGTWEETS_CACHE.
    """
    if os.environ.get("HUGGINGTWEETS_CACHE"):
        return Path(os.environ["HUGGINGTWEETS_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "huggingtweets"


def default_work_dir() -> Path:
    return Path(os.environ.get("HUGGINGTWEETS_WORK") or "huggingtweets-work")


def _temp_prefix(path: Path) -> str:
    """Temp names carry the writer's pid, so leftovers of a killed process can be told
    from the work of a live one."""
    return f".{path.name}.{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_leftovers(folder: Path) -> list[Path]:
    """Delete the temp files and folders that killed writers left in `folder`
    (`.NAME.PID.XXXX.tmp` of a PID that is gone; older versions' have no PID): a kill -9
    while a model is saved would otherwise leave gigabytes in a hidden folder that
    nothing removes. A live writer's are left alone."""
    removed = []
    for item in Path(folder).glob(".*.tmp"):
        parts = item.name[1:-len(".tmp")].rsplit(".", 2)
        pid = parts[1] if len(parts) == 3 else ""
        if pid.isdigit() and (int(pid) == os.getpid() or _alive(int(pid))):
            continue
        if item.is_dir() and not item.is_symlink():
            shutil.rmtree(item, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                item.unlink()
        removed.append(item)
    return removed


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "w") -> Iterator[TextIO]:
    """Write to a temp file beside `path`, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else "utf-8") as f:
            yield f
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes it private; the result is an ordinary file
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def temp_beside(path: Path) -> Path:
    """A new empty temp file beside `path`, for writers that take a path rather than a file (the GGUF
    converter): named as atomic_write's are, so remove_leftovers removes it after a kill."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    return Path(tmp)


def write_json(path: Path, data: Any) -> None:
    with atomic_write(path) as f:
        json.dump(data, f, indent=2, ensure_ascii=False)
        f.write("\n")


def read_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


@contextlib.contextmanager
def atomic_dir(path: Path) -> Iterator[Path]:
    """Build a folder under a temp name and swap it in only when complete."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftovers(path.parent)  # a folder can be big (a model): never let a killed run's copy pile up
    tmp = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~_umask())
        old = path.with_name(f".{path.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if path.exists():
            path.rename(old)
        tmp.rename(path)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def without_home(value: Any) -> Any:
    """The same data with the user's home folder written as ~: for anything published."""
    home = str(Path.home())
    if isinstance(value, str):
        return value.replace(home, "~") if home not in ("/", "") else value
    if isinstance(value, dict):
        return {k: without_home(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_home(v) for v in value]
    return value
