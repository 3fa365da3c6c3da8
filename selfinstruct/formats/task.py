"""The one task type: what every layout's reader gives and every writer takes, and what a run
generates. A task is an instruction and its instances (input, output); the seed format's id, name
and classification flag come along where a record has them."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


@dataclass(slots=True)
class Instance:
    input: str
    output: str


@dataclass(slots=True)
class Task:
    instruction: str
    instances: list[Instance] = field(default_factory=list)
    is_classification: bool | None = False  # None: not known (a record without the field)
    id: str = ""
    name: str = ""

    def to_dict(self) -> dict:
        return asdict(self)
