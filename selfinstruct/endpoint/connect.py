"""From a resolved config to an endpoint to ask: its client, and the embedded server when it is local.

One place starts the embedded llama.cpp server and builds clients, for `generate` and `filter --judge`.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from selfinstruct.config import Config
from selfinstruct.endpoint.batch_api import BatchAPI
from selfinstruct.endpoint.client import ModelClient
from selfinstruct.endpoint.local import LocalServer, bundled_model_path, check_gguf
from selfinstruct.endpoint.ratelimit import RateLimiter


def local_model_path(config: Config) -> Path:
    """The GGUF the embedded server will run, checked before anything is written."""
    if config.local_model is not None:
        return check_gguf(config.local_model)
    return bundled_model_path()


# The embedded llama.cpp server answers one request at a time; two in flight keep it busy between answers.
# More only wait in its queue, where, behind a dozen others, a request outlasts --timeout and is sent again.
LOCAL_SLOTS = 2


def fit_to_local(config: Config) -> tuple[Config, str | None]:
    """A local run's concurrency, cut to what the embedded server serves, and the line that says so."""
    if not config.local or config.concurrency <= LOCAL_SLOTS:
        return config, None
    return replace(config, concurrency=LOCAL_SLOTS), (
        f"the embedded server answers one request at a time: requests go {LOCAL_SLOTS} at a time, not "
        f"--concurrency {config.concurrency} (more would wait in its queue until they time out)")


def served(stack: ExitStack, config: Config, log_path: Path, model_path: Path | None = None) -> Config:
    """The config pointed at its endpoint: for a local one, the embedded server started here (and
    stopped when ``stack`` closes) with its log at ``log_path``; any other is returned as it is."""
    if not config.local:
        return config
    server = stack.enter_context(LocalServer(model_path or local_model_path(config), ctx=config.ctx,
                                             threads=config.threads, log_path=log_path))
    return replace(config, base_url=server.base_url)


def model_client(config: Config, limiter: RateLimiter | None = None, secrets: list[str] | None = None,
                 notify: Callable[[str], None] | None = None) -> ModelClient:
    """The client of a resolved config's endpoint and model, with its fault settings; ``secrets``: what
    its errors must never show (the config's own by default); ``notify``: where a wait cut short is told."""
    return ModelClient(base_url=config.base_url, api_key=config.api_key, model=config.model, api=config.api,
                       timeout=config.timeout, max_retries=config.max_retries, retry_wait=config.retry_wait,
                       secrets=tuple(config.secrets() if secrets is None else secrets), limiter=limiter,
                       connections=config.concurrency, notify=notify)


def batch_api(config: Config, secrets: list[str] | None = None,
              notify: Callable[[str], None] | None = None) -> BatchAPI:
    """The Batch API (files and batches) of a resolved config's endpoint and model, for --batch."""
    return BatchAPI(base_url=config.base_url, api_key=config.api_key, model=config.model, api=config.api,
                    timeout=config.timeout, max_retries=config.max_retries, retry_wait=config.retry_wait,
                    secrets=tuple(config.secrets() if secrets is None else secrets), notify=notify)
