"""The run directory: settings, journals and summary of one generation run.

``config.json``     format version, the resolved settings (never the API key) and their signature
``responses.jsonl`` every model answer (or final failure): the single source of truth; since format 4
                    also each request abandoned while it retried (the run stopped), with its attempts
``tasks.jsonl``     accepted tasks, derived from responses.jsonl by replaying the run
``rejected.jsonl``  rejected candidates with their reasons, derived the same way
``summary.json``    counts per stage and reason, requests, tokens, wall time, why the run stopped
``.lock``           held (``fcntl.flock``) by the one process writing the run; holds its PID
``batches.jsonl``   with --batch: each batch's input, file id, batch id and end, as they happen
``batches/``        with --batch: each batch's input file, and its output and error files once it ended

Because tasks.jsonl and rejected.jsonl are derived, a damaged or missing one is rebuilt
on the next resume without sending a request.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from selfinstruct.store.journal import DerivedJournal, Journal, JournalDamaged, JournalError, write_atomic
from selfinstruct.paths import special_kind
from selfinstruct.formats.records import load_json
from selfinstruct.errors import BadInput

FORMAT_VERSION = 4
# The error of a request that stopped retrying because the run stopped: not an answer, sent again on resume.
ABANDONED = "abandoned"
RUN_FILES = ("config.json", "responses.jsonl", "tasks.jsonl", "rejected.jsonl", "summary.json", ".lock", "server.log",
             "batches.jsonl")


class RunDirError(BadInput, RuntimeError):
    pass


class SignatureMismatch(RunDirError):
    def __init__(self, path: Path, changes: list[str]):
        self.changes = changes
        listing = "\n".join(f"  {line}" for line in changes)
        super().__init__(f"{path} was started with different settings:\n{listing}\n"
                         "Resume with the original settings, use another --output, "
                         "or pass --allow-changes to continue anyway.")


def _from_v1(stored: dict) -> dict:
    """Format 1 (no version number) had the same files; tasks and rejections are re-derived."""
    return {**stored, "format": 2}


def _from_v2(stored: dict) -> dict:
    """Format 3 added NFKC normalisation before ROUGE-L; a run made before compares raw text, as it
    always did, so that a resume replays its decisions exactly."""
    return {**stored, "format": 3, "settings": {**stored["settings"], "normalize": False},
            "signature": {**stored["signature"], "normalize": False}}


def _from_v3(stored: dict) -> dict:
    """Format 4 journals the requests abandoned while retrying (error "abandoned"), which a format-3 reader
    would take for final failures, and each answer's attempts; a format-3 answer without them made one
    attempt plus its retries. Nothing in the run directory changes."""
    return {**stored, "format": 4}


# MIGRATIONS[n] turns a format-n config.json into format n+1.
MIGRATIONS = {1: _from_v1, 2: _from_v2, 3: _from_v3}


ANSWER_REQUIRED = ("slot", "stage", "text", "error")


def signature_changes(old: dict, new: dict) -> list[str]:
    """Readable lines for each setting that differs between two signatures."""
    return [f"{key}: {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def answered(record: dict) -> bool:
    """Whether a journaled request is its slot's answer (or final failure), rather than abandoned."""
    return record["error"] != ABANDONED


def attempts_of(record: dict) -> int:
    """The HTTP requests a journaled request sent; records before format 4: one plus its retries."""
    return record.get("attempts", 1 + sum(record.get("retries", {}).values()))


def answer_problem(record: dict, stages=None) -> str | None:
    """What is wrong with the types of a journaled answer's fields (None: nothing), so that a hand-edited
    line is named as damaged instead of failing somewhere in the replay. ``stages``: the run's stages."""
    for field, what, types, fits in _ANSWER_FIELDS:
        if field not in record and field not in ANSWER_REQUIRED:
            continue
        value = record.get(field)
        if type(value) not in types:  # exact types: a bool is not a count
            return f"field '{field}': expected {what}, got {_type_name(value)}"
        if not fits(value):
            return f"field '{field}': expected {what}, got {json.dumps(value, ensure_ascii=False)[:60]}"
    if stages is not None and record["stage"] not in stages:
        return f"field 'stage': unknown stage {record['stage']!r} (this run's stages: {', '.join(stages)})"
    return None


def _counts(value: dict) -> bool:
    return all(isinstance(reason, str) and type(n) is int and n >= 1 for reason, n in value.items())


_ANYTHING = lambda value: True  # noqa: E731
# (field, what it must be, its JSON types, what its value must satisfy); fields not listed are not read.
_ANSWER_FIELDS = (
    ("slot", "a string", (str,), _ANYTHING),
    ("stage", "a string", (str,), _ANYTHING),
    ("text", "a string", (str,), _ANYTHING),
    ("error", "a string or null", (str, type(None)), _ANYTHING),
    ("finish_reason", "a string or null", (str, type(None)), _ANYTHING),
    ("detail", "a string or null", (str, type(None)), _ANYTHING),
    ("prompt_tokens", "a count (an integer, 0 or more)", (int,), lambda n: n >= 0),
    ("completion_tokens", "a count (an integer, 0 or more)", (int,), lambda n: n >= 0),
    ("tokens_estimated", "true or false", (bool,), _ANYTHING),
    ("seconds", "a number", (int, float), _ANYTHING),
    ("attempts", "a count of 1 or more", (int,), lambda n: n >= 1),
    ("retries", "an object of reason: count", (dict,), _counts),
)


def _type_name(value: object) -> str:
    return {type(None): "null", dict: "object", list: "array"}.get(type(value), type(value).__name__)


def read_config(path: Path) -> dict:
    """A run directory's config.json, checked and migrated to the current format."""
    config_file = Path(path) / "config.json"
    if kind := special_kind(config_file):
        raise RunDirError(f"{config_file}: is {kind}, not a regular file")
    try:
        stored = load_json(config_file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunDirError(f"{path} is not a selfinstruct run directory (no config.json)") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: not JSON, or nested too deep
        raise RunDirError(f"{config_file}: unreadable ({exc})") from None
    if not isinstance(stored, dict) or not isinstance(stored.get("settings"), dict) \
            or not isinstance(stored.get("signature"), dict):
        raise RunDirError(f"{config_file}: not a selfinstruct config (expected an object with "
                          "'settings' and 'signature')")
    version = stored.get("format", 1)
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunDirError(f"{config_file}: unknown run-directory format {version!r}")
    if version > FORMAT_VERSION:
        raise RunDirError(f"{config_file}: run-directory format {version} is newer than this selfinstruct "
                          f"reads ({FORMAT_VERSION}); upgrade selfinstruct to resume it")
    while version < FORMAT_VERSION:
        stored = MIGRATIONS[version](stored)
        version += 1
    return stored



def run_identity(run_dir: Path) -> str:
    """What tells this run from every other, as a digest: the id its config.json holds (two runs' folders
    may share a name, and a deleted run's folder may be made again) with the folder's absolute path (a copy
    of a run goes its own way). A dataset card stores it, so it holds no path."""
    found = read_config(run_dir).get("id")
    key = f"{found if isinstance(found, str) else ''}\n{os.path.realpath(run_dir)}"
    return hashlib.sha256(key.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def check_place(path: Path) -> bool:
    """Whether ``path`` holds a run (True) or can hold a new one (False: it is missing or an empty
    directory); RunDirError if neither, or if a file of the run is not a regular file (a FIFO would
    hang the run that reads it, a device be replaced)."""
    path = Path(path)
    exists = (path / "config.json").exists()
    try:
        if not exists and path.exists() and (not path.is_dir() or any(path.iterdir())):
            raise RunDirError(f"{path} exists and is not a selfinstruct run directory (no config.json); "
                              "choose an empty or new --output")
    except OSError as exc:
        raise RunDirError(f"cannot read {path}: {exc.strerror or exc}") from None
    for name in RUN_FILES:
        if kind := special_kind(path / name):
            raise RunDirError(f"{path / name} is {kind}, not a regular file; a run directory "
                              "holds only regular files")
    return exists


def is_run_file(run_dir: Path, path: Path) -> bool:
    """True for a file the run itself writes (which no export may overwrite)."""
    path, run_dir = Path(os.path.abspath(path)), Path(os.path.abspath(run_dir))
    return path.parent == run_dir and (path.name in RUN_FILES or path.name.endswith(".torn"))


def is_file_of_a_run(path: Path) -> bool:
    """Whether ``path`` is a run's own file in the directory holding it, any run's: a directory with
    config.json and responses.jsonl is a run directory. No export or filter output may replace one."""
    folder = Path(path).parent
    return (folder / "config.json").is_file() and (folder / "responses.jsonl").is_file() and is_run_file(folder, path)


def completion_note(run_dir: Path) -> str | None:
    """A warning for people reading a run that is not complete (it may still be running)."""
    summary = _read_json(Path(run_dir) / "summary.json")
    if summary.get("complete"):
        return None
    if not summary:
        return f"{run_dir} has no summary yet: it is still running or was killed; this is what it has so far"
    return (f"{run_dir} is not complete ({summary.get('accepted')} of {summary.get('target')} tasks"
            + (f"; stopped: {summary['stop_reason']}" if summary.get("stop_reason") else "")
            + "); this is what it has so far")


class RunLock:
    """An OS lock on the run directory: the kernel releases it when its process dies."""

    def __init__(self, path: Path):
        self.path = Path(path) / ".lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise RunDirError(f"cannot create {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise RunDirError(f"{self.path.parent} is in use by another selfinstruct process (PID {holder}); "
                              "wait for it to finish or stop it first") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing releases the flock; the file stays, empty locks are harmless
            self._fd = None


class RunDir:
    def __init__(self, path: Path):
        self.path = Path(path)
        self.responses = Journal(self.path / "responses.jsonl")
        self.tasks = DerivedJournal(self.path / "tasks.jsonl")
        self.rejected = DerivedJournal(self.path / "rejected.jsonl")
        self.lock = RunLock(self.path)
        self.previous_summary: dict = {}
        self.id = ""  # unique to the run, kept in config.json

    @classmethod
    def open(cls, path: Path, settings: dict, signature: dict, allow_changes: bool = False) -> RunDir:
        """Create a run directory, or reopen one to resume it (checking the signature), and lock it."""
        run = cls(path)
        exists = check_place(run.path)
        try:
            run.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RunDirError(f"cannot create run directory {run.path}: {exc.strerror or exc}") from None
        run.lock.acquire()
        try:
            if exists:
                stored = read_config(run.path)
                changes = signature_changes(stored["signature"], signature)
                if changes and not allow_changes:
                    raise SignatureMismatch(run.path, changes)
                run.previous_summary = _read_json(run.path / "summary.json")
                accepted = run.tasks.count_records()
                if settings["num_instructions"] < accepted:
                    raise RunDirError(f"-n {settings['num_instructions']} is below the {accepted} tasks {run.path} "
                                      "has already accepted; give at least that many")
            run.id = (stored.get("id") if exists else None) or uuid.uuid4().hex
            run._write_config(settings, signature)
            for journal in (run.tasks, run.rejected):
                journal.open_for_replay()
        except BaseException:
            run.lock.release()
            raise
        return run

    @classmethod
    @contextmanager
    def locked(cls, path: Path) -> Iterator[RunDir]:
        """An existing run directory, held (locked) for a while without being resumed."""
        run = cls(path)
        read_config(run.path)
        run.lock.acquire()
        try:
            yield run
        finally:
            run.lock.release()

    def _write_config(self, settings: dict, signature: dict) -> None:
        try:
            write_atomic(self.path / "config.json", json.dumps(
                {"format": FORMAT_VERSION, "id": self.id, "settings": settings, "signature": signature},
                ensure_ascii=False, indent=2) + "\n")
            for journal in (self.responses, self.tasks, self.rejected):
                journal.path.touch()
        except (JournalError, OSError) as exc:
            raise RunDirError(f"run directory {self.path} is not writable: {exc}") from None

    def read_responses(self, stages=None) -> list[dict]:
        """The answers journaled so far, their fields checked; a torn last line is set aside (we hold the
        lock). ``stages``: the run's stages, when a record of another stage is damaged."""
        try:
            return self.responses.read(repair=True, required=ANSWER_REQUIRED,
                                       check=lambda record: answer_problem(record, stages))
        except JournalDamaged as exc:
            raise JournalDamaged(f"{exc}; delete that line and resume: that one request is sent again") from None

    def write_summary(self, summary: dict) -> None:
        write_atomic(self.path / "summary.json", json.dumps(summary, ensure_ascii=False, indent=2) + "\n")

    def sync(self) -> None:
        for journal in (self.responses, self.tasks, self.rejected):
            journal.sync()

    def close(self) -> None:
        for journal in (self.responses, self.tasks, self.rejected):
            journal.close()
        self.lock.release()


def _read_json(path: Path) -> dict:
    if special_kind(path):
        return {}
    try:
        value = load_json(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}
