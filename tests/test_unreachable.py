"""An endpoint that cannot be reached stops a run within two attempts, in one line that names the host, the
cause and what to check; not after the whole retry schedule and the failure window (3.4 minutes before)."""

from __future__ import annotations

import socket
import threading

import pytest
from openai_stub import ScriptedServer

from helpers import KEY, invoke, run_config
from selfinstruct import RunStopped, generate


class Endpoint:
    def __init__(self, base_url):
        self.base_url = base_url


def dead_port() -> int:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def stopped_by(base_url, tmp_path, **overrides) -> str:
    config = run_config(Endpoint(base_url), tmp_path, lang="en", num_instructions=5, retry_wait=0.01, **overrides)
    with pytest.raises(RunStopped) as raised:
        generate(config)
    return str(raised.value)


@pytest.mark.parametrize("retries", [0, 6])
def test_connection_refused(tmp_path, retries):
    port = dead_port()
    reason = stopped_by(f"http://127.0.0.1:{port}/v1", tmp_path, max_retries=retries)
    assert reason.startswith(f"cannot reach 127.0.0.1:{port} (connection refused); nothing listens there")
    assert f"(endpoint http://127.0.0.1:{port}/v1)" in reason


def test_a_name_that_does_not_resolve(tmp_path):
    reason = stopped_by("http://no-such-host.invalid/v1", tmp_path)
    assert reason.startswith("cannot reach no-such-host.invalid:80 (name not resolved); check the host name")


def test_https_to_a_plain_http_server_is_a_tls_error(tmp_path):
    with ScriptedServer() as server:
        port = server.port
        reason = stopped_by(server.base_url.replace("http://", "https://"), tmp_path)
    assert reason.startswith(f"cannot reach 127.0.0.1:{port} (TLS error); check https:// or http://")


@pytest.mark.slow
def test_a_server_that_accepts_and_never_answers(tmp_path):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    held = []
    accepting = threading.Thread(target=lambda: [held.append(listener.accept()) for _ in range(64)], daemon=True)
    accepting.start()
    try:
        reason = stopped_by(f"http://127.0.0.1:{listener.getsockname()[1]}/v1", tmp_path, timeout=0.5)
    finally:
        listener.close()
    assert "(no answer within 0.5 s to connect, or 0.5 s to answer); check the address, the network" in reason


@pytest.mark.slow
def test_the_command_line_says_it_in_one_line_and_exits_4(tmp_path):
    port = dead_port()
    result = invoke("generate", "--base-url", f"http://127.0.0.1:{port}/v1", "--api-key", KEY, "--model", "m",
                    "--lang", "en", "-n", 3, "-o", tmp_path / "run", "--quiet")
    assert result.exit_code == 4, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert errors == [f"error: stopped before the target: cannot reach 127.0.0.1:{port} (connection refused); "
                      f"nothing listens there: check the host and port, and that the server is running "
                      f"(endpoint http://127.0.0.1:{port}/v1)"]
    assert "Traceback" not in result.output and KEY not in result.output


def test_a_batch_run_at_an_unreachable_endpoint_stops_the_same_way(tmp_path):
    from selfinstruct.endpoint.client import Unreachable

    port = dead_port()
    config = run_config(Endpoint(f"http://127.0.0.1:{port}/v1"), tmp_path, lang="en", num_instructions=5,
                        retry_wait=0.01, batch=True)
    with pytest.raises(Unreachable, match=rf"^cannot reach 127.0.0.1:{port} \(connection refused\)"):
        generate(config)
