"""What the commands print when they are done: a run's summary, a dry run's estimate, a filter's counts.

Loaded by a command when it runs, never for --help.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING

import typer

from selfinstruct.config import Config
from selfinstruct.endpoint.batch_api import WINDOW
from selfinstruct.report.export import accepted_tasks

if TYPE_CHECKING:  # each is loaded by its own command only
    from selfinstruct.dedup.command import FilterReport
    from selfinstruct.generation.plan import Plan


def progress_mode(quiet: bool) -> str:
    """A bar on a terminal; in a log (nohup, CI, a scheduler) a plain line every ~10 s; nothing with -q."""
    return "off" if quiet else "bar" if sys.stderr.isatty() else "lines"


def print_estimate(config: Config, estimate: Plan) -> None:
    typer.echo("dry run: nothing is sent and nothing is written.")
    typer.echo(config.endpoint_line() + "; " + (estimate.price.describe() if estimate.price else "price unknown"))
    for stage, prompt in estimate.prompts:
        tokens, counter = estimate.prompt_tokens[stage]
        typer.echo(f"\n--- {stage}: the first prompt as sent ({len(prompt)} characters, {counter.shown(tokens)}) "
                   f"---\n{prompt}\n--- end of {stage} prompt ---")
        if stage in estimate.response_formats:
            typer.echo(f"response_format: {json.dumps(estimate.response_formats[stage], ensure_ascii=False)}")
    requests = sum(estimate.requests.values())
    per_stage = ", ".join(f"{stage} {n:,}" for stage, n in estimate.requests.items())
    cost = "unknown (give --price-in and --price-out)" if estimate.cost is None else f"${estimate.cost:,.2f}"
    if estimate.batch and estimate.cost is None and estimate.online_cost is not None:
        cost = (f"unknown at batch prices: {config.model} has no known batch price (its provider may have no Batch "
                f"API; DeepSeek has none); ${estimate.online_cost:,.2f} sent one by one")
    elif estimate.batch:
        cost += " at batch prices" + (f" (${estimate.online_cost:,.2f} sent one by one)"
                                      if estimate.online_cost not in (None, estimate.cost) and estimate.cost is not None
                                      else "")
    if estimate.batch:
        wall = (f"each batch is answered within {WINDOW} (often minutes), and a run sends batches one after "
                "another as answers come (the README says how many per method)")
    else:
        wall = f"~{duration(estimate.seconds)} with {estimate.parallel} request(s) answered at once"
    typer.echo(f"\nestimate for {estimate.remaining:,} more tasks (rates: {estimate.rates}):\n"
               f"  requests   {requests:,} ({per_stage})\n"
               f"  tokens     {estimate.tokens_in:,} in / {estimate.tokens_out:,} out\n"
               f"  cost       {cost}\n"
               f"  wall time  {wall}")


def print_summary(summary: dict) -> None:
    try:
        _echo_summary(summary)
    except BrokenPipeError:  # `selfinstruct generate ... | head`: the run is done, the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _echo_summary(summary: dict) -> None:
    typer.echo(f"run directory: {shown(summary['run_dir'])}")
    typer.echo(f"accepted {summary['accepted']}/{summary['target']}, rejected {summary['rejected']}, "
               f"requests {summary['requests']}, tokens in {summary['tokens_in']} / out {summary['tokens_out']}, "
               f"{summary['wall_seconds']:.1f} s")
    for reason, count in summary["rejected_by_reason"].items():
        typer.echo(f"  rejected {reason}: {count}")
    for reason, count in summary["failed_requests_by_reason"].items():
        typer.echo(f"  failed requests {reason}: {count}")
    for task in accepted_tasks(summary["run_dir"])[:3]:
        example = task["instances"][0]
        typer.echo(f"\n- {one_line(task['instruction'])}")
        if example["input"]:
            typer.echo(f"  input: {one_line(example['input'])}")
        typer.echo(f"  output: {one_line(example['output'])}")


def print_filter_report(report: FilterReport) -> None:
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


def one_line(text: str, limit: int = 200) -> str:
    """A summary shows each field on one line: line breaks become ⏎, long texts end in …."""
    text = " ⏎ ".join(line.strip() for line in text.strip().splitlines())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def duration(seconds: float) -> str:
    minutes = round(seconds / 60)
    return f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{max(minutes, 1)} min"


def shown(path: str) -> str:
    """A path as people typed it: relative when it is below the working directory."""
    relative = os.path.relpath(path)
    return path if relative.startswith("..") else relative
