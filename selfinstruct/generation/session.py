"""Starting, resuming and finishing a generation run.

A run ends in one of four ways, each leaving a summary.json and a resumable run directory:
the target is reached; a stop rule fires (``RunStopped``); the endpoint refuses the run
(``FatalAPIError``); or a signal arrives (``Interrupted``: Ctrl+C, SIGTERM, SIGHUP).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit

from selfinstruct.config import RESUME_KEYS, REDACTED, Config, ConfigError, read_settings, redact_url
from selfinstruct.endpoint.client import FatalAPIError, redact
from selfinstruct.endpoint.batcher import Batcher, batches_in_flight, batches_said
from selfinstruct.endpoint.connect import batch_api, fit_to_local, local_model_path, model_client, served
from selfinstruct.endpoint.ledger import RunStopped
from selfinstruct.endpoint.pricing import Price, price_for
from selfinstruct.endpoint.progress import MODES as PROGRESS_MODES, ProgressView
from selfinstruct.endpoint.ratelimit import RateLimiter
from selfinstruct.endpoint.stats import Stats
from selfinstruct.formats.seeds import load_start_tasks
from selfinstruct.generation import judge
from selfinstruct.generation.loop import Run
from selfinstruct.generation.methods.registry import METHODS
from selfinstruct.generation.prompts import PromptSet
from selfinstruct.store.journal import JournalError
from selfinstruct.store.rundir import RunDir
from selfinstruct.errors import InterruptedBySignal

# Signals that end a run the way Ctrl+C does: the summary is written and the run can be resumed.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


class Interrupted(InterruptedBySignal):
    """A signal stopped the run; everything answered so far is journaled."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def generate(config: Config, *, progress: str = "off", allow_changes: bool = False,
             notify: Callable[[str], None] | None = None) -> dict:
    """Run (or resume) the loop until ``config.num_instructions`` tasks are accepted; return the summary.
    ``progress``: "off", "lines" (a status line every 10 s and at the end) or "bar"; ``notify``: where
    lines for people go (the endpoint line first, then the progress lines), e.g. ``print``.

    Raises RunStopped when a stop rule ends the run early (its summary is written too)."""
    if progress not in PROGRESS_MODES:
        raise ConfigError(f"progress must be one of {', '.join(PROGRESS_MODES)}, got {progress!r}")
    return asyncio.run(generate_async(config, progress=progress, allow_changes=allow_changes, notify=notify))


def resume(run_dir: Path | str, *, progress: str = "off", allow_changes: bool = False,
           notify: Callable[[str], None] | None = None, **overrides) -> dict:
    """Continue the run in ``run_dir`` with its stored settings; ``overrides`` may change RESUME_KEYS."""
    return generate(resume_config(run_dir, **overrides), progress=progress, allow_changes=allow_changes,
                    notify=notify)


def resume_config(run_dir: Path | str, **overrides) -> Config:
    """The stored settings of a run, with the settings that may change freely replaced."""
    run_dir = Path(run_dir)
    settings = read_settings(run_dir)
    unknown = set(overrides) - set(RESUME_KEYS)
    if unknown:
        raise ConfigError(f"resume cannot change {', '.join(sorted(unknown))}; start a new run for that")
    settings.update({k: v for k, v in overrides.items() if v is not None})
    settings["output"] = run_dir
    if settings.get("local"):
        settings["base_url"] = None
    elif REDACTED in (settings.get("base_url") or "") and overrides.get("base_url") is None:
        settings["base_url"] = _unredacted_base_url(settings["base_url"])
    if REDACTED in (settings.get("judge_base_url") or "") and overrides.get("judge_base_url") is None:
        raise ConfigError(f"the run's judge base URL {settings['judge_base_url']} held credentials, which are never "
                          "stored; pass --judge-base-url again")
    return Config(**settings)  # what is wrong now came with the overrides


def _unredacted_base_url(stored: str) -> str:
    """A stored base URL lost its credentials; OPENAI_BASE_URL may hold them again."""
    from_env = os.environ.get("OPENAI_BASE_URL", "").strip()
    if from_env and redact_url(from_env) == stored:
        return from_env
    raise ConfigError(f"the run's base URL {stored} held credentials, which are never stored; "
                      "pass --base-url again")


async def generate_async(config: Config, *, progress: str = "off", allow_changes: bool = False,
                         notify: Callable[[str], None] | None = None) -> dict:
    config = config.resolve()
    prompts = load_prompts(config)
    seeds, skipped = load_start_tasks(config)
    model_path = local_model_path(config) if config.local else None
    price, judge_price = prices_of(config)
    if config.max_cost is not None and (price is None or (config.judge and judge_price is None)):
        model, flags = (config.model, "--price-in and --price-out") if price is None else (
            config.judge_model, "--judge-price-in and --judge-price-out")
        raise ConfigError(f"--max-cost needs the price of {model}'s tokens, which is not known: pass {flags} "
                          "(USD per million tokens)")
    rundir = RunDir.open(config.output, config.to_dict(), config.signature(prompts.files), allow_changes)
    if not config.batch and (running := batches_in_flight(rundir.path)):
        rundir.close()
        raise ConfigError(f"{rundir.path} has {batches_said(running)} at the provider: continue it with --batch to "
                          f"collect their answers, or cancel them first: selfinstruct resume {rundir.path} "
                          "--cancel-batches")
    config, local_note = fit_to_local(config)
    if notify:
        judged = judge_price.describe() if judge_price else "price unknown: --judge-price-in and --judge-price-out give it"
        notify(f"{config.endpoint_line()}; " + (price.describe() if price else
                                               "price unknown: --price-in and --price-out give the cost")
               + (f"; judge {judged}" if config.judge and judge_price is not price else ""))
        if local_note:
            notify(local_note)
        if skipped:
            notify(f"{config.from_dataset}: {skipped} records are not tasks (no instruction or output, or not "
                   "JSON) and were left out")
    stats = Stats(target=config.num_instructions, price=price,
                  stage_prices={judge.STAGE: judge_price} if config.judge else {})
    previous_seconds, started = rundir.previous_summary.get("wall_seconds", 0.0), time.monotonic()

    def finish(**how) -> dict:
        return _finish(rundir, stats, previous_seconds + time.monotonic() - started, **how)

    with ExitStack() as stack:
        stack.callback(rundir.close)
        signals = stack.enter_context(_SignalsCancel())
        try:
            config = served(stack, config, rundir.path / "server.log", model_path)
            limiter = RateLimiter(config.rpm, config.tpm)
            client = model_client(config, limiter, notify=notify)
            judge_client, judging = None, judging_config(config)
            if judging:
                # --rpm and --tpm are the limits of one endpoint and key, whatever stage sends: a judge there
                # shares them; a judge elsewhere is under another provider's limits, which the run does not know.
                same = (judging.base_url, judging.api_key) == (config.base_url, config.api_key)
                judge_client = model_client(judging, limiter if same else None, secrets=config.secrets(),
                                            notify=notify)
            batcher = batcher_of(config, judging, rundir.path, notify) if config.batch else None
            view = ProgressView(stats, progress, notify)
            try:
                run = Run(config, prompts, seeds, rundir, client, stats, view, judge_client, batcher)
                if batcher:
                    await batcher.start(answered=run.ledger.cache.__contains__)
                async with view:
                    await run.run()
            finally:
                await client.close()
                if judge_client:
                    await judge_client.close()
                if batcher:
                    await batcher.close()
                    if batcher.in_flight() and notify:
                        notify(f"{batches_said(batcher.in_flight())} still at the provider (paid for): "
                               f"`selfinstruct resume {rundir.path}` collects their answers, "
                               f"`selfinstruct resume {rundir.path} --cancel-batches` cancels them")
        except (asyncio.CancelledError, KeyboardInterrupt):
            name = signal.Signals(signals.received or signal.SIGINT).name
            finish(best_effort=True, stopped=f"interrupted ({name})")
            if signals.received:
                raise Interrupted(signals.received) from None
            raise
        except RunStopped as stop:
            stop.summary = finish(stopped=str(stop))
            raise
        except FatalAPIError as exc:
            finish(best_effort=True, stopped=f"the endpoint refused the run: {redact(str(exc), *config.secrets())}")
            raise
        except BaseException:
            finish(best_effort=True)
            raise
        return finish()


def batcher_of(config: Config, judging: Config | None, folder: Path,
               notify: Callable[[str], None] | None = None) -> Batcher:
    """--batch: the batches of a run's endpoint and model, and of its judge's where that is another model or
    endpoint (a batch holds one model's requests)."""
    run = batch_api(config, notify=notify)
    judge_api = batch_api(judging, secrets=config.secrets(), notify=notify) if judging else run
    return Batcher(folder, {"run": run, "judge": judge_api}, notify=notify)


def cancel_batches(run_dir: Path | str, *, notify: Callable[[str], None] | None = None, **overrides) -> int:
    """Cancel the batches a run has at the provider, keeping what they answered (a resume takes it);
    returns how many were cancelled."""
    config = resume_config(run_dir, **overrides).resolve()

    async def cancel() -> int:
        batcher = batcher_of(config, judging_config(config), Path(run_dir), notify)
        try:
            await batcher.start()
            return await batcher.cancel_all()
        finally:
            await batcher.close()

    with RunDir.locked(Path(run_dir)):
        return asyncio.run(cancel())


class _SignalsCancel:
    """SIGTERM and SIGHUP cancel the run like Ctrl+C does; a second one ends the process at once."""

    def __init__(self):
        self.received: int | None = None
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._installed: list[int] = []

    def __enter__(self) -> _SignalsCancel:
        for signum in STOP_SIGNALS:
            try:
                self._loop.add_signal_handler(signum, self._cancel, signum)
            except (ValueError, RuntimeError, NotImplementedError):  # not the main thread, or not Unix
                continue
            self._installed.append(signum)
        return self

    def _cancel(self, signum: int) -> None:
        self.received = signum
        self._remove()  # the default action again: a second signal ends the process
        self._task.cancel()

    def _remove(self) -> None:
        for signum in self._installed:
            self._loop.remove_signal_handler(signum)
        self._installed = []

    def __exit__(self, *exc) -> None:
        self._remove()


def _finish(rundir: RunDir, stats: Stats, seconds: float, best_effort: bool = False,
            stopped: str | None = None) -> dict:
    """Write the summary; when the run is already failing, a second failure must not hide the first."""
    stats.wall_seconds = seconds
    summary = {"run_dir": str(rundir.path), **stats.to_dict(), "accepted": len(rundir.tasks),
               "rejected": len(rundir.rejected)}
    summary["complete"] = summary["accepted"] >= stats.target
    summary["stop_reason"] = stopped
    try:
        rundir.write_summary(summary)
    except JournalError:
        if not best_effort:
            raise
    return summary


def templates_of(config: Config) -> dict[str, set[str]]:
    """The prompt templates a run reads: its method's, and the judge's with --judge."""
    return {**METHODS[config.mode].templates, **(judge.TEMPLATES if config.judge else {})}


def load_prompts(config: Config) -> PromptSet:
    """The templates a resolved config's run reads, checked: the structured variants with --structured."""
    return PromptSet.load(config.prompts, config.lang, templates_of(config), structured=bool(config.structured))


def judging_config(config: Config) -> Config | None:
    """Where the judge's requests go when that is not the run's own endpoint and model (None: it is)."""
    if not config.judge or (not config.judge_base_url and config.judge_model == config.model):
        return None
    return replace(config, base_url=config.judge_base_url or config.base_url, api_key=judge_key(config),
                   model=config.judge_model)


def judge_key(config: Config) -> str | None:
    """The judge's key: --judge-api-key, else the run's key, but only for the run's own host: a key is
    never sent to a host it was not given for."""
    if config.judge_api_key or not config.judge_base_url:
        return config.judge_api_key or config.api_key
    judge, run = urlsplit(config.judge_base_url), urlsplit(config.base_url or "")
    return config.api_key if (judge.hostname, judge.port) == (run.hostname, run.port) else None


def prices_of(config: Config) -> tuple[Price | None, Price | None]:
    """The price of the run's tokens, and of the judge's (the same when it is the same model and endpoint)."""
    price = price_for(config.model, local=config.local, base_url=config.base_url, price_in=config.price_in,
                      price_out=config.price_out, batch=config.batch)
    given = config.judge_price_in is not None or config.judge_price_out is not None
    if not config.judge or (config.judge_model == config.model and not config.judge_base_url and not given):
        return price, price
    elsewhere = config.judge_base_url is not None
    return price, price_for(config.judge_model, local=config.local and not elsewhere,
                            base_url=config.judge_base_url if elsewhere else config.base_url,
                            price_in=config.judge_price_in, price_out=config.judge_price_out, batch=config.batch)
