"""`selfinstruct report` end to end on a 52K-record Alpaca-format file (the size of Alpaca's data).

Goal (issue 10): well under a minute on 2 cores. The input is synthetic (bench/synthetic.py):
realistic lengths, about 10% near-duplicates.

    python bench/bench_report.py [--records 52000] [--lang en zh]
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


def run(records: int, lang: str, workdir: Path) -> tuple[float, float]:
    source = workdir / f"alpaca_{lang}_{records}.json"
    source.write_text(json.dumps(synthetic.alpaca_records(records, lang, seed=52), ensure_ascii=False),
                      encoding="utf-8")
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "selfinstruct", "report", str(source)], capture_output=True,
                          text=True)
    seconds = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=52_000)
    parser.add_argument("--lang", nargs="+", default=["en", "zh"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [(lang, *run(args.records, lang, Path(tmp))) for lang in args.lang]
    print(f"{'lang':<5} {'records':>8} {'wall s':>8} {'peak MB':>8}   goal: well under 60 s")
    for lang, seconds, peak_mb in rows:
        print(f"{lang:<5} {args.records:>8} {seconds:>8.1f} {peak_mb:>8.0f}   {'ok' if seconds < 45 else 'MISSED'}")


if __name__ == "__main__":
    main()
