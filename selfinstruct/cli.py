"""The command line: parses options and calls the Python API, nothing more."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from selfinstruct.endpoint.client import FatalAPIError, FormatRefused
from selfinstruct.config import Config, ConfigError
from selfinstruct.report.export import FORMATS, accepted_tasks, card_path, export_run
from selfinstruct.dedup.command import KEYS, FilterError, filter_dataset
from selfinstruct.store.journal import JournalDamaged, JournalError
from selfinstruct.generation.judge import JudgeError, JudgeOptions
from selfinstruct.generation.methods.registry import METHODS
from selfinstruct.endpoint.local import DEFAULT_CTX, LocalModelError, LocalServerError, serve as serve_local
from selfinstruct.endpoint.ledger import RunStopped
from selfinstruct.formats.records import RecordError
from selfinstruct.generation.plan import plan
from selfinstruct.endpoint.progress import FileProgress
from selfinstruct.endpoint.pricing import estimate_tokens
from selfinstruct.store.rundir import RunDirError, completion_note
from selfinstruct.generation.session import STOP_SIGNALS, Interrupted, generate as run_generate, resume_config

app = typer.Typer(help="Build instruction-tuning datasets the Self-Instruct / Alpaca / BELLE way.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)

def _version(value: bool) -> None:
    if value:
        typer.echo(f"selfinstruct {importlib.metadata.version('selfinstruct')}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Show the version and exit.")] = False) -> None:
    """Build instruction-tuning datasets the Self-Instruct / Alpaca / BELLE way."""


# Exit codes, as the README lists them.
FAILED, BAD_INPUT, API_REFUSED, STOPPED = 1, 2, 3, 4


def _option(*names: str, help: str, default: str | None = None):
    """An option whose unset value is None (so a TOML file can fill it) but whose help shows the default."""
    return typer.Option(*names, help=f"{help}  [default: {default}]" if default else help, show_default=False)

# Choices, shown in --help (kept equal to config.LANGS, APIS and export.FORMATS by a test; --mode is METHODS).
Lang = Literal["zh", "en"]
Mode = Literal[tuple(METHODS)]
Api = Literal["chat", "completion"]
# A plain string whose choices are export.FORMATS, checked by export_run: an unknown one is one line, exit 2.
Format = Annotated[str, typer.Option(
    "--format", "-f", metavar=f"<{'|'.join(FORMATS)}>",
    help="One record per instance (seeds: per task). sharegpt and messages are chat JSONL whose user turn is "
         "the instruction alone when the input is empty, otherwise instruction + \"\\n\\n\" + input; "
         "alpaca, alpaca-jsonl and hf keep instruction, input and output apart; hf is a datasets directory "
         "(pip install 'selfinstruct[hf]').")]


# Options that `generate` and `resume` share: where requests go and how they are sent.
ApiKey = Annotated[Optional[str], _option("--api-key", help="API key.", default="$OPENAI_API_KEY")]
BaseUrl = Annotated[Optional[str], _option(
    "--base-url", help="OpenAI-compatible endpoint.",
    default="$OPENAI_BASE_URL; with only a key, OpenAI; with neither, the embedded model")]
JudgeBaseUrl = Annotated[Optional[str], _option("--judge-base-url", help="The judge's endpoint.",
                                                default="the run's")]
JudgeApiKey = Annotated[Optional[str], _option("--judge-api-key", help="The judge's API key.",
                                               default="the run's")]
Concurrency = Annotated[Optional[int], _option("--concurrency", help="Requests in flight at once.", default="8")]
Timeout = Annotated[Optional[float], _option("--timeout", help="Seconds per request attempt, connect to last byte.",
                                             default="120")]
MaxRetries = Annotated[Optional[int], _option("--max-retries", help="Retries of a failing request.", default="6")]
MaxIdleRounds = Annotated[Optional[int], _option(
    "--max-idle-rounds", help="Stop (exit 4) after this many rounds in a row accept nothing; 0: never.", default="10")]
FailureWindow = Annotated[Optional[int], _option(
    "--failure-window", help="Stop (exit 4) when almost all of the last N requests failed; 0: never.",
    default="20")]
MaxFailureShare = Annotated[Optional[float], _option(
    "--max-failure-share", help="The share of --failure-window that counts as almost all.", default="0.9")]
PriceIn = Annotated[Optional[float], _option(
    "--price-in", help="USD per million prompt tokens.", default="the built-in table; 0 for local endpoints")]
PriceOut = Annotated[Optional[float], _option(
    "--price-out", help="USD per million completion tokens.", default="the built-in table; 0 for local endpoints")]
MaxCost = Annotated[Optional[float], _option(
    "--max-cost", help="Stop (exit 4) once the run has spent this many USD.", default="no budget")]
MaxRequests = Annotated[Optional[int], _option(
    "--max-requests", help="Stop (exit 4) before the attempt that would be the N+1st HTTP request, retries "
                           "included: the endpoint receives at most N.", default="no budget")]
MaxTotalTokens = Annotated[Optional[int], _option(
    "--max-total-tokens", help="Stop (exit 4) once the run has used this many tokens, in and out (not "
                               "--max-tokens, which is per request).", default="no budget")]
Rpm = Annotated[Optional[float], _option(
    "--rpm", help="Requests per minute to stay under (--judge requests to the same endpoint and key included).",
    default="no limit")]
Tpm = Annotated[Optional[float], _option("--tpm", help="Tokens per minute to stay under.", default="no limit")]


def _resumed(option):
    """The same option for `resume`, whose unset value is the run's stored setting."""
    info = copy.copy(option.__metadata__[0])
    info.help = re.sub(r"\[default: .*\]$", "[default: the run's]", info.help)
    return Annotated[option.__origin__, info]


AllowChanges = Annotated[bool, typer.Option("--allow-changes", help="Resume even if data-changing settings differ.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress (a bar on a terminal, else a line "
                                                          "every 10 s on stderr).")]


@app.command()
def generate(
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML file with any of these settings.")] = None,
    lang: Annotated[Optional[Lang], _option("--lang", help="Picks seeds, prompts and filters.", default="zh")] = None,
    mode: Annotated[Optional[Mode], _option("--mode", help="How tasks are asked for.", default="self-instruct")] = None,
    seeds: Annotated[Optional[Path], _option(
        "--seeds", help="Seed tasks (JSONL, JSON lines or JSON array; seed or Alpaca format).",
        default="the bundled ones")] = None,
    from_dataset: Annotated[Optional[Path], _option(
        "--from", help="Evol mode: a dataset to evolve instead of the seeds (any layout filter reads; records "
                       "without an instruction and an output are left out).", default="the seeds")] = None,
    prompts: Annotated[Optional[Path], _option("--prompts", help="Folder of prompt templates (<lang>/<stage>.txt).",
                                               default="the bundled ones")] = None,
    num_instructions: Annotated[Optional[int], _option("--num-instructions", "-n", help="Tasks to accept.",
                                                       default="100")] = None,
    output: Annotated[Optional[Path], _option("--output", "-o", help="Run directory; an existing one is resumed.",
                                              default="runs/<lang>-<mode>-<time>")] = None,
    seed: Annotated[Optional[int], _option("--seed", help="Random seed for sampling prompts.", default="0")] = None,
    api: Annotated[Optional[Api], _option("--api", help="Chat messages, or a prompt to continue.",
                                          default="chat; completion for the bundled model")] = None,
    model: Annotated[Optional[str], _option("--model", help="Model name.",
                                            default="gpt-4o-mini; the bundled model when embedded")] = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    local: Annotated[bool, typer.Option("--local", help="Use the embedded llama.cpp model even if an endpoint is set.")] = False,
    local_model: Annotated[Optional[Path], _option("--local-model", help="A GGUF file to serve instead of the bundled model.")] = None,
    ctx: Annotated[Optional[int], _option("--ctx", help="Context size of the embedded model.", default="4096")] = None,
    threads: Annotated[Optional[int], _option("--threads", help="CPU threads of the embedded model.",
                                              default="half the cores")] = None,
    temperature: Annotated[Optional[float], _option("--temperature", help="Sampling temperature.",
                                                    default="0.7; bundled model: 0.9")] = None,
    top_p: Annotated[Optional[float], _option("--top-p", help="Nucleus sampling.", default="1.0; bundled model: 0.95")] = None,
    max_tokens: Annotated[Optional[int], _option("--max-tokens", help="Tokens per response.",
                                                 default="1024; bundled model: 256")] = None,
    structured: Annotated[Optional[bool], _option(
        "--structured", help="Ask for JSON that follows a schema per stage (response_format json_schema), with "
                             "prompts saying the same; needs the chat API.",
        default="off: the papers' free-text prompts")] = None,
    json_mode: Annotated[Optional[bool], _option(
        "--json-mode", help="--structured for endpoints with JSON mode alone: response_format json_object, the "
                            "shape asked for in words only.", default="off")] = None,
    concurrency: Concurrency = None,
    threshold: Annotated[Optional[float], _option(
        "--threshold", help="Reject instructions whose ROUGE-L against the pool is above this.", default="0.7")] = None,
    instances_per_task: Annotated[Optional[int], _option("--instances-per-task", help="Instances kept per task.",
                                                         default="3")] = None,
    requests_per_round: Annotated[Optional[int], _option("--requests-per-round", help="Generation requests per round.",
                                                         default="--concurrency, at least 8")] = None,
    tasks_per_request: Annotated[Optional[int], _option("--tasks-per-request", help="Alpaca mode: tasks per request.",
                                                        default="10")] = None,
    judge: Annotated[Optional[bool], typer.Option(
        "--judge", help="Score each task 1-5 with a model (its answers are journaled and cost counted).",
        show_default=False)] = None,
    min_score: Annotated[Optional[int], _option("--min-score", help="With --judge: reject tasks scored below this "
                                                                    "(reason low_score).", default="keep all")] = None,
    judge_model: Annotated[Optional[str], _option("--judge-model", help="The judge's model.",
                                                  default="the run's")] = None,
    judge_base_url: JudgeBaseUrl = None,
    judge_api_key: JudgeApiKey = None,
    timeout: Timeout = None,
    max_retries: MaxRetries = None,
    max_idle_rounds: MaxIdleRounds = None,
    failure_window: FailureWindow = None,
    max_failure_share: MaxFailureShare = None,
    price_in: PriceIn = None,
    price_out: PriceOut = None,
    max_cost: MaxCost = None,
    max_requests: MaxRequests = None,
    max_total_tokens: MaxTotalTokens = None,
    rpm: Rpm = None,
    tpm: Tpm = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Send nothing: show the first prompt of each stage "
                                                            "and estimate requests, tokens, cost and time.")] = False,
    allow_changes: AllowChanges = False,
    quiet: Quiet = False,
):
    """Generate tasks from seed tasks, or resume the run in --output."""
    options = {k: v for k, v in locals().items()
               if k not in ("config_file", "allow_changes", "quiet", "local", "dry_run", "json_mode")}
    options["local"] = local or None
    options["structured"] = "json_object" if json_mode else structured
    given = {k: v for k, v in options.items() if v is not None}
    build = (lambda: Config.from_toml(config_file, **given) if config_file else Config(**given))
    if dry_run:
        _dry_run(build)
    else:
        _run(build, allow_changes, quiet)


def _dry_run(build: Callable[[], Config]) -> None:
    try:
        config = build().resolve()
        estimate = plan(config)
    except (ConfigError, RecordError, RunDirError, JournalDamaged) as exc:
        _fail(str(exc), BAD_INPUT)
    typer.echo("dry run: nothing is sent and nothing is written.")
    typer.echo(config.endpoint_line() + "; " + (estimate.price.describe() if estimate.price else "price unknown"))
    for stage, prompt in estimate.prompts:
        typer.echo(f"\n--- {stage}: the first prompt as sent ({len(prompt)} characters, "
                   f"~{estimate_tokens(prompt)} tokens) ---\n{prompt}\n--- end of {stage} prompt ---")
        if stage in estimate.response_formats:
            typer.echo(f"response_format: {json.dumps(estimate.response_formats[stage], ensure_ascii=False)}")
    requests = sum(estimate.requests.values())
    per_stage = ", ".join(f"{stage} {n:,}" for stage, n in estimate.requests.items())
    cost = "unknown (give --price-in and --price-out)" if estimate.cost is None else f"${estimate.cost:,.2f}"
    typer.echo(f"\nestimate for {estimate.remaining:,} more tasks (rates: {estimate.rates}):\n"
               f"  requests   {requests:,} ({per_stage})\n"
               f"  tokens     {estimate.tokens_in:,} in / {estimate.tokens_out:,} out\n"
               f"  cost       {cost}\n"
               f"  wall time  ~{_duration(estimate.seconds)} with {estimate.parallel} request(s) answered at once")


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="The run directory to continue.")],
    num_instructions: Annotated[Optional[int], _option("--num-instructions", "-n", help="A new target size.",
                                                       default="the run's")] = None,
    base_url: _resumed(BaseUrl) = None,
    api_key: ApiKey = None,
    judge_base_url: _resumed(JudgeBaseUrl) = None,
    judge_api_key: JudgeApiKey = None,
    concurrency: _resumed(Concurrency) = None,
    timeout: _resumed(Timeout) = None,
    max_retries: _resumed(MaxRetries) = None,
    max_idle_rounds: _resumed(MaxIdleRounds) = None,
    failure_window: _resumed(FailureWindow) = None,
    max_failure_share: _resumed(MaxFailureShare) = None,
    price_in: _resumed(PriceIn) = None,
    price_out: _resumed(PriceOut) = None,
    max_cost: _resumed(MaxCost) = None,
    max_requests: _resumed(MaxRequests) = None,
    max_total_tokens: _resumed(MaxTotalTokens) = None,
    rpm: _resumed(Rpm) = None,
    tpm: _resumed(Tpm) = None,
    allow_changes: AllowChanges = False,
    quiet: Quiet = False,
):
    """Continue a run with its stored settings; only the endpoint, its limits and the target may change."""
    overrides = {k: v for k, v in locals().items() if k not in ("run_dir", "allow_changes", "quiet")}
    _run(lambda: resume_config(run_dir, **overrides), allow_changes, quiet)


def _progress_mode(quiet: bool) -> str:
    """A bar on a terminal; in a log (nohup, CI, a scheduler) a plain line every ~10 s; nothing with -q."""
    return "off" if quiet else "bar" if sys.stderr.isatty() else "lines"


def _raise_interrupted(signum, frame):
    raise Interrupted(signum)


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


def _run(build: Callable[[], Config], allow_changes: bool, quiet: bool) -> None:
    """Build the config, run, and turn every way a run can end into one message and an exit code."""
    secrets: list[str] = []

    def clean(message: object) -> str:
        text = str(message)
        for secret in secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def notify(line: str) -> None:
        typer.echo(clean(line), err=True)

    config = None
    try:
        config = build().resolve()
        secrets = config.secrets()
        progress = _progress_mode(quiet)
        summary = run_generate(config, progress=progress, allow_changes=allow_changes, notify=notify)
    except (ConfigError, RecordError, RunDirError, LocalModelError, JournalDamaged) as exc:
        _fail(clean(exc), BAD_INPUT)
    except (LocalServerError, JournalError) as exc:
        _fail(clean(exc), FAILED)
    except FormatRefused as exc:  # resuming cannot change --structured: one line says what to do
        _fail(clean(exc), API_REFUSED)
    except FatalAPIError as exc:
        _fail(f"{clean(exc)}\nThe run stopped; what was journaled is kept. Fix this and run "
              f"`selfinstruct resume {config.output}` to go on.", API_REFUSED)
    except RunStopped as stop:
        _print_summary(stop.summary)
        _fail(f"stopped before the target: {stop}\nResume (for example with other settings) with: "
              f"selfinstruct resume {stop.summary['run_dir']}", STOPPED)
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = getattr(exc, "signum", 2)
        where = f"Resume with: selfinstruct resume {config.output}" if config else ""
        typer.echo(f"\ninterrupted; everything answered so far is saved. {where}", err=True)
        raise typer.Exit(128 + signum)
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    try:
        _echo_summary(summary)
    except BrokenPipeError:  # `selfinstruct generate ... | head`: the run is done, the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _echo_summary(summary: dict) -> None:
    typer.echo(f"run directory: {_shown(summary['run_dir'])}")
    typer.echo(f"accepted {summary['accepted']}/{summary['target']}, rejected {summary['rejected']}, "
               f"requests {summary['requests']}, tokens in {summary['tokens_in']} / out {summary['tokens_out']}, "
               f"{summary['wall_seconds']:.1f} s")
    for reason, count in summary["rejected_by_reason"].items():
        typer.echo(f"  rejected {reason}: {count}")
    for reason, count in summary["failed_requests_by_reason"].items():
        typer.echo(f"  failed requests {reason}: {count}")
    for task in accepted_tasks(summary["run_dir"])[:3]:
        example = task["instances"][0]
        typer.echo(f"\n- {_one_line(task['instruction'])}")
        if example["input"]:
            typer.echo(f"  input: {_one_line(example['input'])}")
        typer.echo(f"  output: {_one_line(example['output'])}")


def _one_line(text: str, limit: int = 200) -> str:
    """A summary shows each field on one line: line breaks become ⏎, long texts end in …."""
    text = " ⏎ ".join(line.strip() for line in text.strip().splitlines())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def _shown(path: str) -> str:
    """A path as people typed it: relative when it is below the working directory."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    fmt: Format = "alpaca",
    output: Annotated[Optional[Path], _option(
        "--output", "-o", help="Where to write (hf: a new or empty directory, or a previous hf export). An "
                               "existing file or hf export is replaced only at the default place or with "
                               "--overwrite.",
        default="in RUN_DIR: " + ", ".join(f"{f.default_name}{'/' if f.directory else ''}"
                                            for f in FORMATS.values()) + ", by format")] = None,
    no_card: Annotated[bool, _option(
        "--no-card", help="Write no dataset card; a card already next to the file only loses its entry for this "
                          "file name. The card is README.md next to the file (hf: in the directory) and lists every "
                          "export of the run there; a README.md that is not a selfinstruct card is never "
                          "overwritten.",
        default="write the card")] = False,
    overwrite: Annotated[bool, _option(
        "--overwrite", help="Replace an existing --output that is not an earlier export at the default place "
                            "(never a run's own files).",
        default="refuse, exit 2")] = False,
):
    """Write a run's accepted tasks for training, with a dataset card (README.md)."""
    try:
        path, count = export_run(run_dir, fmt, output, card=not no_card, overwrite=overwrite)
    except (ValueError, RunDirError, JournalDamaged) as exc:
        _fail(str(exc), BAD_INPUT)
    except JournalError as exc:
        _fail(str(exc), FAILED)
    note = completion_note(run_dir)
    if note:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {count} records to {path}")
    if not no_card:
        typer.echo(f"dataset card: {card_path(path, fmt)}", err=True)


@app.command(name="filter")
def filter_command(
    inputs: Annotated[list[Path], typer.Argument(
        help="Alpaca JSON/JSONL, or seed-task JSONL (also under a .json name); several are deduplicated together, "
             "in the order given.", metavar="INPUT...")],
    output: Annotated[Path, typer.Option("--output", "-o", help=(
        "Where the kept records go, in the input's layout. With several inputs: an existing directory (each "
        "input's records under its own name) or one file for all."))],
    threshold: Annotated[float, typer.Option(
        help="Drop a record whose ROUGE-L against an earlier kept one is above this.")] = 0.7,
    lang: Annotated[Literal["auto", "zh", "en"], typer.Option(
        help="Per record (auto), or one language for the heuristic rules.")] = "auto",
    only: Annotated[Optional[Literal["dedup", "heuristics"]], _option("--only", help="Run only one of the two filters.")] = None,
    against: Annotated[Optional[list[Path]], _option(
        "--against", help="Also drop records similar to this dataset (e.g. an eval set); repeat it for several.")] = None,
    field: Annotated[Optional[str], _option("--field", help="Instruction field.", default="instruction")] = None,
    dropped: Annotated[Optional[Path], _option("--dropped", help="Where dropped records go.",
                                               default="OUTPUT_STEM.dropped.jsonl")] = None,
    key: Annotated[Literal[KEYS], typer.Option(
        help="What ROUGE-L compares: the instruction alone, or the instruction and the input apart: a record is "
             "then a duplicate only when both its instruction and its input score above the threshold against the "
             "same earlier kept record (two empty inputs are equal), so that instances of one instruction with "
             "different inputs (an Alpaca export) are all kept; the heuristic rules look at the instruction "
             "alone.")] = "instruction",
    quiet: Quiet = False,
    overwrite: Annotated[bool, _option(
        "--overwrite", help="Replace an existing output or dropped-records file (never a run's own files).",
        default="refuse, exit 2")] = False,
    engine: Annotated[Literal["local", "ray"], typer.Option(
        help="Where deduplication runs: this process (a thread per core), or Ray (the cluster in RAY_ADDRESS, "
             "else a local one; pip install 'selfinstruct[ray]'). The output is the same, byte for byte.")] = "local",
    workers: Annotated[Optional[int], _option(
        "--workers", help="Processes that read a large JSONL input, and threads (local) or Ray workers that "
                          "deduplicate.", default="the CPU count")] = None,
    judge: Annotated[Optional[bool], typer.Option(
        "--judge", help="Score each kept record 1-5 with a model; it gets a 'judge' field. Its answers are "
                        "journaled in --judge-dir, so running again asks only for what is new.",
        show_default=False)] = None,
    min_score: Annotated[Optional[int], _option("--min-score", help="With --judge: drop records scored below this "
                                                                    "(reason low_score).", default="keep all")] = None,
    judge_model: Annotated[Optional[str], _option(
        "--judge-model", help="The judge's model.", default="gpt-4o-mini; the bundled model when embedded")] = None,
    judge_base_url: Annotated[Optional[str], _option(
        "--judge-base-url", help="The judge's endpoint.",
        default="$OPENAI_BASE_URL; with only a key, OpenAI; with neither, the embedded model")] = None,
    judge_api_key: Annotated[Optional[str], _option("--judge-api-key", help="The judge's API key.",
                                                    default="$OPENAI_API_KEY")] = None,
    judge_dir: Annotated[Optional[Path], _option("--judge-dir", help="Where the judge's answers are journaled.",
                                                 default="<output stem>.judge/")] = None,
):
    """Filter an existing dataset: near-duplicates by ROUGE-L and the heuristic rules."""
    given = [name for name, value in (("--min-score", min_score), ("--judge-model", judge_model),
                                      ("--judge-base-url", judge_base_url), ("--judge-api-key", judge_api_key),
                                      ("--judge-dir", judge_dir)) if value is not None]
    if given and not judge:
        _fail(f"{', '.join(given)} needs --judge, which is off", BAD_INPUT)
    options = JudgeOptions(judge_model, judge_base_url, judge_api_key, min_score, judge_dir) if judge else None
    mode = _progress_mode(quiet)
    previous = {signum: signal.signal(signum, _raise_interrupted) for signum in STOP_SIGNALS}
    try:
        with FileProgress(mode, lambda line: typer.echo(line, err=True)) as progress:
            report = filter_dataset(inputs, output, threshold=threshold, lang=lang, only=only, against=against,
                                    field=field, dropped_output=dropped, key=key,
                                    progress=progress if mode != "off" else None,
                                    overwrite=overwrite, engine=engine, workers=workers, judge=options,
                                    notify=lambda line: typer.echo(line, err=True))
    except (FilterError, RecordError, ConfigError, RunDirError, JournalDamaged, LocalModelError) as exc:
        _fail(str(exc), BAD_INPUT)
    except JudgeError as exc:
        _fail(str(exc), API_REFUSED if exc.refused else FAILED)
    except (LocalServerError, JournalError) as exc:
        _fail(str(exc), FAILED)
    except OSError as exc:
        _fail(f"{exc.filename or inputs[0]}: {exc.strerror or exc}", BAD_INPUT)
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = exc.signum if isinstance(exc, Interrupted) else signal.SIGINT
        resumes = "; the judge's answers so far are kept: the same command asks only for the rest" if judge else ""
        _fail(f"interrupted ({signal.Signals(signum).name}); no file is left half-written{resumes}", 128 + signum)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    for note in report.notes:
        typer.echo(note, err=True)
    width = max([len(r) for r in report.dropped] + [len("kept")])
    typer.echo(f"{'rule':<{width}}  records")
    for reason, count in report.dropped.most_common():
        typer.echo(f"{reason:<{width}}  {count}")
    typer.echo(f"{'kept':<{width}}  {report.kept} of {report.total}")
    for kept, dropped_file in report.outputs:
        typer.echo(f"kept records: {kept}\ndropped records with reasons: {dropped_file}")
    typer.echo(f"{report.seconds:.1f} s")


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="A run directory, or a dataset file that `filter` reads.")],
    output: Annotated[Optional[Path], _option("--output", "-o", help="The HTML file to write.",
                                              default="PATH/report.html, or PATH.report.html")] = None,
    seeds: Annotated[Optional[Path], _option("--seeds", help="Seed tasks the overlap figure compares with.",
                                             default="the run's seeds, or the bundled ones of the language")] = None,
    lang: Annotated[Literal["auto", "zh", "en"], typer.Option(
        help="The dataset's language (a run directory knows its own).")] = "auto",
):
    """Write one self-contained HTML page of figures and numbers about a dataset (opens offline)."""
    from selfinstruct.report.page import ReportError, write_report

    try:
        written = write_report(path, output, seeds=seeds, lang=lang,
                               notify=lambda note: typer.echo(f"note: {note}", err=True))
    except (ReportError, RecordError, RunDirError, JournalDamaged, FileNotFoundError) as exc:
        _fail(str(exc), BAD_INPUT)
    except JournalError as exc:
        _fail(str(exc), FAILED)
    except KeyboardInterrupt:
        _fail("interrupted; nothing was written", 130)
    typer.echo(_shown(str(written)))


@app.command()
def serve(
    local_model: Annotated[Optional[Path], _option("--local-model", help="A GGUF file.",
                                                   default="the bundled Gemma 3 270M")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    ctx: Annotated[int, typer.Option(help="Context size.")] = DEFAULT_CTX,
    threads: Annotated[Optional[int], _option("--threads", help="Generation threads.", default="half the cores")] = None,
):
    """Run the embedded llama.cpp server alone, for other tools or several runs."""
    for name, value, low, high in (("port", port, 1, 65535), ("ctx", ctx, 1, None), ("threads", threads, 1, None)):
        if value is not None and (value < low or (high is not None and value > high)):
            _fail(f"--{name} must be {f'from {low} to {high}' if high else f'at least {low}'}, got {value}",
                  BAD_INPUT)
    try:
        serve_local(local_model, host=host, port=port, ctx=ctx, threads=threads)
    except LocalModelError as exc:
        _fail(str(exc), BAD_INPUT)
    except LocalServerError as exc:
        _fail(str(exc), FAILED)
