"""Evol-Instruct rewrites: the rewritten instruction, without what a chat model says around it."""

from __future__ import annotations

import re

from selfinstruct.generation.parsing.json_in_text import json_answer, json_key
from selfinstruct.generation.parsing.markup import BOLD, fence_flags, unquote, unwrap_bold

# The sentence before a rewrite, on a line of its own: a courtesy word alone, or a sentence that
# presents the rewrite ("Here's the rewritten instruction:"); an instruction's own first line
# ("Here is a list of numbers:") presents no instruction, so it stays.
_INTRO = re.compile(
    r"^\W*(?:(?:sure|certainly|of course|okay|ok|absolutely|great|好的|当然|没问题)\W*$"
    r"|(?:(?:sure|certainly|of course|okay|ok|absolutely|great)\W+)?(?:here(?:'s| is| are)|below is|this is)\b"
    r"[^:：\n]{0,60}\b(?:instruction|version|prompt|rewrite|rewritten|revised)\b[^:：\n]{0,30}[:：]\s*$"
    r"|(?:(?:好的|当然|没问题)\W*)?(?:(?:以下是|下面是|这是)[^:：\n]{0,30}(?:改写|指令|版本)[^:：\n]{0,20}|改写如下)"
    r"[:：]\s*$)",
    re.IGNORECASE,
)
# What a model says about its rewrite after giving it: never part of the instruction.
_EXPLANATION = re.compile(
    r"^\W*(?:this (?:version|rewrite|rewritten|revised|new|instruction|adds|keeps|makes|requires|asks|now)"
    r"|the (?:rewritten|revised|new) (?:instruction|version|prompt)|i (?:added|have added|'ve added|made|changed|kept)"
    r"|(?:explanation|rationale|changes?|what changed)\s*[:：]"
    r"|(?:说明|注|解释|改写说明|改动|变化)\s*[:：]|这(?:个|样|一)?(?:改写|版本|新指令|指令)"
    r"|(?:我|此处|这里)(?:增加|添加|加入)了"
    r"|改写(?:后)?(?:增加|加入|添加)了)",
    re.IGNORECASE,
)
# Our prompt's last line, repeated as a label before the rewrite, plain, bold or as a heading.
_ECHOED_LABEL = re.compile(
    rf"^\s*(?:#{{1,6}}\s*)?{BOLD}?\s*(?:rewritten instruction|new instruction|改写后的指令|新指令)"
    rf"[ \t]*(?:[:：][ \t]*{BOLD}|{BOLD}?[ \t]*[:：]|{BOLD}?[ \t]*(?=\n|$))\s*", re.IGNORECASE)
# The keys of the rewrite in a JSON object.
_JSON_REWRITE_KEYS = ("rewritten_instruction", "new_instruction", "instruction", "rewritten_prompt", "改写后的指令",
                      "新指令", "指令")


def parse_rewrite(text: str) -> str:
    """The rewritten instruction of an evolving answer, exactly, without what a chat model puts
    around it: an opening sentence ("Here is the rewritten instruction:"), our prompt's last line
    repeated as a label (``**Rewritten instruction:**``), quotes or bold around the whole
    instruction, and a closing note on what changed. A JSON answer gives its instruction.
    An empty result means the answer held no rewrite."""
    value = json_answer(text)
    if isinstance(value, dict):
        found = next((v for k, v in value.items() if json_key(k) in _JSON_REWRITE_KEYS and isinstance(v, str)), None)
        return (found or "").strip()
    if isinstance(value, str):
        return value.strip()
    paragraphs = _paragraphs(text.strip())
    if len(paragraphs) > 1 and _is_intro(paragraphs[0]):
        paragraphs = paragraphs[1:]
    while len(paragraphs) > 1 and (_EXPLANATION.match(paragraphs[-1]) or _parenthesised(paragraphs[-1])):
        paragraphs = paragraphs[:-1]
    text = "\n\n".join(paragraphs)
    text = _ECHOED_LABEL.sub("", text, count=1).strip()
    lines = text.split("\n", 1)
    if len(lines) == 2 and _is_intro(lines[0]):  # "Here it is:" then the instruction on the next line
        text = lines[1].strip()
    return unquote(unwrap_bold(text))


def _is_intro(paragraph: str) -> bool:
    """An opening sentence on a line of its own: "Sure! Here's the rewritten instruction:"."""
    return "\n" not in paragraph.strip() and bool(_INTRO.match(paragraph)) and \
        paragraph.rstrip(" *").endswith((":", "：", "!", "！", "。", "."))


def _parenthesised(paragraph: str) -> bool:
    text = paragraph.strip()
    return (text.startswith("(") and text.endswith(")")) or (text.startswith("（") and text.endswith("）"))


def _paragraphs(text: str) -> list[str]:
    """Blank-line separated paragraphs, a code fence kept whole."""
    paragraphs, current = [], []
    lines = text.splitlines()
    for line, fenced in zip(lines, fence_flags(lines)):
        if not line.strip() and not fenced:
            if current:
                paragraphs.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs
