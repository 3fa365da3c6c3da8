"""Append-only JSONL journals: the run directory's memory.

A record counts once its whole line is written; nothing is rewritten in place.
Only the process that holds the run directory's lock repairs a journal: a last line
cut off by a kill is moved aside to ``<name>.torn``. Readers skip such a line and
write nothing. Files that are replaced (config, summary, a rebuilt derived journal)
are written to a temporary file and renamed.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from selfinstruct.paths import landing, unwritable_target
from selfinstruct.formats.records import load_json
from selfinstruct.errors import BadInput, Failed


class JournalError(Failed, RuntimeError):
    """A journal could not be written (disk full, permissions)."""


class JournalDamaged(BadInput, JournalError):
    """A journal holds a line that is not a complete record: bad input, not a run-time failure."""


def json_line(record: dict) -> bytes:
    """One UTF-8 line; text that cannot be UTF-8 (a lone surrogate) is written as a JSON escape."""
    text = json.dumps(record, ensure_ascii=False)
    try:
        return (text + "\n").encode("utf-8")
    except UnicodeEncodeError:
        return (json.dumps(record) + "\n").encode("ascii")


class Journal:
    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd: int | None = None

    def read(self, repair: bool = False, required: tuple[str, ...] = (),
             check: Callable[[dict], str | None] | None = None) -> list[dict]:
        """All complete records. A torn last line is skipped, and with ``repair`` set aside. A record
        that is not an object with the ``required`` fields, or of which ``check`` names a problem, is a
        damaged line; so is JSON nested too deep to read."""
        data = self._read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):
            if repair:
                self._set_aside(data[end:], end)
            data = data[:end]
        records = []
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                record = load_json(line.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError and TooDeep are ValueErrors
                raise JournalDamaged(f"{self.path}:{number}: damaged journal line ({exc})") from None
            if required and not (isinstance(record, dict) and all(key in record for key in required)):
                raise JournalDamaged(f"{self.path}:{number}: damaged journal line (not a record with "
                                     f"{', '.join(required)})")
            problem = check(record) if check else None
            if problem:
                raise JournalDamaged(f"{self.path}:{number}: damaged journal line ({problem})")
            records.append(record)
        return records

    def _read_bytes(self) -> bytes:
        if not self.path.exists():
            return b""
        if not self.path.is_file():
            raise JournalDamaged(f"{self.path} is not a regular file")
        try:
            return self.path.read_bytes()
        except OSError as exc:
            raise JournalError(f"cannot read {self.path}: {exc.strerror or exc}") from None

    def append(self, record: dict) -> None:
        line = json_line(record)
        try:
            if self._fd is None:
                self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            while line:  # a short write is retried; if it then fails, the torn line is set aside on the next open
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
        try:
            with torn.open("ab") as out:
                out.write(fragment + b"\n")
                out.flush()
                os.fsync(out.fileno())
            os.truncate(self.path, keep)
        except OSError as exc:
            raise JournalError(f"cannot repair {self.path}: {exc.strerror or exc}") from None
        print(f"warning: {self.path} ended in a line cut off by an interruption; "
              f"moved it to {torn.name} ({len(fragment)} bytes)", file=sys.stderr)


class DerivedJournal(Journal):
    """A journal that a replay of responses.jsonl writes again from its first record.

    Records the file already holds, in the same order, are confirmed instead of written
    twice. At the first record that differs (or a damaged line), the file is cut back
    to what was confirmed, atomically, and the rest is appended: the file always ends
    up exactly what the replay derived, so it never disagrees with the answers it came from.
    """

    def __init__(self, path: Path):
        super().__init__(path)
        self._existing: list[bytes] = []
        self._confirmed = self._count = 0
        self._diverged = self._torn = False

    def count_records(self) -> int:
        """Distinct records (by id) of the complete, readable lines; a damaged line is not counted."""
        ids = set()
        for line in self._read_bytes().splitlines(keepends=True):
            try:
                record = load_json(line.decode("utf-8")) if line.endswith(b"\n") else None
            except (ValueError, UnicodeDecodeError):  # not JSON, or nested too deep
                continue
            if isinstance(record, dict):
                ids.add(str(record.get("id")))
        return len(ids)

    def open_for_replay(self) -> None:
        data = self._read_bytes()
        self._existing = data.splitlines(keepends=True)
        self._torn = bool(self._existing) and not self._existing[-1].endswith(b"\n")
        if self._torn:
            self._existing.pop()
        self._confirmed, self._diverged = 0, False

    def append(self, record: dict) -> None:
        if not self._diverged:
            line = json_line(record)
            if self._confirmed < len(self._existing) and self._existing[self._confirmed] == line:
                self._confirmed += 1
                return
            self._cut_back()
        super().append(record)
        self._count += 1

    def __len__(self) -> int:
        """Records in the file as it stands."""
        return self._count if self._diverged else len(self._existing)

    def finish(self) -> None:
        """The replay is complete: drop lines it did not derive."""
        if not self._diverged:
            self._cut_back()

    def _cut_back(self) -> None:
        """Keep the confirmed lines; from here on every record is appended."""
        if self._confirmed < len(self._existing) or self._torn:
            self.close()
            write_atomic(self.path, b"".join(self._existing[: self._confirmed]).decode("utf-8"))
        self._diverged, self._count, self._existing = True, self._confirmed, []


def write_atomic(path: Path, text: str) -> None:
    """Replace a file so that readers see the old or the new content, never a mix."""
    if problem := unwritable_target(path):
        raise JournalError(problem)
    path = landing(path)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with tmp.open("w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only file system refuses the cleanup too: the first error is the one to tell
            pass
        raise JournalError(f"cannot write {path}: {exc.strerror or exc}") from None
