"""Exact greedy ROUGE-L deduplication of a whole dataset, compiled.

The rule is Self-Instruct's, applied in file order: a record is dropped if its ROUGE-L
F-measure against an earlier kept record is above the threshold. Every decision here
is exact; the speed comes from proving most pairs irrelevant without scoring them:

* Each text is a bag of items, (token, occurrence number), ordered globally rarest token
  first. Two texts whose F-measure can pass t share at least alpha items, so they share one
  among the first ``len - alpha + 1`` items of each (prefix filtering): the index holds only
  those prefixes of the kept records, and a query reads only its own prefix's postings.
* Common items come in the same order in both texts, so the first one shared bounds the
  overlap by 1 + the items left after it in each (positional filtering). Postings are kept
  per key (item, entry length, position), so a query checks each key once and skips all its
  postings when that bound fails, however many there are.
* Each posting carries a 128-bit sketch of its entry's items, which bounds the items the pair
  shares; a pair that fails that bound is dropped without touching the entry.
* The rest get an exact LCS, bit-parallel on 64-bit words, and rouge_score's float
  formula for the F-measure (the same operations, so the same float).
* Only kept records enter the index; kept records are pairwise dissimilar.
* A block of queries is probed item by item: an item's postings are read for all the queries
  holding it in a row, while they are in cache, and each query's candidates are scored after.
  (Read query by query, the postings came from memory each time; this halves probing.)

The loops are compiled with numba (kernels.py, layout.py), around the index (index.py). ``Corpus``
(corpus.py) holds token ids as flat arrays (no Python object per record), so millions of records fit
in a few hundred MB. ``deduplicate`` goes a block of records at a time: the block is probed against
the kept records of earlier blocks by an engine (engines.py: threads in this process, or Ray actors),
then decided in order against itself (and the block before it, whose kept records the engine's index
gets while this block is probed). Engines only split the probing, and a record's best match is the
best of what each part found (``Matches.merge``), so every engine gives the same decisions.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from selfinstruct.dedup.corpus import Corpus
from selfinstruct.dedup.engines import ENGINES
from selfinstruct.dedup.index import Index, Items, Matches
from selfinstruct.dedup.kernels import NONE


@dataclass
class Decisions:
    """The outcome for each input record: ``kept``; else its best match (see Matches)."""

    kept: np.ndarray  # bool, per input record
    matches: Matches
    notes: list[str] = field(default_factory=list)  # what the engine did, to print

    @classmethod
    def empty(cls, size: int) -> "Decisions":
        return cls(np.zeros(size, bool), Matches.empty(size))



def deduplicate(corpus: Corpus, threshold: float, engine: str = "local", workers: int | None = None,
                progress=None, block: int = 20_000, into: Decisions | None = None) -> Decisions:
    """The greedy pass, a block of records at a time. Each block is probed against the --against
    entries and the kept records of all blocks but the one before it (the engine's work, in
    parallel), while the block before is decided; then it is decided in order against the kept
    records of the block before and its own. Its kept records then join the engine's index,
    while the next block is decided.
    Every engine gives the same decisions. ``progress(done, total)`` is called after each block, when
    the decisions of the first ``done`` records are final in ``into`` (if given, else a new Decisions)."""
    workers = workers or os.cpu_count() or 1
    items = Items(corpus, threshold, threads=min(workers, os.cpu_count() or 1))
    total = len(corpus) - corpus.against
    found = into or Decisions.empty(total)
    matches = found.matches
    probe = ENGINES[engine](items, workers, block)
    try:
        probe.add(np.arange(corpus.against, dtype=np.int32))
        if progress:
            progress(0, total)  # the stage starts now, not at the end of its first block
        blocks = [(first, min(first + block, total)) for first in range(0, total, block)]
        earlier = np.zeros(0, np.int32)  # the kept records of the block before the one being decided
        adding = None
        with ThreadPoolExecutor(1) as background:  # the engine's work, in order
            for i in range(len(blocks) + 1):
                if i < len(blocks):
                    first, stop = blocks[i]
                    probing = background.submit(probe.probe, corpus.against + first, corpus.against + stop)
                if i:  # decide the block before, while this one is probed
                    first, stop = blocks[i - 1]
                    earlier = _decide_block(items, earlier, corpus.against + first, matches.part(first, stop))
                    found.kept[earlier - corpus.against] = True
                    if adding:
                        adding.result()  # its error, if any, here
                    adding = background.submit(probe.add, earlier)  # after this probe, before the next
                    if progress:
                        progress(stop, total)
                if i < len(blocks):
                    matches.part(*blocks[i]).merge(probing.result())
            if adding:
                adding.result()
        found.notes = probe.notes()
    finally:
        probe.close()
    return found


def _decide_block(items: Items, earlier: np.ndarray, first: int, part: Matches) -> np.ndarray:
    """Decide the records first.. (as many as ``part`` holds) in order, against the kept records
    ``earlier`` and their own kept records; return theirs."""
    entries = np.arange(first, first + len(part.kept_entry), dtype=np.int32)
    # Only records without a match yet may be kept, so only they need room in the index.
    unmatched = entries[items.corpus.active[entries] & (part.against_entry == NONE) & (part.kept_entry == NONE)]
    local = Index(items, np.concatenate((earlier, unmatched)))
    local.add(earlier)
    local.decide(entries[0], entries[-1] + 1, part)
    rows = unmatched - first
    return unmatched[(part.against_entry[rows] == NONE) & (part.kept_entry[rows] == NONE)]
