"""What a method asks the model (Request) and what it makes of the answers (Candidate)."""

from __future__ import annotations

from dataclasses import dataclass, field

from selfinstruct.formats.task import Instance


@dataclass
class Request:
    stage: str
    slot: str  # where in the run this request belongs, e.g. "r3.instances.r0003-01-04"
    round: int
    prompt: str
    max_tokens: int
    temperature: float
    stop: list[str] | None = None
    next_number: int = 0  # the list number the prompt ends with, where the answer's list goes on
    judge: bool = False  # sent to the judge's model and endpoint (see judge.py)
    shape: str | None = None  # the JSON its answer takes with --structured (structured.SCHEMAS); None: free text


@dataclass
class Candidate:
    """A new instruction that passed screening, on its way to the pool."""

    id: str
    instruction: str
    source: dict
    most_similar: list[dict]
    is_classification: bool | None = None
    instances: list[Instance] | None = None
    rejections: list[tuple] = field(default_factory=list)  # written in candidate order, not as answers come
    lineage: dict | None = None  # where an evolved instruction comes from: parent, operation, depth
    judged: dict | None = None  # the judge's {"score", "reason"}, with --judge
    seq: int = 0  # its place in the commit order
    done: bool = False  # its later requests are answered (or it has none): it can be committed
