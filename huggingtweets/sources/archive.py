"""`archive:PATH`: the user's own X archive (Settings > Your account > Download an
archive). Accepts the zip as downloaded, the unzipped folder (or its `data`
folder), or a single `tweets.js`.

The archive's files are JavaScript: `window.YTD.tweets.part0 = [{"tweet": {...}}, ...]`.
Older archives call it `tweet.js` (`YTD.tweet.part0`, sometimes without the
`{"tweet": ...}` wrapper); big ones split it into `tweets-part1.js`, ... and list
the parts in `data/manifest.js`. Long posts are cut in `tweets.js`; their whole
text is in `note-tweet.js`. `retweeted` is always false in an archive, so a repost
is known by its text ("RT @...").

A zip is read in place, only the few files needed, and never extracted: its names
are checked so none escapes, and its size is capped, because an archive is a file
from the internet like any other.

The files are parsed an entry at a time by json's own decoder (`_Text`, `_items`).
ijson 3.6 (yajl2_c) was measured in its place on the 100,000-post tweets.js of
tests/test_big.py (140 MB, AMD EPYC Zen 4, 2026-12-04): 1.1-1.6 s against 2.9-3.4 s,
and no memory above its imports against 43 MiB. Not kept: 200 KB of nested brackets
(`[` * 100,000) drove it out of memory (the process was killed, where this reader
says "nested too deeply" in one line), a 5,000-digit number is its own error, and a
lone surrogate comes back as "?". A read is a few seconds of a 100,000-post run.
"""

from __future__ import annotations

import bisect
import codecs
import html
import json
import lzma
import re
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path, PurePosixPath
from typing import IO, Any, Callable, Iterator

from ..errors import SourceError
from ..posts import _SURROGATE, Post, _without_surrogates, json_loads, numeric_id

# Caps for a zip (and for the files read from a folder): far above any real
# archive, far below what would exhaust memory or disk.
MAX_ENTRIES = 200_000
MAX_TOTAL_BYTES = 4 * 1024**3  # the zip's uncompressed size, all entries
MAX_RATIO = 10  # ...unless it is also under 10 times the zip's own size: photos and videos do not compress
MAX_FILE_BYTES = 1024**3  # one file read (a tweets.js this big is already ~10 GiB of memory once parsed)
MAX_READ_BYTES = 2 * 1024**3  # all the files read: tweets, notes, manifest, account
CHUNK_BYTES = 4 * 1024**2  # read and parsed this much at a time

HOW_TO_GET = ("give archive: the .zip from X (Settings > Your account > Download an archive), its unzipped folder, "
              "or its data/tweets.js; Bluesky's repo.car; Mastodon's archive (.zip or .tar.gz); or Threads' "
              "\"Download your information\" zip")
TWEET_FILE = re.compile(r"(tweets?)(-part(\d+))?\.js", re.IGNORECASE)  # not deleted-tweets.js, tweet-headers.js
NOTE_FILE = re.compile(r"note-tweets?(-part(\d+))?\.js", re.IGNORECASE)
YTD_PREFIX = re.compile(r"\s*window\.YTD\.([A-Za-z0-9_]+)\.part(\d+)\s*=\s*")
MANIFEST_PREFIX = re.compile(r"\s*window\.__THAR_CONFIG\s*=\s*")
TCO_OR_URL = re.compile(r"https?://\S+")
LINK_START = re.compile(r"https?://\S")
ELLIPSES = ("\u2026", "...")
MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1)}
X_DATE = re.compile(r"[A-Za-z]{3} ([A-Za-z]{3}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2}) (\d{4})")
LEADING_MENTIONS = re.compile(r"(\s*@\w+)+\s+")
USERNAME = re.compile(r"[A-Za-z0-9_]{1,15}")


def _size(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} GiB"


# --- where the files are: a zip, a folder, or one file ---------------------------------------------------------


PLATFORMS = {  # how each platform's export is asked for again, for the messages
    "X": "download the archive again from X (Settings > Your account > Download an archive)",
    "Mastodon": "request a new archive from your Mastodon server (Preferences > Import and export > Data export)",
    "Threads": "download your information again from Meta (Accounts Center > Your information and permissions > "
               "Download your information, format JSON)",
}


class _Container:
    """The archive's `data` folder, wherever it is: `names` are the file names in it."""

    label: str  # how messages name the archive
    platform = "X"  # whose export this is: X, Mastodon or Threads (a Bluesky CAR is not a container)
    names: dict[str, Any]  # lower-cased file name in data/ -> whatever `_read_raw` needs
    only: list[str] | None = None  # a single tweets.js given on its own

    def __init__(self) -> None:
        self.bytes_read = 0

    @property
    def again(self) -> str:
        return PLATFORMS[self.platform]

    def has(self, name: str) -> bool:
        return name.lower() in self.names

    def members(self, wanted: list[str]) -> Iterator[tuple[str, Iterator[bytes]]]:
        """(name, its chunks) for each wanted name the archive has, in the order given
        (a tar gives them in its own order, as it is read)."""
        for name in wanted:
            if self.has(name):
                yield name, self.chunks(name)

    def display(self, name: str) -> str:
        return name

    def read(self, name: str) -> bytes:
        return b"".join(self.chunks(name))

    def chunks(self, name: str) -> Iterator[bytes]:
        """The file's bytes, CHUNK_BYTES at a time, counted against the caps as they come."""
        yield from self.counted(self._chunks(self.names[name.lower()], name, CHUNK_BYTES))

    def counted(self, source: Iterator[bytes]) -> Iterator[bytes]:
        for data in source:
            self.bytes_read += len(data)
            if self.bytes_read > MAX_READ_BYTES:
                raise SourceError(f"{self.label} has more than the {_size(MAX_READ_BYTES)} allowed in the files to read, "
                                  f"more than any {self.platform} archive: check that it is your archive as "
                                  f"{self.platform} made it")
            yield data

    def _chunks(self, ref: Any, name: str, size: int) -> Iterator[bytes]:
        raise NotImplementedError

    def close(self) -> None:
        pass


def _bad_name(name: str) -> bool:
    """A zip entry name that would land outside wherever it was unzipped."""
    norm = name.replace("\\", "/")
    if norm.startswith("/") or re.match(r"[A-Za-z]:", norm) or "\x00" in norm:
        return True
    return ".." in norm.split("/")


class _Zip(_Container):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.label = str(path)
        try:
            self.packed = path.stat().st_size
            self.zf = zipfile.ZipFile(path)
        except (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError, UnicodeDecodeError) as e:
            raise SourceError(f"{path} is not a readable zip ({e}): download the archive again from where you "
                              "got it (X: Settings > Your account > Download an archive)") from None
        except OSError as e:
            raise SourceError(f"cannot read {path}: {e.strerror or e}: check the file's permissions") from None
        try:
            self.names = self._index(path)
        except BaseException:
            self.zf.close()
            raise

    def _index(self, path: Path) -> dict[str, Any]:
        infos = self.zf.infolist()
        self.platform = platform_of([i.filename.replace("\\", "/") for i in infos[:MAX_ENTRIES]])
        who = self.platform
        if len(infos) > MAX_ENTRIES:
            raise SourceError(f"{path} has {len(infos):,} entries, more than the {MAX_ENTRIES:,} a {who} archive could "
                              f"have: check that it is your archive as {who} made it")
        total = 0
        for info in infos:
            check_member(path, info.filename, stat.S_ISLNK(info.external_attr >> 16), who)
            total += info.file_size
        # An archive with years of photos and videos is big but barely compresses; a zip bomb
        # is big only once expanded. Nothing is extracted, but the cap keeps the reads honest.
        packed = max(self.packed, 1)
        if total > MAX_TOTAL_BYTES and total > MAX_RATIO * packed:
            raise SourceError(f"{path} unzips to {_size(total)} from {_size(packed)}, more than the {_size(MAX_TOTAL_BYTES)} "
                              f"allowed and not how {who} archives compress: check that it is your archive as {who} "
                              "made it")
        # The data folder: `data/` at the top, or inside one folder (a zip of the unzipped folder), or no folder.
        files = [i for i in infos if not i.is_dir()]
        self.prefix = _pick_prefix([i.filename.replace("\\", "/") for i in files], self.platform)
        names: dict[str, Any] = {}
        for info in files:
            name = info.filename.replace("\\", "/")
            if self.prefix is not None and name.startswith(self.prefix) and "/" not in name[len(self.prefix):]:
                names[name[len(self.prefix):].lower()] = info
        return names

    def display(self, name: str) -> str:
        return f"{self.label}:{self.prefix or ''}{name}"

    def _chunks(self, info: zipfile.ZipInfo, name: str, size: int) -> Iterator[bytes]:
        if info.file_size > MAX_FILE_BYTES:
            raise SourceError(f"{self.display(name)} is {_size(info.file_size)}, more than the "
                              f"{_size(MAX_FILE_BYTES)} allowed for one file: check that it is your archive as X made it")
        left = info.file_size + 1  # no more than the header says, plus one byte to notice a header that lies
        try:
            with self.zf.open(info) as f:
                while left > 0:
                    data = f.read(min(size, left))
                    if not data:
                        break
                    left -= len(data)
                    if left == 0:
                        raise SourceError(f"{self.display(name)} is larger than the zip says: {self.again}")
                    yield data
        except RuntimeError as e:  # encrypted
            raise SourceError(f"cannot read {self.display(name)} ({e}): give archive: the zip as {self.platform} made "
                              "it, not a re-zipped or password-protected copy") from None
        except (zipfile.BadZipFile, zlib.error, lzma.LZMAError, EOFError, NotImplementedError, ValueError) as e:
            raise SourceError(f"{self.display(name)} is damaged ({e}): {self.again}") from None
        except OSError as e:
            raise SourceError(f"cannot read {self.display(name)}: {e.strerror or e}") from None

    def close(self) -> None:
        self.zf.close()


MASTODON_MARK, THREADS_MARK = "outbox.json", "threads_and_replies.json"


def platform_of(names: list[str]) -> str:
    """Whose export a list of file paths is: Threads (threads_and_replies.json, in
    your_instagram_activity/threads/), Mastodon (outbox.json at the top or one folder
    down) or else X. The reader then checks the file's own shape."""
    bases = [(n.rsplit("/", 1)[-1].lower(), n.strip("/").count("/")) for n in names]
    if any(b == THREADS_MARK for b, _ in bases):
        return "Threads"
    if any(b == MASTODON_MARK and depth <= 1 for b, depth in bases):
        return "Mastodon"
    return "X"


def check_member(path: Path, name: str, is_link: bool, who: str) -> None:
    """An archive entry that would land outside wherever it was unpacked, or a link: no
    archive any platform makes has either."""
    if _bad_name(name):
        raise SourceError(f"{path} has an entry named {name!r} that points outside the archive: this is not an "
                          f"archive as {who} makes them; download yours again from {who}")
    if is_link:
        raise SourceError(f"{path} has a symbolic link ({name!r}), which {who} archives never have: "
                          f"download yours again from {who}")


def _is_marker(base: str, platform: str) -> bool:
    base = base.lower()
    if platform == "Mastodon":
        return base == MASTODON_MARK
    if platform == "Threads":
        return base == THREADS_MARK
    return base in ("manifest.js", "account.js") or bool(TWEET_FILE.fullmatch(base))


def _pick_prefix(names: list[str], platform: str = "X") -> str | None:
    """The folder (as a zip name prefix) that holds the archive's data files."""
    candidates = set()
    for name in names:
        folder, _, base = name.rpartition("/")
        if _is_marker(base, platform):
            candidates.add(folder + "/" if folder else "")
    if not candidates:
        return None
    # Prefer a folder called data, then the shallowest.
    return min(candidates, key=lambda p: (not p.rstrip("/").lower().endswith("data"), p.count("/"), p))


class _Folder(_Container):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.label = str(path)
        self.root = path.resolve()
        self.data = self._other_platform(path) or self._find_data(path)
        self.names = {}
        try:
            entries = list(self.data.iterdir())
        except OSError as e:
            raise SourceError(f"cannot list {self.data}: {e.strerror or e}: check the folder's permissions") from None
        for entry in entries:
            try:
                real = entry.resolve()
                # A link that points outside the archive folder is ignored, as if absent.
                if not real.is_relative_to(self.root) or not real.is_file():
                    continue
            except (OSError, RuntimeError):
                continue
            self.names[entry.name.lower()] = real

    def _other_platform(self, path: Path) -> Path | None:
        """The folder of an unpacked Mastodon archive (outbox.json in it or one folder down) or
        Threads export (threads_and_replies.json up to three folders down); None for anything else."""
        for platform, mark, patterns in (("Threads", THREADS_MARK, ("", "*/", "*/*/", "*/*/*/")),
                                         ("Mastodon", MASTODON_MARK, ("", "*/"))):
            for pattern in patterns:
                try:
                    found = sorted(p for p in path.glob(pattern + mark) if p.is_file())
                except OSError:
                    found = []
                if found:
                    self.platform = platform
                    return found[0].parent
        return None

    @staticmethod
    def _find_data(path: Path) -> Path:
        def looks_like_data(folder: Path) -> bool:
            try:
                return any(p.name.lower() in ("manifest.js", "account.js") or TWEET_FILE.fullmatch(p.name)
                           for p in folder.iterdir())
            except OSError:
                return False

        if (path / "data").is_dir() and looks_like_data(path / "data"):
            return path / "data"
        if looks_like_data(path):
            return path
        try:
            inner = [p / "data" for p in path.iterdir() if p.is_dir() and (p / "data").is_dir()]
        except OSError:
            inner = []
        if len(inner) == 1 and looks_like_data(inner[0]):  # the zip unzipped into a folder of its own name
            return inner[0]
        return path / "data" if (path / "data").is_dir() else path

    def display(self, name: str) -> str:
        return str(self.data / name)

    def _chunks(self, real: Path, name: str, size: int) -> Iterator[bytes]:
        left = MAX_FILE_BYTES + 1  # a file that grew since stat() is still capped
        try:
            if real.stat().st_size > MAX_FILE_BYTES:
                raise SourceError(f"{self.display(name)} is {_size(real.stat().st_size)}, more than the "
                                  f"{_size(MAX_FILE_BYTES)} allowed for one file: check that it is your archive")
            with open(real, "rb") as f:
                while data := f.read(min(size, left)):
                    left -= len(data)
                    if left == 0:
                        raise SourceError(f"{self.display(name)} is over the {_size(MAX_FILE_BYTES)} allowed for one "
                                          "file: check that it is your archive")
                    yield data
        except OSError as e:
            raise SourceError(f"cannot read {self.display(name)}: {e.strerror or e}: check the file's permissions") from None


class _SingleFile(_Folder):
    """A tweets.js given on its own: that file, plus note-tweet.js beside it if there is one."""

    def __init__(self, path: Path) -> None:
        _Container.__init__(self)
        self.label = str(path)
        self.root = path.parent.resolve()
        self.data = path.parent
        self.names = {path.name.lower(): path.resolve()}
        self.only = [path.name]
        for sibling in ("note-tweet.js",):
            p = path.parent / sibling
            try:
                if p.is_file() and p.resolve().is_relative_to(self.root):
                    self.names[sibling] = p.resolve()
            except (OSError, RuntimeError):
                pass


class _Car:
    """A Bluesky repository CAR: read by car.py, not as a container of files."""

    def __init__(self, path: Path) -> None:
        self.path = path


def _open(path: Path) -> "_Container | _Car":
    try:
        exists = path.exists()
    except (OSError, ValueError):  # a name the system cannot look up
        exists = False
    if not exists:
        raise SourceError(f"archive not found: {path}: check the path after `archive:`")
    if path.is_dir():
        return _Folder(path)
    try:
        with open(path, "rb") as f:
            head = f.read(512)
    except OSError as e:
        raise SourceError(f"cannot read {path}: {e.strerror or e}: check the file's permissions") from None
    from .car import looks_like_car

    if looks_like_car(head):
        return _Car(path)
    if head.startswith(b"\x1f\x8b") or head[257:262] == b"ustar" or path.name.lower().endswith((".tar.gz", ".tgz", ".tar")):
        from .tarball import Tar

        return Tar(path)
    if head.startswith(b"PK") or path.suffix.lower() == ".zip":
        return _Zip(path)
    if path.suffix.lower() == ".js" or head.lstrip(b"\xef\xbb\xbf \t\r\n").startswith(b"window.YTD."):
        return _SingleFile(path)
    raise SourceError(f"{path} is not an archive huggingtweets reads: {HOW_TO_GET}")


# --- the archive's JavaScript files ----------------------------------------------------------------------------


def _decode(box: _Container, name: str, data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise SourceError(f"{box.display(name)} is not UTF-8 text ({e.reason} at byte {e.start}): {box.again}") from None


def _parse_json(box: _Container, name: str, text: str) -> Any:
    text = text.strip()
    if text.endswith(";"):
        text = text[:-1]
    try:
        return json_loads(text)
    except (ValueError, RecursionError) as e:  # ValueError: bad JSON, or a number of more than 4,300 digits
        raise _json_error(box, name, e) from None


def _read_ytd(box: _Container, name: str) -> tuple[str, list[Any]]:
    """A `window.YTD.<x>.partN = [...]` file: its data type and its list."""
    data_type, entries = _iter_ytd(box, name)
    return data_type, list(entries)


_DECODER = json.JSONDecoder()
_NUMBER_TAIL = re.compile(r"[0-9.eE+-]*\Z")  # what is left of a number cut at the end of a chunk
_SPACE = re.compile(r"[ \t\n\r]*")


def _iter_ytd(box: _Container, name: str) -> tuple[str, Iterator[Any]]:
    """A `window.YTD.<x>.partN = [...]` file: its data type and its list's entries, one
    at a time. A big archive's tweets.js parsed whole takes ten times its size in
    memory; read and parsed an entry at a time, it takes a few MiB."""
    text = _Text(box, name)
    while len(text.buf) < 4096 and text.more():
        pass
    m = YTD_PREFIX.match(text.buf)
    if not m:
        raise SourceError(f"{box.display(name)} does not start with `window.YTD.<name>.partN = `, as X archive files do: "
                          "give archive: the archive as X made it")
    pos = _SPACE.match(text.buf, m.end()).end()
    if not text.buf.startswith("[", pos):
        while text.more():
            pass
        data = _parse_json(box, name, text.buf[m.end():])  # its own error, or the wrong shape
        raise SourceError(f"{box.display(name)} holds a JSON {type(data).__name__}, not the list an X archive has: "
                          "download the archive again from X")
    return m.group(1), _entries(text, pos + 1)


class _Text:
    """A file's text, decoded as it is read: `buf` holds what is not yet parsed."""

    def __init__(self, box: _Container, name: str, chunks: Iterator[bytes] | None = None) -> None:
        self.box, self.name = box, name
        self.source = chunks if chunks is not None else box.chunks(name)
        self.decoder = codecs.getincrementaldecoder("utf-8-sig")()
        self.buf = ""
        self.read_bytes = 0  # bytes decoded before this chunk, for messages
        self.lines = 0  # newlines dropped from the front of buf, for messages
        self.col = 0  # characters since the last dropped newline
        self.done = False

    def more(self) -> bool:
        """Append the next chunk to buf; False at the end of the file."""
        if self.done:
            return False
        data = next(self.source, None)
        pending = self.decoder.getstate()[0]  # the start of a character cut by the last chunk
        try:
            self.buf += self.decoder.decode(data or b"", final=data is None)
        except UnicodeDecodeError as e:
            raise SourceError(f"{self.box.display(self.name)} is not UTF-8 text ({e.reason} at byte "
                              f"{self.read_bytes - len(pending) + e.start}): {self.box.again}") from None
        if data is None:
            self.done = True
            return False
        self.read_bytes += len(data)
        return True

    def skip_space(self, pos: int) -> int:
        """The position of the next character after whitespace from `pos`, reading more as needed
        (len(buf) at the end of the file)."""
        while True:
            pos = _SPACE.match(self.buf, pos).end()
            if pos < len(self.buf) or not self.more():
                return pos

    def drop(self, pos: int) -> int:
        """Forget buf up to pos (parsed); returns the new position of what was at pos."""
        newlines = self.buf.count("\n", 0, pos)
        self.col = pos - self.buf.rfind("\n", 0, pos) - 1 if newlines else self.col + pos
        self.lines += newlines
        self.buf = self.buf[pos:]
        return 0

    def error(self, e: json.JSONDecodeError) -> SourceError:
        col = e.colno + (self.col if e.lineno == 1 else 0)
        return _json_error(self.box, self.name, json.JSONDecodeError(e.msg, "", 0), line=e.lineno + self.lines, col=col)


def _entries(text: _Text, pos: int) -> Iterator[Any]:
    """The list's entries from `pos` (just after its `[`), checked as strictly as
    json.loads checks the whole list: commas between, nothing after but `;`."""
    yield from _items(text, pos)
    _check_end(text)


def _items(text: _Text, pos: int) -> Iterator[Any]:
    """A list's entries from `pos` (just after its `[`), one at a time; at the end,
    `text.buf` starts just after its `]`."""
    pos = text.skip_space(pos)
    if text.buf.startswith("]", pos):
        pos += 1
    else:
        while True:
            entry, pos = _value(text, pos)
            yield entry
            pos = text.skip_space(pos)
            if pos > 1 << 20:
                pos = text.drop(pos)
            if text.buf.startswith(",", pos):
                pos += 1
                pos = text.skip_space(pos)
                continue
            if text.buf.startswith("]", pos):
                pos += 1
                break
            raise text.error(json.JSONDecodeError("Expecting ',' delimiter", text.buf, pos))
    text.drop(pos)


def _check_end(text: _Text) -> None:
    """Nothing but whitespace and a `;` left in the file."""
    while len(text.buf.strip()) <= 1:
        text.buf = text.buf.strip()  # what follows the list may be a long run of spaces
        if not text.more():
            break
    if text.buf.strip() not in ("", ";"):
        raise text.error(json.JSONDecodeError("Extra data", text.buf, len(text.buf) - len(text.buf.lstrip())))


def _json_error(box: _Container, name: str, e: BaseException, line: int | None = None,
                col: int | None = None) -> SourceError:
    if isinstance(e, json.JSONDecodeError):
        return SourceError(f"{box.display(name)} is cut short or damaged (bad JSON at line {line or e.lineno}, column "
                           f"{col or e.colno}: {e.msg}): {box.again}")
    if isinstance(e, RecursionError):
        return SourceError(f"{box.display(name)} is nested too deeply to be a {box.platform} archive file: {box.again}")
    return SourceError(f"{box.display(name)} holds a number too long to read, which {box.platform} archives never "
                       f"have: {box.again}")


def object_items(text: _Text, list_key: str, others: dict[str, Any]) -> Iterator[Any]:
    """The entries of one list in a file that is one JSON object (`{"orderedItems": [...]}`),
    one at a time, in bounded memory; the object's other members go into `others`. Checked
    as strictly as json.loads: an error is the same one line as a whole file's."""
    pos = text.skip_space(0)
    if not text.buf.startswith("{", pos):
        while text.more():
            pass
        data = _parse_json(text.box, text.name, text.buf)
        raise SourceError(f"{text.box.display(text.name)} holds a JSON {type(data).__name__}, not the object a "
                          f"{text.box.platform} archive has: {text.box.again}")
    pos = text.skip_space(pos + 1)
    if text.buf.startswith("}", pos):
        text.drop(pos + 1)
        _check_end(text)
        return
    while True:
        key, pos = _value(text, pos)
        if not isinstance(key, str):
            raise text.error(json.JSONDecodeError("Expecting property name enclosed in double quotes", text.buf, pos))
        pos = text.skip_space(pos)
        if not text.buf.startswith(":", pos):
            raise text.error(json.JSONDecodeError("Expecting ':' delimiter", text.buf, pos))
        pos = text.skip_space(pos + 1)
        if key == list_key and text.buf.startswith("[", pos):
            others[key] = None
            yield from _items(text, pos + 1)
            pos = 0
        else:
            others[key], pos = _value(text, pos)
        pos = text.skip_space(pos)
        if pos > 1 << 20:
            pos = text.drop(pos)
        if text.buf.startswith(",", pos):
            pos = text.skip_space(pos + 1)
            continue
        if text.buf.startswith("}", pos):
            break
        raise text.error(json.JSONDecodeError("Expecting ',' delimiter", text.buf, pos))
    text.drop(pos + 1)
    _check_end(text)


def _value(text: _Text, pos: int) -> tuple[Any, int]:
    """One JSON value at `pos`, reading more of the file as needed: (value, position after it).
    When parsing fails near the end of what is read, it reads more and tries again, twice as
    much each time, so a value of any size costs linear time."""
    while True:
        try:
            value, end = _DECODER.raw_decode(text.buf, pos)
            # A number may go on in the next chunk, its fraction or exponent too: "0." or "1e-" at the end
            # of what is read decodes as 0 or 1 with the rest left over.
            may_go_on = end == len(text.buf) or (type(value) in (int, float) and _NUMBER_TAIL.match(text.buf, end))
            if not may_go_on or not text.more():
                break
        except json.JSONDecodeError as e:
            if text.done:
                raise text.error(e) from None
            want = len(text.buf) - pos
            while len(text.buf) - pos < 2 * want + 1 and text.more():
                pass
        except (ValueError, RecursionError) as e:  # a number of more than 4,300 digits, deep nesting
            raise _json_error(text.box, text.name, e) from None
    if _SURROGATE.search(text.buf, pos, end):
        value = _without_surrogates(value)
    return value, end


def _manifest(box: _Container) -> dict[str, Any] | None:
    if not box.has("manifest.js"):
        return None
    text = _decode(box, "manifest.js", box.read("manifest.js"))
    m = MANIFEST_PREFIX.match(text)
    if not m:
        raise SourceError(f"{box.display('manifest.js')} does not start with `window.__THAR_CONFIG = `: "
                          "download the archive again from X")
    data = _parse_json(box, "manifest.js", text[m.end():])
    return data if isinstance(data, dict) else None


def _manifest_files(manifest: dict[str, Any] | None, *types: str) -> list[str] | None:
    """The data files the manifest lists for the first of `types` it has; None when it lists none."""
    types_ = manifest.get("dataTypes") if isinstance(manifest, dict) else None
    if not isinstance(types_, dict):
        return None
    for t in types:
        entry = types_.get(t)
        files = entry.get("files") if isinstance(entry, dict) else None
        if not isinstance(files, list):
            continue
        names = []
        for f in files:
            file_name = f.get("fileName") if isinstance(f, dict) else None
            if not isinstance(file_name, str):
                continue
            p = PurePosixPath(file_name.replace("\\", "/"))
            # Only names in data/ itself; anything else (or `..`) is not a file this reader opens.
            if (len(p.parts) == 2 and p.parts[0].lower() == "data") or len(p.parts) == 1:
                if p.name not in ("..", "."):
                    names.append(p.name)
        if names:
            return names
    return None


def _part_number(name: str) -> int:
    m = re.search(r"-part(\d+)\.js$", name, re.IGNORECASE)
    return int(m.group(1)) if m else 0


def _tweet_files(box: _Container, manifest: dict[str, Any] | None) -> list[str]:
    if box.only:
        return box.only
    listed = _manifest_files(manifest, "tweets", "tweet")
    if listed:
        missing = [n for n in listed if not box.has(n)]
        if missing:
            raise SourceError(f"{box.label} lists {', '.join('data/' + n for n in missing)} in its manifest.js but does "
                              "not have it: unzip the whole archive, or download it again from X")
        return listed
    found = sorted((n for n in box.names if TWEET_FILE.fullmatch(n)), key=lambda n: (n.startswith("tweet."), _part_number(n)))
    if not found:
        raise SourceError(f"{box.label} has no tweets file (looked for data/tweets.js, data/tweets-part1.js..., "
                          f"data/tweet.js): {HOW_TO_GET}")
    return found


def _note_files(box: _Container, manifest: dict[str, Any] | None) -> list[str]:
    listed = _manifest_files(manifest, "noteTweet", "note_tweet", "noteTweets")
    if listed:
        return [n for n in listed if box.has(n)]
    return sorted((n for n in box.names if NOTE_FILE.fullmatch(n)), key=_part_number)


# --- records -> posts ------------------------------------------------------------------------------------------


def _x_date(value: Any) -> datetime | None:
    """"Wed Oct 10 20:19:24 +0000 2018" (parsed by hand: strptime's %a/%b follow the locale),
    or ISO 8601 as note-tweet.js writes it."""
    if not isinstance(value, str):
        return None
    m = X_DATE.fullmatch(value.strip())
    try:
        if m:
            month = MONTHS.get(m.group(1).title())
            if month is None:
                return None
            offset = timedelta(hours=int(m.group(7)), minutes=int(m.group(8))) * (1 if m.group(6) == "+" else -1)
            local = datetime(int(m.group(9)), month, int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)),
                             tzinfo=timezone(offset))
            return local.astimezone(timezone.utc)
        d = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return (d if d.tzinfo else d.replace(tzinfo=timezone.utc)).astimezone(timezone.utc)
    except (ValueError, OverflowError):
        return None


def _iso(d: datetime | None) -> str | None:
    return d.replace(microsecond=0).isoformat() if d else None


@dataclass
class _Note:
    text: str
    created: datetime | None
    note_id: str | None
    key: str = field(init=False)  # the text as compared with a cut-short post

    def __post_init__(self) -> None:
        self.key = _compare_key(self.text)


def _compare_key(text: str) -> str:
    """Text as compared between a post and its note: unescaped, links out (the note
    may show them expanded), whitespace as single spaces."""
    return " ".join(TCO_OR_URL.sub(" ", html.unescape(text)).split())


def _notes(box: _Container, manifest: dict[str, Any] | None) -> list[_Note]:
    notes = []
    for name in _note_files(box, manifest):
        _, entries = _read_ytd(box, name)
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            # Versions differ: {"noteTweet": {...}}, {"note_tweet": {...}}, or the note itself.
            note = next((entry[k] for k in ("noteTweet", "note_tweet", "noteTweetResults", "note_tweet_results")
                         if isinstance(entry.get(k), dict)), entry)
            if isinstance(note.get("result"), dict):
                note = note["result"]
            core = note.get("core") if isinstance(note.get("core"), dict) else note
            text = next((core[k] for k in ("text", "full_text") if isinstance(core.get(k), str)), None)
            if not text:
                continue
            created = _x_date(note.get("createdAt") or note.get("created_at"))
            note_id = note.get("noteTweetId") or note.get("id") or note.get("id_str")
            notes.append(_Note(text=text, created=created, note_id=str(note_id) if note_id else None))
    return notes


def _without_end_links(text: str) -> str:
    r"""`text` without the links at its end, as `re.sub(r"(\s*https?://\S+)+\s*$", "", text)`
    would cut them, in linear time: that pattern backtracks exponentially on "https://https://... x"."""
    text = text.rstrip()
    cut = len(text)
    for word in reversed(list(re.finditer(r"\S+", text))):
        link = LINK_START.search(text, word.start(), word.end())
        if link is None:
            break
        if link.start() > word.start():  # "xhttps://t.co/a": the link starts inside the word
            return text[:link.start()]
        cut = word.start()
    return text[:cut].rstrip()


def _stub(text: str) -> tuple[str, bool] | None:
    """A long post's stub in tweets.js ends in an ellipsis or a t.co link (or both):
    its text without them and whether it had the ellipsis; None when it does not look cut."""
    trimmed = _without_end_links(text)
    linked, ellipsis = trimmed != text.rstrip(), False
    for e in ELLIPSES:
        if trimmed.endswith(e):
            trimmed, ellipsis = trimmed[: -len(e)], True
    if not (linked or ellipsis):
        return None
    # A cut in the middle of an HTML entity (`&am`) would never match the note.
    return re.sub(r"&[A-Za-z0-9#]*$", "", trimmed), ellipsis


def _attach_notes(posts: list[tuple[Post, datetime | None]], notes: list[_Note]) -> None:
    """Gives each cut-short post its note's whole text. First by text: the note that the
    stub begins (sorted keys and bisect, so a big archive is not posts x notes). Then, for
    stubs that end in an ellipsis and are still unmatched, by time: the one note left that
    was made in the same second. Text first, for every post, so a post that merely ends
    in a link never takes a note that its own stub would have matched."""
    if not notes:
        return
    keys = sorted((n.key, i) for i, n in enumerate(notes))
    sorted_keys = [k for k, _ in keys]
    used: set[int] = set()
    waiting: list[tuple[Post, datetime | None, str]] = []

    def give(post: Post, i: int) -> None:
        used.add(i)
        # A reply's stub starts with the @names it answers; its note may not: keep them.
        mentions = LEADING_MENTIONS.match(post.text)
        text = notes[i].text
        post.text = mentions.group(0) + text if mentions and not text.lstrip().startswith("@") else text
        if notes[i].note_id:
            post.raw["note_tweet_id"] = notes[i].note_id

    def starting_with(key: str) -> list[int]:
        found = []
        if len(key) >= 10:  # a shorter stub (a bare link, a few words) would match too much
            j = bisect.bisect_left(sorted_keys, key)
            while j < len(keys) and sorted_keys[j].startswith(key) and len(found) < 50:
                i = keys[j][1]
                if i not in used and len(notes[i].key) > len(key):
                    found.append(i)
                j += 1
        return found

    for post, created in posts:
        cut = _stub(post.text) if post.kind != "repost" else None  # someone else's words: never our note
        if cut is None:
            continue
        key = _compare_key(cut[0])
        found = starting_with(key)
        if not found and LEADING_MENTIONS.match(key):
            found = starting_with(LEADING_MENTIONS.sub("", key))
        if found:
            if len(found) > 1 and created:  # the same opening twice: the one made closest in time
                found.sort(key=lambda i: abs((notes[i].created - created).total_seconds())
                           if notes[i].created else float("inf"))
            give(post, found[0])
        elif cut[1] and created:
            waiting.append((post, created, key))
    by_second: dict[int, list[int]] = {}
    for i, n in enumerate(notes):
        if n.created and i not in used:
            by_second.setdefault(int(n.created.timestamp()), []).append(i)
    for post, created, key in waiting:
        same = [i for i in by_second.get(int(created.timestamp()), []) if i not in used and len(notes[i].key) > len(key)]
        if len(same) == 1:
            give(post, same[0])


def _kind(t: dict[str, Any], text: str) -> str:
    # As the X source does: a repost first, then a quote, then a reply.
    if text.startswith("RT @"):
        return "repost"
    if t.get("quoted_status_id_str") or t.get("quoted_status_id") or t.get("quoted_status_permalink"):
        return "quote"
    if t.get("in_reply_to_status_id_str") or t.get("in_reply_to_status_id"):
        return "reply"
    return "post"


def _sort_key(post: Post) -> tuple[str, int]:
    return (post.created_at or "", numeric_id(post.id))


def read_archive(path: Path, handle: str, include_private: bool = False) -> list[Post]:
    """Every post in the archive, newest first, with long posts' whole text."""
    return list(iter_archive(path, handle, include_private))


def iter_archive(path: Path, handle: str, include_private: bool = False,
                 on_display_name: Callable[[str], None] | None = None,
                 say: Callable[[str], None] | None = None) -> Iterator[Post]:
    """read_archive's posts one at a time, in bounded memory, from whichever export `path`
    is (recognised by content): X's archive, a Bluesky CAR, a Mastodon archive or a
    Threads export. Everything is read and checked before the first post is given, so a
    damaged archive fails before anything is written; the posts wait in a temporary file,
    and memory holds one sort key each (about 200 bytes), whatever the archive's size.
    `include_private`: a Mastodon archive's followers-only posts too (direct messages never).
    `on_display_name` is told the account's display name where the export has one; `say`
    what was left out (a Mastodon archive's direct messages)."""
    path = Path(path)
    box = _open(path)
    if isinstance(box, _Car):
        from .car import iter_car, open_repo

        repo = open_repo(path)
        posts = iter_car(path, handle, repo=repo)
        if repo.display_name and on_display_name:
            on_display_name(repo.display_name)
        return posts
    if box.platform != "X":
        from .exports import iter_mastodon, iter_threads

        if box.platform == "Mastodon":
            return iter_mastodon(box, handle, include_private, on_display_name, say)
        return iter_threads(box, handle)
    return _iter_x(box, handle)


def _iter_x(box: _Container, handle: str) -> Iterator[Post]:
    spool = tempfile.TemporaryFile()
    try:
        manifest = _manifest(box)
        files = _tweet_files(box, manifest)
        notes = _notes(box, manifest)
        keys: list[tuple[str, int, int]] = []  # (date, numeric id, where the post is in the spool)
        stubs: list[tuple[Post, datetime | None]] = []  # long posts cut short: their notes are attached below
        seen: set[str] = set()
        skipped = total = 0
        for name in files:
            data_type, entries = _iter_ytd(box, name)
            if box.only and data_type.lower() not in ("tweets", "tweet"):
                raise SourceError(f"{box.display(name)} holds {data_type}, not posts: give archive: the archive's "
                                  "data/tweets.js, or the whole archive")
            for entry in entries:
                total += 1
                t = entry.get("tweet") if isinstance(entry, dict) and isinstance(entry.get("tweet"), dict) else entry
                if not isinstance(t, dict):
                    skipped += 1
                    continue
                post_id = t.get("id_str") or t.get("id")
                text = t.get("full_text") if isinstance(t.get("full_text"), str) else t.get("text")
                if not isinstance(post_id, (str, int)) or isinstance(post_id, bool) or not str(post_id).strip() \
                        or not isinstance(text, str) or not text.strip():
                    skipped += 1
                    continue
                post_id = str(post_id).strip()
                if post_id in seen:  # the same post in two files
                    continue
                seen.add(post_id)
                created = _x_date(t.get("created_at"))
                # The flat fields (dates, counts, reply ids); the nested ones (entities, edit history)
                # stay in the archive: a real archive's are most of its size.
                raw = {k: v for k, v in t.items() if k != "full_text" and not isinstance(v, (dict, list))}
                post = Post(id=post_id, text=text, handle=handle, source="archive", kind=_kind(t, text),
                            created_at=_iso(created), raw=raw)
                keys.append((post.created_at or "", numeric_id(post.id), spool.tell()))
                if notes and post.kind != "repost" and _stub(text) is not None:
                    stubs.append((post, created))
                    keys[-1] = keys[-1][:2] + (-len(stubs),)  # given from memory, with its note
                else:
                    spool.write(post.to_json_line().encode("utf-8"))
        if skipped and not keys:
            raise SourceError(f"none of the {total:,} entries in {', '.join(box.display(n) for n in files)} has an id and "
                              "a `full_text`: give archive: the archive as X made it")
    except BaseException:
        spool.close()
        raise
    finally:
        box.close()
    _attach_notes(stubs, notes)
    keys.sort(key=lambda k: k[:2], reverse=True)  # newest first; stable, as sorting the posts was
    return _unspool(spool, keys, [post for post, _ in stubs])


def _unspool(spool: IO[bytes], keys: list[tuple[str, int, int]], stubs: list[Post]) -> Iterator[Post]:
    with spool:
        for _, _, where in keys:
            if where < 0:
                yield stubs[-where - 1]
            else:
                spool.seek(where)
                yield Post.from_dict(json.loads(spool.readline()))


def account_name(path: Path) -> str:
    """The archive owner's username (from data/account.js), else the file or folder's
    name. Never raises: a bad path is reported when the archive is read."""
    path = Path(path)
    fallback = path.stem if path.suffix.lower() in (".zip", ".js", ".car", ".tgz") else path.name
    fallback = fallback.removesuffix(".tar.gz").removesuffix(".tar") if path.name.lower().endswith(
        (".tar.gz", ".tar")) else fallback
    try:
        if not path.exists():
            return fallback
        box = _open(path)
    except Exception:
        return fallback
    if not isinstance(box, _Container) or box.platform != "X":
        from .exports import export_account_name

        return export_account_name(box, path, fallback)
    try:
        if not box.has("account.js") or box.only:
            return fallback
        _, entries = _read_ytd(box, "account.js")
        account = entries[0].get("account", entries[0]) if entries and isinstance(entries[0], dict) else {}
        username = account.get("username") if isinstance(account, dict) else None
        if isinstance(username, str) and USERNAME.fullmatch(username):
            return username
        return fallback
    except Exception:  # a damaged account.js only costs the name
        return fallback
    finally:
        box.close()
