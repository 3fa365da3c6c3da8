"""Filtering an existing dataset the way the loop filters new tasks.

Records are decided in file order: a record is dropped if a heuristic rule rejects it, or if
it is a near-duplicate of an earlier kept record (or of any record of an ``against`` dataset).
The input is read twice: first (screening.py) to apply the heuristic rules and turn the
instructions (and, with ``key`` instruction+input, inputs) into token ids for ``dedup``, which
decides the records a block at a time; then to write each record where its decision sends it (a
JSONL record is copied as written). Only flat arrays are held, never the records. The second read
runs in a thread while ``dedup`` decides the rest (``_Writing``), unless a judge must first score
every kept record.

``key`` says what a near-duplicate is. ``instruction`` (the default): the instructions'
ROUGE-L is above the threshold, so an Alpaca export, which repeats a task's instruction
once per instance, keeps one instance per task. ``instruction+input``: the instructions'
ROUGE-L is above the threshold and so is the inputs' (two empty inputs are equal, 1.0; an
empty and a non-empty one, 0.0; a seed task's input is its inputs joined by "\\n", but an
``against`` seed task counts once per instance, so an Alpaca record equal to any of its instances
matches), so instances whose inputs differ are kept. Scoring instruction and input joined into one
text would not do: a short or empty input hardly changes it, and every instance of a
task still scores above the threshold. The heuristic rules look at the instruction alone.
"""

from __future__ import annotations

import importlib.util
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import accumulate
from pathlib import Path

import numpy as np

from selfinstruct.config import LENGTH_DEFAULTS
from selfinstruct.dedup.corpus import CorpusBuilder
from selfinstruct.dedup.greedy import ENGINES, NONE, Decisions, Matches, deduplicate
from selfinstruct.store.journal import json_line
from selfinstruct.generation.judge import JudgeOptions, score_records
from selfinstruct.paths import landing, special_kind, unwritable_target
from selfinstruct.endpoint.progress import count_lines
from selfinstruct.formats.records import Fingerprint, RecordError, detect_layout, iter_records
from selfinstruct.store.rundir import is_file_of_a_run
from selfinstruct.dedup.read import PROGRESS_EVERY, Options, Screened, ScreenError, input_of, read_record, screen
from selfinstruct.formats.task import Instance
from selfinstruct.text.rouge import rouge_l, tokenize

ONLY = ("dedup", "heuristics")
KEYS = ("instruction", "instruction+input")
_SPACES = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # the ASCII characters str.strip strips


class FilterError(ValueError):
    pass


@dataclass
class FilterReport:
    total: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    output: Path | None = None
    dropped_output: Path | None = None  # the first input's
    outputs: list[tuple[Path, Path]] = field(default_factory=list)  # every (kept, dropped) file written
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # what the deduplication engine did


def filter_dataset(input: Path | str | list[Path | str], output: Path | str, *, threshold: float = 0.7,
                   lang: str = "auto", only: str | None = None, against: Path | str | list[Path | str] | None = None,
                   field: str | None = None, dropped_output: Path | str | None = None,
                   key: str = "instruction", progress: Callable[[str, int, int], None] | None = None,
                   overwrite: bool = False, engine: str = "local", workers: int | None = None,
                   judge: JudgeOptions | None = None, notify: Callable[[str], None] = lambda line: None) -> FilterReport:
    """Write the kept records to ``output`` (in the input's layout) and the dropped ones, with reasons,
    to ``dropped_output`` (default: ``<output stem>.dropped.jsonl``).

    ``input`` may be a list: the files are deduplicated together, in the order given. ``output`` is
    then an existing directory, which gets each input's kept records under its name (and its dropped
    ones as ``<name stem>.dropped.jsonl``), or one file for all (in the first input's layout; each
    dropped entry names its ``file``).
    ``against`` is one dataset or a list of them; ``key`` is one of KEYS (see above); ``progress``,
    if given, is called with (stage, done, total) as the work goes: stage ``read`` and ``write`` count
    the input's lines, ``dedup`` its records. An existing output or dropped file is replaced only with
    ``overwrite``, a run's own files never. Nothing is read or written if any path is unusable.
    ``engine`` (see dedup.ENGINES: ``local``, or ``ray``) and ``workers`` say where deduplication runs
    (``workers`` processes also read a large JSONL input, see screening.py); the result is the same, byte
    for byte.
    ``judge`` (judge.JudgeOptions) scores each kept record 1-5 with a model: a kept record gets a ``judge``
    field; with ``min_score``, one scored below goes to the dropped records (``low_score``). The judge's
    answers are journaled in its directory, so filtering again asks only for what is new."""
    started = time.monotonic()
    sources = [Path(p) for p in (input if isinstance(input, (list, tuple)) else [input])]
    output = Path(output)
    given = [against] if isinstance(against, (str, os.PathLike)) else list(against or ())
    againsts = [Path(p) for p in given]
    if not sources:
        raise FilterError("no input file given")
    if lang not in ("auto", *LENGTH_DEFAULTS):
        raise FilterError(f"unknown lang {lang!r}; choose auto, zh or en")
    if only not in (None, *ONLY):
        raise FilterError(f"unknown --only {only!r}; choose dedup or heuristics")
    if key not in KEYS:
        raise FilterError(f"unknown --key {key!r}; choose instruction or instruction+input")
    if not 0.0 <= threshold <= 1.0:
        raise FilterError(f"threshold must be between 0 and 1, got {threshold}")
    if engine not in ENGINES:
        raise FilterError(f"unknown --engine {engine!r}; choose {' or '.join(ENGINES)}")
    if workers is not None and workers < 1:
        raise FilterError(f"--workers must be at least 1, got {workers}")
    judge_dir = _judge_directory(judge, output) if judge else None
    if engine == "ray" and importlib.util.find_spec("ray") is None:
        raise FilterError("--engine ray needs Ray: pip install 'selfinstruct[ray]'")
    targets = _targets(sources, output, Path(dropped_output) if dropped_output else None)
    for out, dropped in dict.fromkeys(targets):
        for source in sources:
            _check_paths(source, out, dropped, againsts, overwrite)
    if len(set(targets)) not in (1, len(sources)):
        raise FilterError(f"{output}: two inputs have the same name; filter them into a file, or apart")
    tell = progress or (lambda stage, done, total: None)
    corpus = CorpusBuilder(use_inputs=key == "instruction+input")
    reference = _Reference()
    for path, name in zip(againsts, given):
        _add_dataset(corpus, reference, path, field, key, os.fspath(name))
    lines = [count_lines(source) if progress else 0 for source in sources]
    options = Options(field, key, lang, only)
    screened = []
    for source, count in zip(sources, lines):
        screened.append(_screen(source, options, corpus, tell, count, sum(s.records for s in screened), workers))
    total = sum(s.records for s in screened)
    report = FilterReport(output=output, dropped_output=targets[0][1], total=total)
    deduplicating = only != "heuristics" and total > 0
    found = Decisions.empty(total) if deduplicating else Decisions(np.ones(total, bool), Matches.empty(total))
    writing = _Writing(found, reference, field, key, report, tell, list(zip(sources, screened)),
                       min_score=judge.min_score if judge else None)

    def write() -> None:
        for target in dict.fromkeys(targets):
            writing.write(target, [(source, part, count) for source, part, count, t
                                   in zip(sources, screened, lines, targets) if t == target])
            report.outputs.append(target)

    try:
        if deduplicating and judge is None:
            writing.beside(write)  # each record is written once it is decided, while the rest are
        if deduplicating:
            deduplicate(corpus.build(), threshold, engine, workers, into=found,
                        progress=lambda done, total: (tell("dedup", done, total), writing.advance(done)))
            report.notes = found.notes
        if judge is not None:
            items = _kept_tasks(sources, screened, found.kept, field)
            writing.scores = score_records(items, judge, judge_dir, notify=notify,
                                           progress=lambda done, total: tell("judge", done, total))
        if writing.thread is None:
            write()
    except BaseException:
        writing.finish(failed=True)
        raise
    writing.finish()
    report.seconds = time.monotonic() - started
    return report


def _judge_directory(judge: JudgeOptions, output: Path) -> Path:
    """Where the judge's answers go; FilterError, before anything is read or written, if it cannot work."""
    if judge.min_score is not None and not 1 <= judge.min_score <= 5:
        raise FilterError(f"--min-score must be from 1 to 5, got {judge.min_score}")
    directory = Path(judge.directory or output.with_name(output.stem + ".judge"))
    if directory.exists() and not directory.is_dir():
        raise FilterError(f"{directory}: --judge-dir is a file; give a directory for the judge's answers")
    if not directory.parent.is_dir():
        raise FilterError(f"{directory}: cannot write there: {directory.parent} is not an existing directory")
    if (directory / "config.json").exists():
        raise FilterError(f"{directory} is a run's directory; give the judge a --judge-dir of its own")
    return directory


def _kept_tasks(sources: list[Path], screened: list[Screened], kept: np.ndarray,
                field: str | None) -> list[tuple[int, str, list[Instance]]]:
    """(record number, instruction, instances) of each kept record, for the judge: a third read."""
    found = []
    for source, part in zip(sources, screened):
        for number, (_, record) in enumerate(iter_records(source, skip_bad_lines=True)):
            overall = part.first + number
            if number < part.records and not part.dropped[number] and kept[overall]:
                instruction, instances = read_record(record, field)
                found.append((overall, instruction, instances or []))
    return found


def _targets(sources: list[Path], output: Path, dropped: Path | None) -> list[tuple[Path, Path]]:
    """Each input's (output, dropped-records file)."""
    if len(sources) > 1 and output.is_dir():
        if dropped:
            raise FilterError("--dropped names one file; with an output directory each input's dropped records "
                              "go beside its kept ones")
        return [(output / s.name, output / (Path(s.name).stem + ".dropped.jsonl")) for s in sources]
    return [(output, dropped or output.with_name(output.stem + ".dropped.jsonl"))] * len(sources)


def _check_paths(input: Path, output: Path, dropped: Path, againsts: list[Path], overwrite: bool) -> None:
    """Raise FilterError, before anything is written, if a path cannot be used or two would be the same file."""
    if not input.exists():
        raise FilterError(f"{input}: no such file")
    if input.is_dir():
        raise FilterError(f"{input}: is a directory, not a dataset file")
    kind = special_kind(input)
    if kind:
        raise FilterError(f"{input}: is {kind}, not a regular file; filter reads its input twice, so save it to a "
                          "file first")
    for path in (output, dropped):
        if path.is_dir():
            raise FilterError(f"{path}: is a directory; give a file name to write to")
        if problem := unwritable_target(path):
            raise FilterError(problem)
        if not path.parent.is_dir():
            raise FilterError(f"{path}: cannot write there: {path.parent} is not an existing directory")
    sources = [("input", input), *(("--against file", path) for path in againsts)]
    targets = [("output", output), ("dropped-records file", dropped)]
    pairs = [(s, t) for s in sources for t in targets] + [(targets[0], targets[1])]
    for (source_role, source), (role, target) in pairs:
        if _same_file(source, target):
            raise FilterError(f"{target}: the {role} is the same file as the {source_role} ({source}); "
                              "choose another path")
    for path, option in ((output, "--output"), (dropped, "--dropped")):
        if is_file_of_a_run(path):
            raise FilterError(f"{path} is one of a run's own files; choose another {option}")
        if os.path.lexists(path) and not overwrite:
            raise FilterError(f"{path} exists; pass --overwrite to replace it, or choose another {option}")


def _same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file: the same resolved path, or (both existing) the same inode."""
    if a.resolve() == b.resolve():
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _screen(input: Path, options: Options, corpus: CorpusBuilder, tell, lines: int, first: int,
            workers: int | None) -> Screened:
    try:
        screened = screen(input, options, corpus, first, workers, lambda line: tell("read", line, lines))
    except ScreenError as exc:
        raise FilterError(str(exc)) from None
    if screened.records and not screened.parsed_any:
        raise FilterError(f"{input}: no line is valid JSON; is this a JSON or JSONL file?")
    if screened.parsed_any and not screened.field_seen:
        raise FilterError(f"{input}: no record has the field '{options.field or 'instruction'}'; "
                          "name the instruction field with --field")
    tell("read", lines, lines)
    return screened


class _Stopped(Exception):
    """Ends a writer thread whose deduplication failed."""


class _Writing:
    """The second read of the inputs: each record goes where its decision (``found``) sends it.

    It may run in a thread beside deduplication (``beside``), which uses mostly compiled code without
    the GIL: the writer then waits (``ready``) for each chunk's decisions, which ``advance`` announces."""

    def __init__(self, found: Decisions, reference: "_Reference", field, key: str, report: FilterReport, tell,
                 inputs: list[tuple[Path, Screened]], min_score: int | None = None):
        self.found, self.matches, self.reference, self.field, self.key = found, found.matches, reference, field, key
        self.report, self.tell, self.inputs, self.named = report, tell, inputs, len(inputs) > 1
        self.scores: dict = {}  # the judge's, per kept record
        self.min_score = min_score
        self.remembered: dict[int, dict] = {}  # a cited kept record -> what a duplicate of it reports (_records)
        self.fragments: dict[int, bytes | None] = {}  # and that as JSON text (see _fragment)
        self.located = np.full(len(found.kept), -1, np.int64)  # a kept record's line's byte offset
        self.files: dict[Path, object] = {}  # inputs open to read a cited record's line again
        self.decided = len(found.kept)  # records whose decision is final
        self.condition = threading.Condition()
        self.stopped = False
        self.thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def beside(self, work: Callable[[], None]) -> None:
        """Run ``work`` (the writing) in a thread, while the records are decided."""
        self.decided = 0

        def run():
            try:
                work()
            except BaseException as exc:  # taken to the caller's thread by advance or finish
                self.error = exc
        self.thread = threading.Thread(target=run, name="selfinstruct-writer", daemon=True)
        self.thread.start()

    def advance(self, decided: int) -> None:
        """The first ``decided`` records are decided. Raises the writer's error, if it failed."""
        with self.condition:
            self.decided = decided
            self.condition.notify_all()
        if self.error is not None:
            raise self.error

    def ready(self, count: int) -> None:
        """Wait until the first ``count`` records are decided."""
        with self.condition:
            while self.decided < count and not self.stopped:
                self.condition.wait()
            if self.stopped:
                raise _Stopped

    def finish(self, failed: bool = False) -> None:
        """Wait for the writer thread, raising its error; if ``failed``, end it first (it leaves no file)."""
        if self.thread is not None:
            if failed:
                with self.condition:
                    self.stopped = True
                    self.condition.notify_all()
            self.thread.join()
            self.thread = None
        for file in self.files.values():
            file.close()
        if self.error is not None and not failed:
            raise self.error

    def _progress(self, line: int, lines: int) -> None:
        if self.decided == len(self.found.kept):  # not while deduplication reports its own
            self.tell("write", line, lines)

    def write(self, target: tuple[Path, Path], parts: list) -> None:
        """Write the inputs in ``parts`` ((file, Screened, lines)) to one output and dropped file, atomically."""
        output, dropped_output = map(landing, target)
        layout = detect_layout(parts[0][0])
        temp_out = output.with_name(f".{output.name}.tmp")
        temp_dropped = dropped_output.with_name(f".{dropped_output.name}.tmp")
        try:
            with temp_out.open("wb") as out, temp_dropped.open("wb") as drops:
                if layout == "array":
                    out.write(b"[")
                written = 0
                for source, screened, lines in parts:
                    if layout == "lines" and detect_layout(source) == "lines":
                        self._copy(source, screened, lines, out, drops)
                    else:
                        written = self._records(source, screened, lines, layout, out, drops, written)
                if layout == "array":
                    out.write(b"\n]\n" if written else b"]\n")
            os.replace(temp_out, output)
            os.replace(temp_dropped, dropped_output)
        except OSError as exc:
            raise FilterError(f"{exc.filename or output}: {exc.strerror or exc}") from None
        finally:
            temp_out.unlink(missing_ok=True)
            temp_dropped.unlink(missing_ok=True)

    def _records(self, source: Path, screened: Screened, lines: int, layout, out, drops, written: int) -> int:
        """Write one input's records, each parsed and written again (a JSON array on either side). The
        records a duplicate cites are remembered as they pass."""
        self.ready(len(self.found.kept))
        cited = set(np.unique(self.matches.kept_entry[self.matches.kept_entry != NONE]).tolist())
        number, read = -1, _second_read(screened)
        for number, (line, record) in enumerate(iter_records(source, skip_bad_lines=True, digest=read)):
            if number >= screened.records or screened.lines[number] != line:
                raise _changed(source)
            if number % PROGRESS_EVERY == 0:
                self._progress(line, lines)
            entry = screened.first + number + self.reference.size
            if entry in cited:
                self.remembered[entry] = self._description(line, source, record)
            text, dropped = self._one(source, screened, number, line, record)
            if text is not None:
                out.write((("\n" if written == 0 else ",\n") + text if layout == "array" else text + "\n").encode())
                written += 1
            else:
                drops.write(dropped)
        if number + 1 != screened.records or read.ranges() != screened.fingerprint:
            raise _changed(source)
        self._progress(lines, lines)
        return written

    def _copy(self, source: Path, screened: Screened, lines: int, out, drops) -> None:
        """Write one JSON-lines input to a JSON-lines output, a chunk of lines at a time, as soon as its
        records are decided: a kept record's line is copied as written, and a duplicate's entry is its line
        after a prefix. Only the records a duplicate cites (read again, ``_remembered``) are parsed, and
        those with another fate (``_one``)."""
        first, records, kept = screened.first, screened.records, self.found.kept
        where = np.frombuffer(screened.lines, np.int64) if records else np.zeros(0, np.int64)
        free = np.frombuffer(screened.dropped, np.int8) == 0 if records else np.zeros(0, bool)
        special = np.zeros(records, bool)  # records _one decides: not JSON, or judged
        special[list(screened.unreadable)] = True
        special[[n - first for n in self.scores if first <= n < first + records]] = True
        head = _utf8_json(self._naming(source))  # how a dropped entry starts
        head = None if head is None else (head[:-1] + (", " if self.named else "")).encode()
        number = line_base = offset = 0
        read = _second_read(screened)
        with source.open("rb") as stream:
            while chunk := stream.readlines(1 << 20):
                read.update(b"".join(chunk))
                stop = int(np.searchsorted(where, line_base + len(chunk), "right"))
                self.ready(first + stop)
                positions = (where[number:stop] - line_base - 1).tolist()
                bodies = [raw.strip(_SPACES) for raw in chunk]  # str.strip's, where a body's ends are ASCII
                if [i for i, body in enumerate(bodies) if body and (body[0] < 128 or _text(body))] != positions:
                    raise _changed(source)
                starts = list(accumulate(map(len, chunk), initial=offset))
                # Per record: 1 kept, 2 dropped as a near-duplicate of one kept record, 0 anything else.
                rows = slice(first + number, first + stop)
                fate = np.where(free[number:stop] & kept[rows], 1, 0)
                if self.key == "instruction":
                    fate[free[number:stop] & ~kept[rows] & (self.matches.against_entry[rows] == NONE)] = 2
                fate[special[number:stop]] = 0
                kept_lines, dropped_lines, copied, duplicates = [], [], 0, 0
                for k, position, line, how, entry, score in zip(
                        range(number, stop), positions, where[number:stop].tolist(), fate.tolist(),
                        self.matches.kept_entry[rows].tolist(), self.matches.kept_score[rows].tolist()):
                    body = bodies[position]
                    if kept[first + k]:
                        self.located[first + k] = starts[position]
                    if how and body[-1] < 128 and body[0] < 128:
                        if how == 1:
                            kept_lines.append(body)
                            copied += 1
                            continue
                        fragment = self.fragments[entry] if entry in self.fragments else self._fragment(entry)
                        if fragment is not None and head is not None:  # as _one would write it, but quicker
                            dropped_lines.append(b"".join((
                                head, b'"line": %d, "index": %d, "reason": "duplicate", "score": ' % (line, k),
                                repr(score).encode(), b', "duplicate_of": ', fragment, b', "record": ', body,
                                b"}\n")))
                            duplicates += 1
                            continue
                    text = _text(chunk[position])
                    try:
                        record = None if k in screened.unreadable else json.loads(text)
                    except ValueError:  # it was JSON when it was read
                        raise _changed(source) from None
                    kept_text, dropped = self._one(source, screened, k, line, record, text)
                    if kept_text is None:
                        dropped_lines.append(dropped)
                    else:
                        kept_lines.append(kept_text.encode())
                self.report.kept += copied
                if duplicates:
                    self.report.dropped["duplicate"] += duplicates
                if kept_lines:
                    out.write(b"\n".join(kept_lines) + b"\n")
                drops.writelines(dropped_lines)
                number, line_base, offset = stop, line_base + len(chunk), starts[-1]
                self._progress(line_base, lines)
        if number != records or read.ranges() != screened.fingerprint:
            raise _changed(source)

    def _one(self, source: Path, screened: Screened, number: int, line: int, record,
             text: str | None = None) -> tuple[str | None, bytes | None]:
        """One record's fate, worked out in full: (its JSON text, if it is kept; else None and its dropped
        entry's line). ``record`` is None (or a RecordError) if its line is not a record; ``text`` is the
        line as written, where records are copied."""
        overall, kept = screened.first + number, self.found.kept
        reason = screened.reasons[screened.dropped[number]]
        readable = record is not None and not isinstance(record, RecordError)
        details: dict = {}
        judged = self.scores.get(overall) if not reason and kept[overall] else None
        if judged:
            score, why, error = judged
            if self.min_score and (score is None or score < self.min_score):
                reason = "judge_failed" if error else "unparseable_score" if score is None else "low_score"
                details = {"error": error} if error else {"score": score, "judge_reason": why}
            else:
                verdict = {"score": score, "error": error} if error else {"score": score, "reason": why}
                text = json.dumps(record | {"judge": verdict}, ensure_ascii=False)
        if not reason and kept[overall]:
            self.report.kept += 1
            return (text if text is not None else json.dumps(record, ensure_ascii=False)), None
        if reason == "bad_record":
            details = {"error": screened.errors[number]}
        elif not reason:
            reason, details = self._match(overall, record)
        self.report.dropped[reason] += 1
        entry = self._naming(source) | {
            "line": line, "index": number, "reason": reason, **details}
        if text is not None and reason != "bad_record":  # the record as it was written, last
            return None, json_line(entry)[:-2] + b', "record": ' + text.encode() + b"}\n"
        if readable:
            entry["record"] = record
        return None, json_line(entry)  # a lone surrogate stays a JSON escape

    def _naming(self, source: Path) -> dict:
        """The field naming a record's input, in what is written of it when there are several inputs."""
        return {"file": os.fspath(source)} if self.named else {}

    def _description(self, line: int, source: Path, record: dict) -> dict:
        """What a duplicate of this kept record reports of it."""
        instruction, instances = read_record(record, self.field)
        return {"line": line, "instruction": instruction, "input": input_of(record, instances)} | self._naming(source)

    def _remembered(self, entry: int) -> dict:
        """What a duplicate of the kept record ``entry`` reports of it: remembered as it passed (``_records``),
        or read again from its line (``_copy`` keeps where each kept record's line starts)."""
        if entry in self.remembered:
            return self.remembered[entry]
        overall = entry - self.reference.size
        source, screened = next((path, part) for path, part in self.inputs
                                if part.first <= overall < part.first + part.records)
        if source not in self.files:
            self.files[source] = source.open("rb")
        self.files[source].seek(self.located[overall])
        try:
            return self._description(screened.lines[overall - screened.first], source,
                                     json.loads(_text(self.files[source].readline())))
        except ValueError:  # it was a record when it was read
            raise _changed(source) from None

    def _fragment(self, entry: int) -> bytes | None:
        """What a duplicate's entry says of the kept record ``entry`` (``_duplicate_of``) as the JSON text
        json_line would give, kept for the next duplicate of it; None if json_line would escape it."""
        fragment = _utf8_json(_duplicate_of(self._remembered(entry)))
        self.fragments[entry] = None if fragment is None else fragment.encode()
        return self.fragments[entry]

    def _match(self, number: int, record) -> tuple[str, dict]:
        """The reason and details of a record dropped as a near-duplicate, naming its best match."""
        matches, reference = self.matches, self.reference
        a = int(matches.against_entry[number])
        if a != NONE:
            details = {"score": float(matches.against_score[number]), "similar_to": reference.instructions[a],
                       "against": reference.sources[a]}
            if self.key == "instruction+input":
                details |= {"similar_to_input": reference.inputs[a],
                            "input_score": _input_score(self._input(record), reference.inputs[a])}
            return "similar_to_against", details
        match = self._remembered(int(matches.kept_entry[number]))
        score = float(matches.kept_score[number])
        duplicate_of = _duplicate_of(match)
        if self.key == "instruction+input":
            duplicate_of |= {"input": match["input"], "instruction_score": score,
                             "input_score": _input_score(self._input(record), match["input"])}
        return "duplicate", {"score": score, "duplicate_of": duplicate_of}

    def _input(self, record) -> str:
        return input_of(record, read_record(record, self.field)[1])


class _Reference:
    """The --against entries' texts, in entry order, to name the match of a record dropped for one."""

    def __init__(self):
        self.instructions: list[str] = []
        self.inputs: list[str] = []
        self.sources: list[str] = []

    @property
    def size(self) -> int:
        return len(self.instructions)

    def add(self, instruction: str, input: str, source: str) -> None:
        self.instructions.append(instruction)
        self.inputs.append(input)
        self.sources.append(source)


def _duplicate_of(match: dict) -> dict:
    """What a duplicate's entry says of the kept record it repeats (inputs aside)."""
    return {k: match[k] for k in ("file", "line", "instruction") if k in match}


def _utf8_json(value: dict) -> str | None:
    """``value`` as json_line writes it (without the newline), or None if that text is escaped to ASCII."""
    text = json.dumps(value, ensure_ascii=False)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


def _second_read(screened: Screened) -> Fingerprint:
    """The digests of the second read, split where the first read's parts end, to compare with theirs."""
    return Fingerprint(0, [end for _, end, _ in screened.fingerprint[:-1]])


def _changed(source: Path) -> FilterError:
    return FilterError(f"{source}: the file changed while it was being filtered; run again")


def _text(line: bytes) -> str:
    """A line as ``iter_records`` reads it: decoded, spaces stripped."""
    return line.decode("utf-8", "replace").strip()


def _input_score(a: str, b: str) -> float:
    """ROUGE-L of two inputs, where two empty ones (no tokens) are equal: 1.0."""
    a_tokens, b_tokens = tokenize(a), tokenize(b)
    return 1.0 if not a_tokens and not b_tokens else rouge_l(a_tokens, b_tokens)


def _add_dataset(corpus: CorpusBuilder, reference: _Reference, path: Path, field: str | None, key: str,
                 source: str) -> None:
    """Add another dataset's records (its own layout; ``field`` if its records have it) as --against
    entries named ``source``. With key instruction+input, a seed task adds one entry per instance, not
    its inputs joined."""
    for line, record in iter_records(path):
        try:
            own_field = field if isinstance(record, dict) and field in record else None
            instruction, instances = read_record(record, own_field)
        except ValueError as exc:
            raise RecordError(path, line, str(exc)) from None
        if key == "instruction+input" and instances:
            inputs = [instance.input for instance in instances]
        else:
            inputs = [input_of(record, instances) if key == "instruction+input" else ""]
        for given in inputs:
            corpus.add_against(tokenize(instruction), tokenize(given))
            reference.add(instruction, given, source)
