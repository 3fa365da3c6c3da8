"""Per-candidate time of exact max ROUGE-L against a pool: RougeIndex vs rouge_score.

For English and Chinese synthetic instructions (bench/synthetic.py) and pools
of 1K, 10K and 50K, in the same run:

* ours: RougeIndex.max_similarity and first_above(0.7) on every candidate;
* rouge_score brute force: RougeScorer(["rougeL"], tokenizer=Tokenizer()).score
  against every pool entry, on a few candidates (it takes seconds each at 50K),
  over the FULL pool, no extrapolation; its results are checked to equal ours;
* "pre-tokenized": the same brute force with tokens computed once per text and
  rouge_score's internal _score_lcs, as Alpaca's generator does; a stronger baseline.

Candidates are the items generated right after the pool, so about 10% are
near-duplicates of pool items, as in a real Self-Instruct run.

    python bench/bench_similarity.py           # full run, a few minutes
    python bench/bench_similarity.py --quick   # small pools, seconds
"""

import argparse
import os
import platform
import statistics
import sys
import time
import tracemalloc

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import rapidfuzz  # noqa: E402
from rouge_score import rouge_scorer  # noqa: E402

import synthetic  # noqa: E402
from selfinstruct.text.rouge import RougeIndex, Tokenizer, tokenize  # noqa: E402

THRESHOLD = 0.7
REPEATS = 3  # each candidate is timed this many times, keeping the fastest


def time_per_candidate(function, candidates: list[str]) -> list[float]:
    """Milliseconds per candidate: the fastest of REPEATS runs, to see past machine noise."""
    times = []
    for text in candidates:
        fastest = float("inf")
        for _ in range(REPEATS):
            started = time.perf_counter()
            function(text)
            fastest = min(fastest, time.perf_counter() - started)
        times.append(fastest * 1e3)
    return times


def brute_force(pool: list[str], candidates: list[str]) -> tuple[list[float], list[float]]:
    """(ms per candidate, max score per candidate) scoring the whole pool with rouge_score."""
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=Tokenizer())
    times, maxima = [], []
    for text in candidates:
        started = time.perf_counter()
        best = max(scorer.score(entry, text)["rougeL"].fmeasure for entry in pool)
        times.append((time.perf_counter() - started) * 1e3)
        maxima.append(best)
    return times, maxima


def brute_force_pretokenized(pool: list[str], candidates: list[str]) -> list[float]:
    """ms per candidate with tokens computed once (not timed), Alpaca-style."""
    pool_tokens = [tokenize(entry) for entry in pool]
    times = []
    for text in candidates:
        tokens = tokenize(text)
        started = time.perf_counter()
        max(rouge_scorer._score_lcs(entry, tokens).fmeasure for entry in pool_tokens)
        times.append((time.perf_counter() - started) * 1e3)
    return times


def build(pool: list[str], measure_memory: bool) -> tuple[RougeIndex, float, float | None]:
    """The index, its build time in seconds, and its memory in MB (traced separately)."""
    started = time.perf_counter()
    index = RougeIndex(pool)
    seconds = time.perf_counter() - started
    megabytes = None
    if measure_memory:
        tracemalloc.start()
        traced = RougeIndex(pool)
        megabytes = tracemalloc.get_traced_memory()[0] / 1e6
        tracemalloc.stop()
        del traced
    return index, seconds, megabytes


def p95(values: list[float]) -> float:
    return float(np.quantile(values, 0.95))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="pools of 1K and 5K, fewer candidates")
    parser.add_argument("--candidates", type=int, default=300, help="candidates timed for ours")
    parser.add_argument("--langs", default="en,zh")
    args = parser.parse_args()
    if args.quick:
        sizes, brute_counts, candidate_count = [1000, 5000], {1000: 5, 5000: 2}, 100
    else:
        sizes, brute_counts = [1000, 10000, 50000], {1000: 20, 10000: 5, 50000: 3}
        candidate_count = args.candidates

    print(f"python {platform.python_version()}, numpy {np.__version__}, rapidfuzz "
          f"{rapidfuzz.__version__}, {os.cpu_count()} cores, load average at start "
          f"{os.getloadavg()[0]:.2f}")
    print(f"ours: {candidate_count} candidates, each timed {REPEATS}x keeping the fastest; "
          "rouge_score: n candidates, once each, whole pool (no extrapolation)")
    print()
    header = (f"{'lang':<5}{'pool':>7}{'build s':>9}{'MB':>6}{'max_sim med':>13}{'p95':>7}"
              f"{'first_above med':>17}{'p95':>7}{'rouge_score ms':>16}{'n':>3}"
              f"{'pretok ms':>11}{'ratio':>9}{'ratio pretok':>14}")
    print(header)
    print("-" * len(header))
    all_exact = True
    for lang in args.langs.split(","):
        texts = synthetic.instructions(max(sizes) + candidate_count, lang, seed=0)
        candidates = texts[max(sizes):]
        for size in sizes:
            pool = texts[:size]
            index, build_seconds, megabytes = build(pool, measure_memory=size == max(sizes))
            ours_max = time_per_candidate(index.max_similarity, candidates)
            ours_first = time_per_candidate(lambda t: index.first_above(t, THRESHOLD), candidates)
            few = candidates[:brute_counts[size]]
            brute_times, brute_maxima = brute_force(pool, few)
            pretok_times = brute_force_pretokenized(pool, few)
            exact = brute_maxima == [index.max_similarity(t) for t in few]
            all_exact &= exact
            ours_median = statistics.median(ours_max)
            brute_median = statistics.median(brute_times)
            pretok_median = statistics.median(pretok_times)
            memory = f"{megabytes:.0f}" if megabytes is not None else "-"
            print(f"{lang:<5}{size:>7}{build_seconds:>9.2f}{memory:>6}"
                  f"{ours_median:>13.3f}{p95(ours_max):>7.3f}"
                  f"{statistics.median(ours_first):>17.3f}{p95(ours_first):>7.3f}"
                  f"{brute_median:>16.1f}{len(few):>3}{pretok_median:>11.1f}"
                  f"{brute_median / ours_median:>9.0f}{pretok_median / ours_median:>14.0f}"
                  + ("" if exact else "  MISMATCH"))
        maxima = [index.max_similarity(t) for t in candidates]
        print(f"{'':<5}candidates' max score vs the {max(sizes)} pool: median "
              f"{statistics.median(maxima):.3f}, above {THRESHOLD}: "
              f"{sum(m > THRESHOLD for m in maxima) / len(maxima):.0%}")
    print()
    print("times in ms per candidate; ratio = rouge_score median / ours (max_sim) median")
    print("rouge_score maxima equal ours exactly" if all_exact else "MISMATCH against rouge_score")
    return 0 if all_exact else 1


if __name__ == "__main__":
    sys.exit(main())
