"""Append-only JSONL journals: the run directory's memory.

A record counts once its whole line is written and flushed; nothing is rewritten
in place. A last line cut off by a kill is moved aside to ``<name>.torn`` with a
warning and never read as data. Files that are replaced (config, summary) are
written to a temporary file and renamed.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


class JournalError(RuntimeError):
    pass


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def read(self) -> list[dict]:
        """All complete records; a torn last line is set aside first."""
        if not self.path.exists():
            return []
        if not self.path.is_file():
            raise JournalError(f"{self.path} is not a regular file")
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise JournalError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        end = data.rfind(b"\n") + 1
        if end < len(data):
            self._set_aside(data[end:], end)
            data = data[:end]
        records = []
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise JournalError(f"{self.path}:{number}: damaged journal line ({exc}); "
                                   "move the file aside to start this part of the run again") from None
        return records

    def append(self, record: dict) -> None:
        line = (json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8")
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            while line:  # a short write is retried; if it then fails, the torn line is set aside on the next read
                line = line[os.write(self._fd, line):]
        except OSError as exc:
            raise JournalError(f"cannot write {self.path}: {exc.strerror or exc}; "
                               "everything journaled before this is intact") from None

    def sync(self) -> None:
        if self._fd is not None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise JournalError(f"cannot sync {self.path}: {exc.strerror or exc}") from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _set_aside(self, fragment: bytes, keep: int) -> None:
        torn = self.path.with_name(self.path.name + ".torn")
        with torn.open("ab") as out:
            out.write(fragment + b"\n")
            out.flush()
            os.fsync(out.fileno())
        os.truncate(self.path, keep)
        print(f"warning: {self.path} ended in a line cut off by an interruption; "
              f"moved it to {torn.name} ({len(fragment)} bytes)", file=sys.stderr)


def write_atomic(path: Path, text: str) -> None:
    """Replace a file so that readers see the old or the new content, never a mix."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise JournalError(f"cannot write {path}: {exc.strerror or exc}") from None
