"""The Ray engine of ``dedup``: the probing of each block spread over Ray actors.

The greedy rule is sequential, the expensive part is not: checking a block of records against
the kept records of all earlier blocks. Each actor holds the index of a share of those (the
kept records of every W-th block, and every W-th --against entry) and probes the whole block
against it; the driver merges the best matches, decides the block in order against its own
records, and sends its kept records to the next actor in turn. Decisions are those of the
local engine: a record's best match is the best of the actors' best.

What is shipped: the token arrays once to each actor (through Ray's object store), then per
block its bounds out, and two ints and two floats per record back from each actor, and the
block's kept entry numbers to one actor. ``notes`` says how much, and how long each actor worked.
"""

from __future__ import annotations

import os
import time

import numpy as np
import ray

from .corpus import Corpus
from .dedup import Index, Items, Matches


def connect(workers: int) -> bool:
    """Join the cluster in RAY_ADDRESS, or start a local one with ``workers`` CPUs, quietly, unless this
    process is connected already; whether it connected now."""
    if ray.is_initialized():
        return False
    options = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if os.environ.get("RAY_ADDRESS"):
        ray.init(**options)
    else:
        ray.init(num_cpus=workers, **options)
    return True


@ray.remote(num_cpus=1)
class _Shard:
    """An actor holding the index of its share of the earlier kept records."""

    def __init__(self, corpus: Corpus, base: np.ndarray, count: int, threshold: float, members: np.ndarray):
        items = Items(corpus, threshold, (base, count))
        self.index = Index(items, members)
        self.busy = 0.0
        self.held = 0

    def add(self, entries: np.ndarray) -> None:
        started = time.monotonic()
        self.index.add(entries)
        self.held += len(entries)
        self.busy += time.monotonic() - started

    def probe(self, first: int, stop: int) -> tuple[np.ndarray, ...]:
        started = time.monotonic()
        matches = Matches.empty(stop - first)
        self.index.probe(first, stop, matches)
        self.busy += time.monotonic() - started
        return matches.arrays()

    def work(self) -> tuple[float, int]:
        return self.busy, self.held


class RayProbe:
    """The engine: W actors; kept records of block b go to actor b mod W."""

    def __init__(self, items: Items, workers: int, block: int):
        self.connected = connect(workers)
        corpus = items.corpus
        self.block, self.against = block, corpus.against
        self.workers = workers
        shared = ray.put(corpus)
        entry = np.arange(len(corpus))
        owner = np.where(entry < corpus.against, entry % workers, ((entry - corpus.against) // block) % workers)
        self.shards = [_Shard.remote(shared, items.base, items.count, items.threshold,
                                     np.flatnonzero(corpus.active & (owner == w)).astype(np.int32))
                       for w in range(workers)]
        self.shipped_once = sum(a.nbytes for a in (corpus.tokens, corpus.offsets, corpus.active, items.base)) + (
            corpus.input_tokens.nbytes + corpus.input_offsets.nbytes if corpus.use_inputs else 0)
        self.shipped = 0
        self.blocks = 0

    def add(self, entries: np.ndarray) -> None:
        if len(entries) and entries[0] < self.against:  # --against entries: dealt out in turn
            for w, shard in enumerate(self.shards):
                shard.add.remote(entries[entries % self.workers == w])
        elif len(entries):
            shard = ((entries[0] - self.against) // self.block) % self.workers
            self.shards[shard].add.remote(entries)
        self.shipped += entries.nbytes

    def probe(self, first: int, stop: int) -> Matches:
        matches = Matches.empty(stop - first)
        for arrays in ray.get([shard.probe.remote(first, stop) for shard in self.shards]):
            matches.merge(Matches(*arrays))
            self.shipped += 16 + sum(a.nbytes for a in arrays)
        self.blocks += 1
        return matches

    def notes(self) -> list[str]:
        work = ray.get([shard.work.remote() for shard in self.shards])
        lines = [f"ray: {self.workers} workers, {self.blocks} blocks; shipped {self.shipped_once / 1e6:.1f} MB "
                 f"of tokens to each worker once, then {self.shipped / 1e6:.1f} MB in all"]
        lines += [f"ray: worker {w}: {busy:.1f} s busy, holds {held:,} records" for w, (busy, held) in enumerate(work)]
        return lines

    def close(self) -> None:
        for shard in self.shards:
            ray.kill(shard)
        if self.connected:  # a caller's own ray.init stays theirs
            ray.shutdown()
