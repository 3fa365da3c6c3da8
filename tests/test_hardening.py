"""What an adversarial endpoint or user could break (issue 27), over real HTTP on 127.0.0.1: a server
that trickles bytes, a judge sharing the run's --rpm, a long Retry-After, a key with a stray character,
and a signature in the base URL's query."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import openai
import pytest
from fake_model import FakeModel
from openai_stub import Reply, ScriptedServer
from helpers import invoke, run_config
from selfinstruct import Config, RunStopped, generate
from selfinstruct.endpoint.client import ModelClient
from selfinstruct.config import ConfigError
from selfinstruct.endpoint.ratelimit import MAX_PAUSE, RateLimiter
from selfinstruct.generation.session import resume_config

# a server that trickles ----------------------------------------------------------------------------


class _Trickle(BaseHTTPRequestHandler):
    """Headers at once, then one byte every 0.5 s of a body that never ends (for at most 60 s)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.arrivals.append(time.monotonic())
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "100000")
        self.end_headers()
        for _ in range(120):
            if self.server.stopping.wait(0.5):
                return
            try:
                self.wfile.write(b" ")
                self.wfile.flush()
            except OSError:  # the client hung up
                return


@pytest.fixture
def trickling():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    httpd.daemon_threads, httpd.arrivals, httpd.stopping = True, [], threading.Event()
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.stopping.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=5)


@pytest.mark.slow
def test_a_trickling_server_times_out_and_the_run_ends_by_itself(trickling, tmp_path):
    """--timeout bounds a whole attempt: each one is a `timeout` failure, and the failure rule ends the run."""
    base_url = f"http://127.0.0.1:{trickling.server_address[1]}/v1"
    run = tmp_path / "run"
    command = [sys.executable, "-m", "selfinstruct", "generate", "--lang", "en", "-n", "2", "-o", str(run),
               "--base-url", base_url, "--api-key", "sk-x", "--model", "stub-model", "--timeout", "2",
               "--max-retries", "1", "--failure-window", "2", "--concurrency", "2", "--requests-per-round", "2",
               "--quiet"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=90, env=os.environ.copy())
    assert done.returncode == 4, done.stderr
    assert time.monotonic() - started < 60  # ends by itself: 2 attempts of 2 s and a back-off, per request
    assert "Traceback" not in done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["failed_requests_by_reason"] == {"timeout": 2}
    assert len(trickling.arrivals) == 4  # each request sent twice: the attempt and its one retry


# the judge shares the run's --rpm ---------------------------------------------------------------


@pytest.mark.slow
def test_a_judge_on_the_runs_endpoint_shares_its_rpm(tmp_path):
    """--rpm 60: every request the endpoint sees, judge included, comes about a second after the last."""
    with ScriptedServer(FakeModel()) as server:
        config = run_config(server, tmp_path, mode="alpaca", lang="en", num_instructions=3, requests_per_round=1,
                            concurrency=4, rpm=60, judge=True, judge_model="judge-model", max_requests=4)
        try:
            generate(config)
        except RunStopped:
            pass
        sent = sorted(server.requests, key=lambda r: r.received)
    judged = [r for r in sent if r.body.get("model") == "judge-model"]
    assert len(sent) == 4 and len(judged) >= 2
    gaps = [later.received - earlier.received for earlier, later in zip(sent, sent[1:])]
    assert min(gaps) > 0.8, gaps


# Retry-After beyond the maximum --------------------------------------------------------------------


def _rate_limited(server, retry_after: str) -> SimpleNamespace:
    """A tenacity retry state whose attempt got a 429 with this Retry-After, through the SDK."""
    server.script(Reply(status=429, headers={"Retry-After": retry_after}))
    sdk = openai.OpenAI(base_url=server.base_url, api_key="sk-x", max_retries=0)
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    sdk.close()
    return SimpleNamespace(outcome=SimpleNamespace(exception=lambda: raised.value), attempt_number=1)


def _client(notify=None) -> ModelClient:
    return ModelClient(base_url="http://127.0.0.1:9/v1", api_key="sk-x", model="m", api="chat", timeout=5,
                       max_retries=2, retry_wait=0.01, limiter=RateLimiter(), notify=notify)


def test_retry_after_is_honoured_up_to_the_maximum_and_says_when_cut_short(server):
    lines: list[str] = []
    client = _client(lines.append)
    assert MAX_PAUSE == 600
    before = time.monotonic()
    assert client._wait(_rate_limited(server, "180")) == 180
    assert client.limiter._paused_until >= before + 180  # every request waits, as long as asked
    assert lines == []
    assert client._wait(_rate_limited(server, "900")) == 600
    assert client.limiter._paused_until >= before + 600
    assert lines == ["the endpoint asked to wait 900 s (Retry-After); waiting the maximum, 600 s"]


# a key with a stray character ----------------------------------------------------------------------

KEY = "sk-distinctive-Fake-Key-7f3a9c"


def _generate(server, out, *more, env=None):
    return invoke("generate", "--base-url", server.base_url, "--model", "stub-model", "-o", out, "--lang", "en",
                  "-n", 2, "--requests-per-round", 2, "--quiet", *more, env=env)


def test_a_key_with_a_trailing_newline_is_sent_without_it(server, tmp_path):
    result = _generate(server, tmp_path / "run", "--api-key", KEY + "\n")
    assert result.exit_code == 0, result.output
    assert server.requests and {r.headers["authorization"] for r in server.requests} == {f"Bearer {KEY}"}
    result = _generate(server, tmp_path / "env", env={"OPENAI_API_KEY": f" {KEY}\r\n"})
    assert result.exit_code == 0, result.output
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {KEY}"}


@pytest.mark.parametrize("where", ["--api-key", "OPENAI_API_KEY", "--judge-api-key"])
def test_a_key_with_a_zero_width_space_is_refused_in_one_line(server, tmp_path, where):
    bad = KEY[:10] + "\u200b" + KEY[10:]
    if where == "OPENAI_API_KEY":
        result = _generate(server, tmp_path / "run", env={"OPENAI_API_KEY": bad})
    else:
        more = ["--judge", "--judge-api-key", bad] if where == "--judge-api-key" else []
        result = _generate(server, tmp_path / "run", "--api-key", KEY if more else bad, *more)
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("error: ")
    assert where in result.output and "U+200B" in result.output and "position 11" in result.output
    assert KEY[:10] not in result.output and KEY[10:] not in result.output
    assert server.count() == 0 and not (tmp_path / "run").exists()


def test_the_python_api_and_resume_get_the_same_key_rule(server, tmp_path, monkeypatch):
    generate(run_config(server, tmp_path, lang="en", num_instructions=2, api_key=f"{KEY}\n",
                        base_url=f" {server.base_url}\n"))
    assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {KEY}"}
    with pytest.raises(ConfigError, match="--judge-api-key holds .* U\\+00A0 at position 3 of") as refused:
        Config(judge=True, judge_api_key="sk\u00a0x")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-\ufeffabcdef")
    with pytest.raises(ConfigError, match="OPENAI_API_KEY holds .* U\\+FEFF at position 4 of 10"):
        Config(lang="en", output=tmp_path / "run").resolve()
    assert "abcdef" not in str(refused.value)
    with pytest.raises(ConfigError, match="--api-key holds .* U\\+0020 at position 3"):
        resume_config(tmp_path / "run", api_key="sk key")


# a signature in the base URL's query ----------------------------------------------------------------


def test_every_query_value_of_the_base_url_stays_secret(server, tmp_path):
    """An Azure SAS signature (sig=) or a Functions key (code=) in a 404 run: nowhere in the output or
    the run directory; resuming asks for the base URL again."""
    server.responder = lambda request: Reply(status=404, text="no such deployment")
    url = f"{server.base_url}?sig=SECRETSIG123&sv=2024&code=SECRETCODE456"
    result = invoke("generate", "--base-url", url, "--api-key", KEY, "--model", "stub-model", "-o", tmp_path / "run",
                    "--lang", "en", "-n", 2, "--quiet")
    assert result.exit_code == 3, result.output
    assert server.requests and "sig=SECRETSIG123" in server.requests[0].path  # it was sent, all the same
    assert "404 from" in result.output and "sig=REDACTED" in result.output
    written = [path for path in (tmp_path / "run").rglob("*") if path.is_file()]
    assert any(path.name == "summary.json" for path in written)
    for text in [result.output] + [path.read_text(errors="replace") for path in written]:
        assert "SECRETSIG123" not in text and "SECRETCODE456" not in text
    result = invoke("resume", tmp_path / "run", "--api-key", KEY, "--quiet")
    assert result.exit_code == 2 and "pass --base-url again" in result.output
    server.responder = FakeModel()
    result = invoke("resume", tmp_path / "run", "--api-key", KEY, "--base-url", url, "--quiet")
    assert result.exit_code == 0, result.output
    assert "SECRETSIG123" not in result.output and "SECRETCODE456" not in result.output
