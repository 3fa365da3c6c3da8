"""Write a synthetic Alpaca-format dataset (bench/synthetic.py) for trying and benchmarking `filter`.

    python bench/make_dataset.py alpaca_52k.json --records 52000 --lang en

Records are written one at a time (a JSON array, or JSONL for a .jsonl name); with ``--lang mixed``
they are also made one at a time, so files of millions of records need little memory. About 10%
are near-duplicates of earlier records.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import synthetic  # noqa: E402


def write(path: Path, records: int, lang: str, seed: int) -> None:
    lines = path.suffix == ".jsonl"
    with path.open("w", encoding="utf-8") as out:
        out.write("" if lines else "[\n")
        made = synthetic.alpaca_records(records, lang, seed=seed) if lang != "mixed" else \
            synthetic.stream_alpaca_records(records, lang, seed=seed)
        for i, record in enumerate(made):
            text = json.dumps(record, ensure_ascii=False)
            out.write(text + "\n" if lines else ("" if i == 0 else ",\n") + text)
        out.write("" if lines else "\n]\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    parser.add_argument("--records", type=int, default=52_000)
    parser.add_argument("--lang", choices=("en", "zh", "mixed"), default="en",
                        help="mixed: English and Chinese records at random, written as they are made (any size)")
    parser.add_argument("--seed", type=int, default=52)
    args = parser.parse_args()
    write(args.output, args.records, args.lang, args.seed)
    print(f"wrote {args.records} records to {args.output}")


if __name__ == "__main__":
    main()
