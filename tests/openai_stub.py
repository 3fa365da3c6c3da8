"""A scripted OpenAI-compatible HTTP server for tests.

Tests run the real pipeline through the real ``openai`` client against this
server, so they need no network and no API key, and can inject the faults
(rate limits, 5xx, timeouts, dropped connections, junk bodies) that the retry
logic has to survive. Standard library only; importing it has no side effects.

    with ScriptedServer(lambda req: "hello") as srv:
        srv.script(Reply(status=429, headers={"Retry-After": "1"}))
        client = openai.OpenAI(base_url=srv.base_url, api_key="sk-test")
"""

from __future__ import annotations

import collections
import hashlib
import json
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Union

MODEL = "stub-model"

# Client went away (timeout, drop, pool closed): nothing to report.
_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
}
_ERROR_CODES = {401: "invalid_api_key", 429: "rate_limit_exceeded"}


class _Unset:
    """Marks a Reply field left at its default, so that None can be scripted."""

    def __repr__(self) -> str:
        return "UNSET"


UNSET: Any = _Unset()


@dataclass
class Reply:
    """One scripted answer: a normal completion or a fault.

    Malformed 200 answers, for the client's never-crash paths (json.dumps escapes
    non-ASCII, so a text holding a lone surrogate such as "abc\\ud800" goes out as
    the JSON escape \\ud800 and the client decodes it back to a lone surrogate):

    - null_message: chat choice has "message": null; completion choice has "text": null.
    - content: any JSON value (5, [], {}, None...) put in place of the message
      content / completion text; the default UNSET means "use text".
    - raw_body: str or bytes sent verbatim, so bytes can carry invalid UTF-8.
    - missing_usage: the body has no "usage" key at all.
    """

    text: str = ""  # completion/message content; the error message if status != 200
    finish_reason: str = "stop"  # "stop" | "length" | "content_filter"
    status: int = 200  # non-200 -> OpenAI-style error JSON body
    headers: dict = field(default_factory=dict)  # extra response headers, e.g. {"Retry-After": "1"}
    delay: float = 0.0  # seconds to wait before answering (client timeouts)
    drop: bool = False  # send headers + half the body, then close the connection
    raw_body: str | bytes | None = None  # body sent verbatim with `status` (Content-Type application/json unless overridden)
    no_choices: bool = False  # 200 with "choices": []
    prompt_tokens: int | None = None  # usage; default: word count of the prompt
    completion_tokens: int | None = None  # usage; default: word count of the texts
    null_message: bool = False  # chat: "message": null; completion: "text": null
    content: Any = UNSET  # JSON value replacing the content/text (UNSET: use `text`; None: null)
    missing_usage: bool = False  # no "usage" key in the body


@dataclass
class Request:
    """What the server received, for assertions."""

    endpoint: str  # "chat" | "completion" | "models" | "other"
    body: dict  # parsed JSON body ({} if none or not JSON)
    prompt: str  # completion prompt, or chat message contents joined with "\n"
    headers: dict = field(repr=False)  # lower-cased names; holds Authorization, so kept out of repr
    key: str = ""  # sha256 of the canonical JSON body: spots duplicate sends
    path: str = ""
    received: float = field(default_factory=time.monotonic)  # when it arrived (time.monotonic)


Answer = Union[Reply, str, list]
Responder = Callable[[Request], Answer]


def _as_replies(answer: Answer) -> list[Reply]:
    """Normalise a responder answer (Reply, str or a list of them) to a list of Replies."""
    items = answer if isinstance(answer, list) else [answer]
    replies = [Reply(text=a) if isinstance(a, str) else a for a in items]
    if not replies or not all(isinstance(r, Reply) for r in replies):
        raise TypeError(f"responder must return Reply, str or a non-empty list of them, got {answer!r}")
    return replies


def _prompt_of(endpoint: str, body: dict) -> str:
    """The text a test usually wants to match on."""
    if endpoint == "completion":
        prompt = body.get("prompt", "")
        return "\n".join(prompt) if isinstance(prompt, list) else str(prompt)
    if endpoint != "chat":
        return ""
    parts = []
    for message in body.get("messages") or []:
        content = message.get("content")
        if isinstance(content, str):
            parts.append(content)
        elif isinstance(content, list):  # content parts: keep the text ones
            parts.extend(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return "\n".join(parts)


def error_body(status: int, message: str = "") -> dict:
    """The JSON error shape the OpenAI API uses, which the SDK turns into exceptions."""
    return {
        "error": {
            "message": message or f"scripted error {status}",
            "type": _ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error"),
            "param": None,
            "code": _ERROR_CODES.get(status),
        }
    }


class ScriptedServer:
    """OpenAI-compatible server on 127.0.0.1 for tests.

    Each chat/completion request takes the next reply queued with script();
    when the queue is empty the responder answers (default: an empty string).
    """

    handler: type = None  # the request handler class; _Handler (set below)

    def __init__(self, responder: Responder | None = None):
        self.responder = responder or (lambda request: "")
        self.errors: list[BaseException] = []  # exceptions raised by the responder
        self._requests: list[Request] = []
        self._queue: collections.deque = collections.deque()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._ids = 0

    # lifecycle ------------------------------------------------------------
    def start(self) -> "ScriptedServer":
        if self._httpd is None:
            self._stopping.clear()
            self._httpd = _HTTPServer(("127.0.0.1", 0), self.handler)
            self._httpd.stub = self
            self._thread = threading.Thread(
                target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="openai-stub", daemon=True
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving; delayed replies still sleeping give up at once."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)
        self._httpd = self._thread = None

    def __enter__(self) -> "ScriptedServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._httpd is not None, "server not started"
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    # scripting and inspection ---------------------------------------------
    def script(self, *replies: Answer) -> None:
        """Queue replies/faults; they are used first, in order, before the responder."""
        with self._lock:
            self._queue.extend(replies)

    @property
    def requests(self) -> list[Request]:
        """A snapshot of every request received, in arrival order."""
        with self._lock:
            return list(self._requests)

    def count(self, predicate: Callable[[Request], bool] | None = None) -> int:
        return sum(1 for r in self.requests if predicate is None or predicate(r))

    # called from handler threads ------------------------------------------
    def _record(self, request: Request) -> None:
        with self._lock:
            self._requests.append(request)

    def _next_answer(self, request: Request) -> Answer:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return self.responder(request)

    def _next_id(self) -> int:
        with self._lock:
            self._ids += 1
            return self._ids

    def _sleep(self, seconds: float) -> bool:
        """Wait, waking at once if stop() is called; False if it was."""
        return not self._stopping.wait(seconds) if seconds > 0 else True


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default 5 drops SYNs of concurrent clients: 1 s stalls
    stub: ScriptedServer

    def handle_error(self, request, client_address) -> None:
        """Clients hanging up (timeouts, drops) are expected; anything else is a stub bug."""
        if not isinstance(sys.exc_info()[1], _DISCONNECTS):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Speaks HTTP/1.1 with Content-Length and Connection: close on every
    response, so httpx never reuses a socket the server has closed."""

    protocol_version = "HTTP/1.1"
    server_version = "openai-stub"
    timeout = 30  # never let a stuck client pin a thread forever
    server: _HTTPServer

    def log_message(self, format, *args) -> None:  # quiet, and never logs headers
        pass

    def do_GET(self) -> None:
        request, _ = self._read_request()
        if request.endpoint == "models":
            model = {"id": MODEL, "object": "model", "created": int(time.time()), "owned_by": "stub"}
            self._send_json(200, {"object": "list", "data": [model]})
        else:
            self._send_json(404, error_body(404, f"Unknown path: GET {self.path}"))

    def do_POST(self) -> None:
        request, json_ok = self._read_request()
        if request.endpoint not in ("chat", "completion"):
            return self._send_json(404, error_body(404, f"Unknown path: POST {self.path}"))
        if not json_ok:
            return self._send_json(400, error_body(400, "request body is not a JSON object"))
        if request.body.get("stream"):
            return self._send_json(400, error_body(400, "the stub does not support stream=true"))
        stub = self.server.stub
        try:
            replies = _as_replies(stub._next_answer(request))
        except Exception as exc:  # a responder bug: make it loud in the test
            stub.errors.append(exc)
            return self._send_json(500, error_body(500, f"responder raised {type(exc).__name__}: {exc}"))
        first = replies[0]
        if not stub._sleep(first.delay):
            return  # stopping: hang up without answering
        if first.raw_body is not None:
            raw = first.raw_body
            return self._send(first.status, raw if isinstance(raw, bytes) else raw.encode(), first)
        if first.status != 200:
            return self._send_json(first.status, error_body(first.status, first.text), first)
        self._send_json(200, completion_body(stub, request, replies), first)

    def _read_request(self) -> tuple[Request, bool]:
        """Read, parse and record the request; the flag says the body was a JSON object."""
        self.close_connection = True  # one request per connection, see class docstring
        path = self.path.split("?", 1)[0].rstrip("/")
        endpoint = {
            "/v1/chat/completions": "chat",
            "/v1/completions": "completion",
            "/v1/models": "models",
        }.get(path, "other")
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            body = json.loads(raw) if raw else {}
        except ValueError:
            body = None
        json_ok = isinstance(body, dict)
        body = body if json_ok else {}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        request = Request(
            endpoint=endpoint,
            body=body,
            prompt=_prompt_of(endpoint, body),
            headers={k.lower(): v for k, v in self.headers.items()},
            key=hashlib.sha256(canonical.encode()).hexdigest(),
            path=self.path,
        )
        self.server.stub._record(request)
        return request, json_ok

    def _send_json(self, status: int, obj: dict, reply: Reply | None = None) -> None:
        self._send(status, json.dumps(obj).encode(), reply)

    def _send(self, status: int, body: bytes, reply: Reply | None = None) -> None:
        """Write one response; with reply.drop, only half the body before hanging up."""
        headers = {"Content-Type": "application/json", **(reply.headers if reply else {})}
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, str(value))
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(body[: len(body) // 2] if reply and reply.drop else body)
            self.wfile.flush()
        except _DISCONNECTS:
            pass


ScriptedServer.handler = _Handler


def completion_body(stub: "ScriptedServer", request: Request, replies: list[Reply]) -> dict:
    """A chat.completion or text_completion object of the replies to a request (a batch line's body too)."""
    first = replies[0]
    n = int(request.body.get("n") or 1)
    if len(replies) == 1 and n > 1:
        replies = replies * n
    if first.no_choices:
        replies = []
    chat = request.endpoint == "chat"
    choices = []
    for i, r in enumerate(replies):
        text = r.text if r.content is UNSET else r.content
        if chat:
            message = None if r.null_message else {"role": "assistant", "content": text}
            choice = {"index": i, "message": message, "logprobs": None}
        else:
            choice = {"index": i, "text": None if r.null_message else text, "logprobs": None}
        choice["finish_reason"] = r.finish_reason
        choices.append(choice)
    prompt_tokens = first.prompt_tokens if first.prompt_tokens is not None else len(request.prompt.split())
    completion_tokens = (
        first.completion_tokens
        if first.completion_tokens is not None
        else sum(len(r.text.split()) for r in replies)
    )
    body = {
        "id": f"{'chatcmpl' if chat else 'cmpl'}-stub-{stub._next_id()}",
        "object": "chat.completion" if chat else "text_completion",
        "created": int(time.time()),
        "model": request.body.get("model") or MODEL,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    if first.missing_usage:
        del body["usage"]
    return body


def serve_in_thread(responder: Responder | None = None) -> ScriptedServer:
    """Start a ScriptedServer in a background thread; call stop() when done."""
    return ScriptedServer(responder).start()
