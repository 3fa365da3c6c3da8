"""The commit order: rounds, their first requests (slots) and what each answer gave, committed strictly
in order, like a reorder buffer.

Answers come back in any order; what a slot's answer gave (rejections, candidates) is committed only
after everything before it, so tasks.jsonl and rejected.jsonl do not depend on which came back first.
A candidate waits in the order until its later requests are answered (``done``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from selfinstruct.generation.candidate import Candidate, Request
from selfinstruct.text.rouge import RougeIndex


@dataclass
class Slot:
    """A first request's place in the order: what its answer gave, in the order it is written."""

    request: Request
    entries: list = field(default_factory=list)  # Candidate, or the (args, kwargs) of a rejection
    screened: bool = False
    cursor: int = 0  # entries committed


@dataclass
class RoundState:
    number: int
    slots: list[Slot] = field(default_factory=list)  # empty until its requests are built
    index: RougeIndex | None = None  # every instruction screened in it
    screened_slots: int = 0
    screened: bool = False
    committed: bool = False
    cursor: int = 0  # slots committed
    accepted: int = 0


class CommitOrder:
    def __init__(self):
        self.rounds: dict[int, RoundState] = {}
        self.next_round = 0  # the next round to start
        self.committing = 0  # the first round not yet committed
        self.pending: deque[Candidate] = deque()  # screened, not yet committed, in order
        self.next_seq = self.screened_slots = self.screened_candidates = 0

    def start(self) -> RoundState:
        state = RoundState(self.next_round)
        self.rounds[state.number] = state
        self.next_round += 1
        return state

    def screened(self, state: RoundState, slot: Slot, candidates: list[Candidate]) -> None:
        """A slot's answer is screened: its candidates take their places, after its rejections."""
        for candidate in candidates:
            candidate.seq = self.next_seq
            self.next_seq += 1
            slot.entries.append(candidate)
            self.pending.append(candidate)
        slot.screened = True
        state.screened_slots += 1
        self.screened_slots += 1
        self.screened_candidates += len(candidates)

    def alive(self, before: int | None = None) -> int:
        """Candidates not yet committed that may still be accepted (those before ``before``, a seq)."""
        return sum(1 for c in self.pending if (before is None or c.seq < before) and not (c.done and not c.instances))

    def unscreened_slots(self, per_round: int) -> int:
        return sum(len(state.slots) - state.screened_slots if state.slots else per_round
                   for state in self.rounds.values() if not state.screened)

    def commit(self, accept: Callable[[Candidate, RoundState], None], reject: Callable[..., None],
               committed: Callable[[RoundState], None], full: Callable[[], bool]) -> None:
        """Commit every entry decided since the last call, in order, until ``full()``: ``reject(*args,
        **kwargs)`` a rejection, ``accept`` a candidate, and ``committed`` a round once its last entry is
        (before anything of the next round)."""
        while not full() and self.committing in self.rounds:
            state = self.rounds[self.committing]
            while state.slots and state.cursor < len(state.slots) and not full():
                slot = state.slots[state.cursor]
                if not slot.screened:
                    break
                while slot.cursor < len(slot.entries) and not full():
                    entry = slot.entries[slot.cursor]
                    if isinstance(entry, Candidate):
                        if not entry.done:
                            break
                        accept(entry, state)
                        self.pending.popleft()
                    else:
                        reject(*entry[0], **entry[1])
                    slot.cursor += 1
                if slot.cursor < len(slot.entries):
                    break
                state.cursor += 1
            if not state.slots or state.cursor < len(state.slots):
                break
            state.committed = True
            self.committing += 1
            committed(state)

    def forget(self, number: int) -> None:
        """A round no other round waits on any more."""
        self.rounds.pop(number, None)
