"""Filtering an existing dataset the way the loop filters new tasks.

Records are read one at a time and decided in file order: a record is dropped if a
heuristic rule rejects it, or if its instruction scores above the threshold against
an earlier kept record (or any record of an ``against`` dataset). Only the kept
instructions are held in memory.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .config import LENGTH_DEFAULTS
from .filters import clean_instances, detect_lang, instruction_rejection
from .records import RecordError, detect_layout, iter_records
from .seeds import Instance
from .similarity import RougeIndex

ONLY = ("dedup", "heuristics")


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
                   only: str | None = None, against: Path | str | None = None, field: str | None = None,
                   dropped_output: Path | str | None = None) -> FilterReport:
    """Write the kept records to ``output`` (in the input's layout) and the dropped ones, with reasons,
    to ``dropped_output`` (default: ``<output stem>.dropped.jsonl``)."""
    started = time.monotonic()
    input, output = Path(input), Path(output)
    dropped_output = Path(dropped_output) if dropped_output else output.with_name(output.stem + ".dropped.jsonl")
    if lang not in ("auto", *LENGTH_DEFAULTS):
        raise FilterError(f"unknown lang {lang!r}; choose auto, zh or en")
    if only not in (None, *ONLY):
        raise FilterError(f"unknown --only {only!r}; choose dedup or heuristics")
    if not 0.0 <= threshold <= 1.0:
        raise FilterError(f"threshold must be between 0 and 1, got {threshold}")
    reference = _reference_index(Path(against), field) if against else None
    layout = detect_layout(input)
    report = FilterReport(output=output, dropped_output=dropped_output)
    kept_index = RougeIndex()
    kept_lines: list[int] = []
    parsed_any = False
    temp_out = output.with_name(f".{output.name}.tmp")
    temp_dropped = dropped_output.with_name(f".{dropped_output.name}.tmp")
    try:
        with temp_out.open("w", encoding="utf-8") as out, temp_dropped.open("w", encoding="utf-8") as drops:
            if layout == "array":
                out.write("[")
            for line, record in iter_records(input, skip_bad_lines=True):
                report.total += 1
                if isinstance(record, RecordError):
                    decision = ("bad_record", {"error": record.message})
                else:
                    parsed_any = True
                    decision = _decide(record, line, field, lang, threshold, only, kept_index, kept_lines, reference)
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
                drops.write(json.dumps(entry, ensure_ascii=False) + "\n")
            if layout == "array":
                out.write("\n]\n" if report.kept else "]\n")
        if report.total and not parsed_any:
            raise FilterError(f"{input}: no line is valid JSON; is this a JSON or JSONL file?")
        os.replace(temp_out, output)
        os.replace(temp_dropped, dropped_output)
    finally:
        temp_out.unlink(missing_ok=True)
        temp_dropped.unlink(missing_ok=True)
    report.seconds = time.monotonic() - started
    return report


def _decide(record, line, field, lang, threshold, only, kept_index, kept_lines, reference):
    """None to keep the record, else (reason, details)."""
    try:
        instruction, instances = _read_record(record, field)
    except ValueError as exc:
        return "bad_record", {"error": str(exc)}
    record_lang = detect_lang(instruction) if lang == "auto" else lang
    if only != "dedup":
        low, high = LENGTH_DEFAULTS[record_lang]
        reason = instruction_rejection(instruction, record_lang, low, high)
        if reason:
            return reason, {}
        if instances is not None:
            kept, dropped = clean_instances(instances)
            if not kept:
                return dropped[0][1], {}
    if only != "heuristics":
        if reference is not None:
            match = reference.first_above(instruction, threshold)
            if match:
                return "similar_to_against", {"score": match.score, "similar_to": match.text}
        match = kept_index.first_above(instruction, threshold)
        if match:
            return "duplicate", {"score": match.score, "duplicate_of": {"line": kept_lines[match.index],
                                                                        "instruction": match.text}}
        kept_index.add(instruction)
        kept_lines.append(line)
    return None


def _read_record(record, field: str | None) -> tuple[str, list[Instance] | None]:
    """The instruction and (where the record has them) its instances."""
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
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


def _reference_index(path: Path, field: str | None) -> RougeIndex:
    """The other dataset's instructions (its own layout; ``field`` if its records have it)."""
    index = RougeIndex()
    for line, record in iter_records(path):
        try:
            own_field = field if isinstance(record, dict) and field in record else None
            instruction, _ = _read_record(record, own_field)
        except ValueError as exc:
            raise RecordError(path, line, str(exc)) from None
        index.add(instruction)
    return index
