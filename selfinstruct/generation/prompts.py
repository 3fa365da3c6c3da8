"""Prompt templates: one file per language and stage under ``prompts/<lang>/``.

Templates use ``$name`` placeholders (string.Template). The lists inside them
(numbered instructions, alpaca examples) are rendered here with the field labels
the parser reads back, so a custom template only changes the prose around them.
With ``--structured`` the templates are the structured variants under
``prompts/<lang>/structured/`` (structured.py) and the lists are rendered as the
JSON their answers take.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from string import Template

from selfinstruct.config import ConfigError
from selfinstruct.paths import special_kind
from selfinstruct.endpoint import structured as structured_answers

LABELS = {
    "en": {"task": "Task ", "instruction": "Instruction", "input": "Input", "output": "Output", "none": "None",
           "colon": ": "},
    "zh": {"task": "任务", "instruction": "指令", "input": "输入", "output": "输出", "none": "无", "colon": "："},
}


class PromptError(ConfigError):
    pass


@dataclass
class PromptSet:
    lang: str
    templates: dict[str, Template]
    files: list[Path]
    structured: bool = False  # the structured variants (--structured), whose lists are JSON

    @classmethod
    def load(cls, folder: Path, lang: str, wanted: dict[str, set[str]], structured: bool = False) -> PromptSet:
        """Read and check the templates before any request is sent: ``wanted`` maps each template's
        name to its placeholders (a method's ``templates``). ``structured``: the structured variants,
        where a template has one."""
        templates, files = {}, []
        for stage, placeholders in wanted.items():
            path = Path(folder) / lang / f"{stage}.txt"
            if structured and stage not in structured_answers.FREE_TEXT:
                path = Path(folder) / lang / structured_answers.FOLDER / f"{stage}.txt"
                placeholders = structured_answers.placeholders(placeholders)
            if kind := special_kind(path):
                raise PromptError(f"prompt template {path} is {kind}, not a regular file")
            try:
                text = path.read_text(encoding="utf-8")
            except FileNotFoundError:
                raise PromptError(f"missing prompt template {path}") from None
            except (OSError, UnicodeDecodeError) as exc:
                raise PromptError(f"cannot read prompt template {path}: {exc}") from None
            template = Template(text)
            if not template.is_valid():
                raise PromptError(f"{path}: a '$' that is not a placeholder; write '$$' for a literal dollar sign")
            found = set(template.get_identifiers())
            if found != placeholders:
                raise PromptError(f"{path}: placeholders must be {_names(placeholders)}, found {_names(found)}")
            templates[stage], files = template, files + [path]
        return cls(lang, templates, files, structured)

    def render(self, stage: str, **values: object) -> str:
        """The prompt; the template file's final newline is dropped, since the model continues the last line."""
        return self.templates[stage].substitute({k: str(v) for k, v in values.items()}).rstrip("\n")

    def numbered(self, instructions: list[str]) -> str:
        if self.structured:
            return _json_list("instructions", instructions)
        return "\n".join(self.task_item(n, text) for n, text in enumerate(instructions, start=1))

    def task_item(self, number: int, text: str = "") -> str:
        """``Task 9: text`` / ``任务9：text``; with no text, the opening the model continues."""
        labels = LABELS[self.lang]
        return f"{labels['task']}{number}{labels['colon']}{text}".rstrip()

    def alpaca_examples(self, tasks: list[tuple[str, str, str]]) -> str:
        if self.structured:
            return _json_list("tasks", [{"instruction": instruction, "input": given, "output": output}
                                        for instruction, given, output in tasks])
        return "\n".join(self.alpaca_item(n, *task) for n, task in enumerate(tasks, start=1))

    def alpaca_item(self, number: int, instruction: str = "", input: str = "", output: str | None = None) -> str:
        """One numbered example; with ``output=None`` just the opening the model continues."""
        labels = LABELS[self.lang]
        colon = labels["colon"]
        head = f"###\n{number}. {labels['instruction']}{colon}{instruction}".rstrip()
        if output is None:
            return head
        return f"{head}\n{labels['input']}{colon}{input or labels['none']}\n{labels['output']}{colon}{output}"


def _json_list(key: str, items: list) -> str:
    """Examples as the JSON a structured answer takes (``{"key": [...]}``), one item a line."""
    return "{" + json.dumps(key) + ": [\n" + ",\n".join(json.dumps(item, ensure_ascii=False) for item in items) + "\n]}"


def _names(names: set[str]) -> str:
    return ", ".join(f"${n}" for n in sorted(names)) or "none"
