"""What --batch costs and how many batches it takes, against the scripted batch server.

Runs a 5,000-task Alpaca run and a 1,000-task self-instruct run (sizes are options) through the
tests' batch server, whose lines are answered by the tests' fake model in the mixed styles of real
chat models, and prints for each: batches submitted, requests, tokens, and the cost of those tokens
at gpt-4o-mini's batch price and at its online list price. With --online each run is made again one
request at a time, for the requests and tokens an online run of the same answers sends.

    python bench/bench_batch.py                       # about a minute on 2 cores
    python bench/bench_batch.py --alpaca 500 --self-instruct 100 --online
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))
from batch_stub import BatchServer  # noqa: E402
from helpers import KeyedModel  # noqa: E402

from selfinstruct import Config, generate  # noqa: E402
from selfinstruct.endpoint.pricing import price_for  # noqa: E402

MODEL = "gpt-4o-mini"
OPENAI = "https://api.openai.com/v1"


def one_run(mode: str, n: int, batch: bool, folder: Path, per_round: int | None) -> dict:
    with BatchServer(KeyedModel()) as server:
        config = Config(lang="en", mode=mode, num_instructions=n, output=folder / f"{mode}-{batch}",
                        base_url=server.base_url, api_key="sk-bench", model=MODEL, batch=batch,
                        requests_per_round=per_round)
        started = time.monotonic()
        summary = generate(config)
        seconds = time.monotonic() - started
        batches = server.creates
    tokens_in, tokens_out = summary["tokens_in"], summary["tokens_out"]
    costs = {kind: price_for(MODEL, local=False, base_url=OPENAI, batch=kind == "batch").cost(tokens_in, tokens_out)
             for kind in ("batch", "online")}
    return {"mode": mode, "tasks": summary["accepted"], "sent": "batch" if batch else "online", "batches": batches,
            "requests": summary["requests"], "tokens_in": tokens_in, "tokens_out": tokens_out,
            "cost_batch": costs["batch"], "cost_online": costs["online"], "seconds": seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alpaca", type=int, default=5000)
    parser.add_argument("--self-instruct", type=int, default=1000)
    parser.add_argument("--requests-per-round", type=int, help="the run's setting (default: the run's default, 8)")
    parser.add_argument("--online", action="store_true", help="also run each one request at a time")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for mode, n in (("alpaca", args.alpaca), ("self-instruct", args.self_instruct)):
            for batch in ((True, False) if args.online else (True,)):
                rows.append(one_run(mode, n, batch, Path(folder), args.requests_per_round))
    if args.json:
        print(json.dumps(rows, indent=2))
        return
    print(f"{'method':<14}{'tasks':>7}  {'sent':<7}{'batches':>8}{'requests':>10}{'tokens in':>12}{'tokens out':>12}"
          f"{'$ batch':>10}{'$ online':>10}{'secs':>7}")
    for r in rows:
        batches = r["batches"] if r["sent"] == "batch" else "-"
        print(f"{r['mode']:<14}{r['tasks']:>7,}  {r['sent']:<7}{batches:>8}{r['requests']:>10,}{r['tokens_in']:>12,}"
              f"{r['tokens_out']:>12,}{r['cost_batch']:>10.2f}{r['cost_online']:>10.2f}{r['seconds']:>7.0f}")
    print(f"\ncosts: the run's tokens at {MODEL}'s batch price and online list price (the built-in table)")


if __name__ == "__main__":
    main()
