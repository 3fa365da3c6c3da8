"""How an Index is laid out: the global item order (rarest token first) and each item's keys.

Both are worked out over many entries by threads, a share each. The two compiled loops here call no
other compiled function, which is what lets them live outside kernels.py (see there).
"""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
from numba import njit

from selfinstruct.dedup.kernels import count_items, place_items


def _shares(count: int, threads: int) -> np.ndarray:
    """The bounds of ``threads`` equal shares of ``count`` items; of one share, if they are too few to
    be worth a thread each."""
    return np.linspace(0, count, (threads if count > 100_000 else 1) + 1).astype(np.int64)


def item_order(tokens, offsets, active, vocabulary, threads=1):
    """Each token's first item id. A token's items (one per occurrence number up to the most
    any entry holds) are consecutive, and tokens come rarest first, so item ids are the order.
    Many entries are counted by ``threads`` threads, a share each."""
    cuts = _shares(len(offsets) - 1, threads)
    with ThreadPoolExecutor(len(cuts) - 1) as pool:
        shares = list(pool.map(lambda lo, hi: _token_counts(tokens, offsets, active, vocabulary, lo, hi),
                               cuts[:-1], cuts[1:]))
    frequency = np.sum([f for f, _ in shares], axis=0)
    most = np.max([m for _, m in shares], axis=0)
    order = np.argsort(frequency, kind="mergesort")
    base = np.zeros(vocabulary, np.int64)
    base[order] = np.cumsum(most[order]) - most[order]
    return base, int(most.sum())


@njit(cache=True, nogil=True)
def _token_counts(tokens, offsets, active, vocabulary, first, stop):
    """For each token, how many active entries first..stop-1 hold it, and the most times one does."""
    frequency = np.zeros(vocabulary, np.int64)
    most = np.zeros(vocabulary, np.int64)
    scratch = np.zeros(16, np.int64)
    for e in range(first, stop):
        if not active[e]:
            continue
        lo, hi = offsets[e], offsets[e + 1]
        if hi - lo > len(scratch):
            scratch = np.zeros(2 * (hi - lo), np.int64)
        for i in range(hi - lo):
            scratch[i] = tokens[lo + i]
        part = scratch[:hi - lo]
        part.sort()
        run = 0
        for i in range(hi - lo):
            run = run + 1 if i > 0 and part[i] == part[i - 1] else 1
            t = part[i]
            frequency[t] += 1
            if run > most[t]:
                most[t] = run
    return frequency, most


def key_table(tokens, offsets, base, count, members, threshold, threads=1):
    """The keys of the members' prefix items, each item's together (item_keys[i]..item_keys[i+1]),
    ordered by entry length, then position; and where each key's postings start. Many members are
    counted and placed by ``threads`` threads, a share each (the compiled parts run without the GIL)."""
    cuts = _shares(len(members), threads)
    shares = [members[a:b] for a, b in zip(cuts, cuts[1:])]
    with ThreadPoolExecutor(len(shares)) as pool:
        counts = list(pool.map(lambda share: count_items(tokens, offsets, base, count, share, threshold), shares))
        item_start = np.cumsum(np.sum(counts, axis=0))
        codes = np.zeros(item_start[-1], np.int64)  # length << 32 | position, per posting
        before = np.cumsum([np.zeros(count, np.int64)] + [c[1:] for c in counts[:-1]], axis=0)
        list(pool.map(lambda share, skip: place_items(tokens, offsets, base, share, threshold, codes,
                                                      item_start[:-1] + skip), shares, before))
    return _compact_keys(codes, item_start, count)


@njit(cache=True, nogil=True)
def _compact_keys(codes, item_start, count):
    """Each item's distinct codes, sorted, are its keys (in place: keys never outrun postings)."""
    item_keys = np.zeros(count + 1, np.int64)
    postings = np.zeros(len(codes), np.int32)
    k = 0
    for item in range(count):
        part = codes[item_start[item]:item_start[item + 1]]
        part.sort()
        for j in range(len(part)):
            if j == 0 or part[j] != part[j - 1]:
                codes[k] = part[j]
                k += 1
            postings[k - 1] += 1
        item_keys[item + 1] = k
    start = np.zeros(k + 1, np.int64)
    start[1:] = np.cumsum(postings[:k])
    length = (codes[:k] >> 32).astype(np.int32)
    next_length = np.zeros(k, np.int64)  # the item's first key of a greater length
    for item in range(count):
        end = item_keys[item + 1]
        for j in range(end - 1, item_keys[item] - 1, -1):
            next_length[j] = j + 1 if j + 1 == end or length[j + 1] != length[j] else next_length[j + 1]
    return item_keys, length, (codes[:k] & 0xFFFFFFFF).astype(np.int32), next_length, start
