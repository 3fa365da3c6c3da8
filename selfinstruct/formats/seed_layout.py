"""The Self-Instruct seed layout: one record per task, ``{"id", "name", "instruction", "instances":
[{"input", "output"}], "is_classification"}``, the one Self-Instruct, Alpaca and BELLE ship their seed
tasks in (and a run's tasks.jsonl keeps)."""

from __future__ import annotations

from selfinstruct.formats.fields import FieldError, labels, text
from selfinstruct.formats.task import Instance, Task


def read_seed(record: dict) -> Task:
    """A task with its instances (each one's input may be absent or null: empty)."""
    instruction = text(record, "instruction", required=True)
    items = record["instances"]
    if not isinstance(items, list):
        raise FieldError("instances", f"expected a list, got {type(items).__name__}")
    instances = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise FieldError(f"instances[{i}]", f"expected an object, got {type(item).__name__}")
        instances.append(Instance(text(item, "input", f"instances[{i}].input"),
                                  text(item, "output", f"instances[{i}].output", required=True)))
    return Task(instruction, instances, *labels(record))


def seed_records(tasks: list[Task]) -> list[dict]:
    """One record per task; a task without a name is named by its id."""
    return [{"id": t.id, "name": t.name or t.id, "instruction": t.instruction,
             "instances": [{"input": i.input, "output": i.output} for i in t.instances],
             "is_classification": bool(t.is_classification)} for t in tasks]
