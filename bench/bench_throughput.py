"""Requests per second a run achieves against an endpoint with a fixed latency, as a share of the ideal.

Goal (issue 9): at least 0.95 of concurrency / latency at C = 32 (500 ms) and C = 128 (1 s), so a
run keeps every slot busy. For scale, it also measures a bare loop of openai SDK calls at the same
concurrency against the same endpoint: the most this machine's HTTP stack delivers. The endpoint (bench/fake_endpoint.py) is the tests' scripted server with the tests' fake
model in its own process, answering every request after exactly the latency.

    python bench/bench_throughput.py [--cases 32:0.5 128:1.0] [--seconds 40]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_endpoint import FakeEndpoint  # noqa: E402

from selfinstruct import Config, RunStopped, generate  # noqa: E402


def measure(concurrency: int, latency: float, seconds: float, lang: str) -> tuple[int, float, int]:
    """Requests sent and wall time of a run bounded by a request budget of about ``seconds`` at the ideal."""
    budget = int(concurrency / latency * seconds)
    with FakeEndpoint(latency) as base_url, tempfile.TemporaryDirectory() as tmp:
        config = Config(lang=lang, base_url=base_url, api_key="sk-bench", model="stub-model",
                        num_instructions=1_000_000, concurrency=concurrency, max_requests=budget,
                        output=Path(tmp) / "run", timeout=60)
        started = time.monotonic()
        try:
            generate(config)
        except RunStopped:
            pass
        wall = time.monotonic() - started
        summary = json.loads((Path(tmp) / "run" / "summary.json").read_text(encoding="utf-8"))
        return summary["requests"], wall, summary["accepted"]


def sdk_ceiling(concurrency: int, latency: float, requests: int) -> float:
    """Requests per second of a bare loop of openai SDK calls against the same endpoint: what this
    machine's HTTP stack allows before any selfinstruct code runs."""
    import asyncio

    import openai

    async def loop(base_url: str) -> float:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)
        slots = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with slots:
                await client.chat.completions.create(model="m", max_tokens=16,
                                                     messages=[{"role": "user", "content": "Input:"}])

        started = time.monotonic()
        await asyncio.gather(*(one() for _ in range(requests)))
        rate = requests / (time.monotonic() - started)
        await client.close()
        return rate

    with FakeEndpoint(latency) as base_url:
        return asyncio.run(loop(base_url))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["32:0.5", "128:1.0"], help="CONCURRENCY:LATENCY pairs")
    parser.add_argument("--seconds", type=float, default=40.0, help="about how long each case runs")
    parser.add_argument("--lang", default="en")
    args = parser.parse_args()
    print(f"{'C':>5} {'latency':>8} {'requests':>9} {'wall s':>7} {'req/s':>7} {'ideal':>6} {'ratio':>6} "
          f"{'accepted':>9} {'bare SDK':>9} {'its ratio':>9}   goal: ratio >= 0.95")
    for case in args.cases:
        concurrency, latency = int(case.split(":")[0]), float(case.split(":")[1])
        requests, wall, accepted = measure(concurrency, latency, args.seconds, args.lang)
        ideal = concurrency / latency
        ratio = requests / wall / ideal
        bare = sdk_ceiling(concurrency, latency, requests)
        print(f"{concurrency:>5} {latency:>7.2f}s {requests:>9} {wall:>7.1f} {requests / wall:>7.1f} {ideal:>6.0f} "
              f"{ratio:>6.2f} {accepted:>9} {bare:>9.1f} {bare / ideal:>9.2f}   {'ok' if ratio >= 0.95 else 'MISSED'}")


if __name__ == "__main__":
    main()
