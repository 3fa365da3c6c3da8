"""`selfinstruct filter` end to end on a 52K-record Alpaca-format file.

Goal (issue 4): at most 60 s wall time and 1 GB peak memory on 2 cores. The input is
synthetic (bench/synthetic.py): realistic lengths, about 10% near-duplicates.

    python bench/bench_filter.py [--records 52000] [--lang en zh]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic  # noqa: E402


def run(records: int, lang: str, workdir: Path) -> tuple[float, float, int]:
    source = workdir / f"alpaca_{lang}_{records}.json"
    source.write_text(json.dumps(synthetic.alpaca_records(records, lang, seed=52), ensure_ascii=False, indent=2),
                      encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "selfinstruct", "filter", str(source), "-o",
                           str(workdir / f"clean_{lang}.json")], capture_output=True, text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    kept = len(json.loads((workdir / f"clean_{lang}.json").read_text(encoding="utf-8")))
    print(done.stdout.strip())
    return seconds, peak_mb, kept


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=52_000)
    parser.add_argument("--lang", nargs="+", default=["en", "zh"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for lang in args.lang:
            seconds, peak_mb, kept = run(args.records, lang, Path(tmp))
            rows.append((lang, seconds, peak_mb, kept))
    print(f"\n{'lang':<5} {'records':>8} {'kept':>7} {'wall s':>8} {'peak MB':>8}   goal: <= 60 s, <= 1024 MB")
    for lang, seconds, peak_mb, kept in rows:
        verdict = "ok" if seconds <= 60 and peak_mb <= 1024 else "MISSED"
        print(f"{lang:<5} {args.records:>8} {kept:>7} {seconds:>8.1f} {peak_mb:>8.0f}   {verdict}")


if __name__ == "__main__":
    main()
