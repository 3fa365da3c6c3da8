"""The chat layouts: ShareGPT (``conversations`` of ``from``/``value`` turns) and OpenAI chat
fine-tuning (``messages`` of ``role``/``content`` turns), one record per instance.

A record is a user turn, PROMPT, and the assistant's answer. Written from a task, PROMPT is the
instruction alone when the input is empty, otherwise instruction + "\\n\\n" + input (``prompt_of``);
read, the whole user turn is the instruction, since a chat record does not say where an input
begins. ``split_prompt`` undoes ``prompt_of`` for a reader that compares instructions as the Alpaca
layout has them (exactly, unless the instruction itself holds a blank line).
"""

from __future__ import annotations

from dataclasses import dataclass

from selfinstruct.formats.fields import FieldError
from selfinstruct.formats.records import invalid_text
from selfinstruct.formats.task import Instance, Task


@dataclass(frozen=True)
class ChatLayout:
    key: str  # the record's list of turns
    speaker: str  # a turn's field naming who speaks
    text: str  # a turn's field holding what is said
    user: str
    assistant: str


CHAT_LAYOUTS = {"sharegpt": ChatLayout("conversations", "from", "value", "human", "gpt"),
                "messages": ChatLayout("messages", "role", "content", "user", "assistant")}


def read_chat(record: dict, layout: str) -> Task:
    """The first user turn with text (the whole prompt) and the first answer to it ("" if none)."""
    chat = CHAT_LAYOUTS[layout]
    turns = record[chat.key]
    if not isinstance(turns, list):
        raise FieldError(chat.key, f"expected a list, got {type(turns).__name__}")
    said = [(t.get(chat.speaker), t.get(chat.text)) for t in turns if isinstance(t, dict)]
    asked = next((i for i, (who, value) in enumerate(said) if who == chat.user and isinstance(value, str)), None)
    if asked is None:
        raise FieldError(chat.key, f"no {chat.user} turn with text")
    prompt = said[asked][1]
    answer = next((value for who, value in said[asked + 1:] if who == chat.assistant and isinstance(value, str)), "")
    problem = invalid_text(prompt) or invalid_text(answer)
    if problem:
        raise FieldError(chat.key, problem)
    return Task(prompt, [Instance("", answer)], None)


def prompt_of(instruction: str, input: str) -> str:
    """The user turn: the instruction alone when the input is empty (or blank), else instruction, blank line, input."""
    return f"{instruction}\n\n{input}" if input.strip() else instruction


def split_prompt(prompt: str) -> tuple[str, str]:
    """The instruction and input ``prompt_of`` made ``prompt`` of: split at the first blank line, unless
    nothing but blanks follows it."""
    instruction, blank, given = prompt.partition("\n\n")
    return (instruction, given) if blank and given.strip() else (prompt, "")


def chat_records(tasks: list[Task], layout: str) -> list[dict]:
    """One record per instance, in the chat layout named ``layout``: the prompt, then the output."""
    chat = CHAT_LAYOUTS[layout]
    return [{chat.key: [{chat.speaker: chat.user, chat.text: prompt_of(t.instruction, i.input)},
                        {chat.speaker: chat.assistant, chat.text: i.output}]}
            for t in tasks for i in t.instances]
