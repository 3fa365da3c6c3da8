"""The tasks a run starts from: a seed file, strictly checked, or (``--from``) a dataset's tasks.

Each record is read by its layout's reader (layouts.read_task), so the seed files Self-Instruct,
Alpaca and BELLE ship drop in, Alpaca records are one-instance tasks, and a chat record is its first
prompt and answer. A problem is a RecordError naming file, line and field.
"""

from __future__ import annotations

from pathlib import Path

from selfinstruct.formats.fields import FieldError
from selfinstruct.formats.layouts import read_task
from selfinstruct.formats.records import RecordError, iter_records
from selfinstruct.formats.task import Task


def load_seed_tasks(path: Path | str) -> list[Task]:
    """Read and validate a seed file; any problem raises RecordError naming file, line and field."""
    path = Path(path)
    tasks: list[Task] = []
    first_line: dict[str, int] = {}
    for line, record in iter_records(path):
        task = task_from_record(record, path, line, default_id=f"seed_task_{len(tasks)}")
        if task.id in first_line:
            raise RecordError(path, line, f"duplicate id {task.id!r} (first on line {first_line[task.id]})", "id")
        first_line[task.id] = line
        tasks.append(task)
    if not tasks:
        raise RecordError(path, None, "holds no tasks")
    return tasks


def load_start_tasks(config) -> tuple[list[Task], int]:
    """The tasks a run starts its pool from: the seeds (strictly checked), or with --from a dataset,
    whose records that are not tasks (no instruction, no output, not JSON) are skipped and counted."""
    if config.from_dataset is None:
        return load_seed_tasks(config.seeds), 0
    path, tasks, skipped, ids = Path(config.from_dataset), [], 0, set()
    for number, (line, record) in enumerate(iter_records(path, skip_bad_lines=True), start=1):
        try:
            task = task_from_record(record, path, line)
        except RecordError:
            skipped += 1
            continue
        if not task.id or task.id in ids:
            task.id = f"record_{number}"  # its place in the file: a lineage's parent names it
        ids.add(task.id)
        tasks.append(task)
    if not tasks:
        raise RecordError(path, None, "holds no task with an instruction and an output")
    return tasks, skipped


def task_from_record(record: object, path: Path, line: int, default_id: str = "") -> Task:
    """The task of a record with an instruction and an output (or instances): its instruction stripped,
    its id ``default_id`` if it has none, an unknown is_classification false."""
    if isinstance(record, RecordError):
        raise record
    try:
        layout, task = read_task(record)
    except FieldError as exc:
        raise RecordError(path, line, exc.problem, exc.field) from None
    if not task.instruction.strip():
        raise RecordError(path, line, "is empty", "instruction")
    if layout == "alpaca" and "output" not in record:
        raise RecordError(path, line, "missing (give 'instances', or Alpaca-style 'input' and 'output')", "instances")
    task.instruction = task.instruction.strip()
    task.id = task.id or default_id
    task.is_classification = bool(task.is_classification)
    return task
