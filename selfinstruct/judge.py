"""The LLM-judge quality stage (AlpaGasus, Chen et al., 2023): a model scores each task 1-5 with a
short reason, and tasks below ``--min-score`` are rejected (``low_score``).

``generate --judge`` scores every complete candidate of any method before it is accepted, through
the run's endpoint or its own (``--judge-model``, ``--judge-base-url``); the answers are journaled
like every other, so a resumed run does not pay for them twice. The prompt is
``prompts/<lang>/judge.txt``; the parser takes a score the way chat models write one.
"""

from __future__ import annotations

import re

from .prompts import LABELS, PromptSet
from .seeds import Instance

STAGE = "judge"
TEMPLATES = {STAGE: {"instruction", "instances"}}
JUDGE_TOKENS = 128
REASON_CHARS = 300

_LABELLED = re.compile(r"(?:score|rating|grade|评分|得分|分数|打分)\s*(?:is|[:：=]|是|为)?\s*[*\[(（]*\s*([1-5])(?![\d.])",
                       re.IGNORECASE)
_OUT_OF = re.compile(r"(?<![\d.])([1-5])\s*(?:/\s*5|out of 5|分|points?)(?!\d)", re.IGNORECASE)
_BARE = re.compile(r"^\s*[*\[(（]*\s*([1-5])\s*[*\])）]*\s*(?:[.。,，:：]|$)")
_SCALE = re.compile(r"^\s*(?:/\s*5|out of 5|分|points?)", re.IGNORECASE)
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
    text = text.strip()
    first = text.split("\n", 1)[0]
    found = _BARE.match(first) or _LABELLED.search(text) or _OUT_OF.search(text)
    if not found:
        return None, text[:REASON_CHARS]
    after = _SCALE.sub("", text[found.end():], count=1)
    reason = _REASON.search(after) or _REASON.search(text)
    rest = reason.group(1) if reason else after
    return int(found.group(1)), " ".join(rest.strip(" \n*:：.,，。-—").split())[:REASON_CHARS]
