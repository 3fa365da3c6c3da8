"""One request as the ledger sends and journals it, online or in a batch."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Call:
    """One request as the ledger sends and journals it."""

    key: str  # what its answer is found under in the journal
    fields: dict  # what its journal line says besides the answer (slot, round, stage; or the record)
    prompt: str
    max_tokens: int
    temperature: float
    top_p: float
    stop: list[str] | None = None
    response_format: dict | None = None
    priority: int | tuple = 0  # lower is sent first when slots are scarce
    judge: bool = False  # sent to the judge's client
