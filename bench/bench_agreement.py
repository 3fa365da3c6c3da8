"""Do RougeIndex and plain rouge_score make the same keep/drop decisions?

Greedy in-order dedup, as in Self-Instruct: a record is dropped if its
instruction scores > threshold (ROUGE-L F) against any earlier KEPT record.
Both sides use our tokenizer; the reference scores every pair with
rouge_score's public RougeScorer (tokens memoised, which changes no score).

    python bench/bench_agreement.py            # 5K records per language (slow: minutes)
    python bench/bench_agreement.py --quick    # 500 records per language

Exits 1 if any decision differs.
"""

import argparse
import multiprocessing
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import synthetic  # noqa: E402
from selfinstruct.text.rouge import RougeIndex, tokenize  # noqa: E402


def greedy_keep_index(instructions: list[str], threshold: float = 0.7) -> list[bool]:
    """Keep/drop decisions using RougeIndex.first_above."""
    index = RougeIndex()
    decisions = []
    for text in instructions:
        keep = index.first_above(text, threshold) is None
        if keep:
            index.add(text)
        decisions.append(keep)
    return decisions


class _MemoTokenizer:
    """Our tokenizer, remembering results: the reference re-tokenizes each kept text per pair."""

    def __init__(self):
        self.cache: dict[str, list[str]] = {}

    def tokenize(self, text: str) -> list[str]:
        tokens = self.cache.get(text)
        if tokens is None:
            tokens = self.cache[text] = tokenize(text)
        return tokens


def greedy_keep_rouge_score(instructions: list[str], threshold: float = 0.7) -> list[bool]:
    """Keep/drop decisions scoring every kept text with rouge_score's RougeScorer."""
    from rouge_score.rouge_scorer import RougeScorer

    scorer = RougeScorer(["rougeL"], tokenizer=_MemoTokenizer())
    kept: list[str] = []
    decisions = []
    for text in instructions:
        keep = all(scorer.score(old, text)["rougeL"].fmeasure <= threshold for old in kept)
        if keep:
            kept.append(text)
        decisions.append(keep)
    return decisions


def _compare(job: tuple[str, int, float]) -> dict:
    lang, records, threshold = job
    instructions = [r["instruction"] for r in synthetic.alpaca_records(records, lang, seed=0)]
    started = time.perf_counter()
    ours = greedy_keep_index(instructions, threshold)
    ours_seconds = time.perf_counter() - started
    started = time.perf_counter()
    reference = greedy_keep_rouge_score(instructions, threshold)
    reference_seconds = time.perf_counter() - started
    differ = [i for i, (a, b) in enumerate(zip(ours, reference)) if a != b]
    return {"lang": lang, "records": records, "kept_ours": sum(ours),
            "kept_reference": sum(reference), "differ": differ,
            "ours_seconds": ours_seconds, "reference_seconds": reference_seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--threshold", type=float, default=0.7)
    parser.add_argument("--quick", action="store_true", help="500 records per language")
    args = parser.parse_args()
    records = 500 if args.quick else args.records
    jobs = [(lang, records, args.threshold) for lang in ("en", "zh")]
    # One process per language: the pure-Python reference is the slow part.
    with multiprocessing.Pool(min(len(jobs), os.cpu_count() or 1)) as pool:
        results = pool.map(_compare, jobs)
    print(f"greedy dedup, threshold {args.threshold}, {records} synthetic records per language")
    print(f"{'lang':<5}{'kept (index)':>14}{'kept (rouge_score)':>20}{'differ':>8}"
          f"{'index s':>10}{'rouge_score s':>15}")
    all_same = True
    for r in results:
        print(f"{r['lang']:<5}{r['kept_ours']:>14}{r['kept_reference']:>20}{len(r['differ']):>8}"
              f"{r['ours_seconds']:>10.2f}{r['reference_seconds']:>15.1f}")
        if r["differ"]:
            all_same = False
            print(f"  first differing records: {r['differ'][:10]}")
    print("decisions identical" if all_same else "DECISIONS DIFFER")
    return 0 if all_same else 1


if __name__ == "__main__":
    sys.exit(main())
