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

The loops are compiled with numba. ``Corpus`` (corpus.py) holds token ids as flat arrays (no Python
object per record), so millions of records fit in a few hundred MB. ``deduplicate`` goes a
block of records at a time: the block is probed against the kept records of earlier blocks by
an engine (``ENGINES``: threads here, or Ray actors), then decided in order against itself (and
the block before it, whose kept records the engine's index gets while this block is probed).
Engines only split the probing, and a record's best match is the best of what each part found
(``Matches.merge``), so every engine gives the same decisions.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numba import njit

from selfinstruct.dedup.corpus import Corpus
from selfinstruct.text.rouge import f_measure

# Bounds are compared with a margin so that rounding in a bound can never skip a pair
# that passes; the final decision uses the exact float F-measure.
MARGIN = 1e-9
NONE = -1  # no match


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
        _merge(*self.arrays(), *other.arrays())


@dataclass
class Decisions:
    """The outcome for each input record: ``kept``; else its best match (see Matches)."""

    kept: np.ndarray  # bool, per input record
    matches: Matches
    notes: list[str] = field(default_factory=list)  # what the engine did, to print

    @classmethod
    def empty(cls, size: int) -> "Decisions":
        return cls(np.zeros(size, bool), Matches.empty(size))


class Items:
    """The global item order of a corpus: rarest token first, then occurrence number."""

    def __init__(self, corpus: Corpus, threshold: float, base: tuple[np.ndarray, int] | None = None,
                 threads: int = 1):
        self.corpus = corpus
        self.threshold = threshold
        self.base, self.count = base or _item_base(corpus.tokens, corpus.offsets, corpus.active, corpus.vocabulary,
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
        self.item_keys, self.key_length, self.key_position, self.next_length, self.start = _keys(
            c.tokens, c.offsets, items.base, items.count, members.astype(np.int32), items.threshold, threads)
        self.fill = np.zeros(len(self.key_length), np.int32)
        self.entry = np.zeros(self.start[-1], np.int32)
        self.signature = np.zeros((self.start[-1], 2), np.uint64)  # the entry's, read along (see _signature)

    def add(self, entries: np.ndarray) -> None:
        c = self.items.corpus
        _add(c.tokens, c.offsets, self.items.base, entries.astype(np.int32), self.items.threshold, *self.arrays())

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.item_keys, self.key_length, self.key_position, self.start, self.fill, self.entry, self.signature

    def probe(self, first: int, stop: int, matches: Matches) -> None:
        """Find, for input records first..stop-1, their best match among the entries in the index
        (merged into ``matches``, indexed from ``first``)."""
        self._run(_probe, first, stop, matches)

    def decide(self, first: int, stop: int, matches: Matches) -> None:
        """The greedy pass: as ``probe``, but in order, adding each record that has no match at all
        (here or already in ``matches``)."""
        self._run(_decide, first, stop, matches)

    def _run(self, compiled, first: int, stop: int, matches: Matches) -> None:
        c = self.items.corpus
        input_tokens, input_offsets = c.input_arrays()
        compiled(c.tokens, c.offsets, input_tokens, input_offsets, c.use_inputs, c.active, c.against, c.vocabulary,
                 self.items.base, self.items.threshold, first, stop, self.next_length, *self.arrays(),
                 *matches.arrays())


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


def _ray_probe(items: Items, workers: int, block: int):
    from selfinstruct.dedup.on_ray import RayProbe  # Ray is an optional extra
    return RayProbe(items, workers, block)


# An engine probes blocks of records against the kept records of earlier blocks; add one here.
ENGINES = {"local": LocalProbe, "ray": _ray_probe}


# ---------------------------------------------------------------------------- compiled parts

@njit(cache=True)
def _alpha(length, threshold):
    """The fewest shared items with which a text of ``length`` tokens can pass the threshold
    against a text of any length: the least o with 2o / (length + o) >= threshold - MARGIN."""
    bar = threshold - MARGIN
    o = max(1, int(bar * length / (2.0 - bar)) - 1)
    while o < length and 2.0 * o / (length + o) < bar:
        o += 1
    return min(o, length)


@njit(cache=True)
def _prefix(length, threshold):
    """How many of a text's first items are indexed and probed: two texts that share at least
    alpha items share one within the first length - alpha + 1 items of each."""
    return length - _alpha(length, threshold) + 1


@njit(cache=True)
def _sorted_items(tokens, lo, hi, base, out):
    """Write the entry's items, in global order, to out[:hi-lo]; return out (replaced by a larger
    array if it was too short)."""
    n = hi - lo
    if n > len(out):
        out = np.zeros(2 * n, np.int64)
    for i in range(n):
        out[i] = base[tokens[lo + i]]
    out[:n].sort()
    run = 0
    for i in range(1, n):
        if out[i - 1] - run == out[i]:  # the same token again: its next occurrence number
            run += 1
        else:
            run = 0
        out[i] += run
    return out


def _shares(count: int, threads: int) -> np.ndarray:
    """The bounds of ``threads`` equal shares of ``count`` items; of one share, if they are too few to
    be worth a thread each."""
    return np.linspace(0, count, (threads if count > 100_000 else 1) + 1).astype(np.int64)


def _item_base(tokens, offsets, active, vocabulary, threads=1):
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


def _keys(tokens, offsets, base, count, members, threshold, threads=1):
    """The keys of the members' prefix items, each item's together (item_keys[i]..item_keys[i+1]),
    ordered by entry length, then position; and where each key's postings start. Many members are
    counted and placed by ``threads`` threads, a share each (the compiled parts run without the GIL)."""
    cuts = _shares(len(members), threads)
    shares = [members[a:b] for a, b in zip(cuts, cuts[1:])]
    with ThreadPoolExecutor(len(shares)) as pool:
        counts = list(pool.map(lambda share: _count_items(tokens, offsets, base, count, share, threshold), shares))
        item_start = np.cumsum(np.sum(counts, axis=0))
        codes = np.zeros(item_start[-1], np.int64)  # length << 32 | position, per posting
        before = np.cumsum([np.zeros(count, np.int64)] + [c[1:] for c in counts[:-1]], axis=0)
        list(pool.map(lambda share, skip: _place_items(tokens, offsets, base, share, threshold, codes,
                                                       item_start[:-1] + skip), shares, before))
    return _compact_keys(codes, item_start, count)


@njit(cache=True, nogil=True)
def _count_items(tokens, offsets, base, count, members, threshold):
    """How many of the members' prefixes hold each item (at [item + 1])."""
    per_item = np.zeros(count + 1, np.int64)
    items = np.zeros(16, np.int64)
    for e in members:
        lo, hi = offsets[e], offsets[e + 1]
        if hi == lo:
            continue  # an empty text is never added (see _add)
        items = _sorted_items(tokens, lo, hi, base, items)
        for i in range(_prefix(hi - lo, threshold)):
            per_item[items[i] + 1] += 1
    return per_item


@njit(cache=True, nogil=True)
def _place_items(tokens, offsets, base, members, threshold, codes, filled):
    """Write each prefix item's (length, position) code at filled[item], which moves on."""
    items = np.zeros(16, np.int64)
    for e in members:
        lo, hi = offsets[e], offsets[e + 1]
        if hi == lo:
            continue
        items = _sorted_items(tokens, lo, hi, base, items)
        for i in range(_prefix(hi - lo, threshold)):
            codes[filled[items[i]]] = ((hi - lo) << 32) | i
            filled[items[i]] += 1


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


@njit(cache=True, nogil=True)
def _add(tokens, offsets, base, entries, threshold, item_keys, key_length, key_position, start, fill, entry,
         signature):
    items = np.zeros(16, np.int64)
    for e in entries:
        lo, hi = offsets[e], offsets[e + 1]
        if hi == lo:
            continue
        items = _sorted_items(tokens, lo, hi, base, items)
        _append(e, hi - lo, items, _prefix(hi - lo, threshold), item_keys, key_length, key_position, start, fill,
                entry, signature)


@njit(cache=True)
def _append(e, size, items, prefix, item_keys, key_length, key_position, start, fill, entry, signature):
    """Add entry e (``size`` tokens) to the postings of its first ``prefix`` items."""
    mine_lo, mine_hi = _signature(items, size)
    for i in range(prefix):
        lo, hi = item_keys[items[i]], item_keys[items[i] + 1]
        while lo < hi:  # the key (size, i) among the item's, ordered by (length, position)
            mid = (lo + hi) // 2
            if key_length[mid] < size or (key_length[mid] == size and key_position[mid] < i):
                lo = mid + 1
            else:
                hi = mid
        entry[start[lo] + fill[lo]] = e
        signature[start[lo] + fill[lo], 0] = mine_lo
        signature[start[lo] + fill[lo], 1] = mine_hi
        fill[lo] += 1


@njit(cache=True)
def _signature(items, size):
    """A 128-bit sketch of a text's items, as two words: bit h(item) for each. A bit set in one
    text's sketch and not in the other's stands for at least one item the other lacks, so
    size - popcount(mine & ~theirs) bounds the items two texts share, without reading the other."""
    lo = np.uint64(0)
    hi = np.uint64(0)
    for i in range(size):
        h = (np.uint64(items[i]) * np.uint64(0x9E3779B97F4A7C15)) >> np.uint64(57)
        if h < np.uint64(64):
            lo |= np.uint64(1) << h
        else:
            hi |= np.uint64(1) << (h - np.uint64(64))
    return lo, hi


@njit(cache=True)
def _better(score, e, best_score, best_entry):
    return best_entry == NONE or score > best_score or (score == best_score and e < best_entry)


@njit(cache=True, nogil=True)
def _merge(a_entry, a_score, k_entry, k_score, b_a_entry, b_a_score, b_k_entry, b_k_score):
    for r in range(len(a_entry)):
        if b_a_entry[r] != NONE and _better(b_a_score[r], b_a_entry[r], a_score[r], a_entry[r]):
            a_entry[r], a_score[r] = b_a_entry[r], b_a_score[r]
        if b_k_entry[r] != NONE and _better(b_k_score[r], b_k_entry[r], k_score[r], k_entry[r]):
            k_entry[r], k_score[r] = b_k_entry[r], b_k_score[r]


_f_measure = njit(cache=True)(f_measure)  # similarity's, compiled: the same float operations


@njit(cache=True)
def _popcount(x):
    x = x - ((x >> np.uint64(1)) & np.uint64(0x5555555555555555))
    x = (x & np.uint64(0x3333333333333333)) + ((x >> np.uint64(2)) & np.uint64(0x3333333333333333))
    x = (x + (x >> np.uint64(4))) & np.uint64(0x0F0F0F0F0F0F0F0F)
    return int((x * np.uint64(0x0101010101010101)) >> np.uint64(56))


@njit(cache=True)
def _set_pattern(tokens, lo, hi, slot, masks):
    """Bit masks of the pattern tokens[lo:hi]: masks[slot[t], w] has bit i of word w for each
    position 64w + i holding t. Returns (masks, distinct tokens). Undo with _clear_pattern."""
    words = (hi - lo + 63) // 64
    if masks.shape[0] < hi - lo or masks.shape[1] < words:
        masks = np.zeros((max(hi - lo, 2 * masks.shape[0]), max(words, masks.shape[1])), np.uint64)
    distinct = 0
    for i in range(hi - lo):
        t = tokens[lo + i]
        if slot[t] < 0:
            slot[t] = distinct
            masks[distinct, :words] = 0
            distinct += 1
        masks[slot[t], i // 64] |= np.uint64(1) << np.uint64(i % 64)
    return masks


@njit(cache=True)
def _clear_pattern(tokens, lo, hi, slot):
    for i in range(lo, hi):
        slot[tokens[i]] = -1


@njit(cache=True)
def _lcs(length, masks, slot, tokens, lo, hi, state):
    """LCS length of the pattern (set by _set_pattern, ``length`` tokens) and tokens[lo:hi];
    Hyyrö's bit-parallel recurrence, one 64-bit word per 64 pattern tokens."""
    words = (length + 63) // 64
    for w in range(words):
        state[w] = ~np.uint64(0)
    for j in range(lo, hi):
        s = slot[tokens[j]]
        if s < 0:
            continue  # a token the pattern lacks changes nothing
        carry = np.uint64(0)
        for w in range(words):
            v = state[w]
            u = v & masks[s, w]
            x = v + u
            c1 = np.uint64(1) if x < v else np.uint64(0)
            y = x + carry
            c2 = np.uint64(1) if y < x else np.uint64(0)
            carry = c1 | c2
            state[w] = y | (v & ~u)
    total = 0
    for w in range(words):
        bits = min(64, length - 64 * w)
        keep = ~np.uint64(0) if bits == 64 else (np.uint64(1) << np.uint64(bits)) - np.uint64(1)
        total += bits - _popcount(state[w] & keep)
    return total


@njit(cache=True)
def _input_score(tokens, offsets, a, b, slot, masks, state):
    """ROUGE-L of two entries' inputs, where two empty ones are equal (1.0)."""
    alo, ahi, blo, bhi = offsets[a], offsets[a + 1], offsets[b], offsets[b + 1]
    if ahi == alo and bhi == blo:
        return 1.0, masks, state
    if ahi == alo or bhi == blo:
        return 0.0, masks, state
    masks = _set_pattern(tokens, alo, ahi, slot, masks)
    if len(state) < (ahi - alo + 63) // 64:
        state = np.zeros((ahi - alo + 63) // 64, np.uint64)
    lcs = _lcs(ahi - alo, masks, slot, tokens, blo, bhi, state)
    _clear_pattern(tokens, alo, ahi, slot)
    return _f_measure(lcs, ahi - alo, bhi - blo), masks, state


@njit(cache=True)
def _longest(length, bar):
    """Past this length, the lengths alone fail: 2 * min(lengths) < bar * (sum of lengths)."""
    return int((2.0 - bar) * length / bar) + 1 if bar > 0 else np.iinfo(np.int32).max


@njit(cache=True)
def _postings(item, i, length, mine_lo, mine_hi, bar, next_length, item_keys, key_length, key_position, start,
              fill, entry, signature, out, found):
    """Append to out[found:] (which has room, see _room) the entries posted under ``item`` that may pass
    against a query of ``length`` items (sketch ``mine_lo, mine_hi``) holding the item at position i; return
    the new ``found``. (``out`` is never replaced here: a loop that may replace an array pays two atomic
    reference count updates per turn.)"""
    left = length - i - 1
    # Common items come in the same order in both texts: if this is the first shared one, the
    # overlap is at most 1 + the items left after it in each; so neither text may be longer than this.
    reach = _longest(length, bar)
    if bar > 0:
        reach = min(reach, int(2.0 * (1 + left) / bar) - length + 1)
    k, end = item_keys[item], item_keys[item + 1]
    while k < end:
        other = key_length[k]
        if other > reach:
            break
        after = min(left, other - key_position[k] - 1)
        total = bar * (length + other)
        if 2.0 * (1 + after) < total:
            k = next_length[k]  # later positions leave fewer items after them
            continue
        for p in range(start[k], start[k] + fill[k]):
            theirs_lo, theirs_hi = signature[p, 0], signature[p, 1]
            most = min(length - _popcount(mine_lo & ~theirs_lo) - _popcount(mine_hi & ~theirs_hi),
                       other - _popcount(theirs_lo & ~mine_lo) - _popcount(theirs_hi & ~mine_hi))
            if 2.0 * most < total:
                continue  # too few items in common
            out[found] = entry[p]
            found += 1
        k += 1
    return found


@njit(cache=True)
def _room(out, item, item_keys, start, found):
    """``out``, or a larger copy, with room after ``found`` for every posting the item may hold."""
    need = found + start[item_keys[item + 1]] - start[item_keys[item]]
    if need <= len(out):
        return out
    grown = np.zeros(max(need, 2 * len(out)), out.dtype)
    grown[:found] = out[:found]
    return grown


@njit(cache=True)
def _score(q, r, candidates, tokens, offsets, input_tokens, input_offsets, use_inputs, against, threshold, mark,
           scratch, a_entry, a_score, k_entry, k_score):
    """Score query q against the candidates it has not met yet, keeping its best match in row r.
    ``scratch`` holds the arrays the LCS reuses; returns it, grown if it had to."""
    slot, masks, state, input_slot, input_masks, input_state = scratch
    lo, hi = offsets[q], offsets[q + 1]
    length = hi - lo
    masks = _set_pattern(tokens, lo, hi, slot, masks)
    if len(state) < (length + 63) // 64:
        state = np.zeros((length + 63) // 64, np.uint64)
    for e in candidates:
        if mark[e] == q:
            continue  # met already
        mark[e] = q
        score = _f_measure(_lcs(length, masks, slot, tokens, offsets[e], offsets[e + 1], state), length,
                           offsets[e + 1] - offsets[e])
        if not score > threshold:
            continue
        if use_inputs:
            input_score, input_masks, input_state = _input_score(
                input_tokens, input_offsets, q, e, input_slot, input_masks, input_state)
            if not input_score > threshold:
                continue
        if e < against:
            if _better(score, e, a_score[r], a_entry[r]):
                a_entry[r], a_score[r] = e, score
        elif _better(score, e, k_score[r], k_entry[r]):
            k_entry[r], k_score[r] = e, score
    _clear_pattern(tokens, lo, hi, slot)
    return slot, masks, state, input_slot, input_masks, input_state


@njit(cache=True)
def _scratch(vocabulary):
    return (np.full(vocabulary, -1, np.int32), np.zeros((64, 1), np.uint64), np.zeros(1, np.uint64),
            np.full(vocabulary, -1, np.int32), np.zeros((64, 1), np.uint64), np.zeros(1, np.uint64))


@njit(cache=True, nogil=True)
def _decide(tokens, offsets, input_tokens, input_offsets, use_inputs, active, against, vocabulary, base, threshold,
          first, stop, next_length, item_keys, key_length, key_position, start, fill, entry, signature,
          a_entry, a_score, k_entry, k_score):
    """The greedy pass over first..stop-1, in order: each query against the index, and added to it
    if it has no match at all."""
    mark = np.full(len(offsets) - 1, -1, np.int32)  # the query that last met each entry
    scratch = _scratch(vocabulary)
    out = np.zeros(1024, np.int32)
    items = np.zeros(16, np.int64)
    for q in range(first, stop):
        r = q - first
        lo, hi = offsets[q], offsets[q + 1]
        length = hi - lo
        if not active[q] or length == 0:
            continue
        items = _sorted_items(tokens, lo, hi, base, items)
        # A record the probe matched to a kept record (of an earlier block: a lower number) looks only for a
        # better match, above that score: a shorter prefix and tighter bounds.
        bar = max(threshold, k_score[r]) if k_entry[r] != NONE else threshold
        mine_lo, mine_hi = _signature(items, length)
        found = 0
        for i in range(_prefix(length, bar)):
            out = _room(out, items[i], item_keys, start, found)
            found = _postings(items[i], i, length, mine_lo, mine_hi, bar - MARGIN, next_length, item_keys,
                              key_length, key_position, start, fill, entry, signature, out, found)
        if found:
            scratch = _score(q, r, out[:found], tokens, offsets, input_tokens, input_offsets, use_inputs, against,
                             threshold, mark, scratch, a_entry, a_score, k_entry, k_score)
        if a_entry[r] == NONE and k_entry[r] == NONE:
            _append(q, length, items, _prefix(length, threshold), item_keys, key_length, key_position, start, fill,
                    entry, signature)


@njit(cache=True, nogil=True)
def _probe(tokens, offsets, input_tokens, input_offsets, use_inputs, active, against, vocabulary, base, threshold,
           first, stop, next_length, item_keys, key_length, key_position, start, fill, entry, signature,
           a_entry, a_score, k_entry, k_score):
    """Each query first..stop-1 against the index. An item's postings are read for all the queries
    holding it in a row, while they are in cache; then each query's candidates are scored."""
    n = stop - first
    bar = threshold - MARGIN
    sketch = np.zeros((n, 2), np.uint64)
    probe_item = np.zeros(16 * n + 16, np.int64)  # every query's prefix items: (item, query row, position)
    probe_row = np.zeros(len(probe_item), np.int32)
    probe_position = np.zeros(len(probe_item), np.int32)
    m = 0
    items = np.zeros(16, np.int64)
    for r in range(n):
        q = first + r
        lo, hi = offsets[q], offsets[q + 1]
        length = hi - lo
        if not active[q] or length == 0:
            continue
        items = _sorted_items(tokens, lo, hi, base, items)
        sketch[r, 0], sketch[r, 1] = _signature(items, length)
        prefix = _prefix(length, threshold)
        if m + prefix > len(probe_item):
            grow = max(len(probe_item), prefix)
            probe_item = np.concatenate((probe_item, np.zeros(grow, np.int64)))
            probe_row = np.concatenate((probe_row, np.zeros(grow, np.int32)))
            probe_position = np.concatenate((probe_position, np.zeros(grow, np.int32)))
        for i in range(prefix):
            probe_item[m], probe_row[m], probe_position[m] = items[i], r, i
            m += 1
    out = np.zeros(1024, np.int32)
    owner = np.zeros(1024, np.int32)
    found = 0
    for j in np.argsort(probe_item[:m], kind="mergesort"):
        r = probe_row[j]
        was = found
        out = _room(out, probe_item[j], item_keys, start, found)
        owner = _room(owner, probe_item[j], item_keys, start, found)
        found = _postings(probe_item[j], probe_position[j], offsets[first + r + 1] - offsets[first + r],
                          sketch[r, 0], sketch[r, 1], bar, next_length, item_keys, key_length, key_position,
                          start, fill, entry, signature, out, found)
        owner[was:found] = r
    # Each query's candidates together (a counting sort by row), then scored.
    row_start = np.zeros(n + 1, np.int64)
    for c in range(found):
        row_start[owner[c] + 1] += 1
    row_start = np.cumsum(row_start)
    filled = row_start[:-1].copy()
    candidates = np.zeros(found, np.int32)
    for c in range(found):
        candidates[filled[owner[c]]] = out[c]
        filled[owner[c]] += 1
    mark = np.full(len(offsets) - 1, -1, np.int32)  # the query that last met each entry
    scratch = _scratch(vocabulary)
    for r in range(n):
        if row_start[r + 1] > row_start[r]:
            scratch = _score(first + r, r, candidates[row_start[r]:row_start[r + 1]], tokens, offsets, input_tokens,
                             input_offsets, use_inputs, against, threshold, mark, scratch, a_entry, a_score, k_entry,
                             k_score)
