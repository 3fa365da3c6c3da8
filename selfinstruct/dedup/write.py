"""The second read of ``filter``'s inputs: each record is written where its decision sends it.

A JSONL input is copied to a JSONL output a chunk of lines at a time, a kept record's line as
written; anything else is parsed and written again. The writing may run in a thread beside the
deduplication, each chunk once its records are decided.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from itertools import accumulate
from pathlib import Path

import numpy as np

from selfinstruct.dedup.against import Reference
from selfinstruct.dedup.greedy import Decisions
from selfinstruct.dedup.kernels import NONE
from selfinstruct.dedup.read import PROGRESS_EVERY, Screened, input_of, read_record
from selfinstruct.dedup.result import FilterError, FilterReport
from selfinstruct.formats.records import Fingerprint, RecordError, detect_layout, iter_records
from selfinstruct.paths import landing
from selfinstruct.store.journal import json_line
from selfinstruct.text.rouge import rouge_l, tokenize

_SPACES = b" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"  # the ASCII characters str.strip strips


class _Stopped(Exception):
    """Ends a writer thread whose deduplication failed."""


class Writing:
    """The second read of the inputs: each record goes where its decision (``found``) sends it.

    It may run in a thread beside deduplication (``beside``), which uses mostly compiled code without
    the GIL: the writer then waits (``ready``) for each chunk's decisions, which ``advance`` announces."""

    def __init__(self, found: Decisions, reference: Reference, field, key: str, report: FilterReport, tell,
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

