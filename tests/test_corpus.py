"""Texts added to a corpus in bulk get the token ids that tokenising them one at a time gives."""

from __future__ import annotations

import pickle
import random

import numpy as np

from selfinstruct.dedup.corpus import CorpusBuilder
from selfinstruct.text.rouge import tokenize

# What could make the bulk path differ: case that depends on neighbours (final sigma), letters that
# lower-case to two characters, NFKC forms, combining marks, CJK next to words, NUL, surrogates, digits.
PIECES = ["ΟΔΟΣ", "Σ", "σ", "ς", "ΑΣ ", "İstanbul", "ſ", "ı", "Ｐｙｔｈｏｎ", "１０", "ﬁle", "e\u0301", "\u0301",
          "\uf900", "豈", "写一首诗", "한국", "カナ", "😀", "\U00020000", "\x00", "_", "a_b", "9", " ", "\n",
          "\u3000", "，", "Hello", "WORLD", "x2y", "\ud800", "²", "①", "½", "Ⅻ", "ǅ", "ß", "ﬀ", ""]


def _texts(rng: random.Random, count: int) -> list[str]:
    return ["".join(rng.choice(PIECES) for _ in range(rng.randint(0, 7))) for _ in range(count)]


def _one_at_a_time(instructions, inputs, active) -> CorpusBuilder:
    builder = CorpusBuilder(use_inputs=True)
    for instruction, given, flag in zip(instructions, inputs, active):
        builder.add(tokenize(instruction), tokenize(given), active=flag)
    return builder


def _in_bulk(rng, instructions, inputs, active) -> CorpusBuilder:
    builder = CorpusBuilder(use_inputs=True)
    start = 0
    while start < len(instructions):
        stop = start + rng.choice([0, 1, 2, 5, 50, 400])
        builder.add_texts(instructions[start:stop], inputs[start:stop], active[start:stop])
        start = stop
    return builder


def _same(a: CorpusBuilder, b: CorpusBuilder) -> None:
    x, y = a.build(), b.build()
    for name in ("tokens", "offsets", "active", "input_tokens", "input_offsets"):
        assert np.array_equal(getattr(x, name), getattr(y, name)), name
    assert list(a.ids.items()) == list(b.ids.items())  # the same ids, given in the same order


def test_bulk_tokens_equal_one_at_a_time():
    rng = random.Random(7)
    instructions, inputs = _texts(rng, 3000), _texts(rng, 3000)
    active = [rng.random() < 0.9 for _ in instructions]
    _same(_one_at_a_time(instructions, inputs, active), _in_bulk(rng, instructions, inputs, active))


def test_parts_built_in_bulk_join_as_one_reader():
    """A part read by a worker process (pickled, without its cache) joins as if read here."""
    rng = random.Random(8)
    instructions, inputs = _texts(rng, 2000), _texts(rng, 2000)
    active = [True] * len(instructions)
    whole = _in_bulk(rng, instructions, inputs, active)
    joined = _in_bulk(rng, instructions[:700], inputs[:700], active[:700])
    part = pickle.loads(pickle.dumps(_in_bulk(rng, instructions[700:], inputs[700:], active[700:])))
    joined.append(part)
    joined.add_texts(["写一首诗 Hello"], ["ΟΔΟΣ"], [True])  # the joined ids serve what comes next
    whole.add_texts(["写一首诗 Hello"], ["ΟΔΟΣ"], [True])
    _same(whole, joined)
