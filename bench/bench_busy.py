"""How busy a run keeps the endpoint when latency varies, as it does on every real API (issue 24).

For each method, concurrency C and latency (fixed, or lognormal of the same mean with sigma 0.5 and
1.0), a run bounded by a request budget of about ``--seconds`` at the ideal rate runs against
bench/fake_endpoint.py in its own process. The endpoint measures the requests it holds at each
moment; the benchmark prints

- busy: the mean number of requests in flight over C, over the whole run, and while the run still
  had requests to send ("sending": from 10% in to the last request's arrival; the ramp up and the
  drain after the budget stops a benchmark run left out, as they are in a long run);
- rate: requests per second over C / mean latency (the rate the endpoint allows);

and, for the same C and latency, a bare loop of openai SDK calls (the machine's ceiling).
Goals: busy >= 0.9 with sigma 1.0 for every method; at fixed latency, a rate >= 0.95 of the bare loop's.

    python bench/bench_busy.py [--methods alpaca self-instruct evol] [--concurrency 32 128]
                               [--sigmas 0 0.5 1.0] [--latency 2.0] [--seconds 40]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_endpoint import FakeEndpoint  # noqa: E402

from selfinstruct import Config, RunStopped, generate  # noqa: E402


class Sampler:
    """The endpoint's running totals every ``every`` seconds, for the busy share over any window."""

    def __init__(self, endpoint: FakeEndpoint, every: float = 0.25):
        self.endpoint, self.every, self.samples = endpoint, every, []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.done.wait(self.every):
            self.samples.append(self.endpoint.stats())

    def __enter__(self) -> "Sampler":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.done.set()
        self.thread.join()
        self.samples.append(self.endpoint.stats())


def busy_shares(samples: list[dict], concurrency: int) -> tuple[float, float, int, float]:
    """(busy over the whole run, busy while the client still had requests to send, requests, mean latency).

    The second leaves out the first 10% (the ramp up) and the drain after the last request arrived (the
    budget that bounds a benchmark run stops new requests there, and a long tail takes a while to come
    back; in a long run it is a small share)."""
    last = samples[-1]
    if not last["span"] or last["last_arrival"] is None:
        return 0.0, 0.0, last["requests"], last["mean_latency"]
    whole = last["area"] / last["span"] / concurrency
    begin, end = last["first"], last["last_arrival"]
    start = next((s for s in samples if s["now"] >= begin + 0.1 * (end - begin)), None)
    if start is None or start["now"] >= end:
        return whole, whole, last["requests"], last["mean_latency"]
    sending = (last["area_at_last_arrival"] - start["area"]) / (end - start["now"]) / concurrency
    return whole, sending, last["requests"], last["mean_latency"]


def run_case(method: str, concurrency: int, latency: float, sigma: float, seconds: float, lang: str,
             per_token: float) -> tuple[float, float, float, int, int]:
    """(busy whole, busy middle, rate share, requests, accepted) of a run bounded by a request budget."""
    budget = int(concurrency / latency * seconds)
    endpoint = FakeEndpoint(latency, sigma=sigma, per_token=per_token)
    with endpoint as base_url, tempfile.TemporaryDirectory() as tmp, Sampler(endpoint) as sampler:
        config = Config(lang=lang, mode=method, base_url=base_url, api_key="sk-bench", model="stub-model",
                        num_instructions=1_000_000, concurrency=concurrency, max_requests=budget,
                        output=Path(tmp) / "run", timeout=120, failure_window=0)
        try:
            generate(config, progress="off")
        except RunStopped:
            pass
        accepted = json.loads((Path(tmp) / "run" / "summary.json").read_text(encoding="utf-8"))["accepted"]
    whole, middle, requests, mean_latency = busy_shares(sampler.samples, concurrency)
    rate = requests / sampler.samples[-1]["span"] * mean_latency / concurrency if sampler.samples[-1]["span"] else 0
    return whole, middle, rate, requests, accepted


def bare_sdk(concurrency: int, latency: float, sigma: float, requests: int, per_token: float
             ) -> tuple[float, float, float]:
    """The same shares for a bare loop of openai SDK calls: what this machine's HTTP stack allows."""
    import openai

    endpoint = FakeEndpoint(latency, sigma=sigma, per_token=per_token)

    async def loop(base_url: str) -> None:
        client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0, timeout=120)
        slots = asyncio.Semaphore(concurrency)

        async def one() -> None:
            async with slots:
                await client.chat.completions.create(model="m", max_tokens=16,
                                                     messages=[{"role": "user", "content": "Input:"}])

        await asyncio.gather(*(one() for _ in range(requests)))
        await client.close()

    with endpoint as base_url, Sampler(endpoint) as sampler:
        asyncio.run(loop(base_url))
    whole, middle, done, mean_latency = busy_shares(sampler.samples, concurrency)
    span = sampler.samples[-1]["span"]
    return whole, middle, done / span * mean_latency / concurrency if span else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--methods", nargs="+", default=["alpaca", "self-instruct", "evol"])
    parser.add_argument("--concurrency", nargs="+", type=int, default=[32, 128])
    parser.add_argument("--sigmas", nargs="+", type=float, default=[0.0, 0.5, 1.0])
    parser.add_argument("--latency", type=float, default=2.0, help="mean latency in seconds")
    parser.add_argument("--per-token", type=float, default=0.0, help="seconds per answer token, before the factor")
    parser.add_argument("--seconds", type=float, default=40.0, help="about how long each run lasts at the ideal")
    parser.add_argument("--lang", default="en")
    parser.add_argument("--no-sdk", action="store_true", help="skip the bare SDK loop")
    args = parser.parse_args()
    print(f"mean latency {args.latency} s, about {args.seconds:.0f} s per run; busy = requests in flight / C")
    print(f"{'method':<14} {'C':>4} {'sigma':>5} {'requests':>8} {'accepted':>8} {'busy':>5} {'sending':>8} "
          f"{'rate':>5}   goals: busy >= 0.9 (sigma 1.0); rate >= 0.95 x bare SDK (fixed)")
    for concurrency in args.concurrency:
        for sigma in args.sigmas:
            bare = None
            if not args.no_sdk:
                bare = bare_sdk(concurrency, args.latency, sigma, int(concurrency / args.latency * args.seconds),
                                args.per_token)
                print(f"{'bare SDK':<14} {concurrency:>4} {sigma:>5.1f} {'':>8} {'':>8} {bare[0]:>5.2f} "
                      f"{bare[1]:>8.2f} {bare[2]:>5.2f}", flush=True)
            for method in args.methods:
                whole, middle, rate, requests, accepted = run_case(method, concurrency, args.latency, sigma,
                                                                   args.seconds, args.lang, args.per_token)
                goal = ""
                if sigma >= 1.0:
                    goal = "ok" if middle >= 0.9 else "MISSED"
                elif sigma == 0 and bare:
                    goal = "ok" if rate >= 0.95 * bare[2] else "MISSED"
                print(f"{method:<14} {concurrency:>4} {sigma:>5.1f} {requests:>8} {accepted:>8} {whole:>5.2f} "
                      f"{middle:>8.2f} {rate:>5.2f}   {goal}", flush=True)


if __name__ == "__main__":
    started = time.monotonic()
    main()
    print(f"{time.monotonic() - started:.0f} s in all")
