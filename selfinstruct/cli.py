"""The command line: parses options and calls the Python API, nothing more."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from .client import FatalAPIError, redact
from .config import Config, ConfigError
from .export import FORMATS, accepted_tasks, export_run
from .filtering import FilterError, filter_dataset
from .journal import JournalError
from .local import DEFAULT_CTX, LocalModelError, LocalServerError, serve as serve_local
from .records import RecordError
from .rundir import RunDirError
from .runner import generate as run_generate

app = typer.Typer(help="Build instruction-tuning datasets the Self-Instruct / Alpaca / BELLE way.",
                  no_args_is_help=True, add_completion=False)

BAD_INPUT, API_REFUSED, INTERRUPTED = 2, 3, 130


def _fail(message: str, code: int) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def generate(
    config_file: Optional[Path] = typer.Option(None, "--config", help="TOML file with any of these settings."),
    lang: Optional[str] = typer.Option(None, help="zh or en: picks seeds, prompts and filters. [default: zh]"),
    mode: Optional[str] = typer.Option(None, help="self-instruct or alpaca. [default: self-instruct]"),
    seeds: Optional[Path] = typer.Option(None, help="Seed tasks (JSONL, JSON lines or JSON array; seed or Alpaca format)."),
    prompts: Optional[Path] = typer.Option(None, help="Folder of prompt templates (<lang>/<stage>.txt)."),
    num_instructions: Optional[int] = typer.Option(None, "--num-instructions", "-n", help="Tasks to accept. [default: 100]"),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="Run directory; an existing one is resumed."),
    seed: Optional[int] = typer.Option(None, help="Random seed for sampling prompts. [default: 0]"),
    api: Optional[str] = typer.Option(None, help="chat or completion. [default: chat; completion for the embedded model]"),
    model: Optional[str] = typer.Option(None, help="Model name. [default: gpt-4o-mini]"),
    base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible endpoint. [default: $OPENAI_BASE_URL, else the embedded model]"),
    api_key: Optional[str] = typer.Option(None, help="API key. [default: $OPENAI_API_KEY]", show_default=False),
    local: bool = typer.Option(False, "--local", help="Use the embedded llama.cpp model even if an endpoint is set."),
    local_model: Optional[Path] = typer.Option(None, help="A GGUF file to serve instead of the bundled model."),
    ctx: Optional[int] = typer.Option(None, help="Context size of the embedded model. [default: 4096]"),
    threads: Optional[int] = typer.Option(None, help="CPU threads of the embedded model. [default: all cores]"),
    temperature: Optional[float] = typer.Option(None, help="[default: 0.7; bundled model: 0.9]"),
    top_p: Optional[float] = typer.Option(None, help="[default: 1.0; bundled model: 0.95]"),
    max_tokens: Optional[int] = typer.Option(None, help="Per response. [default: 1024; bundled model: 256]"),
    concurrency: Optional[int] = typer.Option(None, help="Requests in flight at once. [default: 8]"),
    threshold: Optional[float] = typer.Option(None, help="Reject instructions whose ROUGE-L against the pool is above this. [default: 0.7]"),
    instances_per_task: Optional[int] = typer.Option(None, help="[default: 3]"),
    requests_per_round: Optional[int] = typer.Option(None, help="Generation requests per round. [default: 8]"),
    tasks_per_request: Optional[int] = typer.Option(None, help="Alpaca mode: tasks asked for per request. [default: 10]"),
    timeout: Optional[float] = typer.Option(None, help="Seconds per request. [default: 120]"),
    max_retries: Optional[int] = typer.Option(None, help="Retries of a failing request. [default: 6]"),
    allow_changes: bool = typer.Option(False, "--allow-changes", help="Resume even if data-changing settings differ."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Generate tasks from seed tasks, or resume the run in --output."""
    options = {k: v for k, v in locals().items() if k not in ("config_file", "allow_changes", "quiet", "local")}
    options["local"] = local or None
    try:
        config = Config.from_toml(config_file, **options) if config_file else \
            Config(**{k: v for k, v in options.items() if v is not None})
    except (ConfigError, TypeError) as exc:
        _fail(str(exc), BAD_INPUT)
    _run(config, allow_changes, quiet)


@app.command()
def resume(
    run_dir: Path = typer.Argument(..., help="The run directory to continue."),
    num_instructions: Optional[int] = typer.Option(None, "--num-instructions", "-n", help="A new target size."),
    allow_changes: bool = typer.Option(False, "--allow-changes"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
):
    """Continue an interrupted run with its stored settings."""
    try:
        settings = json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["settings"]
    except (OSError, ValueError, KeyError) as exc:
        _fail(f"{run_dir} is not a resumable run directory ({exc})", BAD_INPUT)
    if settings.get("local"):
        settings["base_url"] = None
    if num_instructions is not None:
        settings["num_instructions"] = num_instructions
    settings["output"] = run_dir
    try:
        config = Config(**settings)
    except (ConfigError, TypeError) as exc:
        _fail(f"{run_dir}/config.json: {exc}", BAD_INPUT)
    _run(config, allow_changes, quiet)


def _run(config: Config, allow_changes: bool, quiet: bool) -> None:
    secret = config.api_key
    try:
        config = config.with_defaults()
        summary = run_generate(config, progress=not quiet and sys.stderr.isatty(), allow_changes=allow_changes)
    except (ConfigError, RecordError, RunDirError, LocalModelError) as exc:
        _fail(redact(str(exc), secret), BAD_INPUT)
    except LocalServerError as exc:
        _fail(str(exc), 1)
    except FatalAPIError as exc:
        _fail(f"{redact(str(exc), secret)}\nThe run stopped; what was journaled is kept. Fix this and run the same "
              "command again to resume.", API_REFUSED)
    except JournalError as exc:
        _fail(redact(str(exc), secret), 1)
    except KeyboardInterrupt:
        typer.echo(f"\ninterrupted; everything answered so far is saved. "
                   f"Resume with: selfinstruct resume {config.output}", err=True)
        raise typer.Exit(INTERRUPTED)
    _print_summary(summary)


def _print_summary(summary: dict) -> None:
    typer.echo(f"run directory: {summary['run_dir']}")
    typer.echo(f"accepted {summary['accepted']}/{summary['target']}, rejected {summary['rejected']}, "
              f"requests {summary['requests']}, tokens in {summary['tokens_in']} / out {summary['tokens_out']}, "
              f"{summary['wall_seconds']:.1f} s")
    for reason, count in summary["rejected_by_reason"].items():
        typer.echo(f"  rejected {reason}: {count}")
    for reason, count in summary["failed_requests_by_reason"].items():
        typer.echo(f"  failed requests {reason}: {count}")
    for task in accepted_tasks(summary["run_dir"])[:3]:
        example = task["instances"][0]
        typer.echo(f"\n- {task['instruction']}")
        if example["input"]:
            typer.echo(f"  input: {example['input']}")
        typer.echo(f"  output: {example['output']}")


@app.command()
def export(
    run_dir: Path = typer.Argument(..., help="A run directory."),
    fmt: str = typer.Option("alpaca", "--format", "-f", help=f"One of: {', '.join(FORMATS)}."),
    output: Optional[Path] = typer.Option(None, "--output", "-o", help="[default: RUN_DIR/alpaca_data.json]"),
):
    """Write a run's accepted tasks as Alpaca records (one per instance) or seed tasks."""
    try:
        path, count = export_run(run_dir, fmt, output)
    except (ValueError, FileNotFoundError, JournalError) as exc:
        _fail(str(exc), BAD_INPUT)
    typer.echo(f"wrote {count} records to {path}")


@app.command(name="filter")
def filter_command(
    input: Path = typer.Argument(..., help="Alpaca JSON/JSONL, or seed-task JSONL (also under a .json name)."),
    output: Path = typer.Option(..., "--output", "-o", help="Where the kept records go, in the input's layout."),
    threshold: float = typer.Option(0.7, help="Drop a record whose ROUGE-L against an earlier kept one is above this."),
    lang: str = typer.Option("auto", help="auto (per record), zh or en: picks the heuristic rules."),
    only: Optional[str] = typer.Option(None, help="Run only 'dedup' or only 'heuristics'."),
    against: Optional[Path] = typer.Option(None, help="Also drop records similar to this dataset (e.g. an eval set)."),
    field: Optional[str] = typer.Option(None, help="Instruction field, if not 'instruction'."),
    dropped: Optional[Path] = typer.Option(None, help="Where dropped records go. [default: OUTPUT_STEM.dropped.jsonl]"),
):
    """Filter an existing dataset: near-duplicates by ROUGE-L and the heuristic rules."""
    try:
        report = filter_dataset(input, output, threshold=threshold, lang=lang, only=only, against=against,
                                field=field, dropped_output=dropped)
    except (FilterError, RecordError) as exc:
        _fail(str(exc), BAD_INPUT)
    width = max([len(r) for r in report.dropped] + [len("kept")])
    typer.echo(f"{'rule':<{width}}  records")
    for reason, count in report.dropped.most_common():
        typer.echo(f"{reason:<{width}}  {count}")
    typer.echo(f"{'kept':<{width}}  {report.kept} of {report.total}")
    typer.echo(f"kept records: {report.output}\ndropped records with reasons: {report.dropped_output}\n"
               f"{report.seconds:.1f} s")


@app.command()
def serve(
    local_model: Optional[Path] = typer.Option(None, help="A GGUF file. [default: the bundled Gemma 3 270M]"),
    host: str = typer.Option("127.0.0.1"),
    port: int = typer.Option(8000),
    ctx: int = typer.Option(DEFAULT_CTX, help="Context size."),
    threads: Optional[int] = typer.Option(None, help="Generation threads. [default: half the cores]"),
):
    """Run the embedded llama.cpp server alone, for other tools or several runs."""
    try:
        serve_local(local_model, host=host, port=port, ctx=ctx, threads=threads)
    except LocalModelError as exc:
        _fail(str(exc), BAD_INPUT)
    except LocalServerError as exc:
        _fail(str(exc), 1)
