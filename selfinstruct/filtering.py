"""Filtering an existing dataset the way the loop filters new tasks.

Records are read one at a time and decided in file order: a record is dropped if a
heuristic rule rejects it, or if it is a near-duplicate of an earlier kept record (or of
any record of an ``against`` dataset). Only the kept records' instructions (and, with
``key`` instruction+input, inputs) are held in memory.

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

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .config import LENGTH_DEFAULTS
from .filters import clean_instances, detect_lang, instruction_rejection
from .journal import json_line
from .records import RecordError, detect_layout, invalid_text, iter_records
from .rundir import is_file_of_a_run
from .seeds import Instance
from .similarity import Match, RougeIndex, rouge_l, tokenize

ONLY = ("dedup", "heuristics")
KEYS = ("instruction", "instruction+input")
PROGRESS_EVERY = 1000  # records between calls of the progress callback


class FilterError(ValueError):
    pass


@dataclass
class FilterReport:
    total: int = 0
    kept: int = 0
    dropped: Counter = field(default_factory=Counter)  # reason -> count
    output: Path | None = None
    dropped_output: Path | None = None
    seconds: float = 0.0


def filter_dataset(input: Path | str, output: Path | str, *, threshold: float = 0.7, lang: str = "auto",
                   only: str | None = None, against: Path | str | list[Path | str] | None = None,
                   field: str | None = None, dropped_output: Path | str | None = None,
                   key: str = "instruction", progress: Callable[[int, int], None] | None = None,
                   overwrite: bool = False) -> FilterReport:
    """Write the kept records to ``output`` (in the input's layout) and the dropped ones, with reasons,
    to ``dropped_output`` (default: ``<output stem>.dropped.jsonl``).

    ``against`` is one dataset or a list of them; ``key`` is one of KEYS (see above); ``progress``,
    if given, is called with (records read, line reached) every PROGRESS_EVERY records.
    An existing output or dropped file is replaced only with ``overwrite``, a run's own files never.
    Nothing is read or written if any path is unusable."""
    started = time.monotonic()
    input, output = Path(input), Path(output)
    dropped_output = Path(dropped_output) if dropped_output else output.with_name(output.stem + ".dropped.jsonl")
    given = [against] if isinstance(against, (str, os.PathLike)) else list(against or ())
    againsts = [Path(p) for p in given]
    if lang not in ("auto", *LENGTH_DEFAULTS):
        raise FilterError(f"unknown lang {lang!r}; choose auto, zh or en")
    if only not in (None, *ONLY):
        raise FilterError(f"unknown --only {only!r}; choose dedup or heuristics")
    if key not in KEYS:
        raise FilterError(f"unknown --key {key!r}; choose instruction or instruction+input")
    if not 0.0 <= threshold <= 1.0:
        raise FilterError(f"threshold must be between 0 and 1, got {threshold}")
    _check_paths(input, output, dropped_output, againsts, overwrite)
    reference = _Pool(key) if againsts else None
    for path, name in zip(againsts, given):
        _add_dataset(reference, path, field, key, os.fspath(name))
    layout = detect_layout(input)
    report = FilterReport(output=output, dropped_output=dropped_output)
    kept = _Pool(key)
    parsed_any = field_seen = False
    temp_out = output.with_name(f".{output.name}.tmp")
    temp_dropped = dropped_output.with_name(f".{dropped_output.name}.tmp")
    try:
        with temp_out.open("w", encoding="utf-8") as out, temp_dropped.open("w", encoding="utf-8") as drops:
            if layout == "array":
                out.write("[")
            for line, record in iter_records(input, skip_bad_lines=True):
                report.total += 1
                if progress and report.total % PROGRESS_EVERY == 0:
                    progress(report.total, line)
                if isinstance(record, RecordError):
                    decision = ("bad_record", {"error": record.message})
                else:
                    parsed_any = True
                    field_seen = field_seen or (isinstance(record, dict) and (field or "instruction") in record)
                    decision = _decide(record, line, field, key, lang, threshold, only, kept, reference)
                if decision is None:
                    text = json.dumps(record, ensure_ascii=False)
                    if layout == "array":
                        out.write(("\n" if report.kept == 0 else ",\n") + text)
                    else:
                        out.write(text + "\n")
                    report.kept += 1
                    continue
                reason, details = decision
                report.dropped[reason] += 1
                entry = {"line": line, "index": report.total - 1, "reason": reason, **details}
                if not isinstance(record, RecordError):
                    entry["record"] = record
                drops.write(json_line(entry).decode("utf-8"))  # a lone surrogate stays a JSON escape
            if layout == "array":
                out.write("\n]\n" if report.kept else "]\n")
        if report.total and not parsed_any:
            raise FilterError(f"{input}: no line is valid JSON; is this a JSON or JSONL file?")
        if parsed_any and not field_seen:
            raise FilterError(f"{input}: no record has the field '{field or 'instruction'}'; "
                              "name the instruction field with --field")
        os.replace(temp_out, output)
        os.replace(temp_dropped, dropped_output)
    except OSError as exc:
        raise FilterError(f"{exc.filename or output}: {exc.strerror or exc}") from None
    finally:
        temp_out.unlink(missing_ok=True)
        temp_dropped.unlink(missing_ok=True)
    report.seconds = time.monotonic() - started
    return report


def _check_paths(input: Path, output: Path, dropped: Path, againsts: list[Path], overwrite: bool) -> None:
    """Raise FilterError, before anything is written, if a path cannot be used or two would be the same file."""
    if not input.exists():
        raise FilterError(f"{input}: no such file")
    if input.is_dir():
        raise FilterError(f"{input}: is a directory, not a dataset file")
    for path in (output, dropped):
        if path.is_dir():
            raise FilterError(f"{path}: is a directory; give a file name to write to")
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


class _Pool:
    """Records to compare with: an index over their instructions and, aligned with it, their inputs
    and lines. With key instruction+input, a record matches an entry only when its input does too."""

    def __init__(self, key: str):
        self.key = key
        self.index = RougeIndex()
        self.inputs: list[str] = []  # empty with key instruction, which never looks at them
        self.lines: list[int] = []
        self.sources: list[str | None] = []  # the --against file an entry came from (None: the input)

    def add(self, instruction: str, input: str, line: int, source: str | None = None) -> None:
        self.index.add(instruction)
        self.inputs.append(input)
        self.lines.append(line)
        self.sources.append(source)

    def match(self, instruction: str, input: str, threshold: float) -> tuple[Match, float | None] | None:
        """An entry the record is a near-duplicate of and the inputs' score (None for key instruction), or None."""
        if self.key == "instruction":
            found = self.index.first_above(instruction, threshold)
            return (found, None) if found else None
        for found in self.index.all_above(instruction, threshold):
            score = _input_score(input, self.inputs[found.index])
            if score > threshold:
                return found, score
        return None


def _input_score(a: str, b: str) -> float:
    """ROUGE-L of two inputs, where two empty ones (no tokens) are equal: 1.0."""
    a_tokens, b_tokens = tokenize(a), tokenize(b)
    return 1.0 if not a_tokens and not b_tokens else rouge_l(a_tokens, b_tokens)


def _decide(record, line, field, key, lang, threshold, only, kept: _Pool, reference: _Pool | None):
    """None to keep the record, else (reason, details)."""
    try:
        instruction, instances = read_record(record, field)
    except ValueError as exc:
        return "bad_record", {"error": str(exc)}
    given = _input_of(record, instances) if key == "instruction+input" else ""
    record_lang = detect_lang(instruction) if lang == "auto" else lang
    if only != "dedup":
        low, high = LENGTH_DEFAULTS[record_lang]
        reason = instruction_rejection(instruction, record_lang, low, high)
        if reason:
            return reason, {}
        if instances is not None:
            kept_instances, dropped = clean_instances(instances)
            if not kept_instances:
                return dropped[0][1], {}
    if only != "heuristics":
        if reference is not None:
            found = reference.match(instruction, given, threshold)
            if found:
                match, score = found
                details = {"score": match.score, "similar_to": match.text, "against": reference.sources[match.index]}
                if score is not None:
                    details |= {"similar_to_input": reference.inputs[match.index], "input_score": score}
                return "similar_to_against", details
        found = kept.match(instruction, given, threshold)
        if found:
            match, score = found
            duplicate_of = {"line": kept.lines[match.index], "instruction": match.text}
            if score is not None:
                duplicate_of |= {"input": kept.inputs[match.index], "instruction_score": match.score,
                                 "input_score": score}
            return "duplicate", {"score": match.score, "duplicate_of": duplicate_of}
        kept.add(instruction, given, line)
    return None


def _input_of(record: dict, instances: list[Instance] | None) -> str:
    """The input key instruction+input compares: the record's input; a seed task's inputs joined by "\\n"."""
    if instances is not None:
        return "\n".join(i.input for i in instances)
    return record["input"] if isinstance(record.get("input"), str) else ""


def read_record(record, field: str | None) -> tuple[str, list[Instance] | None]:
    """The instruction and (where the record has them) its instances."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    bad = _invalid_text_in(record)
    if bad:
        raise ValueError(f"field '{bad[0]}': {bad[1]}")
    key = field or "instruction"
    value = record.get(key)
    if value is None:
        raise ValueError(f"field '{key}': missing")
    if not isinstance(value, str):
        raise ValueError(f"field '{key}': expected a string, got {type(value).__name__}")
    if field:
        return value, None
    if isinstance(record.get("instances"), list):
        items = record["instances"]
        if not all(isinstance(i, dict) and isinstance(i.get("output"), str) and isinstance(i.get("input", ""), str)
                   for i in items):
            raise ValueError("field 'instances': each instance needs string 'input' and 'output'")
        return value, [Instance(i.get("input", ""), i["output"]) for i in items]
    if "output" in record:
        given, output = record.get("input") or "", record["output"]
        if not isinstance(output, str) or not isinstance(given, str):
            raise ValueError("fields 'input' and 'output' must be strings")
        return value, [Instance(given, output)]
    return value, None


def _invalid_text_in(value: object, where: str = "") -> tuple[str, str] | None:
    """(field, problem) for the first string in a JSON value, field names included, that UTF-8 cannot hold."""
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


def _add_dataset(pool: _Pool, path: Path, field: str | None, key: str, source: str) -> None:
    """Add another dataset's records (its own layout; ``field`` if its records have it) to ``pool``, named
    ``source``. With key instruction+input, a seed task adds one entry per instance, not its inputs joined."""
    for line, record in iter_records(path):
        try:
            own_field = field if isinstance(record, dict) and field in record else None
            instruction, instances = read_record(record, own_field)
        except ValueError as exc:
            raise RecordError(path, line, str(exc)) from None
        if key == "instruction+input" and instances:
            for instance in instances:
                pool.add(instruction, instance.input, line, source)
        else:
            pool.add(instruction, _input_of(record, instances) if key == "instruction+input" else "", line, source)
