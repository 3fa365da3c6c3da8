"""Starting, resuming and finishing a generation run."""

from __future__ import annotations

import asyncio
import os
import time
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path

from .client import ModelClient
from .config import Config, ConfigError
from .journal import JournalError
from .local import BUNDLED_MODEL_NAME, LocalServer, bundled_model_path, check_gguf
from .pipeline import Run
from .prompts import PromptSet
from .report import ProgressView, Stats
from .rundir import RunDir
from .seeds import load_seed_tasks

STAGES = {
    "self-instruct": ["instructions", "classify", "instances", "instances_classification"],
    "alpaca": ["alpaca"],
}
DEFAULT_REMOTE_MODEL = "gpt-4o-mini"


def generate(config: Config, *, progress: bool = False, allow_changes: bool = False) -> dict:
    """Run (or resume) the loop until ``config.num_instructions`` tasks are accepted; return the summary."""
    return asyncio.run(generate_async(config, progress=progress, allow_changes=allow_changes))


async def generate_async(config: Config, *, progress: bool = False, allow_changes: bool = False) -> dict:
    config = config.with_defaults()
    prompts = PromptSet.load(config.prompts, config.lang, STAGES[config.mode])
    seeds = load_seed_tasks(config.seeds)
    config, api_key = resolve_endpoint(config)
    model_path = local_model_path(config) if config.local else None
    rundir = RunDir.open(config.output, config.to_dict(), config.signature(prompts.files), allow_changes)
    stats = Stats(target=config.num_instructions)
    previous_seconds = rundir.previous_summary.get("wall_seconds", 0.0)
    started = time.monotonic()
    with ExitStack() as stack:
        if config.local:
            server = stack.enter_context(LocalServer(model_path, ctx=config.ctx, threads=config.threads,
                                                     log_path=rundir.path / "server.log"))
            config = replace(config, base_url=server.base_url)
        client = ModelClient(base_url=config.base_url, api_key=api_key, model=config.model, api=config.api,
                             concurrency=config.concurrency, timeout=config.timeout,
                             max_retries=config.max_retries, retry_wait=config.retry_wait)
        view = ProgressView(stats, progress)
        try:
            run = Run(config, prompts, seeds, rundir, client, stats, view)
            with view:
                await run.run()
        except BaseException:
            _finish(rundir, stats, previous_seconds + time.monotonic() - started, best_effort=True)
            raise
        else:
            summary = _finish(rundir, stats, previous_seconds + time.monotonic() - started)
        finally:
            rundir.close()
            await client.close()
    return summary


def _finish(rundir: RunDir, stats: Stats, seconds: float, best_effort: bool = False) -> dict:
    """Write the summary; when the run is already failing, a second failure must not hide the first."""
    stats.wall_seconds = seconds
    summary = {"run_dir": str(rundir.path), "complete": stats.accepted >= stats.target, **stats.to_dict()}
    try:
        rundir.write_summary(summary)
    except JournalError:
        if not best_effort:
            raise
    return summary


def resolve_endpoint(config: Config) -> tuple[Config, str | None]:
    """Settle where requests go: an explicit or environment endpoint, else the embedded model."""
    base_url = config.base_url or os.environ.get("OPENAI_BASE_URL") or None
    api_key = config.api_key or os.environ.get("OPENAI_API_KEY") or None
    local = config.local or config.local_model is not None or base_url is None
    if local:
        model = config.model or (config.local_model.name if config.local_model else BUNDLED_MODEL_NAME)
        config = config.with_sampling_defaults("api" if config.local_model else "bundled")
        return replace(config, local=True, base_url=None, api=config.api or "completion", model=model), None
    if api_key is None and "api.openai.com" in base_url:
        raise ConfigError("no API key: set OPENAI_API_KEY or pass --api-key")
    config = config.with_sampling_defaults("api")
    return replace(config, base_url=base_url, api=config.api or "chat", model=config.model or DEFAULT_REMOTE_MODEL), api_key


def local_model_path(config: Config) -> Path:
    """The GGUF the embedded server will run, checked before anything is written."""
    if config.local_model is not None:
        return check_gguf(config.local_model)
    return bundled_model_path()
