"""RougeIndex must give rouge_score's ROUGE-L F-measure exactly, only faster."""

import os
import random
import sys

import pytest
from rouge_score.rouge_scorer import RougeScorer

from selfinstruct.text.rouge import Match, RougeIndex, Tokenizer, f_measure, rouge_l, tokenize

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")
sys.path.insert(0, BENCH)

import synthetic  # noqa: E402
from bench_agreement import greedy_keep_index, greedy_keep_rouge_score  # noqa: E402

SCORER = RougeScorer(["rougeL"], tokenizer=Tokenizer())


def reference(target: str, prediction: str) -> float:
    return SCORER.score(target, prediction)["rougeL"].fmeasure


def brute_force(pool: list[str], query: str) -> list[tuple[float, int]]:
    """(score, index) of every entry scoring > 0, best first, ties by lower index."""
    scored = [(reference(text, query), i) for i, text in enumerate(pool)]
    return sorted(((s, i) for s, i in scored if s > 0), key=lambda item: (-item[0], item[1]))


def synthetic_texts(n: int, seed: int) -> list[str]:
    half = n // 2
    return (synthetic.instructions(half, "en", seed=seed, near_dup_fraction=0.3)
            + synthetic.instructions(n - half, "zh", seed=seed, near_dup_fraction=0.3))


# --- tokenisation ---------------------------------------------------------------

def test_tokenize_english_lowercases_and_drops_punctuation():
    assert tokenize("Write a POEM, about the sea!") == ["write", "a", "poem", "about", "the", "sea"]
    assert tokenize("snake_case -- e-mail...") == ["snake", "case", "e", "mail"]


def test_tokenize_numbers():
    assert tokenize("Give 10 tips, 3.14 and 2024") == ["give", "10", "tips", "3", "14", "and", "2024"]


def test_tokenize_chinese_is_one_token_per_character():
    assert tokenize("请写一首诗。") == ["请", "写", "一", "首", "诗"]


def test_tokenize_mixed_chinese_english():
    assert tokenize("用Python写一个函数，返回3个数") == [
        "用", "python", "写", "一", "个", "函", "数", "返", "回", "3", "个", "数"]


def test_tokenize_kana_and_hangul_per_character():
    assert tokenize("カタカナ한국어") == ["カ", "タ", "カ", "ナ", "한", "국", "어"]


def test_tokenize_punctuation_only():
    assert tokenize("，。！？ ... --- ___") == []
    assert tokenize("") == []


def test_identical_chinese_scores_one_with_our_tokenizer_but_zero_by_default():
    text = "请写一首关于秋天的诗。"
    assert reference(text, text) == 1.0
    # Why we ship a tokenizer: rouge_score's default keeps only [a-z0-9].
    default = RougeScorer(["rougeL"]).score(text, text)["rougeL"].fmeasure
    assert default == 0.0


# --- rouge_l --------------------------------------------------------------------

def test_rouge_l_equals_rouge_score_on_random_token_lists():
    rng = random.Random(1234)
    for _ in range(3000):
        alphabet = [f"w{i}" for i in range(rng.randint(1, 8))]  # small: many ties
        a = [rng.choice(alphabet) for _ in range(rng.randint(0, 25))]
        b = [rng.choice(alphabet) for _ in range(rng.randint(0, 25))]
        expected = reference(" ".join(a), " ".join(b))
        assert rouge_l(a, b) == expected
        assert rouge_l(b, a) == expected


def exact_point_seven_cases() -> list[tuple[int, int, int]]:
    """(lcs, len_a, len_b) with 2*lcs/(la+lb) = 0.7 exactly but rouge_score's F != 0.7."""
    cases = []
    for la in range(1, 31):
        for lb in range(1, 31):
            lcs = 7 * (la + lb) / 20
            if lcs == int(lcs) and 0 < lcs <= min(la, lb) and f_measure(int(lcs), la, lb) != 0.7:
                cases.append((int(lcs), la, lb))
    return cases


def test_exact_point_seven_rounding_matches_rouge_score():
    cases = exact_point_seven_cases()
    assert (7, 7, 13) in cases  # F rounds to 0.7000000000000001: rouge_score says > 0.7
    for lcs, la, lb in cases:
        a = [f"t{i}" for i in range(la)]
        b = a[:lcs] + [f"u{i}" for i in range(lb - lcs)]
        expected = reference(" ".join(a), " ".join(b))
        assert expected != 2 * lcs / (la + lb)
        assert rouge_l(a, b) == expected
        index = RougeIndex([" ".join(b)])
        match = index.first_above(" ".join(a), 0.7)
        assert (match is not None) == (expected > 0.7)
        assert index.max_similarity(" ".join(a)) == expected


# --- RougeIndex against brute force ------------------------------------------------

def assert_index_matches(index: RougeIndex, pool: list[str], query: str) -> None:
    expected = brute_force(pool, query)
    best = expected[0][0] if expected else 0.0
    assert index.max_similarity(query) == best
    assert [(m.score, m.index) for m in index.most_similar(query, k=5)] == expected[:5]
    for threshold in (0.3, 0.5, 0.7):
        match = index.first_above(query, threshold)
        if best > threshold:
            assert match is not None and match.score > threshold
            assert match.score == reference(pool[match.index], query)
            assert match.text == pool[match.index]
        else:
            assert match is None


@pytest.mark.slow
def test_index_matches_rouge_score_on_synthetic_text():
    texts = synthetic_texts(360, seed=7)
    rng = random.Random(7)
    rng.shuffle(texts)
    pool, queries = texts[:300], texts[300:]
    index = RougeIndex(pool)
    for query in queries + rng.sample(pool, 10):
        assert_index_matches(index, pool, query)


@pytest.mark.slow
def test_index_matches_brute_force_on_a_larger_pool():
    # rouge_l is checked against rouge_score above; this covers more pruning paths.
    texts = synthetic_texts(4100, seed=3)
    pool, queries = texts[:2000] + texts[2050:4050], texts[2000:2050] + texts[4050:]
    index = RougeIndex(pool)
    pool_tokens = [tokenize(t) for t in pool]
    for query in queries:
        query_tokens = tokenize(query)
        scored = [(rouge_l(query_tokens, t), i) for i, t in enumerate(pool_tokens)]
        expected = sorted(((s, i) for s, i in scored if s > 0), key=lambda x: (-x[0], x[1]))
        assert index.max_similarity(query) == expected[0][0]
        assert [(m.score, m.index) for m in index.most_similar(query, k=10)] == expected[:10]
        assert (index.first_above(query, 0.7) is not None) == (expected[0][0] > 0.7)


def test_ties_go_to_the_lower_index():
    rng = random.Random(5)
    words = ["red", "green", "blue", "cat"]
    pool = [" ".join(rng.choice(words) for _ in range(rng.randint(1, 6))) for _ in range(300)]
    index = RougeIndex(pool)
    for _ in range(40):
        query = " ".join(rng.choice(words) for _ in range(rng.randint(1, 6)))
        expected = brute_force(pool, query)
        assert [(m.score, m.index) for m in index.most_similar(query, k=7)] == expected[:7]
        assert index.max_similarity(query) == expected[0][0]


def test_incremental_add_matches_brute_force():
    texts = synthetic_texts(120, seed=11)
    index = RougeIndex()
    pool = []
    for i, text in enumerate(texts):
        if i % 10 == 0:
            assert_index_matches(index, pool, text)
        assert index.add(text) == i
        pool.append(text)
        assert len(index) == i + 1
        assert index.texts[i] == text
    assert index.texts == texts


def test_duplicate_entries():
    index = RougeIndex(["write a poem"] * 5 + ["write a song"])
    assert [m.index for m in index.most_similar("Write a poem!", k=3)] == [0, 1, 2]
    assert index.most_similar("write a poem", k=1) == [Match(0, "write a poem", 1.0)]


def test_empty_pool():
    index = RougeIndex()
    assert len(index) == 0
    assert index.max_similarity("write a poem") == 0.0
    assert index.most_similar("write a poem") == []
    assert index.first_above("write a poem", 0.7) is None


def test_empty_and_punctuation_only_queries_and_entries():
    index = RougeIndex(["write a poem", "", "。！？", "请写一首诗"])
    for query in ("", "   ", "。，！", "..."):
        assert index.max_similarity(query) == 0.0
        assert index.most_similar(query) == []
        assert index.first_above(query, 0.0) is None
    assert [m.index for m in index.most_similar("写诗", k=10)] == [3]


def test_unknown_tokens_count_in_length():
    index = RougeIndex(["write a poem"])
    query = "write a poem zzz qqq"
    assert index.max_similarity(query) == reference("write a poem", query)


def test_threshold_at_or_above_one_finds_nothing():
    index = RougeIndex(["write a poem"])
    assert index.first_above("write a poem", 1.0) is None
    assert index.first_above("write a poem", 0.999) == Match(0, "write a poem", 1.0)


# --- greedy dedup agreement (bench/bench_agreement.py) -------------------------------

@pytest.mark.slow
@pytest.mark.parametrize("lang", ["en", "zh"])
def test_greedy_dedup_agrees_with_rouge_score(lang):
    records = synthetic.alpaca_records(300, lang, seed=2, near_dup_fraction=0.3)
    instructions = [r["instruction"] for r in records]
    ours = greedy_keep_index(instructions)
    assert ours == greedy_keep_rouge_score(instructions)
    assert 0 < sum(ours) < len(ours)  # the sample really has near-duplicates


# --- the synthetic generator ----------------------------------------------------------

def test_synthetic_is_deterministic_and_realistic_length():
    assert synthetic.instructions(50, "zh", seed=4) == synthetic.instructions(50, "zh", seed=4)
    assert synthetic.instructions(50, "en", seed=4) != synthetic.instructions(50, "en", seed=5)
    en = [len(t.split()) for t in synthetic.instructions(2000, "en", seed=1)]
    zh = [len(t) for t in synthetic.instructions(2000, "zh", seed=1)]
    assert 8 <= sorted(en)[len(en) // 2] <= 30
    assert 10 <= sorted(zh)[len(zh) // 2] <= 50
    record = synthetic.alpaca_records(1, "en", seed=0)[0]
    assert set(record) == {"instruction", "input", "output"}


def test_full_width_forms_equal_half_width_ones():
    """NFKC before tokenising: Ｐｙｔｈｏｎ is Python, １０ is 10, in tokens and in every score."""
    assert tokenize("用Ｐｙｔｈｏｎ写１０行代码") == tokenize("用Python写10行代码")
    assert tokenize("Ｐｙｔｈｏｎ", normalize=False) == ["ｐｙｔｈｏｎ"]
    index = RougeIndex(["用Python写10行代码"])
    assert index.max_similarity("用Ｐｙｔｈｏｎ写１０行代码") == 1.0
    assert RougeIndex(["用Python写10行代码"], normalize=False).max_similarity("用Ｐｙｔｈｏｎ写１０行代码") < 1.0
    assert index.max_scores(["用Ｐｙｔｈｏｎ写１０行代码"]) == [1.0]
