"""What a report reads: the tasks of a run directory or a dataset file, and what is known of how they
were made."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from selfinstruct.formats.task import Task
from selfinstruct.text.lang import detect_lang


@dataclass
class Dataset:
    """The tasks of a run directory or a dataset file, and what is known about how they were made."""

    source: Path
    lang: str
    tasks: list[Task]
    records: int
    unreadable: int = 0
    run: dict | None = None  # config settings, summary and rejections, for a run directory
    rejected: list[dict] = field(default_factory=list)
    first_bad: str = ""  # where and why the first unreadable record was skipped
    detected: str = ""  # the language most instructions are in
    chat: bool = False  # chat records (ShareGPT, messages): a task's input is inside its instruction
    mixed: dict[str, int] = field(default_factory=dict)  # tasks per language, when a file mixes zh and en

    def lang_of(self, task: Task) -> str:
        return detect_lang(task.instruction) if self.mixed else self.lang
