"""A fast OpenAI-compatible endpoint for throughput benchmarks, in its own process.

It answers every chat or completion request with the tests' fake model (tests/fake_model.py),
over HTTP/1.1 keep-alive on asyncio, so that the endpoint itself costs little CPU and the
benchmark measures the client. Latency, as real APIs have it: ``--latency`` seconds plus
``--per-token`` seconds per answer token (a list of tasks takes longer than a yes/no), times a
lognormal factor of mean 1 and ``--sigma`` (0: exactly that; 1.0: a p99 about 5 times the median),
seeded. ``GET /v1/stats`` says how busy it was: requests, their mean latency, and the mean number
in flight from the first arrival to the last answer. Its chat answers
come in the seeded mix of styles real chat models write (tests/answer_styles.py), or with
``--styles clean`` exactly in the prompt's format.

    python bench/fake_endpoint.py --latency 0.5      # prints its base URL, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import random
import subprocess
import time
import urllib.request
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


class Load:
    """The integral of requests in flight over time, for the share of the client's slots kept busy."""

    def __init__(self):
        self.in_flight, self.area, self.changed, self.first, self.last = 0, 0.0, None, None, None
        self.requests, self.seconds = 0, 0.0
        self.last_arrival, self.area_at_last_arrival = None, 0.0

    def change(self, by: int) -> None:
        now = time.monotonic()
        if self.changed is not None:
            self.area += self.in_flight * (now - self.changed)
        self.in_flight += by
        self.changed, self.last = now, now
        self.first = self.first or now
        if by > 0:  # an arrival: the client still had work to send
            self.last_arrival, self.area_at_last_arrival = now, self.area

    def report(self) -> dict:
        """Totals so far; ``area`` (request-seconds in flight) and ``now`` let a caller take any window."""
        now = time.monotonic()
        area = self.area + (self.in_flight * (now - self.changed) if self.changed is not None else 0.0)
        span = (self.last - self.first) if self.first else 0.0
        return {"requests": self.requests, "mean_latency": self.seconds / max(self.requests, 1), "now": now,
                "area": area, "span": span, "mean_in_flight": self.area / span if span else 0.0,
                "first": self.first, "last_arrival": self.last_arrival,
                "area_at_last_arrival": self.area_at_last_arrival}


async def serve(latency: float, styles: str = "mixed", sigma: float = 0.0, per_token: float = 0.0,
                seed: int = 1) -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_model import FakeModel

    model = FakeModel(styles=styles)
    counter, load, rng = 0, Load(), random.Random(seed)

    def delay(text: str) -> float:
        factor = math.exp(rng.gauss(-sigma * sigma / 2, sigma)) if sigma else 1.0  # lognormal with mean 1
        return (latency + per_token * len(text.split())) * factor

    def completion(path: str, body: dict) -> tuple[bytes, str]:
        nonlocal counter
        counter += 1
        chat = path.endswith("/chat/completions")
        prompt = "\n".join(m.get("content", "") for m in body.get("messages", [])) if chat else body.get("prompt", "")
        answer = model(SimpleNamespace(prompt=prompt, endpoint="chat" if chat else "completion", body=body))
        text = getattr(answer, "text", answer)
        choice = {"index": 0, "finish_reason": "stop", "logprobs": None}
        choice.update({"message": {"role": "assistant", "content": text}} if chat else {"text": text})
        usage = {"prompt_tokens": len(prompt.split()), "completion_tokens": len(text.split())}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return json.dumps({"id": f"cmpl-{counter}", "object": "chat.completion" if chat else "text_completion",
                           "created": 0, "model": body.get("model", "m"), "choices": [choice],
                           "usage": usage}).encode(), text

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                               if line.lower().startswith("content-length:")), 0)
                body = json.loads(await reader.readexactly(length) or b"{}")
                if path.endswith("/stats"):
                    payload = json.dumps(load.report()).encode()
                else:
                    load.change(+1)
                    started = time.monotonic()
                    payload, text = completion(path, body)
                    await asyncio.sleep(delay(text))
                    load.requests += 1
                    load.seconds += time.monotonic() - started
                    load.change(-1)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                             b"Content-Length: %d\r\n\r\n%s" % (len(payload), payload))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0, backlog=1024)
    print(f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1", flush=True)
    await server.serve_forever()


class FakeEndpoint:
    """``with FakeEndpoint(0.5) as url:`` runs the endpoint in a child process."""

    def __init__(self, latency: float, styles: str = "mixed", sigma: float = 0.0, per_token: float = 0.0):
        self.latency, self.styles, self.sigma, self.per_token = latency, styles, sigma, per_token

    def __enter__(self) -> str:
        self.process = subprocess.Popen([sys.executable, __file__, "--latency", str(self.latency),
                                         "--styles", self.styles, "--sigma", str(self.sigma),
                                         "--per-token", str(self.per_token)], stdout=subprocess.PIPE, text=True)
        self.url = self.process.stdout.readline().strip()
        return self.url

    def stats(self) -> dict:
        """The endpoint's Load.report(), over HTTP."""
        with urllib.request.urlopen(self.url + "/stats", timeout=10) as answer:
            return json.loads(answer.read())

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--styles", choices=("mixed", "clean"), default="mixed")
    parser.add_argument("--sigma", type=float, default=0.0)
    parser.add_argument("--per-token", type=float, default=0.0)
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.latency, arguments.styles, arguments.sigma, arguments.per_token, arguments.seed))
