"""A scripted Batch API (files and batches) on 127.0.0.1, on top of the scripted chat server.

Batches run asynchronously, a line at a time, each line answered by the same responder that answers
online requests (so the mixed answer styles, the faults a Reply scripts, and KeyedModel's answers
come through a batch as they come online). It can do what providers do to batch users:

- ``size_limit``: refuse an input file over that many bytes (413);
- ``refuse_submits``: answer 429 (Retry-After 0) to that many batch creations;
- ``expire_after``: end the next batch as expired after that many lines (the rest: batch_expired);
- ``lose``: answer 404 for the batch created n-th (1-based) when it is polled;
- ``omit_lines``: leave that many answered lines out of the next completed batch's output file;
- ``line_delay``: seconds per line; ``validating``: seconds before a batch starts;
- ``upload_delay``, ``create_delay``: seconds an upload (before the file is kept) and a batch creation (after
  the batch is made, before the answer) take: a client killed then has a batch it never heard of;
- a Reply with a status other than 200 makes that line a failed one (in the error file).

    with BatchServer(KeyedModel()) as srv: ...  # srv.base_url, srv.batches, srv.uploads
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import threading
import time

from openai_stub import Reply, Request, ScriptedServer, _as_replies, _Handler, _prompt_of, completion_body, error_body

FILE_PATH, BATCH_PATH = "/v1/files", "/v1/batches"


class BatchServer(ScriptedServer):
    def __init__(self, responder=None, *, size_limit: int | None = None, refuse_submits: int = 0,
                 expire_after: int | None = None, lose: tuple[int, ...] = (), line_delay: float = 0.0,
                 validating: float = 0.05, upload_delay: float = 0.0, create_delay: float = 0.0,
                 omit_lines: int = 0):
        super().__init__(responder)
        self.size_limit, self.refuse_submits, self.expire_after = size_limit, refuse_submits, expire_after
        self.lose, self.line_delay, self.validating = set(lose), line_delay, validating
        self.upload_delay, self.create_delay, self.omit_lines = upload_delay, create_delay, omit_lines
        self.upload_started = self.create_started = 0
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}  # id -> the batch object, as the API shows it
        self.uploads = self.creates = self.refused_files = 0
        self._numbers = itertools.count(1)
        self._cancel: set[str] = set()
        self._workers: list[threading.Thread] = []

    handler: type = None  # _BatchHandler, set below

    def batch_lines(self) -> int:
        """Requests in every batch created so far."""
        with self._lock:
            return sum(b["request_counts"]["total"] for b in self.batches.values())

    # -- the endpoints (called from handler threads) ------------------------------------------

    def upload(self, data: bytes, purpose: str) -> tuple[int, dict]:
        with self._lock:
            self.upload_started += 1
        self._sleep(self.upload_delay)
        with self._lock:
            self.uploads += 1
            if self.size_limit is not None and len(data) > self.size_limit:
                self.refused_files += 1
                return 413, error_body(413, f"file size {len(data)} exceeds the limit of {self.size_limit} bytes")
            file_id = f"file-{next(self._numbers)}"
            self.files[file_id] = data
        return 200, _file_object(file_id, len(data), purpose)

    def create(self, body: dict) -> tuple[int, dict]:
        with self._lock:
            self.create_started += 1
            if self.refuse_submits:
                self.refuse_submits -= 1
                return 429, error_body(429, "Enqueued token limit reached; try again later")
            if body.get("input_file_id") not in self.files:
                return 400, error_body(400, f"no file {body.get('input_file_id')!r}")
            self.creates += 1
            number = self.creates
            lines = self.files[body["input_file_id"]].splitlines()
            batch = {"id": f"batch_{next(self._numbers)}", "object": "batch", "endpoint": body.get("endpoint"),
                     "errors": None, "input_file_id": body["input_file_id"],
                     "completion_window": body.get("completion_window"), "status": "validating",
                     "output_file_id": None, "error_file_id": None, "created_at": int(time.time()),
                     "metadata": body.get("metadata"),
                     "request_counts": {"total": len(lines), "completed": 0, "failed": 0}}
            self.batches[batch["id"]] = batch
            expire, self.expire_after = self.expire_after, None
            if number in self.lose:
                batch["lost"] = True
        worker = threading.Thread(target=self._work, args=(batch, lines, expire), daemon=True)
        self._workers.append(worker)
        worker.start()
        self._sleep(self.create_delay)
        return 200, self._shown(batch)

    def retrieve(self, batch_id: str, cancel: bool = False) -> tuple[int, dict]:
        """A batch as the API shows it (404 for one it never made or has lost); ``cancel``: asked to cancel."""
        with self._lock:
            batch = self.batches.get(batch_id)
            if batch is None or batch.get("lost"):
                return 404, error_body(404, f"No batch found with id '{batch_id}'")
            if cancel and batch["status"] not in ("completed", "expired", "cancelled", "failed"):
                batch["status"] = "cancelling"
                self._cancel.add(batch_id)
            return 200, self._shown(batch)

    def listing(self) -> tuple[int, dict]:
        with self._lock:
            data = [self._shown(b) for b in reversed(list(self.batches.values())) if not b.get("lost")]
        return 200, {"object": "list", "data": data, "has_more": False,
                     "first_id": data[0]["id"] if data else None, "last_id": data[-1]["id"] if data else None}

    @staticmethod
    def _shown(batch: dict) -> dict:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in batch.items() if k != "lost"}

    # -- running a batch ----------------------------------------------------------------------

    def _work(self, batch: dict, lines: list[bytes], expire: int | None) -> None:
        if not self._sleep(self.validating):
            return
        with self._lock:
            if batch["status"] == "validating":
                batch["status"] = "in_progress"
        output, errors, ended = [], [], None
        for number, raw in enumerate(lines):
            with self._lock:
                if batch["id"] in self._cancel:
                    ended = ("cancelled", "batch_cancelled")
            if ended is None and expire is not None and number >= expire:
                ended = ("expired", "batch_expired")
            line = json.loads(raw)
            if ended:
                errors.append({"id": f"batch_req_{number}", "custom_id": line["custom_id"], "response": None,
                               "error": {"code": ended[1], "message": "not run before the batch ended"}})
                continue
            if not self._sleep(self.line_delay):
                return
            ok, entry = self._answer(line, number)
            (output if ok else errors).append(entry)
            with self._lock:
                batch["request_counts"]["completed" if ok else "failed"] += 1
        with self._lock:
            batch["status"] = "finalizing"
            if not ended and self.omit_lines:
                output, self.omit_lines = output[self.omit_lines:], 0
        self._sleep(0.02)
        with self._lock:
            for kind, entries in (("output_file_id", output), ("error_file_id", errors)):
                if entries:
                    file_id = f"file-{next(self._numbers)}"
                    self.files[file_id] = "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in entries).encode()
                    batch[kind] = file_id
            batch["status"] = ended[0] if ended else "completed"

    def _answer(self, line: dict, number: int) -> tuple[bool, dict]:
        endpoint = "chat" if line["url"].endswith("/chat/completions") else "completion"
        body = line["body"]
        request = Request(endpoint=endpoint, body=body, prompt=_prompt_of(endpoint, body), headers={},
                          key=line["custom_id"], path="batch:" + line["url"])
        self._record(request)
        try:
            replies = _as_replies(self._next_answer(request))
        except Exception as exc:  # a responder bug: a failed line, loud in the test, never a batch that hangs
            self.errors.append(exc)
            replies = _as_replies(Reply(status=500, text=f"responder raised {type(exc).__name__}: {exc}"))
        first = replies[0]
        entry = {"id": f"batch_req_{number}", "custom_id": line["custom_id"], "error": None}
        if first.status != 200:
            entry["response"] = {"status_code": first.status, "body": error_body(first.status, first.text)}
            return False, entry
        entry["response"] = {"status_code": 200, "body": completion_body(self, request, replies)}
        return True, entry


class _BatchHandler(_Handler):
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        stub: BatchServer = self.server.stub
        if path == BATCH_PATH:
            return self._answer_json(*stub.listing())
        if path.startswith(BATCH_PATH + "/"):
            return self._answer_json(*stub.retrieve(path.rsplit("/", 1)[1]))
        if path.startswith(FILE_PATH + "/") and path.endswith("/content"):
            self.close_connection = True
            data = stub.files.get(path.split("/")[3])
            if data is None:
                return self._answer_json(404, error_body(404, "no such file"))
            return self._send(200, data)
        return super().do_GET()

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0].rstrip("/")
        stub: BatchServer = self.server.stub
        if path == FILE_PATH:
            self.close_connection = True
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            fields = _form_fields(self.headers.get("Content-Type", ""), raw)
            return self._answer_json(*stub.upload(fields.get("file", b""), fields.get("purpose", b"").decode()))
        if path == BATCH_PATH:
            request, ok = self._read_request()
            return self._answer_json(*stub.create(request.body))
        if path.startswith(BATCH_PATH + "/") and path.endswith("/cancel"):
            self._read_request()
            return self._answer_json(*stub.retrieve(path.split("/")[3], cancel=True))
        return super().do_POST()

    def _answer_json(self, status: int, body: dict) -> None:
        headers = {"Retry-After": "0"} if status == 429 else {}
        self._send(status, json.dumps(body).encode(), _Headers(headers))


class _Headers:
    """What _send reads of a Reply: extra headers, and no half-sent body."""

    def __init__(self, headers: dict):
        self.headers, self.drop = headers, False


BatchServer.handler = _BatchHandler


def _form_fields(content_type: str, raw: bytes) -> dict[str, bytes]:
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()}


def _file_object(file_id: str, size: int, purpose: str) -> dict:
    return {"id": file_id, "object": "file", "bytes": size, "created_at": int(time.time()),
            "filename": f"{file_id}.jsonl", "purpose": purpose, "status": "processed"}
