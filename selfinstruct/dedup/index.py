"""What the engines share: the item order of a corpus (Items), the index of the kept records they
probe (Index), and what a probe finds (Matches). The loops themselves are compiled, in kernels.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from selfinstruct.dedup.corpus import Corpus
from selfinstruct.dedup.kernels import NONE, add_entries, decide_in_order, merge_matches, probe_block
from selfinstruct.dedup.layout import item_order, key_table


@dataclass
class Matches:
    """Per input record: its best match among --against entries and among kept records
    (highest score, ties to the lower entry number; NONE where there is none)."""

    against_entry: np.ndarray  # int32
    against_score: np.ndarray  # float64
    kept_entry: np.ndarray
    kept_score: np.ndarray

    @classmethod
    def empty(cls, size: int) -> "Matches":
        return cls(np.full(size, NONE, np.int32), np.zeros(size), np.full(size, NONE, np.int32), np.zeros(size))

    def part(self, start: int, stop: int) -> "Matches":
        """A view of records start..stop-1: writing to it writes here."""
        return Matches(*(array[start:stop] for array in self.arrays()))

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.against_entry, self.against_score, self.kept_entry, self.kept_score

    def merge(self, other: "Matches") -> None:
        """Take, for each record, the better of the two best matches (of records probed in both)."""
        merge_matches(*self.arrays(), *other.arrays())



class Items:
    """The global item order of a corpus: rarest token first, then occurrence number."""

    def __init__(self, corpus: Corpus, threshold: float, base: tuple[np.ndarray, int] | None = None,
                 threads: int = 1):
        self.corpus = corpus
        self.threshold = threshold
        self.base, self.count = base or item_order(corpus.tokens, corpus.offsets, corpus.active, corpus.vocabulary,
                                                  threads)


class Index:
    """Posting lists of the prefix items of the entries added so far, one per key: an item, the
    length of the entry and the item's position in it. Keys don't grow with the data, so a query
    checks a key once and skips its postings, however many, when no entry of that length holding
    the item there can pass. Space is set aside for every entry in ``members`` (the ones that may
    be added), so adding never moves data."""

    def __init__(self, items: Items, members: np.ndarray, threads: int = 1):
        c = items.corpus
        self.items = items
        self.item_keys, self.key_length, self.key_position, self.next_length, self.start = key_table(
            c.tokens, c.offsets, items.base, items.count, members.astype(np.int32), items.threshold, threads)
        self.fill = np.zeros(len(self.key_length), np.int32)
        self.entry = np.zeros(self.start[-1], np.int32)
        self.signature = np.zeros((self.start[-1], 2), np.uint64)  # the entry's, read along (see kernels._signature)

    def add(self, entries: np.ndarray) -> None:
        c = self.items.corpus
        add_entries(c.tokens, c.offsets, self.items.base, entries.astype(np.int32), self.items.threshold,
                    *self.arrays())

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.item_keys, self.key_length, self.key_position, self.start, self.fill, self.entry, self.signature

    def probe(self, first: int, stop: int, matches: Matches) -> None:
        """Find, for input records first..stop-1, their best match among the entries in the index
        (merged into ``matches``, indexed from ``first``)."""
        self._run(probe_block, first, stop, matches)

    def decide(self, first: int, stop: int, matches: Matches) -> None:
        """The greedy pass: as ``probe``, but in order, adding each record that has no match at all
        (here or already in ``matches``)."""
        self._run(decide_in_order, first, stop, matches)

    def _run(self, compiled, first: int, stop: int, matches: Matches) -> None:
        c = self.items.corpus
        input_tokens, input_offsets = c.input_arrays()
        compiled(c.tokens, c.offsets, input_tokens, input_offsets, c.use_inputs, c.active, c.against, c.vocabulary,
                 self.items.base, self.items.threshold, first, stop, self.next_length, *self.arrays(),
                 *matches.arrays())

