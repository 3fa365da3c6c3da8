"""The --against datasets: their records join the corpus first, as entries each input record is
checked against (never dropped themselves), and their texts are kept to name a match."""

from __future__ import annotations

from pathlib import Path

from selfinstruct.dedup.corpus import CorpusBuilder
from selfinstruct.dedup.read import input_of, read_record
from selfinstruct.formats.records import RecordError, iter_records
from selfinstruct.text.rouge import tokenize


class Reference:
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


def add_dataset(corpus: CorpusBuilder, reference: Reference, path: Path, field: str | None, key: str,
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
