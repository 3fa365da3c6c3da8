"""Tasks and the seed files they come from.

The seed format is the one Self-Instruct, Alpaca and BELLE ship (``id``, ``name``,
``instruction``, ``instances``, ``is_classification``), so their files drop in; Alpaca
records (``instruction``, ``input``, ``output``) are read as one-instance tasks.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from selfinstruct.formats.records import RecordError, invalid_text, iter_records


@dataclass
class Instance:
    input: str
    output: str


@dataclass
class Task:
    instruction: str
    instances: list[Instance] = field(default_factory=list)
    is_classification: bool | None = False
    id: str = ""
    name: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


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
    if not isinstance(record, dict):
        raise RecordError(path, line, f"expected a JSON object, got {type(record).__name__}")
    instruction = _text(record, "instruction", path, line, required=True)
    if not instruction.strip():
        raise RecordError(path, line, "is empty", "instruction")
    if "instances" in record:
        instances = _instances(record["instances"], path, line)
    elif "output" in record:
        instances = [Instance(_text(record, "input", path, line), _text(record, "output", path, line))]
    else:
        raise RecordError(path, line, "missing (give 'instances', or Alpaca-style 'input' and 'output')", "instances")
    is_classification = record.get("is_classification", False)
    if not isinstance(is_classification, bool):
        raise RecordError(path, line, f"expected true or false, got {is_classification!r}", "is_classification")
    task_id = record.get("id", default_id)
    if not isinstance(task_id, (str, int)) or isinstance(task_id, bool):
        raise RecordError(path, line, f"expected a string, got {type(task_id).__name__}", "id")
    name = record.get("name", "")
    if not isinstance(name, str):
        raise RecordError(path, line, f"expected a string, got {type(name).__name__}", "name")
    _check_text(task_id, path, line, "id")
    _check_text(name, path, line, "name")
    return Task(instruction.strip(), instances, is_classification, str(task_id), name)


def _text(record: dict, key: str, path: Path, line: int, required: bool = False, where: str = "") -> str:
    name = f"{where}{key}"
    if key not in record or record[key] is None:
        if required:
            raise RecordError(path, line, "missing", name)
        return ""
    value = record[key]
    if not isinstance(value, str):
        raise RecordError(path, line, f"expected a string, got {type(value).__name__}", name)
    _check_text(value, path, line, name)
    return value


def _check_text(value: object, path: Path, line: int, name: str) -> None:
    problem = isinstance(value, str) and invalid_text(value)
    if problem:
        raise RecordError(path, line, problem, name)


def _instances(value: object, path: Path, line: int) -> list[Instance]:
    if not isinstance(value, list):
        raise RecordError(path, line, f"expected a list, got {type(value).__name__}", "instances")
    instances = []
    for i, item in enumerate(value):
        where = f"instances[{i}]."
        if not isinstance(item, dict):
            raise RecordError(path, line, f"expected an object, got {type(item).__name__}", f"instances[{i}]")
        instances.append(Instance(_text(item, "input", path, line, where=where),
                                  _text(item, "output", path, line, required=True, where=where)))
    return instances
