"""Writing a run's accepted tasks in the formats training code reads."""

from __future__ import annotations

import functools
import io
import json
from pathlib import Path

import jsonlines

from .journal import Journal, JournalDamaged, write_atomic
from .rundir import is_run_file, read_config

FORMATS = ("alpaca", "seeds")


def export_run(run_dir: Path | str, fmt: str = "alpaca", output: Path | str | None = None) -> tuple[Path, int]:
    """``alpaca``: a JSON array, one {instruction, input, output} per instance.
    ``seeds``: seed-task JSONL, so a run's output can seed another run."""
    run_dir = Path(run_dir)
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    tasks = accepted_tasks(run_dir)
    output = Path(output) if output else run_dir / ("alpaca_data.json" if fmt == "alpaca" else "seed_tasks.jsonl")
    if is_run_file(run_dir, output):
        raise ValueError(f"{output} is one of the run's own files; export somewhere else")
    if fmt == "alpaca":
        records = [{"instruction": t["instruction"], "input": i["input"], "output": i["output"]}
                   for t in tasks for i in t["instances"]]
        text = json.dumps(records, ensure_ascii=False, indent=2) + "\n"
    else:
        records = [{"id": t["id"], "name": t["id"], "instruction": t["instruction"], "instances": t["instances"],
                    "is_classification": bool(t["is_classification"])} for t in tasks]
        text = _jsonl(records)
    write_atomic(output, text)
    return output, len(records)


def _jsonl(records: list[dict]) -> str:
    buffer = io.StringIO()
    with jsonlines.Writer(buffer, dumps=functools.partial(json.dumps, ensure_ascii=False)) as writer:
        writer.write_all(records)
    return buffer.getvalue()


def accepted_tasks(run_dir: Path | str) -> list[dict]:
    """The run's accepted tasks, read without writing anything: the run may still be going."""
    run_dir = Path(run_dir)
    read_config(run_dir)
    try:
        return Journal(run_dir / "tasks.jsonl").read()
    except JournalDamaged as exc:
        raise JournalDamaged(f"{exc}; tasks.jsonl is derived from responses.jsonl: "
                             f"`selfinstruct resume {run_dir}` rebuilds it without sending a request") from None
