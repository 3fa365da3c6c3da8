"""The local engine of ``dedup``: one index in this process, probed by a thread per core."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np

from selfinstruct.dedup.index import Index, Items, Matches


class LocalProbe:
    """The engine of one process: one index, probed by a thread per core (the compiled probe runs
    without the GIL), each thread taking a share of the block."""

    def __init__(self, items: Items, workers: int, block: int):
        self.index = Index(items, np.flatnonzero(items.corpus.active), workers)
        self.pool = ThreadPoolExecutor(workers) if workers > 1 else None
        self.workers = workers

    def add(self, entries: np.ndarray) -> None:
        self.index.add(entries)

    def probe(self, first: int, stop: int) -> Matches:
        matches = Matches.empty(stop - first)
        cuts = np.linspace(first, stop, self.workers + 1).astype(int)
        jobs = [(a, b, matches.part(a - first, b - first)) for a, b in zip(cuts, cuts[1:]) if b > a]
        if self.pool is None:
            for a, b, part in jobs:
                self.index.probe(a, b, part)
        else:
            list(self.pool.map(lambda job: self.index.probe(*job), jobs))
        return matches

    def notes(self) -> list[str]:
        return []

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()
