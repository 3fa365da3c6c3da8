"""The command line: parses options and calls the Python API, nothing more.

Only what --help needs is imported here (typer, the option declarations and their choices), so
that every command starts at once; each command imports its implementation when it runs, and ends
through ``exits`` (cli_exits.py), the one place where errors become exit codes.
"""

import signal
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer

from selfinstruct.cli_exits import exits, fail
from selfinstruct.cli_options import (EXPORT_NAMES, AllowChanges, Api, ApiKey, BaseUrl, Concurrency, FailureWindow,
                                      Format, JudgeApiKey, JudgeBaseUrl, JudgePriceIn, JudgePriceOut, Key, Lang,
                                      MaxCost, MaxFailureShare, MaxIdleRounds, MaxRequests, MaxRetries,
                                      MaxTotalTokens, Mode, PriceIn, PriceOut, Quiet, Rpm, Timeout, Tpm, option,
                                      resumed)
from selfinstruct.config import Config
from selfinstruct.endpoint.local import DEFAULT_CTX
from selfinstruct.errors import BadInput

app = typer.Typer(help="Build instruction-tuning datasets the Self-Instruct / Alpaca / BELLE way.",
                  no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def _version(value: bool) -> None:
    if value:
        import importlib.metadata  # 50 ms that only --version needs

        typer.echo(f"selfinstruct {importlib.metadata.version('selfinstruct')}")
        raise typer.Exit()


@app.callback()
def main(version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                               help="Show the version and exit.")] = False) -> None:
    """Build instruction-tuning datasets the Self-Instruct / Alpaca / BELLE way."""


@app.command()
def generate(
    config_file: Annotated[Optional[Path], typer.Option("--config", help="TOML file with any of these settings.")] = None,
    lang: Annotated[Optional[Lang], option("--lang", help="Picks seeds, prompts and filters.", default="zh")] = None,
    mode: Annotated[Optional[Mode], option("--mode", help="How tasks are asked for.", default="self-instruct")] = None,
    seeds: Annotated[Optional[Path], option(
        "--seeds", help="Seed tasks (JSONL, JSON lines or JSON array; seed or Alpaca format).",
        default="the bundled ones")] = None,
    from_dataset: Annotated[Optional[Path], option(
        "--from", help="Evol mode: a dataset to evolve instead of the seeds (any layout filter reads; records "
                       "without an instruction and an output are left out).", default="the seeds")] = None,
    prompts: Annotated[Optional[Path], option("--prompts", help="Folder of prompt templates (<lang>/<stage>.txt).",
                                              default="the bundled ones")] = None,
    num_instructions: Annotated[Optional[int], option("--num-instructions", "-n", help="Tasks to accept.",
                                                      default="100")] = None,
    output: Annotated[Optional[Path], option("--output", "-o", help="Run directory; an existing one is resumed.",
                                             default="runs/<lang>-<mode>-<time>")] = None,
    seed: Annotated[Optional[int], option("--seed", help="Random seed for sampling prompts.", default="0")] = None,
    api: Annotated[Optional[Api], option("--api", help="Chat messages, or a prompt to continue.",
                                         default="chat; completion for the bundled model")] = None,
    model: Annotated[Optional[str], option("--model", help="Model name.",
                                           default="gpt-4o-mini; the bundled model when embedded")] = None,
    base_url: BaseUrl = None,
    api_key: ApiKey = None,
    local: Annotated[bool, typer.Option("--local", help="Use the embedded llama.cpp model even if an endpoint is set.")] = False,
    local_model: Annotated[Optional[Path], option("--local-model", help="A GGUF file to serve instead of the bundled model.")] = None,
    ctx: Annotated[Optional[int], option("--ctx", help="Context size of the embedded model.", default="4096")] = None,
    threads: Annotated[Optional[int], option("--threads", help="CPU threads of the embedded model.",
                                             default="half the cores")] = None,
    temperature: Annotated[Optional[float], option("--temperature", help="Sampling temperature.",
                                                   default="0.7; bundled model: 0.9")] = None,
    top_p: Annotated[Optional[float], option("--top-p", help="Nucleus sampling.", default="1.0; bundled model: 0.95")] = None,
    max_tokens: Annotated[Optional[int], option("--max-tokens", help="Tokens per response.",
                                                default="1024; bundled model: 256")] = None,
    structured: Annotated[Optional[bool], option(
        "--structured", help="Ask for JSON that follows a schema per stage (response_format json_schema), with "
                             "prompts saying the same; needs the chat API.",
        default="off: the papers' free-text prompts")] = None,
    json_mode: Annotated[Optional[bool], option(
        "--json-mode", help="--structured for endpoints with JSON mode alone: response_format json_object, the "
                            "shape asked for in words only.", default="off")] = None,
    batch: Annotated[Optional[bool], typer.Option(
        "--batch", help="Send requests through the provider's Batch API: about half the price, each batch answered "
                        "within 24 hours (see the README for the providers).", show_default=False)] = None,
    concurrency: Concurrency = None,
    threshold: Annotated[Optional[float], option(
        "--threshold", help="Reject instructions whose ROUGE-L against the pool is above this.", default="0.7")] = None,
    instances_per_task: Annotated[Optional[int], option("--instances-per-task", help="Instances kept per task.",
                                                        default="3")] = None,
    requests_per_round: Annotated[Optional[int], option("--requests-per-round", help="Generation requests per round.",
                                                        default="--concurrency, at least 8")] = None,
    tasks_per_request: Annotated[Optional[int], option("--tasks-per-request", help="Alpaca mode: tasks per request.",
                                                       default="10")] = None,
    judge: Annotated[Optional[bool], typer.Option(
        "--judge", help="Score each task 1-5 with a model (its answers are journaled and cost counted).",
        show_default=False)] = None,
    min_score: Annotated[Optional[int], option("--min-score", help="With --judge: reject tasks scored below this "
                                                                    "(reason low_score).", default="keep all")] = None,
    judge_model: Annotated[Optional[str], option("--judge-model", help="The judge's model.",
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
    judge_price_in: JudgePriceIn = None,
    judge_price_out: JudgePriceOut = None,
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
    from selfinstruct.cli_output import print_estimate
    from selfinstruct.generation.plan import plan

    with exits():
        config = build().resolve()
        estimate = plan(config)
    print_estimate(config, estimate)


@app.command()
def resume(
    run_dir: Annotated[Path, typer.Argument(help="The run directory to continue.")],
    num_instructions: Annotated[Optional[int], option("--num-instructions", "-n", help="A new target size.",
                                                      default="the run's")] = None,
    base_url: resumed(BaseUrl) = None,
    api_key: ApiKey = None,
    judge_base_url: resumed(JudgeBaseUrl) = None,
    judge_api_key: JudgeApiKey = None,
    concurrency: resumed(Concurrency) = None,
    timeout: resumed(Timeout) = None,
    max_retries: resumed(MaxRetries) = None,
    max_idle_rounds: resumed(MaxIdleRounds) = None,
    failure_window: resumed(FailureWindow) = None,
    max_failure_share: resumed(MaxFailureShare) = None,
    price_in: resumed(PriceIn) = None,
    price_out: resumed(PriceOut) = None,
    judge_price_in: resumed(JudgePriceIn) = None,
    judge_price_out: resumed(JudgePriceOut) = None,
    max_cost: resumed(MaxCost) = None,
    max_requests: resumed(MaxRequests) = None,
    max_total_tokens: resumed(MaxTotalTokens) = None,
    rpm: resumed(Rpm) = None,
    tpm: resumed(Tpm) = None,
    batch: Annotated[Optional[bool], typer.Option(
        "--batch/--no-batch", help="Send through the provider's Batch API, or one by one.  [default: the run's]",
        show_default=False)] = None,
    cancel_batches: Annotated[bool, typer.Option(
        "--cancel-batches", help="Cancel the run's batches at the provider (keeping what they answered) and stop; "
                                 "a later resume sends the rest again.")] = False,
    allow_changes: AllowChanges = False,
    quiet: Quiet = False,
):
    """Continue a run with its stored settings; only the endpoint, its limits and the target may change."""
    overrides = {k: v for k, v in locals().items()
                 if k not in ("run_dir", "allow_changes", "quiet", "cancel_batches")}
    from selfinstruct.generation.session import resume_config

    if cancel_batches:
        _cancel_batches(run_dir, overrides)
    else:
        _run(lambda: resume_config(run_dir, **overrides), allow_changes, quiet)


def _cancel_batches(run_dir: Path, overrides: dict) -> None:
    from selfinstruct.endpoint.batcher import batches_said
    from selfinstruct.generation.session import cancel_batches

    with exits():
        cancelled = cancel_batches(run_dir, notify=lambda line: typer.echo(line, err=True), **overrides)
    typer.echo(f"cancelled {batches_said(cancelled)}; what they answered is kept: `selfinstruct resume {run_dir}` goes on"
               if cancelled else f"{run_dir} has no batch running at the provider")


def _run(build: Callable[[], Config], allow_changes: bool, quiet: bool) -> None:
    """Build the config and run; a run that ends early says how to resume it."""
    from selfinstruct.cli_output import print_summary, progress_mode
    from selfinstruct.endpoint.client import FatalAPIError, FormatRefused
    from selfinstruct.endpoint.ledger import RunStopped
    from selfinstruct.generation.session import generate as run_generate

    secrets: list[str] = []
    config = None

    def clean(message: object) -> str:
        text = str(message)
        for secret in secrets:
            text = text.replace(secret, "[redacted]")
        return text

    def notify(line: str) -> None:
        typer.echo(clean(line), err=True)

    def wording(error: Exception) -> str:
        if isinstance(error, RunStopped):
            return (f"stopped before the target: {error}\nResume (for example with other settings) with: "
                    f"selfinstruct resume {error.summary['run_dir']}")
        if isinstance(error, FatalAPIError) and not isinstance(error, FormatRefused):
            # resuming cannot change --structured, so a refused format gets no hint to resume
            return (f"{clean(error)}\nThe run stopped; what was journaled is kept. Fix this and run "
                    f"`selfinstruct resume {config.output}` to go on.")
        return clean(error)

    def interrupted(signum: int) -> str:
        where = f"Resume with: selfinstruct resume {config.output}" if config else ""
        return f"\ninterrupted; everything answered so far is saved. {where}"

    with exits(wording, interrupted=interrupted):
        config = build().resolve()
        secrets = config.secrets()
        progress = progress_mode(quiet)
        try:
            summary = run_generate(config, progress=progress, allow_changes=allow_changes, notify=notify)
        except RunStopped as stop:
            print_summary(stop.summary)
            raise
    print_summary(summary)


@app.command()
def export(
    run_dir: Annotated[Path, typer.Argument(help="A run directory.")],
    fmt: Format = "alpaca",
    output: Annotated[Optional[Path], option(
        "--output", "-o", help="Where to write (hf: a new or empty directory, or a previous hf export). An "
                               "existing file or hf export is replaced only at the default place or with "
                               "--overwrite.",
        default=EXPORT_NAMES)] = None,
    no_card: Annotated[bool, option(
        "--no-card", help="Write no dataset card; a card already next to the file only loses its entry for this "
                          "file name. The card is README.md next to the file (hf: in the directory) and lists every "
                          "export of the run there; a README.md that is not a selfinstruct card is never "
                          "overwritten.",
        default="write the card")] = False,
    overwrite: Annotated[bool, option(
        "--overwrite", help="Replace an existing --output that is not an earlier export at the default place "
                            "(never a run's own files).",
        default="refuse, exit 2")] = False,
):
    """Write a run's accepted tasks for training, with a dataset card (README.md)."""
    from selfinstruct.report.export import card_path, export_run
    from selfinstruct.store.rundir import completion_note

    with exits(bad_input={ValueError: str}):
        path, count = export_run(run_dir, fmt, output, card=not no_card, overwrite=overwrite)
    note = completion_note(run_dir)
    if note:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"wrote {count} records to {path}")
    if not no_card:
        typer.echo(f"dataset card: {card_path(path, fmt)}", err=True)


@app.command(name="filter")
def filter_command(
    inputs: Annotated[list[Path], typer.Argument(
        help="Alpaca JSON/JSONL, seed-task JSONL (also under a .json name), or ShareGPT or messages JSONL; several "
             "are deduplicated together, in the order given.", metavar="INPUT...")],
    output: Annotated[str, typer.Option("--output", "-o", metavar="<path>", help=(
        "Where the kept records go, in the input's layout: a file (one for all inputs), or an existing "
        "directory (each input's records under its own name)."))],
    threshold: Annotated[float, typer.Option(
        help="Drop a record whose ROUGE-L against an earlier kept one is above this.")] = 0.7,
    lang: Annotated[Literal["auto", "zh", "en"], typer.Option(
        help="Per record (auto), or one language for the heuristic rules.")] = "auto",
    only: Annotated[Optional[Literal["dedup", "heuristics"]], option("--only", help="Run only one of the two filters.")] = None,
    against: Annotated[Optional[list[Path]], option(
        "--against", help="Also drop records similar to this dataset (e.g. an eval set); repeat it for several.")] = None,
    field: Annotated[Optional[str], option("--field", help="Instruction field.", default="instruction")] = None,
    dropped: Annotated[Optional[Path], option("--dropped", help="Where dropped records go.",
                                              default="beside the output: clean.jsonl drops to "
                                                      "clean.dropped.jsonl, any other name to NAME.dropped.jsonl")] = None,
    key: Annotated[Key, typer.Option(
        help="What ROUGE-L compares: the instruction alone, or the instruction and the input apart: a record is "
             "then a duplicate only when both its instruction and its input score above the threshold against the "
             "same earlier kept record (two empty inputs are equal), so that instances of one instruction with "
             "different inputs (an Alpaca export) are all kept; the heuristic rules look at the instruction "
             "alone.")] = "instruction",
    quiet: Quiet = False,
    overwrite: Annotated[bool, option(
        "--overwrite", help="Replace an existing output or dropped-records file (never a run's own files).",
        default="refuse, exit 2")] = False,
    engine: Annotated[Literal["local", "ray"], typer.Option(
        help="Where deduplication runs: this process (a thread per core), or Ray (the cluster in RAY_ADDRESS, "
             "else a local one; pip install 'selfinstruct[ray]'). The output is the same, byte for byte.")] = "local",
    workers: Annotated[Optional[int], option(
        "--workers", help="Processes that read a large JSONL input, and threads (local) or Ray workers that "
                          "deduplicate.", default="the CPU count")] = None,
    judge: Annotated[Optional[bool], typer.Option(
        "--judge", help="Score each kept record 1-5 with a model; it gets a 'judge' field. Its answers are "
                        "journaled in --judge-dir, so running again asks only for what is new.",
        show_default=False)] = None,
    min_score: Annotated[Optional[int], option("--min-score", help="With --judge: drop records scored below this "
                                                                    "(reason low_score).", default="keep all")] = None,
    judge_model: Annotated[Optional[str], option(
        "--judge-model", help="The judge's model.", default="gpt-4o-mini; the bundled model when embedded")] = None,
    judge_base_url: Annotated[Optional[str], option(
        "--judge-base-url", help="The judge's endpoint.",
        default="$OPENAI_BASE_URL; with only a key, OpenAI; with neither, the embedded model")] = None,
    judge_api_key: Annotated[Optional[str], option("--judge-api-key", help="The judge's API key.",
                                                   default="$OPENAI_API_KEY")] = None,
    judge_dir: Annotated[Optional[Path], option("--judge-dir", help="Where the judge's answers are journaled.",
                                                default="<output stem>.judge/")] = None,
    batch: Annotated[Optional[bool], typer.Option(
        "--batch", help="With --judge: ask through the provider's Batch API, about half the price, answered within "
                        "24 hours; the same command follows batches an earlier one left.", show_default=False)] = None,
):
    """Filter an existing dataset: near-duplicates by ROUGE-L and the heuristic rules."""
    given = [name for name, value in (("--min-score", min_score), ("--judge-model", judge_model),
                                      ("--judge-base-url", judge_base_url), ("--judge-api-key", judge_api_key),
                                      ("--judge-dir", judge_dir), ("--batch", batch)) if value is not None]
    if given and not judge:
        fail(f"{', '.join(given)} needs --judge, which is off", BadInput.exit_code)
    from selfinstruct.cli_output import print_filter_report, progress_mode
    from selfinstruct.dedup.command import filter_dataset
    from selfinstruct.endpoint.progress import FileProgress
    from selfinstruct.generation.judge import JudgeOptions
    from selfinstruct.generation.session import STOP_SIGNALS, Interrupted

    def raise_interrupted(signum, frame):
        raise Interrupted(signum)

    def interrupted(signum: int) -> str:
        resumes = "; the judge's answers so far are kept: the same command asks only for the rest" if judge else ""
        resumes += " (its batches go on at the provider, and it collects them)" if batch else ""
        return f"error: interrupted ({signal.Signals(signum).name}); no file is left half-written{resumes}"

    options = JudgeOptions(judge_model, judge_base_url, judge_api_key, min_score, judge_dir,
                           batch=bool(batch)) if judge else None
    mode = progress_mode(quiet)
    previous = {signum: signal.signal(signum, raise_interrupted) for signum in STOP_SIGNALS}
    try:
        with exits(interrupted=interrupted,
                   bad_input={OSError: lambda exc: f"{exc.filename or inputs[0]}: {exc.strerror or exc}"}), \
                FileProgress(mode, lambda line: typer.echo(line, err=True)) as progress:
            report = filter_dataset(inputs, output, threshold=threshold, lang=lang, only=only, against=against,
                                    field=field, dropped_output=dropped, key=key,
                                    progress=progress if mode != "off" else None,
                                    overwrite=overwrite, engine=engine, workers=workers, judge=options,
                                    notify=lambda line: typer.echo(line, err=True))
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    print_filter_report(report)


@app.command()
def report(
    path: Annotated[Path, typer.Argument(help="A run directory, a dataset file that `filter` reads, or an "
                                               "`export --format hf` directory.")],
    output: Annotated[Optional[Path], option("--output", "-o", help="The HTML file to write.",
                                             default="PATH/report.html, or PATH.report.html")] = None,
    seeds: Annotated[Optional[Path], option("--seeds", help="Seed tasks the overlap figure compares with.",
                                            default="the run's seeds, or the bundled ones of the language")] = None,
    lang: Annotated[Literal["auto", "zh", "en"], typer.Option(
        help="The dataset's language (a run directory knows its own).")] = "auto",
):
    """Write one self-contained HTML page of figures and numbers about a dataset (opens offline)."""
    from selfinstruct.cli_output import shown
    from selfinstruct.report.page import write_report

    with exits(interrupted=lambda signum: "error: interrupted; nothing was written",
               bad_input={FileNotFoundError: str}):
        written = write_report(path, output, seeds=seeds, lang=lang,
                               notify=lambda note: typer.echo(f"note: {note}", err=True))
    typer.echo(shown(str(written)))


@app.command()
def serve(
    local_model: Annotated[Optional[Path], option("--local-model", help="A GGUF file.",
                                                  default="the bundled Gemma 3 270M")] = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    ctx: Annotated[int, typer.Option(help="Context size.")] = DEFAULT_CTX,
    threads: Annotated[Optional[int], option("--threads", help="Generation threads.", default="half the cores")] = None,
):
    """Run the embedded llama.cpp server alone, for other tools or several runs."""
    for name, value, low, high in (("port", port, 1, 65535), ("ctx", ctx, 1, None), ("threads", threads, 1, None)):
        if value is not None and (value < low or (high is not None and value > high)):
            fail(f"--{name} must be {f'from {low} to {high}' if high else f'at least {low}'}, got {value}",
                 BadInput.exit_code)
    from selfinstruct.endpoint.local import serve as serve_local

    with exits():
        serve_local(local_model, host=host, port=port, ctx=ctx, threads=threads)
