"""The scaffolding a model puts around the items of its answer, and the helpers that strip it.

Markdown (bold, headings, rules, bullets, code fences), quotes, labels such as ``Input:`` and
closing remarks: the patterns that find them, and the functions that read labelled fields and
take an item's text out of its markup, keeping the text itself exactly.
"""

from __future__ import annotations

import re

# -- the scaffolding of an answer -----------------------------------------------------------------

_COLON = r"\s*[:：]\s*"
BOLD = r"(?:\*\*|__)"
NUMBERED = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*)?(?:(?P<word>task|instruction|任务|指令)\s*)?(?P<number>\d{1,3})\s*"
    r"(?:[.、．:：)）]|\s+-)\s*(?P<text>.*)$",
    re.IGNORECASE,
)
BULLET = re.compile(r"^(?P<indent>\s*)[-*•·]\s+(?P<text>\S.*)$")
RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,}|={3,})\s*$")  # a markdown horizontal rule
FENCE = "```"
_HEADING_WORD = r"(?:example|sample|instance|task|示例|例子|样例|任务)"
_HEADING_NUMBER = r"#?(?:\d{1,3}|[一二三四五六七八九十]{1,3})?(?![A-Za-z])"
# A heading on a line of its own: bare ("Example 2", "示例 2：") or marked up ("**Example 2**",
# "### Example 1: Positive", "**示例2：**"), where a short title may follow the number.
HEADING = re.compile(
    rf"^\s*(?:{_HEADING_WORD}\s*{_HEADING_NUMBER}\s*[:：]?"
    rf"|#{{1,6}}\s*{BOLD}?\s*{_HEADING_WORD}\s*{_HEADING_NUMBER}[^\n]{{0,60}}?"
    rf"|{BOLD}\s*{_HEADING_WORD}\s*{_HEADING_NUMBER}[^*\n]{{0,60}}?{BOLD}\s*[:：]?)\s*$",
    re.IGNORECASE,
)
TASK_HEADING = re.compile(r"^\W*(?:task|任务)", re.IGNORECASE)
FIELD = re.compile(
    rf"^\s*(?:[-*•·]\s+)?(?:#{{1,6}}\s*)?{BOLD}?(?:\d{{1,3}}\s*[.、．]\s*)?{BOLD}?"  # **9. or 9. **
    r"(instruction|input|output|class label|label|task|指令|输入|输出|类别标签|类别|标签|任务)"
    rf"{BOLD}?" + _COLON + rf"{BOLD}?\s*(.*)$",
    re.IGNORECASE,
)
FIELD_NAMES = {"instruction": "instruction", "指令": "instruction", "input": "input", "输入": "input",
               "output": "output", "输出": "output", "class label": "label", "label": "label",
               "class_label": "label", "classlabel": "label", "类别标签": "label", "类别": "label", "标签": "label",
               "task": "task", "任务": "task"}
_NO_INPUT = {"", "none", "no input", "n/a", "na", "null", "<noinput>", "<no input>", "无", "无输入", "没有", "空", "(none)",
             "（无）"}
_QUOTES = {'"': '"', "“": "”", "「": "」", "『": "』", "'": "'"}
# A bold title before an item's text: "**Email drafting:** Draft an email ...".
_TITLE = re.compile(rf"^{BOLD}([^*\n]{{1,40}}?)(?:[:：]{BOLD}|{BOLD}\s*[:：])\s*(?=\S)")
# A closing line about the answer itself, never an item: only at the end of an answer, and only
# wordings about the tasks or examples, since an output (a letter, say) may end with "Let me know ...".
OUTRO = re.compile("|".join(r"^\W*" + wording for wording in (
    r"(?:i\s+)?hope\s+(?:this|these|that|they|it)\b",
    r"let me know\s+if\s+(?:you(?:'d| would)?\s+(?:like|need|want)\s+"
    r"(?:more|any more|additional|other|different|further|me to|some)|these|this|any of)",
    r"(?:feel free|if you(?:'d| would)?\s+(?:like|need|want)|would you like|do you want)\b.{0,60}"
    r"\b(?:more|additional|other|different|adjust|modif|chang|tweak|expand)",
    r"these\s+(?:tasks|examples|instructions|instances|cover|span)\b",
    r"(?:enjoy|happy (?:training|learning|fine-tuning))\b",
    r"希望(?:这些|以上|对你|对您|能|它们)",
    r"如果(?:您|你)?(?:还)?(?:需要|想要?)(?:更多|其他|别的|调整|修改|我)",
    r"如需(?:更多|调整|修改|其他)",
    r"以上(?:是|就是|为|这些|任务|示例|例子)",
    r"这些(?:任务|示例|例子|指令)(?:涵盖|覆盖|涉及|包括|都)",
    r"需要(?:更多|我)",
    r"祝",
)), re.IGNORECASE)


# -- labelled fields --------------------------------------------------------------------------------

def labelled_fields(text: str) -> list[tuple[str | None, str]]:
    """Labelled fields in order, each with its (possibly multi-line) value.

    Unlabelled lines continue the previous field, and every line inside a code fence does, so code
    in an output is kept as written. Headings (``Example 2``, ``**Example 2**``, ``### Task 4``,
    ``示例 2``), ``###`` and horizontal rules come back as ``(None, the line)`` so callers can treat
    them as separators; they end the field before them. Closing remarks at the end of the answer
    ("Let me know if you need more!") are no part of any field.
    """
    fields: list[list] = []
    lines = _without_outro(text).splitlines()
    for line, fenced in zip(lines, fence_flags(lines)):
        if fenced:
            if fields and fields[-1][0] is not None:
                fields[-1][1] += "\n" + line
            continue
        if line.strip() == "###" or RULE.match(line) or HEADING.match(line):
            fields.append([None, line.strip()])
            continue
        match = FIELD.match(line)
        if match:
            fields.append([FIELD_NAMES[match.group(1).lower()], _unbold_end(match.group(2))])
        elif fields and fields[-1][0] is not None:
            fields[-1][1] += "\n" + line
    return [(name, value.strip() if name else value) for name, value in fields]


def fence_flags(lines: list[str]) -> list[bool]:
    """For each line, whether it lies inside a code fence opened on an earlier line (its closing
    line included), where nothing is scaffolding."""
    flags, inside = [], False
    for line in lines:
        flags.append(inside)
        if inside:
            inside = not line.strip().startswith(FENCE)
        else:
            inside = line.count(FENCE) % 2 == 1
    return flags


def outside_fences(text: str) -> list[str]:
    lines = text.splitlines()
    return [line for line, fenced in zip(lines, fence_flags(lines)) if not fenced]


def _without_outro(text: str) -> str:
    """The answer without its closing remarks: trailing paragraphs, or a last line, that speak about
    the answer ("I hope these help!", "如果需要更多示例，请告诉我。")."""
    lines = text.rstrip().splitlines()
    fenced = fence_flags(lines)
    while lines:
        last = len(lines) - 1
        start = last
        while start > 0 and lines[start - 1].strip():
            start -= 1
        if not fenced[start] and OUTRO.match(lines[start]) and start > 0:
            cut = start
        elif not fenced[last] and OUTRO.match(lines[last]) and last > 0:
            cut = last
        else:
            break
        lines = lines[:cut]
        while lines and not lines[-1].strip():
            lines.pop()
        fenced = fenced[: len(lines)]
    return "\n".join(lines)


# -- an item's text ---------------------------------------------------------------------------------

def input_value(value: str) -> str:
    """An instance's input, or "" for the ways a model says there is none ("None", "<noinput>", "无")."""
    value = unquote(value)
    return "" if value.lower().strip("\"'“”。.*_`()（） ") in _NO_INPUT else value


def clean_item(text: str) -> str:
    """A list item's first line without its markup: bold, a number written twice, a bold title."""
    text = _TITLE.sub("", text.strip())
    text = text.replace("**", "").strip()
    while (nested := NUMBERED.match(text)) is not None:  # "任务9：8. 写..." numbered twice
        text = nested["text"].strip()
    return text


def unquote(text: str) -> str:
    """The text without a quote pair that wraps all of it; quotes inside are the item's own."""
    text = text.strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        inner = text[1:-1]
        if text[0] not in inner and text[-1] not in inner and inner.strip():
            return inner.strip()
    return text


def unbold(text: str) -> str:
    return text.replace("**", "").replace("__", "")


def _unbold_end(value: str) -> str:
    """A field's value without the closing ``**`` of a bold that opened before its label
    (``**Class label: Positive**``)."""
    value = value.rstrip()
    if value.endswith("**") and value.count("**") % 2 == 1:
        return value[:-2].rstrip()
    return value


def unwrap_bold(text: str) -> str:
    if text.startswith("**") and text.endswith("**") and text.count("**") == 2 and len(text) > 4:
        return text[2:-2].strip()
    return text
