"""The Alpaca layout: one record per instance, ``{"instruction", "input", "output"}``, in a JSON array
or JSON lines. Datasets of prompts not yet answered have no ``output``."""

from __future__ import annotations

from selfinstruct.formats.fields import labels, text
from selfinstruct.formats.records import invalid_text
from selfinstruct.formats.task import Instance, Task


def read_alpaca(record: dict) -> Task:
    """A one-instance task (no instance when the record has no output); a null input or output is empty."""
    instruction, given, output = record.get("instruction"), record.get("input"), record.get("output")
    if type(instruction) is str and type(given) is str and type(output) is str:  # most records: checked at once
        joined = instruction + given + output
        if joined.isascii() or not invalid_text(joined):
            return Task(instruction, [Instance(given, output)], *labels(record))
    instruction = text(record, "instruction", required=True)  # else field by field, to name a problem
    instances = [Instance(text(record, "input"), text(record, "output"))] if "output" in record else []
    return Task(instruction, instances, *labels(record))


def alpaca_records(tasks: list[Task]) -> list[dict]:
    return [{"instruction": t.instruction, "input": i.input, "output": i.output} for t in tasks for i in t.instances]
