"""Reading the JSON files users bring: JSONL, a JSON array, or JSON lines under a .json name.

Every record comes with the line it starts on, so that errors can name it.
Both forms are read incrementally: memory does not grow with the file.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path

_WHITESPACE = re.compile(r"[ \t\r\n]*")
_SURROGATE = re.compile("[\ud800-\udfff]")
_CHUNK = 1 << 16


class RecordError(ValueError):
    """A problem in an input file, located by file, line and (if known) field."""

    def __init__(self, path: Path | str, line: int | None, message: str, field: str | None = None):
        self.path, self.line, self.field, self.message = Path(path), line, field, message
        where = f"{path}:{line}" if line else f"{path}"
        what = f"field '{field}': {message}" if field else message
        super().__init__(f"{where}: {what}")


def invalid_text(value: str) -> str | None:
    """Why ``value`` cannot be written as UTF-8, else None.

    A JSON escape such as ``"\\ud800"`` parses to a lone surrogate, which no UTF-8 file can hold.
    """
    if value.isascii():
        return None
    found = _SURROGATE.search(value)
    if not found:
        return None
    return (f"contains an invalid character (a lone surrogate \\u{ord(found.group()):04x}); write the character "
            "itself, or a complete surrogate pair such as \\ud83d\\ude00")


def iter_records(path: Path | str, skip_bad_lines: bool = False,
                 part: tuple[int, int] | None = None) -> Iterator[tuple[int, object]]:
    """Yield ``(line, value)`` for each record of a JSON array or JSON-lines file.

    With ``skip_bad_lines``, a JSON line that does not parse is yielded as ``(line, RecordError)``
    instead of ending the read (a broken JSON array cannot be resynchronised and always ends it).
    With ``part`` (a byte range from ``line_parts``), only the lines in it, numbered from 1 at its start.
    """
    path = Path(path)
    with _open(path) as stream:
        if part:
            stream.seek(part[0])
            yield from _iter_lines(_lines_until(stream, part[0], part[1]), path, skip_bad_lines)
        elif _layout(stream, path) == "array":
            yield from _iter_array(stream, path)
        else:
            yield from _iter_lines(stream, path, skip_bad_lines)


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


def _lines_until(stream, position: int, end: int) -> Iterator[bytes]:
    while position < end:
        line = stream.readline()
        position += len(line)
        yield line


def detect_layout(path: Path | str) -> str:
    """``"array"`` for a JSON array file, ``"lines"`` for JSON lines."""
    with _open(Path(path)) as stream:
        return "array" if _first_significant_byte(stream) == b"[" else "lines"


def _open(path: Path):
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


def _iter_lines(stream, path: Path, skip_bad_lines: bool) -> Iterator[tuple[int, object]]:
    for number, raw in enumerate(stream, start=1):
        try:
            text = _decode(raw, path, number).strip()
            if not text:
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise RecordError(path, number, f"invalid JSON: {exc.msg} (column {exc.colno})") from None
        except RecordError as error:
            if not skip_bad_lines:
                raise
            value = error
        yield number, value


def _iter_array(stream, path: Path) -> Iterator[tuple[int, object]]:
    """Parse ``[v, v, ...]`` one value at a time, reading the file in chunks."""
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8")()
    text, pos, line, eof = "", 0, 1, False

    def read_more() -> None:
        nonlocal text, pos, eof
        block = stream.read(_CHUNK)
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
                if end < len(text) or eof:  # at the very end a number may go on in the next chunk
                    break
                read_more()
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
