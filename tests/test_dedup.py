"""The compiled greedy deduplication against a brute-force reference, for every engine.

The reference is the definition, written plainly: records in order; a record is dropped if its
ROUGE-L (rouge_l, itself checked against rouge_score) is above the threshold against an --against
entry or an earlier kept record; its reported match is the best one (ties: the lower number).
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from selfinstruct.dedup.corpus import CorpusBuilder
from selfinstruct.dedup.greedy import NONE, deduplicate
from selfinstruct.text.rouge import rouge_l, tokenize

pytestmark = pytest.mark.slow  # every test here compiles kernels or sorts large inputs

SCRIPT = Path(sys.executable).with_name("selfinstruct")
WORDS = ("the a cat dog red blue sky sea write explain list three two one of to and in poem story "
         "天 地 人 和 的 是 一 写 诗 春 风 山 水 Ｐｙｔｈｏｎ python １０ 10").split()


def texts(rng: random.Random, count: int, longest: int) -> list[str]:
    """Mixed zh/en texts from a small vocabulary (so many scores tie), a third edits of earlier ones."""
    made: list[str] = []
    for _ in range(count):
        if made and rng.random() < 0.35:
            words = rng.choice(made).split()
            for _ in range(rng.randint(0, 3)):
                kind = rng.random()
                if kind < 0.4 and words:
                    words.pop(rng.randrange(len(words)))
                elif kind < 0.8:
                    words.insert(rng.randint(0, len(words)), rng.choice(WORDS))
                elif words:
                    words[rng.randrange(len(words))] = rng.choice(WORDS)
            made.append(" ".join(words))
        else:
            made.append(" ".join(rng.choice(WORDS) for _ in range(rng.randint(0, longest))))
    return made


def input_score(a: list[str], b: list[str]) -> float:
    return 1.0 if not a and not b else rouge_l(a, b)


def reference(records, against, threshold, use_inputs):
    """(best against match, best kept match) per record, each (number, score) or None."""
    def best(tokens, given, pool):
        found = None
        for number, (other, other_input) in pool:
            score = rouge_l(tokens, other)
            if score > threshold and (not use_inputs or input_score(given, other_input) > threshold):
                if found is None or score > found[1]:
                    found = (number, score)
        return found

    against_pool = [(i, (tokenize(a), tokenize(b))) for i, (a, b) in enumerate(against)]
    kept, out = [], []
    for number, (instruction, given) in enumerate(records):
        tokens, given_tokens = tokenize(instruction), tokenize(given)
        result = (best(tokens, given_tokens, against_pool), best(tokens, given_tokens, kept))
        out.append(result)
        if result == (None, None):
            kept.append((number, (tokens, given_tokens)))
    return out


def corpus_of(records, against, use_inputs):
    builder = CorpusBuilder(use_inputs)
    for instruction, given in against:
        builder.add_against(tokenize(instruction), tokenize(given))
    for instruction, given in records:
        builder.add(tokenize(instruction), tokenize(given))
    return builder.build()


def found(decisions, against: int):
    m = decisions.matches
    rows = []
    for r in range(len(decisions.kept)):
        a = None if m.against_entry[r] == NONE else (int(m.against_entry[r]), float(m.against_score[r]))
        k = None if m.kept_entry[r] == NONE else (int(m.kept_entry[r]) - against, float(m.kept_score[r]))
        rows.append((a, k))
    return rows


@pytest.fixture(scope="module")
def ray_cluster():
    ray = pytest.importorskip("ray")  # the test extra installs it: a skip here is a broken install
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    yield
    ray.shutdown()


def check(engine, workers, seed, count, longest, thresholds, block):
    rng = random.Random(seed)
    records = list(zip(texts(rng, count, longest), [rng.choice(["", "cat", "the sky", "天 地", ""])
                                                    for _ in range(count)]))
    against = list(zip(texts(rng, 15, longest), [rng.choice(["", "cat"]) for _ in range(15)]))
    compared = 0
    for use_inputs in (False, True):
        corpus = corpus_of(records, against, use_inputs)
        for threshold in thresholds:
            expected = reference(records, against, threshold, use_inputs)
            got = deduplicate(corpus, threshold, engine, workers, block=block)
            assert found(got, len(against)) == expected, (use_inputs, threshold)
            assert got.kept.tolist() == [e == (None, None) for e in expected]
            compared += 1
    return compared


@pytest.mark.parametrize("workers", [1, 2])
def test_local_engine_equals_brute_force(workers):
    """Thousands of short mixed records with many ties, blocks of 97 so block edges are crossed."""
    assert check("local", workers, seed=1, count=2000, longest=12, thresholds=(0.0, 0.5, 0.7, 0.9, 1.0),
                 block=97) == 10


def test_local_engine_equals_brute_force_on_long_texts():
    """Texts of up to 200 tokens: the bit-parallel LCS runs over several 64-bit words."""
    assert check("local", 2, seed=2, count=600, longest=200, thresholds=(0.5, 0.7), block=128) == 4


def test_ray_engine_equals_brute_force(ray_cluster):
    assert check("ray", 2, seed=3, count=1500, longest=14, thresholds=(0.5, 0.7), block=211) == 4


def test_ray_engine_filter_output_is_byte_identical(ray_cluster, tmp_path):
    """`filter --engine ray` writes exactly the bytes of the local engine: kept and dropped files."""
    from selfinstruct import filter_dataset

    rng = random.Random(4)
    source = tmp_path / "data.jsonl"
    made = texts(rng, 3000, 16)
    source.write_text("".join(json.dumps({"instruction": text, "input": rng.choice(["", "a cat"]), "output": "x"},
                                         ensure_ascii=False) + "\n" for text in made) + "not json\n", encoding="utf-8")
    against = tmp_path / "eval.json"
    against.write_text(json.dumps([{"instruction": t, "output": "y"} for t in rng.sample(made, 60)]), encoding="utf-8")
    for key in ("instruction", "instruction+input"):
        outputs = {}
        for engine in ("local", "ray"):
            out = tmp_path / f"{engine}-{key}.jsonl"
            report = filter_dataset(source, out, against=against, key=key, engine=engine, workers=2)
            assert report.dropped["duplicate"] > 100 and report.dropped["similar_to_against"] > 0
            outputs[engine] = (out.read_bytes(), out.with_name(out.stem + ".dropped.jsonl").read_bytes())
        assert outputs["local"] == outputs["ray"]


def test_engine_and_workers_are_checked_before_anything_is_written(tmp_path):
    source = tmp_path / "data.jsonl"
    source.write_text(json.dumps({"instruction": "List three prime numbers.", "output": "2, 3, 5"}) + "\n")
    for args, message in ((["--engine", "spark"], "'spark' is not one of"), (["--workers", "0"], "--workers must be")):
        done = subprocess.run([str(SCRIPT), "filter", str(source), "-o", str(tmp_path / "c.jsonl"), *args],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 2 and message in done.stderr and "Traceback" not in done.stderr, done.stderr
        assert not (tmp_path / "c.jsonl").exists()


def test_missing_ray_is_one_line_naming_the_extra(tmp_path, monkeypatch):
    import importlib.util

    from selfinstruct import filter_dataset
    from selfinstruct.dedup.result import FilterError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    source = tmp_path / "data.jsonl"
    source.write_text(json.dumps({"instruction": "List three prime numbers.", "output": "2, 3, 5"}) + "\n")
    with pytest.raises(FilterError, match=r"pip install 'selfinstruct\[ray\]'"):
        filter_dataset(source, tmp_path / "c.jsonl", engine="ray")
    assert not (tmp_path / "c.jsonl").exists()


def test_full_width_forms_count_as_their_half_width_ones():
    """NFKC before tokenising: Ｐｙｔｈｏｎ １０ equals python 10, so it is a duplicate."""
    corpus = corpus_of([("learn python in 10 days", ""), ("learn Ｐｙｔｈｏｎ in １０ days", "")], [], False)
    got = deduplicate(corpus, 0.7)
    assert got.kept.tolist() == [True, False] and got.matches.kept_score[1] == 1.0
    assert np.array_equal(got.matches.kept_entry, [NONE, 0])
