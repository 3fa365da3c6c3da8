"""Structured answers (``--structured``): each stage asks for JSON that follows a schema.

The free-text prompts are the papers' and their answers are read tolerantly (parsing.py). With
``--structured`` a chat endpoint is asked, through ``response_format``, for JSON of a fixed shape per
stage, and the prompts (``prompts/<lang>/structured/``) say the same in words; reading the answer back
is then exact. It feeds the same candidates to the same screening, rules, journal and resume: an
answer is journaled as its text, and a resume reads it again here.

An answer that is not JSON, or JSON that does not fit its schema, is a rejection with a reason
(``invalid_json``, ``schema_mismatch``) and a detail saying where; never an exception. A list cut off
at ``max_tokens`` keeps its complete items, the way a cut-off free-text list does.

Styles (``Config.structured``): ``json_schema`` sends the schema as OpenAI, vLLM, llama.cpp's
llama-server and Ollama take it; ``json_object`` (``--json-mode``) asks only for JSON, for endpoints
that have nothing more, and the shape is in the prompt's words alone. llama-cpp-python's server (the
embedded one) refuses ``json_schema`` and takes the schema as ``{"type": "json_object", "schema": ...}``,
which its grammar then enforces: ``response_format`` sends it that way.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# Templates whose answer stays free text with --structured: a response is the text itself.
FREE_TEXT = frozenset({"respond"})
# The placeholder a free-text template ends with, the opening the model continues; JSON has none.
CONTINUED = "next"
FOLDER = "structured"  # prompts/<lang>/structured/<template>.txt

_TEXT = {"type": "string"}


def _object(**properties: dict) -> dict:
    """An object with exactly these keys, in this order (a strict schema: all required, no others)."""
    return {"type": "object", "properties": properties, "required": list(properties), "additionalProperties": False}


def _list(item: dict) -> dict:
    return {"type": "array", "items": item}


# The shape of each stage's answer, by name (the json_schema name). Keys are English in both languages.
# Instances of a classification task put the label first (output-first), as the free-text prompt does.
SCHEMAS = {
    "instructions": _object(instructions=_list(_TEXT)),
    "classify": _object(classification={"type": "boolean"}),
    "instances": _object(examples=_list(_object(input=_TEXT, output=_TEXT))),
    "instances_classification": _object(examples=_list(_object(label=_TEXT, input=_TEXT))),
    "alpaca": _object(tasks=_list(_object(instruction=_TEXT, input=_TEXT, output=_TEXT))),
    "evolve": _object(instruction=_TEXT),
    "compare": _object(adds_something={"type": "boolean"}),
    "judge": _object(score={"type": "integer", "enum": [1, 2, 3, 4, 5]}, reason=_TEXT),
}
# A refusal that names the response format: the endpoint does not take it (or not this schema).
_ABOUT_FORMAT = re.compile(r"response_format|json_schema|json_object|structured output|guided_json", re.IGNORECASE)
_TYPES = {"string": str, "boolean": bool, "integer": int}
_FENCE = re.compile(r"^```(?:json)?\s*\n(.*)\n```$", re.DOTALL)


def response_format(shape: str, style: str, llama_cpp_python: bool = False) -> dict:
    """What a request for ``shape`` carries: the schema in OpenAI's form, JSON mode alone, or the schema
    in llama-cpp-python's form (``llama_cpp_python``: the endpoint is its server)."""
    if style == "json_object":
        return {"type": "json_object"}
    if llama_cpp_python:
        return {"type": "json_object", "schema": SCHEMAS[shape]}
    return {"type": "json_schema", "json_schema": {"name": shape, "schema": SCHEMAS[shape], "strict": True}}


def placeholders(free_text: set[str]) -> set[str]:
    """The placeholders of a template's structured variant: the free-text one's but the continued opening."""
    return free_text - {CONTINUED}


def refuses_format(status: int, message: str) -> bool:
    """Whether an error answer to a request that carried ``response_format`` refuses that format: a bad
    request (400, 422) naming it, or llama-cpp-python's 500 for a request body it could not validate."""
    if not _ABOUT_FORMAT.search(message):
        return False
    return status in (400, 422) or (status == 500 and "validation error" in message.lower())


def refusal_hint(sent: dict) -> str:
    """The one thing to do about a refused format."""
    if sent.get("type") == "json_schema":
        return ("leave --structured off, or try --json-mode (JSON mode: the shape asked for in words only) "
                "if the endpoint has it")
    return "leave --structured off: this endpoint does not take the response format"


@dataclass
class Reading:
    """A structured answer read against its shape's schema."""

    value: dict | None  # the JSON, fitting the schema; None when it does not
    reason: str | None = None  # why not: invalid_json, schema_mismatch, cut_off
    detail: str = ""
    lost: str | None = None  # the list item cut off at max_tokens, as far as it got (the others are kept)


def read(shape: str, text: str, finish_reason: str | None) -> Reading:
    """The answer as JSON of ``shape``. A list that needs at least one item and has none does not fit.
    Cut off at max_tokens, an answer whose one list is all it holds keeps the list's complete items."""
    schema = SCHEMAS[shape]
    body = text.strip()
    fenced = _FENCE.match(body)  # a server that ignores response_format may fence the JSON
    body = fenced.group(1).strip() if fenced else body
    try:
        value = json.loads(body, strict=False)  # a line break inside a string: llama.cpp's grammar lets it through
    except json.JSONDecodeError as exc:
        if finish_reason == "length":
            return _salvage(schema, body)
        return Reading(None, "invalid_json", f"{exc.msg} at line {exc.lineno} column {exc.colno}")
    problem = _mismatch(value, schema, "$")
    if problem:
        return Reading(None, "schema_mismatch", problem)
    return Reading(value)


def _mismatch(value: object, schema: dict, where: str) -> str | None:
    """Where and how ``value`` does not fit ``schema`` (the subset SCHEMAS use); None if it fits. Keys the
    schema does not name are let through: JSON mode holds a model to no schema, and they take nothing away."""
    kind = schema["type"]
    if kind == "object":
        if not isinstance(value, dict):
            return f"{where}: expected an object, got {_kind(value)}"
        for key in schema["required"]:
            if key not in value:
                return f"{where}: the key {key!r} is missing"
            problem = _mismatch(value[key], schema["properties"][key], f"{where}.{key}")
            if problem:
                return problem
        return None
    if kind == "array":
        if not isinstance(value, list):
            return f"{where}: expected a list, got {_kind(value)}"
        if not value:
            return f"{where}: an empty list"
        return next(filter(None, (_mismatch(item, schema["items"], f"{where}[{i}]") for i, item in enumerate(value))),
                    None)
    fits = isinstance(value, _TYPES[kind]) and (kind == "boolean" or not isinstance(value, bool))
    if not fits:
        return f"{where}: expected {'an' if kind == 'integer' else 'a'} {kind}, got {_kind(value)}"
    if "enum" in schema and value not in schema["enum"]:
        return f"{where}: {value!r} is not one of {schema['enum']}"
    return None


def _kind(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), f"the {type(value).__name__} {value!r}")


def _salvage(schema: dict, body: str) -> Reading:
    """The complete items of an answer cut off inside its one list: ``{"key": [item, item, ite``."""
    keys = list(schema["properties"])
    opening = len(keys) == 1 and schema["properties"][keys[0]]["type"] == "array" and re.match(
        r'\{\s*"' + re.escape(keys[0]) + r'"\s*:\s*\[', body)
    if not opening:
        return Reading(None, "cut_off", "the JSON was cut off at max_tokens before it was complete")
    key = keys[0]
    items, decoder, at = [], json.JSONDecoder(strict=False), opening.end()
    while True:
        at = len(body) - len(body[at:].lstrip(" \t\r\n,"))
        try:
            item, end = decoder.raw_decode(body, at)
        except json.JSONDecodeError:
            break
        items.append(item)
        at = end
    rest = body[at:].strip()
    lost = None if rest.startswith("]") else rest.removeprefix('"').strip() or None  # nothing lost but the end
    problem = _mismatch({key: items}, schema, "$")
    if problem:
        reason = "cut_off" if not items else "schema_mismatch"
        return Reading(None, reason, problem if items else "the JSON was cut off at max_tokens before its first item")
    return Reading({key: items}, lost=lost)
