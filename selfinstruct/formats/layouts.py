"""The one place a record's layout is told from its fields, and the task it holds read by that
layout's reader. A record with a list of turns (``conversations``, ``messages``) is a chat record,
one with ``instances`` a seed task, any other an Alpaca record (which may lack an output: a
prompt not yet answered). Whether a file is a JSON array or JSON lines is records.detect_layout's."""

from __future__ import annotations

from selfinstruct.formats.alpaca import read_alpaca
from selfinstruct.formats.chat import CHAT_LAYOUTS, read_chat
from selfinstruct.formats.fields import check_object
from selfinstruct.formats.seed_layout import read_seed
from selfinstruct.formats.task import Task

_CHAT_KEYS = tuple((chat.key, layout) for layout, chat in CHAT_LAYOUTS.items())


def layout_of(record: dict) -> str:
    """``sharegpt``, ``messages``, ``seeds`` or ``alpaca``."""
    for key, layout in _CHAT_KEYS:
        if key in record:
            return layout
    return "seeds" if "instances" in record else "alpaca"


def read_task(record: object) -> tuple[str, Task]:
    """The record's layout and the task it holds; FieldError (naming the field) if it holds none.
    Every string the task holds is one a UTF-8 file can hold."""
    layout = layout_of(check_object(record))
    if layout == "alpaca":  # the commonest first
        return layout, read_alpaca(record)
    return layout, read_seed(record) if layout == "seeds" else read_chat(record, layout)


def has_instruction(record: dict) -> bool:
    """Whether the record has a field some layout reads an instruction from."""
    return "instruction" in record or any(key in record for key, _ in _CHAT_KEYS)
