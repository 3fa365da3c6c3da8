"""Generated tokens per second through the pipeline and through llama.cpp directly.

Goal (issue): a real `generate` run on the embedded server with the bundled model reaches
at least 0.9 of the rate llama.cpp reaches in-process on the same prompts, with the same
model, context, threads and sampling settings. Sampling is random on both sides, so they
write different amounts of text: the rates are compared, not the totals.

    python bench/bench_local_throughput.py [--lang zh|en] [-n 5]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import llama_cpp
from llama_cpp.server.types import CreateCompletionRequest

from selfinstruct import Config, generate
from selfinstruct.endpoint.client import ModelClient
from selfinstruct.endpoint.local import LocalServer, bundled_model_path

GOAL = 0.9
# Sampling settings the client does not send: the server fills in its own defaults,
# which differ from Llama.create_completion's (repeat_penalty 1.1, not 1.0).
SERVER_DEFAULTS = {name: CreateCompletionRequest.model_fields[name].default
                   for name in ("top_k", "min_p", "repeat_penalty")}


def run_pipeline(config: Config) -> tuple[list[dict], float, float, int]:
    """Run the pipeline; return its requests, start-up seconds, request seconds and tokens out.

    Request seconds run from the first request sent to the last answer received, so the
    server's start-up is left out of the rate.
    """
    requests, sent, answered = [], [], []
    complete = ModelClient.complete

    async def recording_complete(self, prompt, **params):
        requests.append({"prompt": prompt, **params})
        sent.append(time.monotonic())
        try:
            return await complete(self, prompt, **params)
        finally:
            answered.append(time.monotonic())

    ModelClient.complete = recording_complete
    started = time.monotonic()
    try:
        summary = generate(config)
    finally:
        ModelClient.complete = complete
    return requests, sent[0] - started, max(answered) - sent[0], summary["tokens_out"]


def server_threads(config: Config) -> tuple[int, int]:
    """The n_threads and n_threads_batch the embedded server is started with."""
    command = LocalServer(bundled_model_path(), ctx=config.ctx, threads=config.threads, port=0).command()
    return int(command[command.index("--n_threads") + 1]), int(command[command.index("--n_threads_batch") + 1])


def run_direct(requests: list[dict], ctx: int, threads: int, threads_batch: int) -> tuple[int, float]:
    """Send the same prompts one after another to llama.cpp in this process; return tokens and seconds.

    One at a time, as llama.cpp's server handles them; model loading is not timed.
    """
    llm = llama_cpp.Llama(model_path=str(bundled_model_path()), n_ctx=ctx, n_threads=threads,
                          n_threads_batch=threads_batch, verbose=False)
    tokens = 0
    started = time.monotonic()
    for request in requests:
        answer = llm.create_completion(request["prompt"], max_tokens=request["max_tokens"],
                                       temperature=request["temperature"], top_p=request["top_p"],
                                       stop=request.get("stop"), **SERVER_DEFAULTS)
        tokens += answer["usage"]["completion_tokens"]
    return tokens, time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lang", choices=["zh", "en"], default="zh")
    parser.add_argument("-n", "--num-instructions", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-tput-") as workdir:
        config = Config(lang=args.lang, num_instructions=args.num_instructions, output=Path(workdir) / "run",
                        local=True)
        requests, startup, pipe_seconds, pipe_tokens = run_pipeline(config)
    threads, threads_batch = server_threads(config)
    direct_tokens, direct_seconds = run_direct(requests, config.ctx, threads, threads_batch)

    pipe_rate, direct_rate = pipe_tokens / pipe_seconds, direct_tokens / direct_seconds
    ratio = pipe_rate / direct_rate
    print(f"lang {args.lang}, {args.num_instructions} instructions, concurrency {config.concurrency} "
          f"(the server answers one request at a time), n_ctx {config.ctx}, "
          f"n_threads {threads}, n_threads_batch {threads_batch}")
    print(f"{'':10}{'requests':>10}{'tokens':>10}{'seconds':>10}{'tokens/s':>10}")
    print(f"{'pipeline':10}{len(requests):>10}{pipe_tokens:>10}{pipe_seconds:>10.1f}{pipe_rate:>10.1f}")
    print(f"{'direct':10}{len(requests):>10}{direct_tokens:>10}{direct_seconds:>10.1f}{direct_rate:>10.1f}")
    print(f"ratio {ratio:.2f} (pipeline tokens/s / direct tokens/s); goal >= {GOAL}: "
          f"{'ok' if ratio >= GOAL else 'MISSED'}")
    print(f"server start-up {startup:.1f} s, not counted. Sampling is random on both sides, so token "
          f"totals differ; only the rates are compared.")


if __name__ == "__main__":
    main()
