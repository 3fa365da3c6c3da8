"""Yes/no answers: whether a task is a classification task, whether a rewrite adds something."""

from __future__ import annotations

import re

from selfinstruct.generation.parsing.json_in_text import json_answer, json_key
from selfinstruct.generation.parsing.markup import unbold

_LABEL_PREFIX = re.compile(r"^\s*(?:(?:classification|is it classification\??|adds something|answer|"
                           r"分类任务|是否分类任务|有新内容|答案|回答|答|判断|结论)\s*[:：]|the answer is\b[:：]?)\s*",
                           re.IGNORECASE)
# Lines a chat model repeats from the few-shot prompt before its answer: the task, the pair compared.
_ECHO = re.compile(r"^\W*(?:task|first|second|任务|第一条|第二条)\s*[:：]", re.IGNORECASE)
# Yes/no answers: a hedge decides nothing; then the leading word; then a sentence saying the task is
# (not) a classification task. No "\b" after Chinese words: there is no word boundary between two CJK characters.
_UNSURE = re.compile(r"not sure|unsure|don't know|do not know|can(?:not|'t) (?:tell|say)|unclear|"
                     r"不知道|不确定|不清楚|无法(?:判断|确定)|难以(?:判断|确定)|不好说|是不是|是否", re.IGNORECASE)
_NO = re.compile(r"^(?:(?:no|nope|n|false|not really)\b|否|不是|不(?:属于)?(?!\w)|没有(?:新的?内容)?(?!\w))",
                 re.IGNORECASE)
_YES = re.compile(r"^(?:(?:yes|yeah|yep|y|true)\b|是|(?:对|属于)(?!\w)|有(?:新的?内容)?(?!\w))", re.IGNORECASE)
_KIND = r"(?:一个|一项|一种|一类|个)?"
_NOT_CLASSIFICATION = re.compile(r"(?:\bnot|n't)\s+(?:an?\s+)?classification\b|(?:不是|不属于|并非|不算|非)" + _KIND + "分类",
                                 re.IGNORECASE)
_IS_CLASSIFICATION = re.compile(r"\b(?:is|it's|that's)\s+(?:an?\s+)?classification\b|(?:是|属于|算)" + _KIND + "分类",
                                re.IGNORECASE)
# The keys of the answer in a JSON object.
_JSON_ANSWER_KEYS = ("classification", "is_classification", "answer", "adds_something", "adds", "result",
                     "分类任务", "有新内容", "答案")


def parse_yes_no(text: str) -> bool | None:
    """A yes/no answer (classification, or whether a rewrite adds something) from its first line, or
    from a JSON object's answer; None when it says neither yes nor no.

    Lines echoing the few-shot prompt (``Task: ...``, ``First: ...``) and a label alone on its line
    (``Classification:``) are skipped, since a chat model often repeats them before its answer."""
    value = json_answer(text)
    if isinstance(value, dict):
        found = next((v for k, v in value.items() if json_key(k) in _JSON_ANSWER_KEYS), None)
        if isinstance(found, bool):
            return found
        text = found if isinstance(found, str) else ""
    for line in text.strip().splitlines():
        head = _LABEL_PREFIX.sub("", unbold(line).strip())
        if not _ECHO.match(line) and re.sub(r"\W+", "", head):
            break
    else:
        return None
    head = re.sub(r"^\W+", "", unbold(head))
    if _UNSURE.search(head):  # "不知道" starts with 不 but is no answer
        return None
    for no, yes in ((_NO, _YES), (_NOT_CLASSIFICATION, _IS_CLASSIFICATION)):
        if no.search(head):  # negatives first: "这不是分类任务" contains "是分类任务"
            return False
        if yes.search(head):
            return True
    return None
