"""JSON in a model's answer: an array or object, fenced or bare, after an opening sentence or two.

A JSON answer may be cut off (``max_tokens``): the elements before the cut are read one at a time
and the unfinished one comes back as ``Partial``, for the caller to drop as ``cut_off``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from selfinstruct.generation.parsing.markup import BULLET, FENCE, FIELD, FIELD_NAMES, HEADING, NUMBERED

# The keys of a list inside an object ({"tasks": [...]}).
_JSON_LISTS = ("tasks", "instructions", "examples", "instances", "items", "data", "results", "任务", "指令", "示例")

_DECODER = json.JSONDecoder()


def json_elements(text: str) -> list | None:
    """The elements of a JSON answer: an array, or an object holding one (``{"tasks": [...]}``), or
    one object (a list of one); fenced or bare, after an opening sentence. None when the answer is
    not JSON. An array cut off mid-element ends with ``Partial`` holding the unfinished text."""
    payload = _json_payload(text)
    if payload is None:
        return None
    if payload.startswith("{"):
        try:
            value, _ = _decode(payload, 0)
        except ValueError:
            start = payload.find("[")
            return _array_elements(payload[start:]) if start > 0 else None
        inner = [v for k, v in value.items() if json_key(k) in _JSON_LISTS and isinstance(v, list)] or \
            [v for v in value.values() if isinstance(v, list) and len(value) == 1]
        return inner[0] if inner else [value]
    return _array_elements(payload)


@dataclass
class Partial:
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
            return elements + [Partial(rest.removesuffix(FENCE).strip())] if rest else elements
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
        if stripped.startswith(FENCE) or stripped.startswith(("[", "{")):
            break
        if FIELD.match(line) or NUMBERED.match(line) or BULLET.match(line) or HEADING.match(line):
            return None
    else:
        return None
    if stripped.startswith(FENCE):
        if stripped.strip("`").strip().lower() not in ("", "json"):
            return None
        body = []
        for line in lines[i + 1:]:
            if line.strip().startswith(FENCE):
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


def json_fields(element: dict) -> dict[str, str]:
    """An object's fields under our names (instruction, input, output, label, task), as text."""
    fields = {}
    for key, value in element.items():
        name = FIELD_NAMES.get(json_key(key).replace("_", " "), FIELD_NAMES.get(json_key(key)))
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


def json_key(key: str) -> str:
    """A key as it is looked up: "Rewritten Instruction" and "rewritten-instruction" are rewritten_instruction."""
    return key.strip().lower().replace(" ", "_").replace("-", "_")
