"""Reading the JSON files users bring: JSONL, a JSON array, or JSON lines under a .json name.

Every record comes with the line it starts on, so that errors can name it.
Both forms are read incrementally: memory does not grow with the file.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import re
from collections.abc import Iterator
from pathlib import Path

from selfinstruct.paths import special_kind
from selfinstruct.errors import BadInput

_WHITESPACE = re.compile(r"[ \t\r\n]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKETS = re.compile(r"[\[\]{}]")
_CHUNK = 1 << 16
_BLOCK = 1 << 20  # bytes of JSON lines read at once
MAX_DEPTH = 100  # arrays and objects inside each other; deeper records are refused (no record needs more)


class RecordError(BadInput, ValueError):
    """A problem in an input file, located by file, line and (if known) field."""

    def __init__(self, path: Path | str, line: int | None, message: str, field: str | None = None):
        self.path, self.line, self.field, self.message = Path(path), line, field, message
        where = f"{path}:{line}" if line else f"{path}"
        what = f"field '{field}': {message}" if field else message
        super().__init__(f"{where}: {what}")


class TooDeep(ValueError):
    """A JSON value nested more than MAX_DEPTH deep: whatever walked it next (json itself, a check, a
    writer) would run out of stack."""

    def __init__(self):
        super().__init__(f"nested more than {MAX_DEPTH} levels deep (arrays or objects inside each other)")


def load_json(text: str) -> object:
    """``json.loads``, refusing a value nested more than MAX_DEPTH deep (TooDeep)."""
    if _too_deep(text, 0, len(text)):
        raise TooDeep()
    try:
        return json.loads(text)
    except RecursionError:
        raise TooDeep() from None


def _too_deep(text: str, start: int, end: int) -> bool:
    """Whether the JSON text ``text[start:end]`` nests deeper than MAX_DEPTH (cheap for the usual record,
    which holds fewer brackets than that)."""
    return text.count("[", start, end) + text.count("{", start, end) > MAX_DEPTH and \
        _depth(text[start:end]) > MAX_DEPTH


def _depth(text: str) -> int:
    """How deep arrays and objects nest in JSON text (strings skipped)."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        deepest = max(deepest, depth)
    return deepest


def invalid_text(value: str) -> str | None:
    """Why ``value`` cannot be written as UTF-8, else None.

    A JSON escape such as ``"\\ud800"`` parses to a lone surrogate, which no UTF-8 file can hold.
    """
    if value.isascii():
        return None
    try:
        value.encode("utf-8")  # quicker than searching for one
        return None
    except UnicodeEncodeError:
        found = _SURROGATE.search(value)
    return (f"contains an invalid character (a lone surrogate \\u{ord(found.group()):04x}); write the character "
            "itself, or a complete surrogate pair such as \\ud83d\\ude00")


def iter_records(path: Path | str, skip_bad_lines: bool = False, part: tuple[int, int] | None = None,
                 digest: Fingerprint | None = None) -> Iterator[tuple[int, object]]:
    """Yield ``(line, value)`` for each record of a JSON array or JSON-lines file.

    With ``skip_bad_lines``, a JSON line that does not parse is yielded as ``(line, RecordError)``
    instead of ending the read (a broken JSON array cannot be resynchronised and always ends it).
    With ``part`` (a byte range from ``line_parts``), only the lines in it, numbered from 1 at its start.
    ``digest``, if given, is fed every byte read, in order (from the part's start, or the file's).
    """
    path = Path(path)
    digest = digest or Fingerprint()
    with _open(path) as stream:
        if part:
            stream.seek(part[0])
            yield from _iter_lines(_lines(stream, digest, part[1] - part[0]), path, skip_bad_lines)
        elif _layout(stream, path) == "array":
            yield from _iter_array(stream, path, skip_bad_lines, digest)
        else:
            yield from _iter_lines(_lines(stream, digest), path, skip_bad_lines)


class Fingerprint:
    """Digests of a file's consecutive byte ranges, fed in order as a reader takes them.

    ``filter`` reads its input twice and must know that the second read saw the bytes of the first:
    size and time stamps miss an edit of the same length within a second, a digest does not. The
    first read may be split into parts read apart (``start``: where this part begins); the second
    read, of the whole file, splits its digests at the same ``ends`` to compare them."""

    def __init__(self, start: int = 0, ends: list[int] = ()):
        self._ends, self._position = list(ends), start
        self._ranges: list[tuple[int, int, bytes]] = []
        self._start, self._hash = start, hashlib.blake2b(digest_size=16)

    def update(self, data: bytes) -> None:
        while self._ends and self._position + len(data) >= self._ends[0]:
            cut = self._ends.pop(0) - self._position
            self._hash.update(data[:cut])
            self._position += cut
            self._close()
            data = data[cut:]
        self._hash.update(data)
        self._position += len(data)

    def _close(self) -> None:
        self._ranges.append((self._start, self._position, self._hash.digest()))
        self._start, self._hash = self._position, hashlib.blake2b(digest_size=16)

    def ranges(self) -> list[tuple[int, int, bytes]]:
        """(start, end, digest) of each range read, the last one ending where reading stopped."""
        return self._ranges + [(self._start, self._position, self._hash.digest())]


def line_parts(path: Path | str, size: int) -> list[tuple[int, int]]:
    """Byte ranges of about ``size`` bytes that split a JSON-lines file at line starts, to be read
    apart by ``iter_records``; [] for a JSON array, which cannot be split."""
    path = Path(path)
    with _open(path) as stream:
        if _layout(stream, path) == "array":
            return []
        end = stream.seek(0, 2)
        starts = [0]
        while starts[-1] + size < end:
            stream.seek(starts[-1] + size)
            stream.readline()
            if stream.tell() >= end:
                break
            starts.append(stream.tell())
        return list(zip(starts, starts[1:] + [end]))


def _layout(stream, path: Path) -> str:
    """The layout of the file open as ``stream`` (left at its start); a byte order mark is an error."""
    if stream.read(4).startswith(b"\xef\xbb\xbf"):
        raise RecordError(path, 1, "starts with a UTF-8 byte order mark (BOM); save it as UTF-8 without BOM")
    stream.seek(0)
    first = _first_significant_byte(stream)
    stream.seek(0)
    return "array" if first == b"[" else "lines"


def _lines(stream, digest: Fingerprint, limit: int | None = None) -> Iterator[bytes]:
    """The lines of a binary stream, without their newline, up to ``limit`` bytes; read a block at a
    time, and each block fed to ``digest``."""
    rest = b""
    while True:
        block = stream.read(_BLOCK if limit is None else min(_BLOCK, limit))
        if not block:
            if rest:
                yield rest
            return
        digest.update(block)
        if limit is not None:
            limit -= len(block)
        lines = (rest + block).split(b"\n")
        rest = lines.pop()
        yield from lines


def detect_layout(path: Path | str) -> str:
    """``"array"`` for a JSON array file, ``"lines"`` for JSON lines (how the records of a file are
    laid out; layouts.layout_of tells the layout of a record)."""
    path = Path(path)
    with _open(path) as stream:
        return _layout(stream, path)


def _open(path: Path):
    kind = special_kind(path)
    if kind == "a directory":
        raise RecordError(path, None, "is a directory, not a dataset file")
    if kind:
        raise RecordError(path, None, f"is {kind}, not a regular file; a dataset is read more than once, so save "
                                      "it to a file first")
    try:
        return path.open("rb")
    except OSError as exc:
        raise RecordError(path, None, f"cannot read: {exc.strerror or exc}") from None


def _first_significant_byte(stream) -> bytes:
    while True:
        block = stream.read(_CHUNK)
        if not block:
            return b""
        stripped = block.lstrip(b" \t\r\n")
        if stripped:
            return stripped[:1]


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise RecordError(path, line, f"not valid UTF-8 (byte {exc.start} of the line)") from None


def _iter_lines(lines: Iterator[bytes], path: Path, skip_bad_lines: bool) -> Iterator[tuple[int, object]]:
    for number, raw in enumerate(lines, start=1):
        try:
            text = _decode(raw, path, number).strip()
            if not text:
                continue
            try:
                value = load_json(text)
            except json.JSONDecodeError as exc:
                raise RecordError(path, number, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
            except TooDeep as exc:
                raise RecordError(path, number, str(exc)) from None
        except RecordError as error:
            if not skip_bad_lines:
                raise
            value = error
        yield number, value


def _iter_array(stream, path: Path, skip_bad_lines: bool, digest: Fingerprint) -> Iterator[tuple[int, object]]:
    """Parse ``[v, v, ...]`` one value at a time, reading the file in chunks; with ``skip_bad_lines``, an
    item nested too deep is yielded as a RecordError (its end is known, so the read goes on)."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    text, pos, line, eof = "", 0, 1, False

    def read_more() -> None:
        nonlocal text, pos, eof
        block = stream.read(_CHUNK)
        digest.update(block)
        eof = not block
        try:
            text = text[pos:] + utf8.decode(block, final=eof)
        except UnicodeDecodeError:
            raise RecordError(path, line, "not valid UTF-8") from None
        pos = 0

    def next_char() -> str:
        """Skip whitespace (counting lines) and return the next character, '' at the end."""
        nonlocal pos, line
        while True:
            end = _WHITESPACE.match(text, pos).end()
            line += text.count("\n", pos, end)
            pos = end
            if pos < len(text) or eof:
                return text[pos:pos + 1]
            read_more()

    read_more()
    next_char()
    pos += 1  # the "[" that iter_records saw
    if next_char() == "]":
        pos += 1
    else:
        while True:
            next_char()
            while True:
                try:
                    value, end = decoder.raw_decode(text, pos)
                except json.JSONDecodeError as exc:
                    if eof:
                        raise RecordError(path, line, f"invalid JSON: {exc.msg}") from None
                    read_more()
                    continue
                except RecursionError:  # the item's end is unknown, so the array cannot be read on
                    raise RecordError(path, line, str(TooDeep())) from None
                if end < len(text) or eof:  # at the very end a number may go on in the next chunk
                    break
                read_more()
            if _too_deep(text, pos, end):
                if not skip_bad_lines:
                    raise RecordError(path, line, str(TooDeep()))
                value = RecordError(path, line, str(TooDeep()))
            yield line, value
            line += text.count("\n", pos, end)
            pos = end
            separator = next_char()
            pos += 1
            if separator == "]":
                break
            if separator != ",":
                found = repr(separator) if separator else "the end of the file"
                raise RecordError(path, line, f"expected ',' or ']' after an array item, found {found}")
    if next_char():
        raise RecordError(path, line, "unexpected text after the JSON array")
