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
    r"^\s*(?:#+\s*)?(?:\*\*)?(?:(?:task|instruction|任务|指令)\s*)?(\d{1,3})\s*(?:[.、．:：)）]|\s+-)\s*(.*)$",
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
_YES = re.compile(r"^\W*(yes|y|true|是的|是|对)\b", re.IGNORECASE)
_LABEL_PREFIX = re.compile(r"^\s*(?:classification|is it classification\??|answer|分类任务|是否分类任务|答案|回答)\s*[:：]\s*",
                           re.IGNORECASE)
_NO = re.compile(r"^\W*(no|n|false|不是|否|不)\b", re.IGNORECASE)


@dataclass
class ParsedInstructions:
    items: list[str]
    cut_off: str | None  # the item dropped because the response was cut off


def parse_instructions(text: str, next_number: int, continued: bool, cut_off: bool) -> ParsedInstructions:
    """Numbered list items (``9.``, ``9、``, ``任务9：``, ``Task 9:``); a blank line ends an item."""
    if continued:
        text = f"{next_number}. {text.lstrip(' ')}"
    items: list[str] = []
    current: list[str] | None = None
    for line in text.splitlines():
        match = _NUMBERED.match(line)
        if match:
            current = [_clean(match.group(2))]
            items.append(current)
        elif not line.strip():
            current = None
        elif current is not None:
            current.append(line.strip())
    texts = [" ".join(part for part in item if part).strip() for item in items]
    dropped = None
    if cut_off and texts:
        dropped = texts.pop()
    return ParsedInstructions([t for t in texts if t], dropped)


def parse_yes_no(text: str) -> bool | None:
    """The classification answer; None when it is neither yes nor no."""
    head = _LABEL_PREFIX.sub("", text.strip().split("\n", 1)[0])
    if _NO.match(head):  # checked first: "不是" starts with neither "是" nor "对", but "否" must not be read as yes
        return False
    if _YES.match(head):
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


def _clean(text: str) -> str:
    text = text.replace("**", "").strip()
    while (nested := _NUMBERED.match(text)) is not None:  # "任务9：8. 写..." numbered twice
        text = nested.group(2).strip()
    return text.strip("\"“”").strip()
