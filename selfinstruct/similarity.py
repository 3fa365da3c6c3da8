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
from array import array
from dataclasses import dataclass
from typing import Iterable

import numpy as np
from rapidfuzz.distance import LCSseq
from rapidfuzz.process import cdist

_CJK = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
_TOKEN_RE = re.compile(f"[{_CJK}]|[^\\W_{_CJK}]+")

# Bounds are exact rationals computed in float; the final F-measure is too.
# Both are off by a few ulps at most, so 1e-9 is a safe, tiny margin.
BOUND_MARGIN = 1e-9

# Token ids become code points so rapidfuzz compares plain str (its fast path).
_SURROGATES_START = 0xD800
_SURROGATES_SIZE = 0x800
_MAX_TOKEN_IDS = 0x110000 - _SURROGATES_SIZE


def tokenize(text: str) -> list[str]:
    """Lower-cased tokens: one per CJK character, one per run of other letters/digits.

    rouge_score's default tokenizer keeps only [a-z0-9], so any Chinese text
    scores 0 against anything; this one makes ROUGE-L meaningful for Chinese.
    """
    return _TOKEN_RE.findall(text.lower())


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
    index: int
    text: str
    score: float


def _code(token_id: int) -> str:
    if token_id >= _MAX_TOKEN_IDS:
        raise OverflowError("RougeIndex supports at most %d distinct tokens" % _MAX_TOKEN_IDS)
    if token_id >= _SURROGATES_START:
        token_id += _SURROGATES_SIZE
    return chr(token_id)


class RougeIndex:
    """A pool of texts answering exact ROUGE-L queries (max, top-k, any above a threshold)."""

    def __init__(self, texts: Iterable[str] = ()):
        self.texts: list[str] = []
        self._token_ids: dict[str, int] = {}
        # _postings[token_id][k]: entries containing that token at least k + 1 times.
        self._postings: list[list[array]] = []
        self._codes: list[str] = []  # each entry's token ids as a str, for rapidfuzz
        self._lengths = array("i")  # each entry's token count
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self.texts)

    def add(self, text: str) -> int:
        """Add a text to the pool and return its index."""
        index = len(self.texts)
        ids = []
        for token in tokenize(text):
            token_id = self._token_ids.get(token)
            if token_id is None:
                token_id = len(self._token_ids)
                _code(token_id)  # fail before changing anything
                self._token_ids[token] = token_id
                self._postings.append([])
            ids.append(token_id)
        seen: dict[int, int] = {}
        for token_id in ids:
            k = seen.get(token_id, 0)
            seen[token_id] = k + 1
            lists = self._postings[token_id]
            if k == len(lists):
                lists.append(array("i"))
            lists[k].append(index)
        self.texts.append(text)
        self._codes.append("".join(map(_code, ids)))
        self._lengths.append(len(ids))
        return index
