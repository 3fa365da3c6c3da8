"""The first read of a dataset that ``filter`` deduplicates: check each record, apply the
heuristic rules, and turn the survivors' texts into token ids.

Parsing and tokenising are Python, one core per process, so a large JSON-lines file is read in
parts by worker processes (``PART_BYTES`` each, as many processes as ``workers``). Each part
numbers its own tokens; the parts are joined in file order (``CorpusBuilder.append``), which
gives every record, line and token the number one reader would have given. A JSON array, a
file of one part, or one worker: read here, in one part.
"""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import tempfile
from array import array
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from selfinstruct.config import LENGTH_DEFAULTS
from selfinstruct.dedup.corpus import CorpusBuilder
from selfinstruct.text.lang import detect_lang
from selfinstruct.text.rules import clean_instances, instruction_rejection
from selfinstruct.formats.chat import CHAT_LAYOUTS, split_prompt
from selfinstruct.formats.fields import FieldError, text
from selfinstruct.formats.layouts import has_instruction, read_task
from selfinstruct.formats.records import Fingerprint, RecordError, invalid_text, iter_records, line_parts
from selfinstruct.formats.task import Instance

PART_BYTES = 16 << 20
PROGRESS_EVERY = 1000  # records between calls of the progress callback


class ScreenError(ValueError):
    pass


@dataclass
class Options:
    """What decides a record's fate while it is read (see command.filter_dataset)."""

    field: str | None
    key: str
    lang: str
    only: str | None


@dataclass
class Screened:
    """What the first read of an input found, per record, in compact arrays: its line, and why
    it is dropped before deduplication (0: it is not; else a number in ``reasons``)."""

    first: int = 0  # the number of its first record among all inputs' records
    records: int = 0
    lines: array = field(default_factory=lambda: array("q"))
    dropped: array = field(default_factory=lambda: array("b"))
    reasons: list[str] = field(default_factory=lambda: [""])
    errors: dict[int, str] = field(default_factory=dict)  # record -> a bad record's error
    unreadable: set[int] = field(default_factory=set)  # records that are not JSON (or not UTF-8)
    fingerprint: list = field(default_factory=list)  # Fingerprint.ranges() of the bytes read, part by part
    parsed_any: bool = False  # some record is JSON
    field_seen: bool = False  # some record has the instruction field

    def reason_id(self, reason: str) -> int:
        if reason not in self.reasons:
            self.reasons.append(reason)
        return self.reasons.index(reason)

    def append(self, other: Screened, line_base: int) -> None:
        """Add the records of ``other``, the next part of the same file, which starts after line ``line_base``."""
        base = self.records
        self.lines.extend(array("q", (np.frombuffer(other.lines, np.int64) + line_base).tobytes()))
        reason_ids = np.array([self.reason_id(r) for r in other.reasons], np.int8)
        self.dropped.extend(array("b", reason_ids[np.frombuffer(other.dropped, np.int8)].tobytes()))
        self.errors.update((base + number, error) for number, error in other.errors.items())
        self.unreadable.update(base + number for number in other.unreadable)
        self.records += other.records
        self.fingerprint += other.fingerprint
        self.parsed_any |= other.parsed_any
        self.field_seen |= other.field_seen


def screen(path: os.PathLike, options: Options, corpus: CorpusBuilder, first: int, workers: int | None,
           tell: Callable[[int], None]) -> Screened:
    """Read ``path``: each record's fate before deduplication, and the survivors' tokens added to
    ``corpus`` (every record gets an entry, so entry numbers follow the file). ``tell`` hears the
    number of lines read so far."""
    workers = workers or os.cpu_count() or 1
    parts = line_parts(path, PART_BYTES) if workers > 1 else []
    if len(parts) < 2:
        screened, own = _read(path, options, None, tell)
        corpus.append(own)
    else:
        screened, line_base = Screened(), 0
        for part_screened, part_corpus, newlines in _read_apart(path, options, parts, workers):
            screened.append(part_screened, line_base)
            corpus.append(part_corpus)
            line_base += newlines
            tell(line_base)
    screened.first = first
    return screened


def _read_apart(path, options: Options, parts: list[tuple[int, int]],
                workers: int) -> Iterator[tuple[Screened, CorpusBuilder, int]]:
    """Each part's (Screened, corpus, newlines), in file order; part i is read by worker i % workers.

    Workers are plain child processes running ``_serve``, not multiprocessing's, which would run
    the caller's main script again in each (a script without a ``__main__`` guard would fail).
    They are in a session of their own, so Ctrl+C reaches only this process, which ends them."""
    count = min(workers, len(parts))
    root = os.fspath(Path(__file__).resolve().parents[2])
    command = [sys.executable, "-c", f"import sys; sys.path.insert(0, {root!r}); "
                                     "from selfinstruct.dedup.read import _serve; _serve()"]
    with ExitStack() as stack:
        processes = []
        for w in range(count):
            errors = stack.enter_context(tempfile.TemporaryFile())
            process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors,
                                       start_new_session=True)
            stack.callback(_end, process)
            pickle.dump([(os.fspath(path), options, part) for part in parts[w::count]], process.stdin)
            process.stdin.close()
            processes.append((process, errors))
        for i in range(len(parts)):
            process, errors = processes[i % count]
            try:
                yield pickle.load(process.stdout)
            except (EOFError, pickle.UnpicklingError):
                process.wait()
                errors.seek(0)
                said = errors.read().decode("utf-8", "replace").strip().splitlines()
                raise ScreenError(f"{path}: a process reading it failed (exit code {process.returncode})"
                                  + (f": {said[-1]}" if said else "")) from None


def _end(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.kill()
    process.wait()
    process.stdout.close()


def _serve() -> None:
    """A worker: read the parts listed on stdin, write each one's result to stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for task in pickle.load(sys.stdin.buffer):
        pickle.dump(_read_part(task), sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
        sys.stdout.buffer.flush()


def _read_part(task) -> tuple[Screened, CorpusBuilder, int]:
    path, options, part = task
    screened, corpus = _read(path, options, part, lambda line: None)
    with open(path, "rb") as stream:
        stream.seek(part[0])
        newlines = stream.read(part[1] - part[0]).count(b"\n")
    return screened, corpus, newlines


def _read(path, options: Options, part: tuple[int, int] | None,
          tell: Callable[[int], None]) -> tuple[Screened, CorpusBuilder]:
    """Screen the records of ``path`` (or of one ``part`` of it) into a Screened and a corpus of their own."""
    screened, corpus = Screened(), CorpusBuilder(use_inputs=options.key == "instruction+input")
    field, only = options.field, options.only
    instructions, inputs, active = [], [], []  # the entries not yet added to the corpus, added in bulk
    fingerprint = Fingerprint(part[0] if part else 0)
    for line, record in iter_records(path, skip_bad_lines=True, part=part, digest=fingerprint):
        number = screened.records
        screened.records += 1
        screened.lines.append(line)
        if number % PROGRESS_EVERY == 0:
            tell(line)
            corpus.add_texts(instructions, inputs, active)
            instructions, inputs, active = [], [], []
        reason, instruction, given = None, "", ""
        if isinstance(record, RecordError):
            reason = "bad_record"
            screened.errors[number] = record.message
            screened.unreadable.add(number)
        else:
            screened.parsed_any = True
            screened.field_seen = screened.field_seen or (isinstance(record, dict) and (
                field in record if field else has_instruction(record)))
            try:
                instruction, instances = read_record(record, field)
            except ValueError as exc:
                reason = "bad_record"
                screened.errors[number] = str(exc)
            else:
                if only != "dedup":
                    reason = heuristic_rejection(instruction, instances, options.lang)
                given = input_of(record, instances) if options.key == "instruction+input" and not reason else ""
        screened.dropped.append(screened.reason_id(reason) if reason else 0)
        taken = only != "heuristics" and not reason
        instructions.append(instruction if taken else "")
        inputs.append(given if taken else "")
        active.append(taken)
    corpus.add_texts(instructions, inputs, active)
    screened.fingerprint = fingerprint.ranges()
    return screened, corpus


def heuristic_rejection(instruction: str, instances: list[Instance] | None, lang: str) -> str | None:
    detected = detect_lang(instruction) if lang == "auto" else None
    record_lang = detected or lang
    low, high = LENGTH_DEFAULTS[record_lang]
    reason = instruction_rejection(instruction, record_lang, low, high, detected)
    if reason:
        return reason
    if instances is not None:
        kept_instances, dropped = clean_instances(instances)
        if not kept_instances:
            return dropped[0][1]
    return None


def input_of(record: dict, instances: list[Instance] | None) -> str:
    """The input key instruction+input compares: the record's input; a seed task's inputs joined by "\\n"."""
    if instances is not None:
        return "\n".join(i.input for i in instances)
    return record["input"] if isinstance(record.get("input"), str) else ""


_ALPACA_FIELDS = frozenset(("instruction", "input", "output"))


def read_record(record, field: str | None) -> tuple[str, list[Instance] | None]:
    """The instruction and (where the record has them) its instances, as its layout's reader reads them
    (formats.layouts); with ``field``, the instruction alone, from that field. A chat prompt is split back
    into instruction and input (formats.chat.split_prompt), so that a chat export of a run filters as its
    Alpaca export does. Every string of the record must be one a UTF-8 file can hold: it is written again."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    if field:
        _check_strings(record)
        return text(record, field, required=True), None
    try:
        layout, task = read_task(record)
    except FieldError:
        _check_strings(record)  # a string UTF-8 cannot hold is the problem named, wherever it is
        raise
    if record.keys() != _ALPACA_FIELDS:  # else an Alpaca record, whose reader checked every string it has
        _check_strings(record)  # (most records: the walk is skipped)
    if layout in CHAT_LAYOUTS:
        instruction, given = split_prompt(task.instruction)
        return instruction, [Instance(given, task.instances[0].output)]
    return task.instruction, task.instances or None  # no instances: the instruction alone is judged


def _check_strings(record: dict) -> None:
    bad = _invalid_text_in(record)
    if bad:
        raise ValueError(f"field '{bad[0]}': {bad[1]}")


def _invalid_text_in(value: object, where: str = "") -> tuple[str, str] | None:
    """(field, problem) for the first string in a JSON value, field names included, that UTF-8 cannot hold."""
    if isinstance(value, dict):  # most records: all the strings at once, the fields named only if one is bad
        try:
            if invalid_text("".join(value) + "".join(value.values())) is None:
                return None
        except TypeError:  # a value that is not a string
            pass
    if isinstance(value, str):
        problem = invalid_text(value)
        return (where, problem) if problem else None
    if isinstance(value, dict):
        items = [(f"{where}.{key}" if where else key, item) for key, item in value.items()]
    elif isinstance(value, list):
        items = [(f"{where}[{i}]", item) for i, item in enumerate(value)]
    else:
        return None
    for name, item in items:
        problem = invalid_text(name)  # field names are written too
        if problem:
            return name.encode("utf-8", "backslashreplace").decode(), f"the field name {problem}"
        found = _invalid_text_in(item, name)
        if found:
            return found
    return None
