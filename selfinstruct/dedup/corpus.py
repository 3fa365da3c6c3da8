"""A dataset's texts as token ids in flat arrays: what deduplication reads.

No Python object per record, so millions of records fit in a few hundred MB. Ids number the
tokens in the order they are first seen; ``CorpusBuilder.append`` joins corpora built apart
(by the processes that read a file in parts) so that the ids are the ones a single reader
would have given.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from itertools import repeat

import numpy as np

from selfinstruct.text.rouge import CJK_CHARACTER, LETTER, character_classes, tokenize


@dataclass
class Corpus:
    """Token ids of every entry, flat. Entries 0..against-1 are the --against records (always
    kept, never checked); the rest are the input records in order, ``active`` where they
    take part (valid and past the heuristic rules). ``inputs`` are only set for key
    instruction+input: then a match needs the inputs' ROUGE-L above the threshold too."""

    tokens: np.ndarray  # int32, every entry's instruction tokens, concatenated
    offsets: np.ndarray  # int64, len(entries) + 1
    active: np.ndarray  # bool, per entry
    against: int  # entries before the first input record
    vocabulary: int  # distinct token ids
    input_tokens: np.ndarray | None = None
    input_offsets: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.offsets) - 1

    @property
    def use_inputs(self) -> bool:
        return self.input_offsets is not None

    def input_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        if self.input_offsets is None:
            return np.zeros(0, np.int32), np.zeros(len(self) + 1, np.int64)
        return self.input_tokens, self.input_offsets


class CorpusBuilder:
    """Turns token lists into a Corpus: ids from a vocabulary, kept in compact arrays."""

    def __init__(self, use_inputs: bool = False):
        self.ids: dict[str, int] = {}
        self.tokens = _IntArray(np.int32)
        self.offsets = _IntArray(np.int64)
        self.offsets.append(0)
        self.active = _IntArray(np.bool_)
        self.inputs = _IntArray(np.int32) if use_inputs else None
        self.input_offsets = _IntArray(np.int64) if use_inputs else None
        if use_inputs:
            self.input_offsets.append(0)
        self.against = 0
        self._character_ids: np.ndarray | None = None  # by code point, a CJK character's id once looked up

    def add(self, instruction: list[str], input: list[str] = (), active: bool = True) -> int:
        """Add an entry (its instruction's tokens, and input's for key instruction+input); return its number."""
        self.tokens.extend(self._encode(instruction))
        self.offsets.append(len(self.tokens))
        self.active.append(active)
        if self.inputs is not None:
            self.inputs.extend(self._encode(input))
            self.input_offsets.append(len(self.inputs))
        return len(self.active) - 1

    def add_texts(self, instructions: list[str], inputs: list[str] | None = None,
                  active: list[bool] | None = None) -> None:
        """Add an entry per text, as ``add(tokenize(text), ...)`` would, ids included, but for many texts at
        once: their characters are classed by a table (rouge.character_classes) in numpy, and only
        words (not CJK characters) become Python strings. ``inputs`` are read with key instruction+input."""
        if not instructions:
            return
        both = self.inputs is not None
        texts = [text for pair in zip(instructions, inputs or [""] * len(instructions)) for text in pair] \
            if both else instructions  # in the order add would take them, so ids are numbered alike
        tokens, owner = self._tokenize(texts)
        counts = np.bincount(owner, minlength=len(texts))
        mine = owner % 2 == 0 if both else slice(None)
        self.tokens.extend(tokens[mine])
        self.offsets.extend(self.offsets.values()[-1] + np.cumsum(counts[::2] if both else counts))
        self.active.extend(np.ones(len(instructions), bool) if active is None else active)
        if both:
            self.inputs.extend(tokens[~mine])
            self.input_offsets.extend(self.input_offsets.values()[-1] + np.cumsum(counts[1::2]))

    def _tokenize(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """The token ids of ``texts`` (concatenated), and the text each token is in."""
        texts = [t if t.isascii() or unicodedata.is_normalized("NFKC", t) else unicodedata.normalize("NFKC", t)
                 for t in texts]
        joined = _SEPARATOR.join(texts).lower()  # no letter's case depends on a neighbour across a NUL
        if joined.count(_SEPARATOR) != len(texts) - 1:  # a text holds a NUL itself
            encoded = [self._encode(tokenize(t, normalize=False)) for t in texts]
            return (np.array([i for e in encoded for i in e], np.int32),
                    np.repeat(np.arange(len(texts)), [len(e) for e in encoded]))
        points = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), np.uint32)
        kind = character_classes()[points]
        letter = kind == LETTER
        inside = np.zeros(len(points), bool)  # a letter after a letter: not a token's start
        inside[1:] = letter[1:] & letter[:-1]
        starts = np.flatnonzero((kind == CJK_CHARACTER) | (letter & ~inside))
        stops = starts + 1
        word = kind[starts] == LETTER
        stops[word] = np.flatnonzero(letter & ~np.append(inside[1:], False)) + 1  # where each word ends
        if self._character_ids is None:
            self._character_ids = np.full(0x110000, -1, np.int32)
        ids = self._character_ids[points[starts]]  # -1 for a word, or a character not looked up yet
        known = self.ids
        # Every word, in order: the text with all else made a space, split (quicker than slicing each).
        words = np.where(letter, points, np.uint32(32)).tobytes().decode("utf-32-le").split()
        ids[word] = list(map(known.get, words, repeat(-1, len(words))))
        for t in np.flatnonzero(ids < 0).tolist():  # the rest, numbered (if new) in the order they come
            ids[t] = known.setdefault(joined[starts[t]:stops[t]], len(known))
            if not word[t]:
                self._character_ids[points[starts[t]]] = ids[t]
        return ids, np.searchsorted(np.flatnonzero(points == 0), starts)

    def __getstate__(self) -> dict:
        return self.__dict__ | {"_character_ids": None}  # a cache of 4 MB, not worth sending

    def add_against(self, instruction: list[str], input: list[str] = ()) -> int:
        if self.against != len(self.active):
            raise ValueError("--against entries come before the input's records")
        self.against += 1
        return self.add(instruction, input)

    def append(self, other: CorpusBuilder) -> None:
        """Add ``other``'s entries after these, its ids renumbered as if its tokens had been added here."""
        renumber = np.fromiter((self.ids.setdefault(token, len(self.ids)) for token in other.ids), np.int32,
                               len(other.ids))
        base = len(self.tokens)
        self.tokens.extend(renumber[other.tokens.values()])
        self.offsets.extend(other.offsets.values()[1:] + base)
        self.active.extend(other.active.values())
        if self.inputs is not None:
            base = len(self.inputs)
            self.inputs.extend(renumber[other.inputs.values()])
            self.input_offsets.extend(other.input_offsets.values()[1:] + base)

    def _encode(self, tokens: list[str]) -> list[int]:
        ids = self.ids
        try:
            return list(map(ids.__getitem__, tokens))  # most tokens have an id already: a C loop
        except KeyError:
            return [ids.setdefault(token, len(ids)) for token in tokens]

    def build(self) -> Corpus:
        return Corpus(self.tokens.array(), self.offsets.array(), self.active.array(), self.against, len(self.ids),
                      self.inputs.array() if self.inputs is not None else None,
                      self.input_offsets.array() if self.input_offsets is not None else None)


_SEPARATOR = "\x00"


class _IntArray:
    """A growable numpy array (amortised doubling), without a Python object per item."""

    def __init__(self, dtype):
        self.data = np.zeros(1024, dtype)
        self.size = 0

    def __len__(self) -> int:
        return self.size

    def _reserve(self, extra: int) -> None:
        if self.size + extra > len(self.data):
            grown = np.zeros(max(2 * len(self.data), self.size + extra), self.data.dtype)
            grown[:self.size] = self.data[:self.size]
            self.data = grown

    def append(self, value) -> None:
        self._reserve(1)
        self.data[self.size] = value
        self.size += 1

    def extend(self, values) -> None:
        if len(values):
            self._reserve(len(values))
            self.data[self.size:self.size + len(values)] = values
            self.size += len(values)

    def values(self) -> np.ndarray:
        """A view of the items (changes with the next append)."""
        return self.data[:self.size]

    def array(self) -> np.ndarray:
        return self.data[:self.size].copy()
