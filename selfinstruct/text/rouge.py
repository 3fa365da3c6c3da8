"""Exact ROUGE-L similarity against a growing pool of instructions, fast.

Self-Instruct keeps a candidate only if its ROUGE-L F-measure against every
instruction kept so far is at most a threshold. Scoring against the whole pool
with rouge_score costs seconds per candidate at 50K instructions. RougeIndex
returns the same numbers, bit for bit, by proving most entries irrelevant:

* tokens become integer ids; an inverted index lists, for each token and each
  occurrence number, the entries holding it that many times, so counting hits
  over those lists gives every entry's bag-of-tokens overlap with the query;
* LCS <= overlap, so F <= 2 * overlap / (len_a + len_b); entries whose bound
  cannot reach the threshold (or the current best) are skipped, and the most
  frequent tokens are not even counted when a bound shows they cannot matter;
* the few entries left get an exact LCS from rapidfuzz (C, bit-parallel) and
  the F-measure is computed with rouge_score's own float formula.

Bounds are only used to skip work, with a margin (BOUND_MARGIN) so rounding in
the final F-measure can never make a skipped entry matter.
"""

import re
import unicodedata
from array import array
from collections import Counter
from dataclasses import dataclass
from functools import cache
from typing import Iterable

import numpy as np
from rapidfuzz.distance import LCSseq
from rapidfuzz.process import cdist

from selfinstruct.text.lang import CJK_RANGE

_TOKEN_RE = re.compile(f"[{CJK_RANGE}]|[^\\W_{CJK_RANGE}]+")

# Bounds are exact rationals computed in float; the final F-measure is too.
# Both are off by a few ulps at most, so 1e-9 is a safe, tiny margin.
BOUND_MARGIN = 1e-9

# Hits are first counted from the rarest posting lists, up to this many list
# items per pool entry; measured best at 1-2 on synthetic en/zh pools.
COUNT_BUDGET = 1.5

# Token ids become code points so rapidfuzz compares plain str (its fast path).
_SURROGATES_START = 0xD800
_SURROGATES_SIZE = 0x800
_MAX_TOKEN_IDS = 0x110000 - _SURROGATES_SIZE


def tokenize(text: str, normalize: bool = True) -> list[str]:
    """Lower-cased tokens: one per CJK character, one per run of other letters/digits.

    rouge_score's default tokenizer keeps only [a-z0-9], so any Chinese text
    scores 0 against anything; this one makes ROUGE-L meaningful for Chinese.
    With ``normalize``, text is NFKC-normalised first, so full-width forms common in
    Chinese text (Ｐｙｔｈｏｎ, １０, ｆｕｌｌ－ｗｉｄｔｈ) equal their half-width ones.
    """
    if normalize and not text.isascii():  # ASCII is NFKC already
        text = unicodedata.normalize("NFKC", text)
    return _TOKEN_RE.findall(text.lower())


# tokenize's rule as a table over code points, for texts tokenised in bulk (corpus.py): 1 for a CJK
# character (a token of its own), 2 for another letter or digit (runs of them are tokens; regex \w is
# str.isalnum or "_"), 0 for the rest.
CJK_CHARACTER, LETTER = 1, 2


@cache
def character_classes() -> np.ndarray:
    """The class of every code point (uint8, 0x110000 of them); built once, in a fraction of a second."""
    table = np.frombuffer(bytes(c.isalnum() for c in map(chr, range(0x110000))), np.uint8) * np.uint8(LETTER)
    for start, end in re.findall(r"(.)-(.)", CJK_RANGE):
        table[ord(start):ord(end) + 1] = CJK_CHARACTER
    return table


class Tokenizer:
    """rouge_score-compatible tokenizer: RougeScorer(["rougeL"], tokenizer=Tokenizer())."""

    def tokenize(self, text: str) -> list[str]:
        return tokenize(text)


def f_measure(lcs: int, len_a: int, len_b: int) -> float:
    """rouge_score's F-measure from an LCS length, with its exact float operations."""
    if lcs == 0 or len_a == 0 or len_b == 0:
        return 0.0
    precision = lcs / len_b
    recall = lcs / len_a
    return 2 * precision * recall / (precision + recall)


def rouge_l(a: list[str], b: list[str]) -> float:
    """ROUGE-L F-measure of two token lists, equal to rouge_score's fmeasure."""
    if not a or not b:
        return 0.0
    return f_measure(int(LCSseq.similarity(a, b)), len(a), len(b))


@dataclass(frozen=True)
class Match:
    """A pool entry and its ROUGE-L F-measure against the query."""

    index: int
    text: str
    score: float


def _code(token_id: int) -> str:
    """The one-character code of a token id, skipping surrogates (invalid in str)."""
    if token_id >= _MAX_TOKEN_IDS:
        raise OverflowError("RougeIndex supports at most %d distinct tokens" % _MAX_TOKEN_IDS)
    if token_id >= _SURROGATES_START:
        token_id += _SURROGATES_SIZE
    return chr(token_id)


class RougeIndex:
    """A pool of texts answering exact ROUGE-L queries (max, top-k, any above a threshold).

    Not thread-safe: a query holds numpy views of arrays that add() grows.
    """

    def __init__(self, texts: Iterable[str] = (), normalize: bool = True):
        self.normalize = normalize  # NFKC before tokenising (see tokenize)
        self.texts: list[str] = []
        # Each distinct token gets a one-character code; entries and queries
        # become strs of codes, which rapidfuzz compares fastest.
        self._token_codes: dict[str, str] = {}
        # _postings[code][k]: entries containing that token at least k + 1 times.
        self._postings: dict[str, list[array]] = {}
        self._codes: list[str] = []  # each entry's code string
        self._lengths = array("i")  # each entry's token count
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str) -> int:
        """Add a text to the pool and return its index."""
        index = len(self.texts)
        chars = []
        for token in tokenize(text, self.normalize):
            char = self._token_codes.get(token)
            if char is None:
                char = self._token_codes[token] = _code(len(self._token_codes))
                self._postings[char] = []
            chars.append(char)
        for char, count in Counter(chars).items():
            lists = self._postings[char]
            for k in range(count):
                if k == len(lists):
                    lists.append(array("i"))
                lists[k].append(index)
        self.texts.append(text)
        self._codes.append("".join(chars))
        self._lengths.append(len(chars))
        return index

    def most_similar(self, text: str, k: int = 5) -> list[Match]:
        """The k entries with the highest score (> 0), best first; ties go to the lower index."""
        return [Match(i, self.texts[i], score) for score, i in self._search(text, k, 0.0, False)]

    def max_similarity(self, text: str) -> float:
        """The highest score of text against any entry; 0.0 for an empty pool."""
        found = self._search(text, 1, 0.0, False)
        return found[0][0] if found else 0.0

    def first_above(self, text: str, threshold: float) -> Match | None:
        """Some entry scoring strictly above threshold, or None; stops at the first one found."""
        found = self._search(text, 1, threshold, True)
        if not found:
            return None
        score, i = found[0]
        return Match(i, self.texts[i], score)

    def all_above(self, text: str, threshold: float) -> list[Match]:
        """Every entry scoring strictly above threshold, best first (ties: lower index first), for callers
        that must look further at each one (filter --key instruction+input checks the inputs too)."""
        return [Match(i, self.texts[i], score) for score, i in self._search(text, len(self), threshold, False)]

    def _query(self, text: str):
        """Query length, its code string, and its posting lists, rarest first.

        A token occurring c times in the query is matched against the lists for
        its 1st..c-th occurrences, so hit counts add up to min(c_query, c_entry):
        the bag-of-tokens overlap. Unknown tokens match nothing and are dropped
        from the code string, which leaves the LCS unchanged.
        """
        query_len, code = self._encode(text)
        lists = []
        for char, count in Counter(code).items():
            lists.extend(self._postings[char][:count])
        lists.sort(key=len)
        return query_len, code, lists

    def _encode(self, text: str) -> tuple[int, str]:
        """Token count and code string; tokens the pool lacks are dropped (they leave every LCS unchanged)."""
        tokens = tokenize(text, self.normalize)
        return len(tokens), "".join([self._token_codes.get(token, "") for token in tokens])

    def max_scores(self, texts: list[str], chunk: int = 256) -> list[float]:
        """Each text's highest score against every entry, by scoring all pairs on all cores: for a small
        pool (the seed tasks) much faster than one search per text."""
        lengths = np.frombuffer(self._lengths, dtype=np.int32)
        best: list[float] = []
        for start in range(0, len(texts), chunk):
            encoded = [self._encode(text) for text in texts[start:start + chunk]]
            if not self.texts:
                best += [0.0] * len(encoded)
                continue
            lcs = cdist([code for _, code in encoded], self._codes, scorer=LCSseq.similarity, dtype=np.int32,
                        workers=-1)
            query_lens = np.array([n for n, _ in encoded], dtype=np.int64)[:, None]
            precision = np.divide(lcs, lengths[None, :], out=np.zeros(lcs.shape), where=lcs > 0)
            recall = np.divide(lcs, query_lens, out=np.zeros(lcs.shape), where=lcs > 0)
            scores = np.divide(2 * precision * recall, precision + recall, out=np.zeros(lcs.shape), where=lcs > 0)
            best += scores.max(axis=1).tolist()
        return best

    def _search(self, text: str, k: int, threshold: float, first: bool) -> list[tuple[float, int]]:
        """Exact top-k (score, index) with score > threshold, best first.

        With first=True, return as soon as one entry above threshold is found.
        """
        query_len, query_code, lists = self._query(text)
        if not lists or k <= 0:
            return []
        n = len(self.texts)
        m = len(lists)
        lengths = np.frombuffer(self._lengths, dtype=np.int32)
        best = _Best(k, threshold)

        def check(entries: np.ndarray) -> bool:
            """Score entries exactly and offer them to best; True if first and one is above."""
            codes = self._codes
            lcs = cdist([query_code], [codes[i] for i in entries.tolist()],
                        scorer=LCSseq.similarity, dtype=np.int32)[0]
            scores = _f_measures(lcs, lengths[entries], query_len)
            good = (scores > threshold) & (scores >= best.cutoff())
            for score, i in zip(scores[good].tolist(), entries[good].tolist()):
                best.offer(score, i)
                if first:
                    return True
            return False

        # 1. Count hits from the rarest lists (cheap), then score the entries
        #    with the most hits: usually the best match, which raises the cutoff.
        counted, size = 1, len(lists[0])
        while counted < m and size + len(lists[counted]) <= n * COUNT_BUDGET:
            size += len(lists[counted])
            counted += 1
        hits = np.bincount(np.concatenate(lists[:counted]), minlength=n)
        seeds = None
        if not first:
            seeds = np.flatnonzero(hits == hits.max())[:max(16, k)]
            check(seeds)
        # 2. An entry hit by none of the counted lists shares at most u tokens
        #    (u = lists not counted) with the query. Count more lists until
        #    such entries cannot reach the cutoff.
        needed = counted
        while needed < m and _best_possible(m - needed, query_len) >= best.cutoff() - BOUND_MARGIN:
            needed += 1
        if needed > counted:
            hits += np.bincount(np.concatenate(lists[counted:needed]), minlength=n)
            counted = needed
        # 3. Any entry's overlap is at most its hits + u. Keep entries whose
        #    F bound reaches the cutoff, highest bound first.
        if seeds is not None:
            hits[seeds] = 0  # already scored
        uncounted = m - counted
        min_hits = 1
        while min_hits <= m and _best_possible(min_hits + uncounted, query_len) < best.cutoff() - BOUND_MARGIN:
            min_hits += 1
        candidates = np.flatnonzero(hits >= min_hits)
        entry_lengths = lengths[candidates]
        overlap = np.minimum(hits[candidates] + uncounted, entry_lengths)
        bounds = 2 * overlap / (query_len + entry_lengths)
        keep = bounds >= best.cutoff() - BOUND_MARGIN
        candidates, bounds = candidates[keep], bounds[keep]
        order = np.argsort(-bounds, kind="stable")
        candidates, bounds = candidates[order], bounds[order]
        # 4. Score them in growing batches until no bound reaches the cutoff.
        start, batch = 0, 16
        while start < len(candidates) and bounds[start] >= best.cutoff() - BOUND_MARGIN:
            stop = start + batch
            part = candidates[start:stop][bounds[start:stop] >= best.cutoff() - BOUND_MARGIN]
            if check(part):
                break
            start, batch = stop, batch * 2
        return best.items


class _Best:
    """The k best (score, index) pairs above a threshold; ties go to the lower index."""

    def __init__(self, k: int, threshold: float):
        self.k = k
        self.threshold = threshold
        self.items: list[tuple[float, int]] = []  # score desc, index asc

    def cutoff(self) -> float:
        """The score an unseen entry must reach to change the result."""
        if len(self.items) < self.k:
            return self.threshold
        return max(self.threshold, self.items[-1][0])

    def offer(self, score: float, index: int) -> None:
        if score <= self.threshold:
            return
        if len(self.items) == self.k:
            last_score, last_index = self.items[-1]
            if score < last_score or (score == last_score and index > last_index):
                return
        self.items.append((score, index))
        self.items.sort(key=lambda item: (-item[0], item[1]))
        del self.items[self.k:]


def _f_measures(lcs: np.ndarray, lengths: np.ndarray, query_len: int) -> np.ndarray:
    """f_measure for many entries at once, with the same float operations (0 where lcs is 0)."""
    precision = lcs / lengths
    recall = lcs / query_len
    return np.divide(2 * precision * recall, precision + recall,
                     out=np.zeros(len(lcs)), where=lcs > 0)


def _best_possible(overlap: int, query_len: int) -> float:
    """Highest F of an entry sharing at most `overlap` tokens with the query, over all lengths."""
    overlap = min(overlap, query_len)
    return 2 * overlap / (query_len + overlap)
