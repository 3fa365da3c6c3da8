"""A fast OpenAI-compatible endpoint for throughput benchmarks, in its own process.

It answers every chat or completion request after exactly ``--latency`` seconds with the
tests' fake model (tests/fake_model.py), over HTTP/1.1 keep-alive on asyncio, so that
the endpoint itself costs little CPU and the benchmark measures the client. Its chat answers
come in the seeded mix of styles real chat models write (tests/answer_styles.py), or with
``--styles clean`` exactly in the prompt's format.

    python bench/fake_endpoint.py --latency 0.5      # prints its base URL, serves until killed
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parent.parent


async def serve(latency: float, styles: str = "mixed") -> None:
    sys.path.insert(0, str(ROOT / "tests"))
    from fake_model import FakeModel

    model = FakeModel(styles=styles)
    counter = 0

    def completion(path: str, body: dict) -> bytes:
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
                           "usage": usage}).encode()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1]
                length = next((int(line.split(":", 1)[1]) for line in lines[1:]
                               if line.lower().startswith("content-length:")), 0)
                body = json.loads(await reader.readexactly(length) or b"{}")
                await asyncio.sleep(latency)
                payload = completion(path, body)
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

    def __init__(self, latency: float, styles: str = "mixed"):
        self.latency, self.styles = latency, styles

    def __enter__(self) -> str:
        self.process = subprocess.Popen([sys.executable, __file__, "--latency", str(self.latency),
                                         "--styles", self.styles], stdout=subprocess.PIPE, text=True)
        return self.process.stdout.readline().strip()

    def __exit__(self, *exc) -> None:
        self.process.kill()
        self.process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.5)
    parser.add_argument("--styles", choices=("mixed", "clean"), default="mixed")
    arguments = parser.parse_args()
    asyncio.run(serve(arguments.latency, arguments.styles))
