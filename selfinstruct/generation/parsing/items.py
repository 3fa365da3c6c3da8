"""Answers that list items: instructions, instances and Alpaca tasks.

Each parser returns the usable items in order and what it dropped, with the reason (a
rejection reason); an empty result with nothing dropped is the caller's cue for ``unparseable_*``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from selfinstruct.formats.task import Instance
from selfinstruct.generation.parsing.json_in_text import Partial, json_elements, json_fields
from selfinstruct.generation.parsing.markup import (BULLET, FIELD, HEADING, NUMBERED, OUTRO, RULE, TASK_HEADING,
                                                  clean_item, fence_flags, input_value, labelled_fields,
                                                  outside_fences, unquote)


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
    elements = None if continued else json_elements(text)
    if elements is not None:
        return _from_json(elements, _json_instruction)
    items, heads = _numbered_items(text, next_number, continued) if _numbered_first(text) else _bulleted_items(text)
    read = [item or Dropped("empty_item", head.strip()) for item, head in zip(items, heads)]
    return _finish(read, cut_off, [item or head.strip() for item, head in zip(items, heads)])


def _numbered_first(text: str) -> bool:
    """Whether the list is numbered: a bulleted list is read only when its first bullet comes before
    any numbered line (numbered lines under it are then its sub-lists)."""
    for line in outside_fences(text):
        if NUMBERED.match(line):
            return True
        if BULLET.match(line) and not RULE.match(line):
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
    numbers = [int(match["number"]) for line in outside_fences(text) if (match := NUMBERED.match(line))]
    first = next_number if next_number in numbers else (numbers[0] if numbers else None)
    last: list = [None, None, 0]  # the number and style of the last item, and how many items so far

    def opens(line: str) -> str | None:
        match = NUMBERED.match(line)
        if not match:
            return None
        number, (previous, style, count) = int(match["number"]), last
        if number != first if not count else number != previous + 1 or style not in (None, _style(match)):
            return None
        last[:] = number, None if continued and not count else _style(match), count + 1
        return match["text"]

    return _list_items(text, opens, lambda line: bool(NUMBERED.match(line) or BULLET.match(line)))


def _bulleted_items(text: str) -> tuple[list[str], list[str]]:
    """The items of a bulleted list: a bullet as deep as the first starts an item; deeper bullets
    go on with it as its sub-list."""
    depth: list[int] = []

    def opens(line: str) -> str | None:
        bullet = BULLET.match(line)
        if not bullet or (depth and len(bullet["indent"]) > depth[0]):
            return None
        depth[:] = depth or [len(bullet["indent"])]
        return bullet["text"]

    return _list_items(text, opens, lambda line: bool(BULLET.match(line)))


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
    for line, inside in zip(lines, fence_flags(lines)):
        if inside:
            _add_fenced(current, line, indent)
            continue
        indent = line[: len(line) - len(line.lstrip())]
        opened = None if RULE.match(line) else opens(line)
        if opened is not None:
            if held:  # an item came after the remark, so the remark was its item's own line
                held[0].extend(held[1])
            current, held = [clean_item(opened)], None
            items.append(current)
            heads.append(line)
        elif current is not None and held is None and OUTRO.match(line):
            held = (current, [line.strip()])
            current = held[1]
        elif not line.strip() or RULE.match(line):
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
    return unquote("\n".join(lines).strip())


def _json_instruction(element: object) -> str | Dropped:
    """A JSON list element as an instruction: a string, or an object's instruction (with its input
    on the next line, as the instructions prompt shows an input given with its instruction)."""
    if isinstance(element, str):
        return element.strip() or Dropped("empty_item", json.dumps(element, ensure_ascii=False))
    if isinstance(element, dict):
        fields = json_fields(element)
        instruction = fields.get("instruction", fields.get("task", "")).strip()
        if instruction:
            given = input_value(fields.get("input", ""))
            return f"{instruction}\n{given}" if given else instruction
    return Dropped("malformed_item", json.dumps(element, ensure_ascii=False)[:500])


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
    elements = None if continued else json_elements(text)
    if elements is not None:
        return _from_json(elements, lambda element: _json_instance(element, classification))
    examples, current = [], {}
    for name, value in labelled_fields(text):
        if name == "task" or (name is None and TASK_HEADING.match(value)):
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
            return Instance(input_value(given), unquote(label))
    else:
        given, output = fields.get("input"), fields.get("output")
        if output is not None:
            return Instance(input_value(given or ""), unquote(output))
    return Dropped("incomplete_instance", _shown(fields))


def _json_instance(element: object, classification: bool) -> Instance | Dropped:
    if not isinstance(element, dict):
        return Dropped("malformed_item", json.dumps(element, ensure_ascii=False)[:500])
    return _instance(json_fields(element), classification)


# -- Alpaca tasks -----------------------------------------------------------------------------------

def parse_alpaca_tasks(text: str, next_number: int, continued: bool, cut_off: bool = False) -> Parsed:
    """Complete tasks (instruction, input, output) as dicts: labelled fields, each task opened by its
    ``Instruction:`` (or a numbered line, when no instruction is labelled) and separated by ``###``,
    headings or rules; or a JSON array of objects. A task missing its instruction or output is dropped
    as ``incomplete_task``; when ``cut_off``, the last task as ``cut_off``."""
    if continued:
        text = f"{next_number}. Instruction: {text.lstrip()}"
    elements = None if continued else json_elements(text)
    if elements is not None:
        return _from_json(elements, _json_task)
    if not any(name == "instruction" for name, _ in labelled_fields(text)):
        text = _label_numbered_instructions(text, next_number)
    tasks, current = [], {}
    for name, value in labelled_fields(text):
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
    numbered = [(i, m) for i, line in enumerate(lines) if not line[:1].isspace() and (m := NUMBERED.match(line))
                and not FIELD.match(line)]
    if any(int(m["number"]) == next_number for _, m in numbered):
        expected = next_number
    elif numbered:
        expected = int(numbered[0][1]["number"])
    fenced = fence_flags(lines)
    for i, match in numbered:
        if int(match["number"]) == expected and not fenced[i]:
            lines[i] = f"{expected}. Instruction: {match['text']}"
            expected += 1
    return "\n".join(lines)


def _task(fields: dict[str, str]) -> dict | Dropped:
    instruction = unquote(fields.get("instruction", ""))
    if not instruction or "output" not in fields:  # an empty output is the instance checks' to reject
        return Dropped("incomplete_task", _task_shown(fields))
    return {"instruction": instruction, "input": input_value(fields.get("input", "")),
            "output": unquote(fields["output"])}


def _task_shown(fields: dict[str, str]) -> str:
    """A dropped task as it reads in a rejection: its instruction, or what it has without one."""
    return unquote(fields.get("instruction", "")) or _shown(fields)


def _json_task(element: object) -> dict | Dropped:
    if not isinstance(element, dict):
        return Dropped("malformed_item", json.dumps(element, ensure_ascii=False)[:500])
    return _task(json_fields(element))


# -- shared -----------------------------------------------------------------------------------------

def _finish(read: list, cut_off: bool, shown: list[str]) -> Parsed:
    """Items and drops in order; when ``cut_off``, the last one read, usable or not, is the one cut."""
    parsed = Parsed([], [])
    for i, item in enumerate(read):
        if cut_off and i == len(read) - 1:
            item = Dropped("cut_off", shown[i])
        (parsed.dropped if isinstance(item, Dropped) else parsed.items).append(item)
    return parsed


def _style(match: re.Match) -> str:
    return (match["word"] or "").lower()


def _starts_with_field(text: str) -> bool:
    for line in text.splitlines():
        if line.strip():
            return bool(FIELD.match(line) or HEADING.match(line))
    return False


def _shown(fields: dict[str, str]) -> str:
    """An example or task as it reads in a rejection: its fields, labelled, on one line each."""
    return "\n".join(f"{name}: {value}" for name, value in fields.items())[:500]


def _from_json(elements: list, read: Callable[[object], object]) -> Parsed:
    """The items of a JSON answer's elements, each read by ``read`` into an item or a Dropped. An
    unfinished last element is dropped as ``cut_off``; a finished array loses nothing to ``cut_off``."""
    parsed = Parsed([], [])
    for element in elements:
        item = Dropped("cut_off", element.text[:500]) if isinstance(element, Partial) else read(element)
        (parsed.dropped if isinstance(item, Dropped) else parsed.items).append(item)
    return parsed
