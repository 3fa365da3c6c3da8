"""The compiled loops of the greedy deduplication (greedy.py says how it works): a text's items in
order, adding entries to an Index's postings, probing them, and scoring pairs with a bit-parallel LCS.

A compiled function that calls another finds it in this file (layout.py has the two that call none):
numba's cache does not notice a change to another file's function that a cached one calls. The one
exception is rouge's F-measure formula, compiled here as it is written there.
"""

import os

import numba
import numpy as np
from numba import njit

from selfinstruct.text.rouge import f_measure


def compiled(*namespaces: dict) -> bool:
    """Whether numba's cache holds every compiled function of these module namespaces: if not, the first use
    compiles them, about half a minute once per install. Unknown counts as compiled (numba's cache is looked
    at through its private attributes)."""
    try:
        dispatchers = [value for namespace in namespaces for value in namespace.values()
                       if isinstance(value, numba.core.registry.CPUDispatcher)]
        return all(os.path.exists(d._cache._cache_file._index_path) for d in dispatchers)
    except (AttributeError, TypeError):  # numba's cache looks otherwise in this version: say nothing
        return True


# Bounds are compared with a margin so that rounding in a bound can never skip a pair
# that passes; the final decision uses the exact float F-measure.
MARGIN = 1e-9
NONE = -1  # no match


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




@njit(cache=True, nogil=True)
def count_items(tokens, offsets, base, count, members, threshold):
    """How many of the members' prefixes hold each item (at [item + 1])."""
    per_item = np.zeros(count + 1, np.int64)
    items = np.zeros(16, np.int64)
    for e in members:
        lo, hi = offsets[e], offsets[e + 1]
        if hi == lo:
            continue  # an empty text is never added (see add_entries)
        items = _sorted_items(tokens, lo, hi, base, items)
        for i in range(_prefix(hi - lo, threshold)):
            per_item[items[i] + 1] += 1
    return per_item


@njit(cache=True, nogil=True)
def place_items(tokens, offsets, base, members, threshold, codes, filled):
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
def add_entries(tokens, offsets, base, entries, threshold, item_keys, key_length, key_position, start, fill, entry,
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
def merge_matches(a_entry, a_score, k_entry, k_score, b_a_entry, b_a_score, b_k_entry, b_k_score):
    for r in range(len(a_entry)):
        if b_a_entry[r] != NONE and _better(b_a_score[r], b_a_entry[r], a_score[r], a_entry[r]):
            a_entry[r], a_score[r] = b_a_entry[r], b_a_score[r]
        if b_k_entry[r] != NONE and _better(b_k_score[r], b_k_entry[r], k_score[r], k_entry[r]):
            k_entry[r], k_score[r] = b_k_entry[r], b_k_score[r]


_f_measure = njit(cache=True)(f_measure)  # rouge's, compiled: the same float operations


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
def decide_in_order(tokens, offsets, input_tokens, input_offsets, use_inputs, active, against, vocabulary, base,
                    threshold, first, stop, next_length, item_keys, key_length, key_position, start, fill, entry,
                    signature, a_entry, a_score, k_entry, k_score):
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
def probe_block(tokens, offsets, input_tokens, input_offsets, use_inputs, active, against, vocabulary, base, threshold,
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
