"""The LLM-judge quality stage (AlpaGasus, Chen et al., 2023): a model scores each task 1-5 with a
short reason, and tasks below ``--min-score`` are rejected (``low_score``).

``generate --judge`` scores every complete candidate of any method before it is accepted, through
the run's endpoint or its own (``--judge-model``, ``--judge-base-url``); the answers are journaled
like every other, so a resumed run does not pay for them twice. ``filter --judge`` scores an
existing dataset's kept records (``score_records``), journaled in a directory of its own. The
prompt is ``prompts/<lang>/judge.txt``; the parser takes a score the way chat models write one.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from selfinstruct.config import LENGTH_DEFAULTS, Config
from selfinstruct.endpoint.client import FatalAPIError, redact
from selfinstruct.endpoint.batcher import Batcher
from selfinstruct.endpoint.connect import batch_api, fit_to_local, model_client, served
from selfinstruct.endpoint.ledger import Call, Ledger, Limits, RunStopped, gather
from selfinstruct.endpoint.pricing import Price, price_for
from selfinstruct.endpoint.stats import Stats
from selfinstruct.generation.parsing.json_in_text import json_answer
from selfinstruct.generation.prompts import LABELS, PromptSet
from selfinstruct.store.journal import Journal
from selfinstruct.store.rundir import RunLock
from selfinstruct.text.lang import detect_lang
from selfinstruct.errors import FailedOrRefused
from selfinstruct.formats.task import Instance

STAGE = "judge"
TEMPLATES = {STAGE: {"instruction", "instances"}}
JUDGE_TOKENS = 128
FAILURE_WINDOW, FAILURE_SHARE = 20, 0.9  # filter --judge stops when this share of its last requests failed
REASON_CHARS = 300

_LABELLED = re.compile(r"(?:score|rating|grade|评分|得分|分数|打分)\s*(?:is|[:：=]|是|为)?\s*[*\[(（]*\s*([1-5])(?![\d.])",
                       re.IGNORECASE)
_OUT_OF = re.compile(r"(?<![\d.])([1-5])\s*(?:/\s*5|out of 5|分|points?)(?!\d)", re.IGNORECASE)
_BARE = re.compile(r"^\s*[*\[(（]*\s*([1-5])\s*[*\])）]*\s*(?:[.。,，:：]|$)")
_SCALE = re.compile(r"^\s*(?:/\s*5|out of 5|分|points?)", re.IGNORECASE)
# A score on another scale ("Score: 5/10", "4 out of 10", "满分10分", "on a scale of 1-10") is never
# read as out of 5: the score right after the number, or a scale stated anywhere.
_DENOMINATOR = re.compile(r"\s*(?:/|out of|of)\s*(\d+)", re.IGNORECASE)
_STATED_SCALE = re.compile(r"scale of\s*(?:0|1|one|zero)\s*(?:-|–|to)\s*(\d+)|(?:满分|总分)\s*(?:为|是)?\s*(\d+)"
                           r"|(\d+)\s*分制|(?:[01])\s*(?:-|–|到|至)\s*(\d+)\s*分", re.IGNORECASE)
_JSON_SCORE_KEYS = ("score", "rating", "grade", "评分", "得分", "分数")
_JSON_REASON_KEYS = ("reason", "explanation", "justification", "rationale", "理由", "原因", "解释")
_REASON = re.compile(r"(?:reason|because|理由|原因)\s*[:：]?\s*(.+)", re.IGNORECASE | re.DOTALL)


def judge_prompt(prompts: PromptSet, instruction: str, instances: list[Instance]) -> str:
    labels = LABELS[prompts.lang]
    colon = labels["colon"]
    shown = "\n".join((f"{labels['input']}{colon}{i.input}\n" if i.input.strip() else "")
                      + f"{labels['output']}{colon}{i.output}" for i in instances)
    return prompts.render(STAGE, instruction=instruction, instances=shown)


def parse_score(text: str) -> tuple[int | None, str]:
    """The score (1-5, or None when the answer gives none) and the reason, from a judge's answer:
    ``4\\nReason: ...`` (a prompt continued), ``Score: 4/5 because ...``, ``评分：4分，理由：...``."""
    answer = text.strip()
    text = _json_as_text(answer).strip()
    first = text.split("\n", 1)[0]
    found = _BARE.match(first) or _LABELLED.search(text) or _OUT_OF.search(text)
    if not found or _other_scale(text, found.end(1)):
        return None, answer[:REASON_CHARS]
    after = _SCALE.sub("", text[found.end():], count=1)
    reason = _REASON.search(after) or _REASON.search(text)
    rest = reason.group(1) if reason else after
    return int(found.group(1)), " ".join(rest.strip(" \n*:：.,，。-—").split())[:REASON_CHARS]


def _json_as_text(text: str) -> str:
    """A JSON answer (``{"score": 4, "reason": "..."}``, fenced or bare) written the way the rest of
    the parser reads, so that its score meets the same checks; any other answer as it is."""
    value = json_answer(text)
    if not isinstance(value, dict):
        return text
    fields = {key.strip().lower(): item for key, item in value.items()}
    score = next((fields[k] for k in _JSON_SCORE_KEYS if k in fields), None)
    reason = next((fields[k] for k in _JSON_REASON_KEYS if k in fields), "")
    if score is None or isinstance(score, (bool, dict, list)):
        return text
    return f"Score: {score}\nReason: {reason}"


def _other_scale(text: str, after: int) -> bool:
    """Whether the score ending at ``after`` is out of something other than 5, or the answer says its
    scale is another."""
    denominator = _DENOMINATOR.match(text, after)
    if denominator and int(denominator.group(1)) != 5:
        return True
    return any(int(number) != 5 for found in _STATED_SCALE.finditer(text) for number in found.groups() if number)


@dataclass
class JudgeOptions:
    """``filter --judge``: the judge's endpoint (the endpoint rule of ``generate``: a base URL, a key alone
    for OpenAI, else the embedded model), ``min_score``, and ``directory``, which journals its answers."""

    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    min_score: int | None = None
    directory: Path | None = None  # None: beside the output, <output stem>.judge/
    concurrency: int = 8
    batch: bool = False  # through the provider's Batch API, journaled in ``directory`` too

    def config(self, lang: str) -> Config:
        """The judge as a run's settings: one place settles the endpoint, its sampling and its secrets."""
        return Config(lang=lang, model=self.model, base_url=self.base_url, api_key=self.api_key,
                      concurrency=self.concurrency, batch=self.batch).resolve()


class Judgement(NamedTuple):
    score: int | None  # None: the answer gave none, or the request failed
    reason: str
    error: str | None = None  # why the request failed (then filtering again asks again)


def score_records(records: list[tuple[int, str, list[Instance]]], options: JudgeOptions, directory: Path,
                  progress: Callable[[int, int], None] = lambda done, total: None,
                  notify: Callable[[str], None] = lambda line: None) -> dict[int, Judgement]:
    """The judge's Judgement of each (number, instruction, instances). Every answer is journaled in
    ``directory``/responses.jsonl under its record's number and prompt, so a second run with the same
    records and judge sends only what was never answered. A request that fails is that record's
    Judgement (and is asked again next time); JudgeError ends the judging when the endpoint refuses us,
    or when nearly every recent request failed."""
    return asyncio.run(_score_records(records, options, Path(directory), progress, notify))


class JudgeError(FailedOrRefused, RuntimeError):
    """The judging cannot go on; ``refused``: the endpoint refuses us (key, model, access)."""

    def __init__(self, message: str, refused: bool = False):
        super().__init__(message)
        self.refused = refused


async def _score_records(records, options: JudgeOptions, directory: Path, progress, notify) -> dict:
    config = options.config("en")
    prompts = {lang: PromptSet.load(config.prompts, lang, TEMPLATES) for lang in LENGTH_DEFAULTS}
    directory.mkdir(exist_ok=True)
    lock, journal = RunLock(directory), Journal(directory / "responses.jsonl")
    scores: dict[int, Judgement] = {}
    with ExitStack() as stack:
        lock.acquire()  # one process journals here at a time
        stack.callback(lock.release)
        stack.callback(journal.close)
        # Lines before the ledger held only the key, the record, the text and the tokens.
        journaled = [{"stage": STAGE, "error": None} | r for r in journal.read(repair=True, required=("key", "text"))]
        notify(f"judge: {config.endpoint_line().removeprefix('endpoint: ')}; answers journaled in {directory}")
        config, local_note = fit_to_local(config)
        if local_note:
            notify(f"judge: {local_note}")
        config = served(stack, config, directory / "server.log")
        client = model_client(config)
        batcher = None
        if config.batch:
            api = batch_api(config, notify=notify)
            batcher = Batcher(directory, {"run": api, "judge": api}, notify=notify)
        stats = Stats(target=len(records))
        limits = Limits(failure_window=FAILURE_WINDOW, max_failure_share=FAILURE_SHARE, hold_refusals=False,
                        whose="the judge's", failure_settings="")
        ledger = Ledger(journal, stats, client, concurrency=config.concurrency, limits=limits, key_field="key",
                        retry_failed=True, batcher=batcher)
        ledger.replay(journaled, count=False)
        if batcher:
            await batcher.start(answered=ledger.cache.__contains__)

        async def score(number: int, instruction: str, instances: list[Instance]) -> None:
            prompt = judge_prompt(prompts[detect_lang(instruction)], instruction, instances)
            key = hashlib.sha256(json.dumps([number, prompt, config.model, config.api]).encode()).hexdigest()[:32]
            call = Call(key, {"key": key, "record": number, "stage": STAGE}, prompt, JUDGE_TOKENS, 0.0, config.top_p,
                        ["\n\n"] if config.api == "completion" else None)
            try:
                record = await ledger.ask(call)
            except FatalAPIError as exc:
                raise JudgeError(f"the judge's endpoint refused the request: {redact(str(exc), *config.secrets())}"
                                 " (the judge's settings: --judge-base-url, --judge-api-key, --judge-model)",
                                 refused=True) from None
            if record["error"]:
                failure = f"{record['error']}: {record['detail']}" if record.get("detail") else record["error"]
                scores[number] = Judgement(None, "", redact(failure, *config.secrets()))
            else:
                scores[number] = Judgement(*parse_score(record["text"]))
            progress(len(scores), len(records))

        try:
            await gather(*(score(*item) for item in records))
        except RunStopped:
            raise JudgeError(f"{ledger.stop_reason}; its answers so far are journaled, and the same command "
                             "asks only for the rest") from None
        finally:
            await client.close()
            if batcher:
                await batcher.close()
    price = price_for(config.model, local=config.local, base_url=config.base_url, batch=config.batch)
    notify(_summary(len(records), stats.failed, [stats.tokens_in[STAGE], stats.tokens_out[STAGE]], price))
    return scores


def _summary(records: int, failed: Counter, tokens: list[int], price: Price | None) -> str:
    cost = "" if price is None else f", ${price.cost(*tokens):.4f}"
    line = f"judge: {records} records; {tokens[0]:,} tokens in / {tokens[1]:,} out asked now{cost}"
    if failed:
        common = ", ".join(f"{r} {n}" for r, n in failed.most_common(3))
        line += f"; {sum(failed.values())} requests failed ({common}): the same command asks for them again"
    return line
