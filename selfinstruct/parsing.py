"""Reading model output back into instructions, labels and instances.

Model output is untrusted: every parser returns what it could read and never
raises on odd text; an empty result is the caller's cue to record a rejection.
``continued=True`` means the text continues the prompt (completion API), so the
opening the prompt ended with is put back in front before parsing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .seeds import Instance

_COLON = r"\s*[:：]\s*"
_NUMBERED = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*)?(?:(?P<word>task|instruction|任务|指令)\s*)?(?P<number>\d{1,3})\s*"
    r"(?:[.、．:：)）]|\s+-)\s*(?P<text>.*)$",
    re.IGNORECASE,
)
_EXAMPLE = re.compile(r"^\s*(?:example|示例|例子)\s*\d*\s*[:：]?\s*$", re.IGNORECASE)
_FIELD = re.compile(
    r"^\s*(?:\*\*)?(?:\d{1,3}\s*[.、．]\s*)?"
    r"(instruction|input|output|class label|label|task|指令|输入|输出|类别标签|类别|任务)(?:\*\*)?" + _COLON + r"(?:\*\*)?\s*(.*)$",
    re.IGNORECASE,
)
_FIELD_NAMES = {"instruction": "instruction", "指令": "instruction", "input": "input", "输入": "input",
                "output": "output", "输出": "output", "class label": "label", "label": "label",
                "类别标签": "label", "类别": "label",
                "task": "task", "任务": "task"}
_NO_INPUT = {"", "none", "no input", "n/a", "na", "null", "<noinput>", "<no input>", "无", "无输入", "没有", "空", "(none)", "（无）"}
_LABEL_PREFIX = re.compile(r"^\s*(?:classification|is it classification\??|adds something|answer|分类任务|是否分类任务|"
                           r"有新内容|答案|回答)\s*[:：]\s*",
                           re.IGNORECASE)
# Yes/no answers: a hedge decides nothing; then the leading word; then a sentence saying the task is
# (not) a classification task. No "\b" after Chinese words: there is no word boundary between two CJK characters.
_UNSURE = re.compile(r"not sure|unsure|don't know|do not know|can(?:not|'t) (?:tell|say)|unclear|"
                     r"不知道|不确定|不清楚|无法(?:判断|确定)|难以(?:判断|确定)|不好说|是不是|是否", re.IGNORECASE)
_NO = re.compile(r"^(?:(?:no|nope|n|false)\b|否|不是|不(?:属于)?(?!\w))", re.IGNORECASE)
_YES = re.compile(r"^(?:(?:yes|yeah|yep|y|true)\b|是|(?:对|属于)(?!\w))", re.IGNORECASE)
_KIND = r"(?:一个|一项|一种|一类|个)?"
_NOT_CLASSIFICATION = re.compile(r"(?:\bnot|n't)\s+(?:an?\s+)?classification\b|(?:不是|不属于|并非|不算|非)" + _KIND + "分类",
                                 re.IGNORECASE)
_IS_CLASSIFICATION = re.compile(r"\b(?:is|it's|that's)\s+(?:an?\s+)?classification\b|(?:是|属于|算)" + _KIND + "分类",
                                re.IGNORECASE)


@dataclass
class ParsedInstructions:
    items: list[str]
    cut_off: str | None  # the item dropped because the response was cut off


def parse_instructions(text: str, next_number: int, continued: bool, cut_off: bool) -> ParsedInstructions:
    """Numbered list items (``9.``, ``9、``, ``任务9：``, ``Task 9:``).

    The first line numbered ``next_number`` (else the first numbered line) starts the list and sets
    its style (the word before the number, or none); a numbered line starts the next item only in
    that style and with the next number, so a numbered sub-list stays inside its instruction.
    When ``continued``, the first item's style is the bare number put in front here, while the model
    writes the next one as the prompt does (``Task 10:``), so the second item sets the style.
    Lines of one item are joined with newlines. A blank line ends an item, except that an item
    ending with a colon takes in a numbered non-item line after the blank line (its sub-list).
    """
    if continued:
        text = f"{next_number}. {text.lstrip(' ')}"
    lines = text.splitlines()
    matches = [_NUMBERED.match(line) for line in lines]
    numbers = [int(match["number"]) for match in matches if match]
    first = next_number if next_number in numbers else (numbers[0] if numbers else None)
    items: list[list[str]] = []
    current: list[str] | None = None
    number, style = None, None
    for line, match in zip(lines, matches):
        if match and (int(match["number"]) == first if not items else
                      int(match["number"]) == number + 1 and style in (None, _style(match))):
            number, style = int(match["number"]), None if continued and not items else _style(match)
            current = [_clean(match["text"])]
            items.append(current)
        elif not line.strip():
            current = None
        elif current is None and match and items and items[-1][-1].endswith((":", "：")):
            current = items[-1]
            current.append(line.strip())
        elif current is not None:
            current.append(line.strip())
    texts = ["\n".join(part for part in item if part).strip() for item in items]
    dropped = None
    if cut_off and texts:
        dropped = texts.pop()
    return ParsedInstructions([t for t in texts if t], dropped)


def parse_yes_no(text: str) -> bool | None:
    """The classification answer from the first line; None when it says neither yes nor no."""
    head = _LABEL_PREFIX.sub("", text.strip().split("\n", 1)[0])
    head = re.sub(r"^\W+", "", head)
    if _UNSURE.search(head):  # "不知道" starts with 不 but is no answer
        return None
    for no, yes in ((_NO, _YES), (_NOT_CLASSIFICATION, _IS_CLASSIFICATION)):
        if no.search(head):  # negatives first: "这不是分类任务" contains "是分类任务"
            return False
        if yes.search(head):
            return True
    return None


def parse_instances(text: str, classification: bool, continued: bool) -> list[Instance]:
    """Input/output pairs, or for classification label/input pairs (output first)."""
    opening = "label" if classification else "input"
    if continued and not _starts_with_field(text):
        text = ("Class label: " if classification else "Input: ") + text.lstrip()
    instances, current = [], {}
    for name, value in _fields(text):
        if name == "task":  # the model went on to invent the next task
            break
        if name is None:
            continue
        if name == opening and current:
            instances.append(current)
            current = {}
        if name in current:  # a field repeated without the opening field: start a new example
            instances.append(current)
            current = {}
        current[name] = value
    if current:
        instances.append(current)
    result = []
    for fields_of_one in instances:
        if classification:
            label, given = fields_of_one.get("label"), fields_of_one.get("input")
            if label is not None and given is not None:
                result.append(Instance(_input(given), label.strip()))
        else:
            given, output = fields_of_one.get("input"), fields_of_one.get("output")
            if output is not None:
                result.append(Instance(_input(given or ""), output.strip()))
    return result


def parse_alpaca_tasks(text: str, next_number: int, continued: bool) -> list[dict]:
    """Complete tasks (instruction, input, output) separated by ``###`` or numbered instructions."""
    if continued:
        text = f"{next_number}. Instruction: {text.lstrip()}"
    tasks, current = [], {}
    for name, value in _fields(text):
        if name == "task":
            continue
        if name == "instruction" or (name is None and value == "###"):
            if current:
                tasks.append(current)
            current = {} if name is None else {"instruction": value}
        elif name is not None and name not in current:
            current[name] = value
    if current:
        tasks.append(current)
    return [
        {"instruction": t["instruction"].strip(), "input": _input(t.get("input", "")), "output": t["output"].strip()}
        for t in tasks
        if t.get("instruction", "").strip() and "output" in t
    ]


def _fields(text: str) -> list[tuple[str | None, str]]:
    """Labelled fields in order, each with its (possibly multi-line) value.

    Unlabelled lines continue the previous field; example headers and ``###``
    come back as ``(None, marker)`` so callers can treat them as separators.
    """
    fields: list[list] = []
    for line in text.splitlines():
        if line.strip() == "###" or _EXAMPLE.match(line):
            fields.append([None, "###" if line.strip() == "###" else "example"])
            continue
        match = _FIELD.match(line)
        if match:
            fields.append([_FIELD_NAMES[match.group(1).lower()], match.group(2)])
        elif fields and fields[-1][0] is not None:
            fields[-1][1] += "\n" + line
    return [(name, value.strip() if name else value) for name, value in fields]


def _starts_with_field(text: str) -> bool:
    for line in text.splitlines():
        if line.strip():
            return bool(_FIELD.match(line) or _EXAMPLE.match(line))
    return False


def _input(value: str) -> str:
    value = value.strip()
    return "" if value.lower().strip("\"'“”。.") in _NO_INPUT else value


def _style(match: re.Match) -> str:
    return (match["word"] or "").lower()


def _clean(text: str) -> str:
    text = text.replace("**", "").strip()
    while (nested := _NUMBERED.match(text)) is not None:  # "任务9：8. 写..." numbered twice
        text = nested["text"].strip()
    return text.strip("\"“”").strip()
