"""Options that several commands share, and the choices --help shows.

Imported whenever the command line starts (--help included), so it loads only typer and light
modules: --mode's choices are config.MODES, and --key's are written out here, because the module
that defines them loads numpy (tests/test_cli.py keeps them equal to dedup's KEYS).
"""

from __future__ import annotations

import copy
import re
from typing import Annotated, Literal, Optional

import typer

from selfinstruct.config import APIS, LANGS, MODES
from selfinstruct.report.export import FORMATS


def option(*names: str, help: str, default: str | None = None):
    """An option whose unset value is None (so a TOML file can fill it) but whose help shows the default."""
    return typer.Option(*names, help=f"{help}  [default: {default}]" if default else help, show_default=False)


def resumed(shared):
    """The same option for `resume`, whose unset value is the run's stored setting."""
    info = copy.copy(shared.__metadata__[0])
    info.help = re.sub(r"\[default: .*\]$", "[default: the run's]", info.help)
    return Annotated[shared.__origin__, info]


# Choices, shown in --help.
Lang = Literal[LANGS]
Mode = Literal[MODES]
Api = Literal[APIS]
KEYS = ("instruction", "instruction+input")
Key = Literal[KEYS]
# A plain string whose choices are export.FORMATS, checked by export_run: an unknown one is one line, exit 2.
Format = Annotated[str, typer.Option(
    "--format", "-f", metavar=f"<{'|'.join(FORMATS)}>",
    help="One record per instance (seeds: per task). sharegpt and messages are chat JSONL whose user turn is "
         "the instruction alone when the input is empty, otherwise instruction + \"\\n\\n\" + input; "
         "alpaca, alpaca-jsonl and hf keep instruction, input and output apart; hf is a datasets directory "
         "(pip install 'selfinstruct[hf]').")]
EXPORT_NAMES = "in RUN_DIR: " + ", ".join(f"{f.default_name}{'/' if f.directory else ''}"
                                           for f in FORMATS.values()) + ", by format"


# Options that `generate` and `resume` share: where requests go and how they are sent.
ApiKey = Annotated[Optional[str], option("--api-key", help="API key.", default="$OPENAI_API_KEY")]
BaseUrl = Annotated[Optional[str], option(
    "--base-url", help="OpenAI-compatible endpoint.",
    default="$OPENAI_BASE_URL; with only a key, OpenAI; with neither, the embedded model")]
JudgeBaseUrl = Annotated[Optional[str], option("--judge-base-url", help="The judge's endpoint.",
                                               default="the run's")]
JudgeApiKey = Annotated[Optional[str], option("--judge-api-key", help="The judge's API key.",
                                              default="the run's")]
Concurrency = Annotated[Optional[int], option("--concurrency", help="Requests in flight at once.", default="8")]
Timeout = Annotated[Optional[float], option("--timeout", help="Seconds per request attempt, connect to last byte.",
                                            default="120")]
MaxRetries = Annotated[Optional[int], option("--max-retries", help="Retries of a failing request.", default="6")]
MaxIdleRounds = Annotated[Optional[int], option(
    "--max-idle-rounds", help="Stop (exit 4) after this many rounds in a row accept nothing; 0: never.", default="10")]
FailureWindow = Annotated[Optional[int], option(
    "--failure-window", help="Stop (exit 4) when almost all of the last N requests failed; 0: never.",
    default="20")]
MaxFailureShare = Annotated[Optional[float], option(
    "--max-failure-share", help="The share of --failure-window that counts as almost all.", default="0.9")]
PriceIn = Annotated[Optional[float], option(
    "--price-in", help="USD per million prompt tokens.", default="the built-in table; 0 for local endpoints")]
PriceOut = Annotated[Optional[float], option(
    "--price-out", help="USD per million completion tokens.", default="the built-in table; 0 for local endpoints")]
JudgePriceIn = Annotated[Optional[float], option(
    "--judge-price-in", help="USD per million prompt tokens of the judge's model.", default="the built-in table")]
JudgePriceOut = Annotated[Optional[float], option(
    "--judge-price-out", help="USD per million completion tokens of the judge's model.", default="the built-in table")]
MaxCost = Annotated[Optional[float], option(
    "--max-cost", help="Stop (exit 4) once the run has spent this many USD.", default="no budget")]
MaxRequests = Annotated[Optional[int], option(
    "--max-requests", help="Stop (exit 4) before the attempt that would be the N+1st HTTP request, retries "
                           "included: the endpoint receives at most N.", default="no budget")]
MaxTotalTokens = Annotated[Optional[int], option(
    "--max-total-tokens", help="Stop (exit 4) once the run has used this many tokens, in and out (not "
                               "--max-tokens, which is per request).", default="no budget")]
Rpm = Annotated[Optional[float], option(
    "--rpm", help="Requests per minute to stay under (--judge requests to the same endpoint and key included).",
    default="no limit")]
Tpm = Annotated[Optional[float], option("--tpm", help="Tokens per minute to stay under.", default="no limit")]

AllowChanges = Annotated[bool, typer.Option("--allow-changes", help="Resume even if data-changing settings differ.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress (a bar on a terminal, else a line "
                                                          "every 10 s on stderr).")]
