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

Ray is an optional extra, and heavy: it is imported when this engine is made, not with this module.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from contextlib import contextmanager
from functools import cache

import numpy as np

from selfinstruct.dedup.corpus import Corpus
from selfinstruct.dedup.index import Index, Items, Matches

_HELD = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)  # signals that stop a filter


def connect(workers: int) -> None:
    """Join the cluster in RAY_ADDRESS, or start a local one with ``workers`` CPUs, quietly, unless this
    process is connected already."""
    import ray

    if ray.is_initialized():
        return
    options = dict(include_dashboard=False, log_to_driver=False, logging_level="ERROR", configure_logging=True)
    if os.environ.get("RAY_ADDRESS"):
        ray.init(**options)
    else:
        ray.init(num_cpus=workers, **options)


class _Shard:
    """An actor holding the index of its share of the earlier kept records (made one by ``_actor``)."""

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


@cache
def _actor():
    """``_Shard`` as a Ray actor class, made once, as the decorator would have at import."""
    import ray

    return ray.remote(num_cpus=1)(_Shard)


@contextmanager
def _signals_held():
    """Ctrl+C, SIGTERM or SIGHUP while Ray starts or stops would leave it half made: its processes outlive
    this one and its threads crash the exit (SIGSEGV). Such a signal is held (the section sees it in the
    list it is given) until the section ends, and then delivered to the handler that was there before,
    which ``ray.init`` may have replaced (it makes SIGTERM a plain exit)."""
    if threading.current_thread() is not threading.main_thread():
        yield []
        return
    received: list[int] = []
    previous = {signum: signal.getsignal(signum) for signum in _HELD}
    for signum in _HELD:
        signal.signal(signum, lambda signum, frame: received.append(signum))
    try:
        yield received
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        if received:
            signal.raise_signal(received[0])


class RayProbe:
    """The engine: W actors; kept records of block b go to actor b mod W."""

    def __init__(self, items: Items, workers: int, block: int):
        import ray  # here, before signals are held, as when this module imported it

        self.connected = not ray.is_initialized()  # set first: a failed ray.init is shut down too
        self.shards = []
        with _signals_held() as received:
            try:
                self._start(items, workers, block)
            except BaseException:
                self._stop()
                raise
            if received:  # the signal is delivered as the section ends: nothing may outlive it
                self._stop()

    def _start(self, items: Items, workers: int, block: int) -> None:
        import ray

        connect(workers)
        corpus = items.corpus
        self.block, self.against = block, corpus.against
        self.workers = workers
        shared = ray.put(corpus)
        entry = np.arange(len(corpus))
        owner = np.where(entry < corpus.against, entry % workers, ((entry - corpus.against) // block) % workers)
        self.shards = [_actor().remote(shared, items.base, items.count, items.threshold,
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
        import ray

        matches = Matches.empty(stop - first)
        for arrays in ray.get([shard.probe.remote(first, stop) for shard in self.shards]):
            matches.merge(Matches(*arrays))
            self.shipped += 16 + sum(a.nbytes for a in arrays)
        self.blocks += 1
        return matches

    def notes(self) -> list[str]:
        import ray

        work = ray.get([shard.work.remote() for shard in self.shards])
        lines = [f"ray: {self.workers} workers, {self.blocks} blocks; shipped {self.shipped_once / 1e6:.1f} MB "
                 f"of tokens to each worker once, then {self.shipped / 1e6:.1f} MB in all"]
        lines += [f"ray: worker {w}: {busy:.1f} s busy, holds {held:,} records" for w, (busy, held) in enumerate(work)]
        return lines

    def close(self) -> None:
        with _signals_held():
            self._stop()

    def _stop(self) -> None:
        import ray

        for shard in self.shards:
            ray.kill(shard)
        if self.connected:  # a caller's own ray.init stays theirs
            ray.shutdown()
