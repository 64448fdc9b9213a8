"""A Mastodon archive as a .tar.gz (what Mastodon's backup service wrote before 4.3; a
plain .tar is read too), read as a stream, once, never extracted.

The tar format is read here rather than with `tarfile`: tarfile reads a pax or GNU
long-name header whole into memory, whatever size its header claims, so a small gzip
could ask for gigabytes. Here every header is capped, every name is checked as a zip's
are (no `..`, no absolute path), links and device files are refused, and the sizes that
members declare are counted against the same caps as a zip's.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path
from typing import IO, Callable, Iterator

from ..errors import SourceError
from . import archive
from .archive import _Container, _size, check_member

BLOCK = 512
MAX_LONG_HEADER = 1024**2  # a pax or GNU long-name header: a few names, never megabytes
REGULAR, DIRECTORY, LINKS, SPECIAL = (b"0", b"\0", b"7"), b"5", (b"1", b"2"), (b"3", b"4", b"6")


class Tar(_Container):
    """The archive's files as they come in the stream: `members` is how it is read."""

    platform = "Mastodon"

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.label = str(path)
        self.path = path
        self.names = {}
        try:
            self.packed = max(path.stat().st_size, 1)
        except OSError as e:
            raise SourceError(f"cannot read {path}: {e.strerror or e}: check the file's permissions") from None

    def display(self, name: str) -> str:
        return f"{self.label}:{name}"

    def members(self, wanted: list[str]) -> Iterator[tuple[str, Iterator[bytes]]]:
        """(base name, its chunks) for each wanted file at the top of the archive or one
        folder down, in the archive's own order. Each must be read (or dropped) before the next."""
        wanted_lower = {w.lower() for w in wanted}
        for name, size, read in self._walk():
            base = name.rstrip("/").rsplit("/", 1)[-1].lower()
            if base in wanted_lower and name.strip("/").count("/") <= 1:
                if size > archive.MAX_FILE_BYTES:
                    raise SourceError(f"{self.display(name)} is {_size(size)}, more than the "
                                      f"{_size(archive.MAX_FILE_BYTES)} allowed for one file: check that it is your "
                                      "archive as Mastodon made it")
                yield base, self.counted(read())

    def _walk(self) -> Iterator[tuple[str, int, Callable[[], Iterator[bytes]]]]:
        try:
            with open(self.path, "rb") as raw:
                gz = raw.read(2) == b"\x1f\x8b"
                raw.seek(0)
                stream: IO[bytes] = gzip.GzipFile(fileobj=raw) if gz else raw  # type: ignore[assignment]
                yield from self._headers(stream)
        except OSError as e:
            raise SourceError(f"cannot read {self.label}: {e.strerror or e}") from None

    def _read(self, stream: IO[bytes], n: int) -> bytes:
        """Up to n bytes: every read of the stream comes here, whoever asks (a member's reader too)."""
        try:
            return stream.read(n)
        except (gzip.BadGzipFile, zlib.error, EOFError) as e:
            raise SourceError(f"{self.label} is cut short or damaged ({type(e).__name__}: "
                              f"{' '.join(str(e).split())[:100]}): {self.again}") from None
        except OSError as e:
            raise SourceError(f"cannot read {self.label}: {e.strerror or e}") from None

    def _exact(self, stream: IO[bytes], n: int, what: str) -> bytes:
        data = self._read(stream, n)
        if len(data) < n:
            raise SourceError(f"{self.label} is cut short (in {what}): {self.again}")
        return data

    def _headers(self, stream: IO[bytes]) -> Iterator[tuple[str, int, Callable[[], Iterator[bytes]]]]:
        count = total = 0
        long_name: str | None = None
        while True:
            header = self._read(stream, BLOCK)
            if not header or header == b"\0" * BLOCK:
                return  # the end: two zero blocks (or the end of the file at a block's edge)
            if len(header) < BLOCK:
                raise SourceError(f"{self.label} is cut short (in a file's header): {self.again}")
            name, size, flag = self._parse(header)
            count += 1
            total += size
            if count > archive.MAX_ENTRIES:
                raise SourceError(f"{self.label} has more than {archive.MAX_ENTRIES:,} entries, more than a Mastodon "
                                  "archive could have: check that it is your archive as Mastodon made it")
            if total > archive.MAX_TOTAL_BYTES and total > archive.MAX_RATIO * self.packed:
                raise SourceError(f"{self.label} unpacks to more than {_size(total)} from {_size(self.packed)}, more "
                                  f"than the {_size(archive.MAX_TOTAL_BYTES)} allowed and not how Mastodon archives "
                                  "compress: check that it is your archive as Mastodon made it")
            padded = -(-size // BLOCK) * BLOCK
            if flag in (b"x", b"L", b"g"):  # pax attributes or a GNU long name, for the entry after it
                if size > MAX_LONG_HEADER:
                    raise SourceError(f"{self.label} has a tar header of {_size(size)}, far more than any name needs: "
                                      "check that it is your archive as Mastodon made it")
                data = self._exact(stream, padded, "a long name")[:size]
                if flag == b"L":
                    long_name = data.rstrip(b"\0").decode("utf-8", "replace")
                elif flag == b"x":
                    long_name = _pax_path(data) or long_name
                continue
            name, long_name = long_name or name, None
            check_member(self.path, name, flag in LINKS, "Mastodon")
            if flag in SPECIAL:
                raise SourceError(f"{self.label} has a device or pipe ({name!r}), which Mastodon archives never "
                                  f"have: {self.again}")
            left = [padded]

            def read(size: int = size, left: list[int] = left) -> Iterator[bytes]:
                while size > 0:
                    data = self._exact(stream, min(archive.CHUNK_BYTES, size), repr(name))
                    size -= len(data)
                    left[0] -= len(data)
                    yield data

            if flag in REGULAR:
                yield name, size, read
            while left[0] > 0:  # what the reader left, and the padding to the next header
                step = min(left[0], archive.CHUNK_BYTES)
                self._exact(stream, step, repr(name))
                left[0] -= step

    def _parse(self, header: bytes) -> tuple[str, int, bytes]:
        stored = _number(header[148:156])
        if stored is None or stored not in (sum(header[:148]) + 256 + sum(header[156:]),
                                            sum(_signed(header[:148])) + 256 + sum(_signed(header[156:]))):
            raise SourceError(f"{self.label} is damaged (a tar header's checksum does not match): {self.again}")
        size = _number(header[124:136])
        if size is None or size < 0:
            raise SourceError(f"{self.label} is damaged (a tar header's size is not a number): {self.again}")
        name = header[:100].split(b"\0", 1)[0]
        if header[257:262] == b"ustar":
            prefix = header[345:500].split(b"\0", 1)[0]
            name = prefix + b"/" + name if prefix else name
        return name.decode("utf-8", "replace"), size, header[156:157]


def _signed(data: bytes) -> list[int]:
    return [b - 256 if b > 127 else b for b in data]


def _number(field: bytes) -> int | None:
    """A tar number field: octal digits, or base-256 when its first bit is set (big files)."""
    if field[:1] and field[0] & 0x80:
        value = int.from_bytes(field[1:], "big")
        return -value if field[0] & 0x40 else value
    digits = field.split(b"\0", 1)[0].strip()
    if not digits:
        return 0
    try:
        return int(digits, 8)
    except ValueError:
        return None


def _pax_path(data: bytes) -> str | None:
    """The `path` of a pax header ("%d path=...\\n" records)."""
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            return None
        try:
            length = int(data[pos:space])
        except ValueError:
            return None
        if length <= 0:
            return None
        record = data[space + 1:pos + length - 1]
        key, _, value = record.partition(b"=")
        if key == b"path":
            return value.decode("utf-8", "replace")
        pos += length
    return None
