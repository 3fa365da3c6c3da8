"""Reading model output back into instructions, labels, instances, tasks and rewrites.

Model output is untrusted: every parser returns what it could read and never raises on odd text.
A chat model seldom answers in exactly the prompt's format: it opens with "Sure! Here are more
tasks:", bolds its labels and headings (``**Input:**``, ``### Example 2``, ``**示例2：**``), quotes
inputs, answers with bullets, closes with "Let me know if you need more!", or returns JSON. The
parsers keep each item's text exactly and drop only that scaffolding; an item that cannot be used
(cut off, empty, missing a field) is returned in ``dropped`` with its reason, for the caller to
record as a rejection. An empty result with nothing dropped is the caller's cue for
``unparseable_*``. ``continued=True`` means the text continues the prompt (completion API), so the
opening the prompt ended with is put back in front before parsing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from selfinstruct.formats.task import Instance

# -- the scaffolding of an answer -----------------------------------------------------------------

_COLON = r"\s*[:：]\s*"
_BOLD = r"(?:\*\*|__)"
_NUMBERED = re.compile(
    r"^\s*(?:#+\s*)?(?:\*\*)?(?:(?P<word>task|instruction|任务|指令)\s*)?(?P<number>\d{1,3})\s*"
    r"(?:[.、．:：)）]|\s+-)\s*(?P<text>.*)$",
    re.IGNORECASE,
)
_BULLET = re.compile(r"^(?P<indent>\s*)[-*•·]\s+(?P<text>\S.*)$")
_RULE = re.compile(r"^\s*(?:-{3,}|\*{3,}|_{3,}|={3,})\s*$")  # a markdown horizontal rule
_FENCE = "```"
_HEADING_WORD = r"(?:example|sample|instance|task|示例|例子|样例|任务)"
_HEADING_NUMBER = r"#?(?:\d{1,3}|[一二三四五六七八九十]{1,3})?(?![A-Za-z])"
# A heading on a line of its own: bare ("Example 2", "示例 2：") or marked up ("**Example 2**",
# "### Example 1: Positive", "**示例2：**"), where a short title may follow the number.
_HEADING = re.compile(
    rf"^\s*(?:{_HEADING_WORD}\s*{_HEADING_NUMBER}\s*[:：]?"
    rf"|#{{1,6}}\s*{_BOLD}?\s*{_HEADING_WORD}\s*{_HEADING_NUMBER}[^\n]{{0,60}}?"
    rf"|{_BOLD}\s*{_HEADING_WORD}\s*{_HEADING_NUMBER}[^*\n]{{0,60}}?{_BOLD}\s*[:：]?)\s*$",
    re.IGNORECASE,
)
_TASK_HEADING = re.compile(r"^\W*(?:task|任务)", re.IGNORECASE)
_FIELD = re.compile(
    rf"^\s*(?:[-*•·]\s+)?(?:#{{1,6}}\s*)?{_BOLD}?(?:\d{{1,3}}\s*[.、．]\s*)?{_BOLD}?"  # **9. or 9. **
    r"(instruction|input|output|class label|label|task|指令|输入|输出|类别标签|类别|标签|任务)"
    rf"{_BOLD}?" + _COLON + rf"{_BOLD}?\s*(.*)$",
    re.IGNORECASE,
)
_FIELD_NAMES = {"instruction": "instruction", "指令": "instruction", "input": "input", "输入": "input",
                "output": "output", "输出": "output", "class label": "label", "label": "label",
                "class_label": "label", "classlabel": "label", "类别标签": "label", "类别": "label", "标签": "label",
                "task": "task", "任务": "task"}
_NO_INPUT = {"", "none", "no input", "n/a", "na", "null", "<noinput>", "<no input>", "无", "无输入", "没有", "空", "(none)",
             "（无）"}
_QUOTES = {'"': '"', "“": "”", "「": "」", "『": "』", "'": "'"}
# A bold title before an item's text: "**Email drafting:** Draft an email ...".
_TITLE = re.compile(rf"^{_BOLD}([^*\n]{{1,40}}?)(?:[:：]{_BOLD}|{_BOLD}\s*[:：])\s*(?=\S)")
# A closing line about the answer itself, never an item: only at the end of an answer, and only
# wordings about the tasks or examples, since an output (a letter, say) may end with "Let me know ...".
_OUTRO = re.compile("|".join(r"^\W*" + wording for wording in (
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
    rf"^\s*(?:#{{1,6}}\s*)?{_BOLD}?\s*(?:rewritten instruction|new instruction|改写后的指令|新指令)"
    rf"[ \t]*(?:[:：][ \t]*{_BOLD}|{_BOLD}?[ \t]*[:：]|{_BOLD}?[ \t]*(?=\n|$))\s*", re.IGNORECASE)

# -- yes/no answers ---------------------------------------------------------------------------------

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

# JSON answers: the keys of a list inside an object ({"tasks": [...]}), and of a yes/no or a rewrite.
_JSON_LISTS = ("tasks", "instructions", "examples", "instances", "items", "data", "results", "任务", "指令", "示例")
_JSON_ANSWER_KEYS = ("classification", "is_classification", "answer", "adds_something", "adds", "result",
                     "分类任务", "有新内容", "答案")
_JSON_REWRITE_KEYS = ("rewritten_instruction", "new_instruction", "instruction", "rewritten_prompt", "改写后的指令",
                      "新指令", "指令")


_DECODER = json.JSONDecoder()


@dataclass
class Dropped:
    """An item the parser could not use, and why (a rejection reason)."""

    reason: str  # cut_off, empty_item, incomplete_instance, incomplete_task, malformed_item
    text: str


@dataclass
class Parsed:
    """What a list answer gave: its usable items in order, and what was dropped, in order."""

    items: list
    dropped: list[Dropped] = field(default_factory=list)


# -- instructions -------------------------------------------------------------------------------------

def parse_instructions(text: str, next_number: int, continued: bool, cut_off: bool) -> Parsed:
    """A list of new instructions: numbered (``9.``, ``9、``, ``任务9：``, ``Task 9:``), else bulleted
    (``-``, ``*``, ``•``, ``·``), else a JSON array of strings or of objects with an instruction.

    When ``cut_off`` (the response hit ``max_tokens``) the last item is dropped as ``cut_off``.
    """
    if continued:
        text = f"{next_number}. {text.lstrip(' ')}"
    elements = None if continued else _json_elements(text)
    if elements is not None:
        return _from_json(elements, _json_instruction)
    items, heads = _numbered_items(text, next_number, continued) if _numbered_first(text) else _bulleted_items(text)
    read = [item or Dropped("empty_item", head.strip()) for item, head in zip(items, heads)]
    return _finish(read, cut_off, [item or head.strip() for item, head in zip(items, heads)])


def _numbered_first(text: str) -> bool:
    """Whether the list is numbered: a bulleted list is read only when its first bullet comes before
    any numbered line (numbered lines under it are then its sub-lists)."""
    for line in _outside_fences(text):
        if _NUMBERED.match(line):
            return True
        if _BULLET.match(line) and not _RULE.match(line):
            return False
    return True


def _numbered_items(text: str, next_number: int, continued: bool) -> tuple[list[str], list[str]]:
    """The items of a numbered list, and each item's first line as written.

    The first line numbered ``next_number`` (else the first numbered line) starts the list and sets
    its style (the word before the number, or none); a numbered line starts the next item only in
    that style and with the next number, so a numbered sub-list stays inside its instruction.
    When ``continued``, the first item's style is the bare number put in front here, while the model
    writes the next one as the prompt does (``Task 10:``), so the second item sets the style.
    """
    numbers = [int(match["number"]) for line in _outside_fences(text) if (match := _NUMBERED.match(line))]
    first = next_number if next_number in numbers else (numbers[0] if numbers else None)
    last: list = [None, None, 0]  # the number and style of the last item, and how many items so far

    def opens(line: str) -> str | None:
        match = _NUMBERED.match(line)
        if not match:
            return None
        number, (previous, style, count) = int(match["number"]), last
        if number != first if not count else number != previous + 1 or style not in (None, _style(match)):
            return None
        last[:] = number, None if continued and not count else _style(match), count + 1
        return match["text"]

    return _list_items(text, opens, lambda line: bool(_NUMBERED.match(line) or _BULLET.match(line)))


def _bulleted_items(text: str) -> tuple[list[str], list[str]]:
    """The items of a bulleted list: a bullet as deep as the first starts an item; deeper bullets
    go on with it as its sub-list."""
    depth: list[int] = []

    def opens(line: str) -> str | None:
        bullet = _BULLET.match(line)
        if not bullet or (depth and len(bullet["indent"]) > depth[0]):
            return None
        depth[:] = depth or [len(bullet["indent"])]
        return bullet["text"]

    return _list_items(text, opens, lambda line: bool(_BULLET.match(line)))


def _list_items(text: str, opens: Callable[[str], str | None], listed: Callable[[str], bool]
                ) -> tuple[list[str], list[str]]:
    """The items of a list whose item lines ``opens`` tells (giving the text after the marker), and
    each item's first line as written. Lines of one item are joined with newlines. A blank line, a
    horizontal rule ends an item, except that an item ending with a colon takes in a ``listed`` line
    after a blank line (its sub-list); a closing remark ends the last item ("I hope these help!"), but
    within the list it is a line of its item. Code fences are kept as written."""
    items: list[list[str]] = []
    heads: list[str] = []
    current: list[str] | None = None
    held: tuple[list[str], list[str]] | None = None  # an item's lines from a closing remark on
    indent = ""
    lines = text.splitlines()
    for line, inside in zip(lines, _fence_flags(lines)):
        if inside:
            _add_fenced(current, line, indent)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        opened = None if _RULE.match(line) else opens(line)
        if opened is not None:
            if held:  # an item came after the remark, so the remark was its item's own line
                held[0].extend(held[1])
            current, held = [_clean(opened)], None
            items.append(current)
            heads.append(line)
        elif current is not None and held is None and _OUTRO.match(line):
            held = (current, [line.strip()])
            current = held[1]
        elif not line.strip() or _RULE.match(line):
            current = None
        elif current is None and listed(line) and items and items[-1][-1].endswith((":", "：")):
            current = items[-1]
            current.append(line.strip())
        elif current is not None:
            current.append(line.strip())
    return [_item_text(item) for item in items], heads


def _add_fenced(current: list[str] | None, line: str, indent: str) -> None:
    """A line inside a code fence goes on with its item as written, less the indent of the line that
    opened the fence (the item's own indent), so code keeps its shape."""
    if current is not None:
        current.append(line.rstrip().removeprefix(indent))


def _item_text(lines: list[str]) -> str:
    return _unquote("\n".join(lines).strip())


def _json_instruction(element: object) -> str | Dropped:
    """A JSON list element as an instruction: a string, or an object's instruction (with its input
    on the next line, as the instructions prompt shows an input given with its instruction)."""
    if isinstance(element, str):
        return element.strip() or Dropped("empty_item", json.dumps(element, ensure_ascii=False))
    if isinstance(element, dict):
        fields = _json_fields(element)
        instruction = fields.get("instruction", fields.get("task", "")).strip()
        if instruction:
            given = _input(fields.get("input", ""))
            return f"{instruction}\n{given}" if given else instruction
    return Dropped("malformed_item", json.dumps(element, ensure_ascii=False)[:500])


# -- yes/no -----------------------------------------------------------------------------------------

def parse_yes_no(text: str) -> bool | None:
    """A yes/no answer (classification, or whether a rewrite adds something) from its first line, or
    from a JSON object's answer; None when it says neither yes nor no.

    Lines echoing the few-shot prompt (``Task: ...``, ``First: ...``) and a label alone on its line
    (``Classification:``) are skipped, since a chat model often repeats them before its answer."""
    value = json_answer(text)
    if isinstance(value, dict):
        found = next((v for k, v in value.items() if _key(k) in _JSON_ANSWER_KEYS), None)
        if isinstance(found, bool):
            return found
        text = found if isinstance(found, str) else ""
    for line in text.strip().splitlines():
        head = _LABEL_PREFIX.sub("", _unbold(line).strip())
        if not _ECHO.match(line) and re.sub(r"\W+", "", head):
            break
    else:
        return None
    head = re.sub(r"^\W+", "", _unbold(head))
    if _UNSURE.search(head):  # "不知道" starts with 不 but is no answer
        return None
    for no, yes in ((_NO, _YES), (_NOT_CLASSIFICATION, _IS_CLASSIFICATION)):
        if no.search(head):  # negatives first: "这不是分类任务" contains "是分类任务"
            return False
        if yes.search(head):
            return True
    return None


# -- instances --------------------------------------------------------------------------------------

def parse_instances(text: str, classification: bool, continued: bool, cut_off: bool = False) -> Parsed:
    """Input/output pairs, or for classification label/input pairs (output first), as ``Instance``s.

    Labelled fields (``Input:``, ``**Output:**``, ``- Class label:``), separated by example headings
    of any style, or a JSON array of objects. An example missing its output (or, output first, its
    label or input) is dropped as ``incomplete_instance``; when ``cut_off``, the last example as ``cut_off``.
    A ``Task:`` line before the first example repeats the prompt; after it, the model went on to
    invent the next task, which ends the answer.
    """
    opening = "label" if classification else "input"
    if continued and not _starts_with_field(text):
        text = ("Class label: " if classification else "Input: ") + text.lstrip()
    elements = None if continued else _json_elements(text)
    if elements is not None:
        return _from_json(elements, lambda element: _json_instance(element, classification))
    examples, current = [], {}
    for name, value in _fields(text):
        if name == "task" or (name is None and _TASK_HEADING.match(value)):
            if examples or current:
                break
            continue
        if name is None:  # an example heading ends the example before it
            if current:
                examples.append(current)
            current = {}
            continue
        if name == opening and current:
            examples.append(current)
            current = {}
        if name in current:  # a field repeated without the opening field: start a new example
            examples.append(current)
            current = {}
        current[name] = value
    if current:
        examples.append(current)
    return _finish([_instance(fields, classification) for fields in examples], cut_off,
                   [_shown(fields) for fields in examples])


def _instance(fields: dict[str, str], classification: bool) -> Instance | Dropped:
    if classification:
        label, given = fields.get("label"), fields.get("input")
        if label is not None and given is not None:  # an empty label is the instance checks' to reject
            return Instance(_input(given), _unquote(label))
    else:
        given, output = fields.get("input"), fields.get("output")
        if output is not None:
            return Instance(_input(given or ""), _unquote(output))
    return Dropped("incomplete_instance", _shown(fields))


def _json_instance(element: object, classification: bool) -> Instance | Dropped:
    if not isinstance(element, dict):
        return Dropped("malformed_item", json.dumps(element, ensure_ascii=False)[:500])
    return _instance(_json_fields(element), classification)


# -- Alpaca tasks -----------------------------------------------------------------------------------

def parse_alpaca_tasks(text: str, next_number: int, continued: bool, cut_off: bool = False) -> Parsed:
    """Complete tasks (instruction, input, output) as dicts: labelled fields, each task opened by its
    ``Instruction:`` (or a numbered line, when no instruction is labelled) and separated by ``###``,
    headings or rules; or a JSON array of objects. A task missing its instruction or output is dropped
    as ``incomplete_task``; when ``cut_off``, the last task as ``cut_off``."""
    if continued:
        text = f"{next_number}. Instruction: {text.lstrip()}"
    elements = None if continued else _json_elements(text)
    if elements is not None:
        return _from_json(elements, _json_task)
    if not any(name == "instruction" for name, _ in _fields(text)):
        text = _label_numbered_instructions(text, next_number)
    tasks, current = [], {}
    for name, value in _fields(text):
        if name == "task":
            continue
        if name == "instruction" or name is None:
            if current:
                tasks.append(current)
            current = {} if name is None else {"instruction": value}
        elif name not in current:
            current[name] = value
    if current:
        tasks.append(current)
    return _finish([_task(fields) for fields in tasks], cut_off, [_task_shown(fields) for fields in tasks])


def _label_numbered_instructions(text: str, next_number: int) -> str:
    """A list of tasks whose instructions are numbered lines without a label (``4. Write ...`` then
    ``Input:`` and ``Output:``), with ``Instruction:`` put after each number. Only unindented lines
    numbered in sequence from ``next_number`` (or from the first such line) count, so a numbered list
    inside an output stays there."""
    lines = text.splitlines()
    expected = None
    numbered = [(i, m) for i, line in enumerate(lines) if not line[:1].isspace() and (m := _NUMBERED.match(line))
                and not _FIELD.match(line)]
    if any(int(m["number"]) == next_number for _, m in numbered):
        expected = next_number
    elif numbered:
        expected = int(numbered[0][1]["number"])
    fenced = _fence_flags(lines)
    for i, match in numbered:
        if int(match["number"]) == expected and not fenced[i]:
            lines[i] = f"{expected}. Instruction: {match['text']}"
            expected += 1
    return "\n".join(lines)


def _task(fields: dict[str, str]) -> dict | Dropped:
    instruction = _unquote(fields.get("instruction", ""))
    if not instruction or "output" not in fields:  # an empty output is the instance checks' to reject
        return Dropped("incomplete_task", _task_shown(fields))
    return {"instruction": instruction, "input": _input(fields.get("input", "")), "output": _unquote(fields["output"])}


def _task_shown(fields: dict[str, str]) -> str:
    """A dropped task as it reads in a rejection: its instruction, or what it has without one."""
    return _unquote(fields.get("instruction", "")) or _shown(fields)


def _json_task(element: object) -> dict | Dropped:
    if not isinstance(element, dict):
        return Dropped("malformed_item", json.dumps(element, ensure_ascii=False)[:500])
    return _task(_json_fields(element))


# -- Evol-Instruct rewrites -----------------------------------------------------------------------

def parse_rewrite(text: str) -> str:
    """The rewritten instruction of an evolving answer, exactly, without what a chat model puts
    around it: an opening sentence ("Here is the rewritten instruction:"), our prompt's last line
    repeated as a label (``**Rewritten instruction:**``), quotes or bold around the whole
    instruction, and a closing note on what changed. A JSON answer gives its instruction.
    An empty result means the answer held no rewrite."""
    value = json_answer(text)
    if isinstance(value, dict):
        found = next((v for k, v in value.items() if _key(k) in _JSON_REWRITE_KEYS and isinstance(v, str)), None)
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
    return _unquote(_unwrap_bold(text))


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
    for line, fenced in zip(lines, _fence_flags(lines)):
        if not line.strip() and not fenced:
            if current:
                paragraphs.append("\n".join(current))
            current = []
        else:
            current.append(line)
    if current:
        paragraphs.append("\n".join(current))
    return paragraphs


# -- labelled fields --------------------------------------------------------------------------------

def _fields(text: str) -> list[tuple[str | None, str]]:
    """Labelled fields in order, each with its (possibly multi-line) value.

    Unlabelled lines continue the previous field, and every line inside a code fence does, so code
    in an output is kept as written. Headings (``Example 2``, ``**Example 2**``, ``### Task 4``,
    ``示例 2``), ``###`` and horizontal rules come back as ``(None, the line)`` so callers can treat
    them as separators; they end the field before them. Closing remarks at the end of the answer
    ("Let me know if you need more!") are no part of any field.
    """
    fields: list[list] = []
    lines = _without_outro(text).splitlines()
    for line, fenced in zip(lines, _fence_flags(lines)):
        if fenced:
            if fields and fields[-1][0] is not None:
                fields[-1][1] += "\n" + line
            continue
        if line.strip() == "###" or _RULE.match(line) or _HEADING.match(line):
            fields.append([None, line.strip()])
            continue
        match = _FIELD.match(line)
        if match:
            fields.append([_FIELD_NAMES[match.group(1).lower()], _unbold_end(match.group(2))])
        elif fields and fields[-1][0] is not None:
            fields[-1][1] += "\n" + line
    return [(name, value.strip() if name else value) for name, value in fields]


def _fence_flags(lines: list[str]) -> list[bool]:
    """For each line, whether it lies inside a code fence opened on an earlier line (its closing
    line included), where nothing is scaffolding."""
    flags, inside = [], False
    for line in lines:
        flags.append(inside)
        if inside:
            inside = not line.strip().startswith(_FENCE)
        else:
            inside = line.count(_FENCE) % 2 == 1
    return flags


def _outside_fences(text: str) -> list[str]:
    lines = text.splitlines()
    return [line for line, fenced in zip(lines, _fence_flags(lines)) if not fenced]


def _without_outro(text: str) -> str:
    """The answer without its closing remarks: trailing paragraphs, or a last line, that speak about
    the answer ("I hope these help!", "如果需要更多示例，请告诉我。")."""
    lines = text.rstrip().splitlines()
    fenced = _fence_flags(lines)
    while lines:
        last = len(lines) - 1
        start = last
        while start > 0 and lines[start - 1].strip():
            start -= 1
        if not fenced[start] and _OUTRO.match(lines[start]) and start > 0:
            cut = start
        elif not fenced[last] and _OUTRO.match(lines[last]) and last > 0:
            cut = last
        else:
            break
        lines = lines[:cut]
        while lines and not lines[-1].strip():
            lines.pop()
        fenced = fenced[: len(lines)]
    return "\n".join(lines)


def _starts_with_field(text: str) -> bool:
    for line in text.splitlines():
        if line.strip():
            return bool(_FIELD.match(line) or _HEADING.match(line))
    return False


def _shown(fields: dict[str, str]) -> str:
    """An example or task as it reads in a rejection: its fields, labelled, on one line each."""
    return "\n".join(f"{name}: {value}" for name, value in fields.items())[:500]


# -- JSON answers -----------------------------------------------------------------------------------

def _json_elements(text: str) -> list | None:
    """The elements of a JSON answer: an array, or an object holding one (``{"tasks": [...]}``), or
    one object (a list of one); fenced or bare, after an opening sentence. None when the answer is
    not JSON. An array cut off mid-element ends with ``_Partial`` holding the unfinished text."""
    payload = _json_payload(text)
    if payload is None:
        return None
    if payload.startswith("{"):
        try:
            value, _ = _decode(payload, 0)
        except ValueError:
            start = payload.find("[")
            return _array_elements(payload[start:]) if start > 0 else None
        inner = [v for k, v in value.items() if _key(k) in _JSON_LISTS and isinstance(v, list)] or \
            [v for v in value.values() if isinstance(v, list) and len(value) == 1]
        return inner[0] if inner else [value]
    return _array_elements(payload)


@dataclass
class _Partial:
    """The unfinished last element of a JSON array cut off."""

    text: str


def _array_elements(payload: str) -> list | None:
    """The elements of a JSON array, read one at a time so that those before a cut are kept."""
    elements, at = [], 1
    while True:
        at = _skip(payload, at)
        if at >= len(payload):  # the array never closed, but no element was left unfinished
            return elements or None
        if payload[at] == "]":
            return elements
        try:
            element, at = _decode(payload, at)
        except ValueError:
            rest = payload[at:].strip()
            if not elements and not rest.startswith(("{", '"', "[")):
                return None  # not JSON at all: "[1] Write ..." and the like
            return elements + [_Partial(rest.removesuffix(_FENCE).strip())] if rest else elements
        elements.append(element)


def _decode(payload: str, at: int) -> tuple[object, int]:
    """One JSON value from ``at``; ValueError when there is none, also when it nests too deep to read."""
    try:
        return _DECODER.raw_decode(payload, at)
    except RecursionError:
        raise ValueError("JSON nested too deep") from None


def _skip(payload: str, at: int) -> int:
    while at < len(payload) and (payload[at].isspace() or payload[at] == ","):
        at += 1
    return at


def _json_payload(text: str) -> str | None:
    """The JSON text of an answer that is JSON: a fence (``` or ```json) or a line opening with
    ``[`` or ``{``, with nothing but a sentence or two before it (no labelled field, no list)."""
    lines = text.strip().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(_FENCE) or stripped.startswith(("[", "{")):
            break
        if _FIELD.match(line) or _NUMBERED.match(line) or _BULLET.match(line) or _HEADING.match(line):
            return None
    else:
        return None
    if stripped.startswith(_FENCE):
        if stripped.strip("`").strip().lower() not in ("", "json"):
            return None
        body = []
        for line in lines[i + 1:]:
            if line.strip().startswith(_FENCE):
                break
            body.append(line)
        payload = "\n".join(body).strip()
    else:
        payload = "\n".join(lines[i:]).strip()
    return payload if payload.startswith(("[", "{")) else None


def json_answer(text: str) -> object:
    """The whole answer as a JSON value (fenced or bare), or None."""
    payload = _json_payload(text)
    if payload is None:
        return None
    try:
        value, _ = _decode(payload, 0)
    except ValueError:
        return None
    return value


def _from_json(elements: list, read: Callable[[object], object]) -> Parsed:
    """The items of a JSON answer's elements, each read by ``read`` into an item or a Dropped. An
    unfinished last element is dropped as ``cut_off``; a finished array loses nothing to ``cut_off``."""
    parsed = Parsed([], [])
    for element in elements:
        item = Dropped("cut_off", element.text[:500]) if isinstance(element, _Partial) else read(element)
        (parsed.dropped if isinstance(item, Dropped) else parsed.items).append(item)
    return parsed


def _json_fields(element: dict) -> dict[str, str]:
    """An object's fields under our names (instruction, input, output, label, task), as text."""
    fields = {}
    for key, value in element.items():
        name = _FIELD_NAMES.get(_key(key).replace("_", " "), _FIELD_NAMES.get(_key(key)))
        if name and name not in fields:
            fields[name] = _json_text(value)
    return fields


def _json_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, (int, float, bool)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, indent=2)


def _key(key: str) -> str:
    return key.strip().lower().replace(" ", "_").replace("-", "_")


# -- shared -----------------------------------------------------------------------------------------

def _finish(read: list, cut_off: bool, shown: list[str]) -> Parsed:
    """Items and drops in order; when ``cut_off``, the last one read, usable or not, is the one cut."""
    parsed = Parsed([], [])
    for i, item in enumerate(read):
        if cut_off and i == len(read) - 1:
            item = Dropped("cut_off", shown[i])
        (parsed.dropped if isinstance(item, Dropped) else parsed.items).append(item)
    return parsed


def _input(value: str) -> str:
    value = _unquote(value)
    return "" if value.lower().strip("\"'“”。.*_`()（） ") in _NO_INPUT else value


def _style(match: re.Match) -> str:
    return (match["word"] or "").lower()


def _clean(text: str) -> str:
    """A list item's first line without its markup: bold, a number written twice, a bold title."""
    text = _TITLE.sub("", text.strip())
    text = text.replace("**", "").strip()
    while (nested := _NUMBERED.match(text)) is not None:  # "任务9：8. 写..." numbered twice
        text = nested["text"].strip()
    return text


def _unquote(text: str) -> str:
    """The text without a quote pair that wraps all of it; quotes inside are the item's own."""
    text = text.strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] == _QUOTES[text[0]]:
        inner = text[1:-1]
        if text[0] not in inner and text[-1] not in inner and inner.strip():
            return inner.strip()
    return text


def _unbold(text: str) -> str:
    return text.replace("**", "").replace("__", "")


def _unbold_end(value: str) -> str:
    """A field's value without the closing ``**`` of a bold that opened before its label
    (``**Class label: Positive**``)."""
    value = value.rstrip()
    if value.endswith("**") and value.count("**") % 2 == 1:
        return value[:-2].rstrip()
    return value


def _unwrap_bold(text: str) -> str:
    if text.startswith("**") and text.endswith("**") and text.count("**") == 2 and len(text) > 4:
        return text[2:-2].strip()
    return text
