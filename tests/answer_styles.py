"""The ways real chat models write an answer, for the test doubles.

A chat model asked for "Task 9: ..." lines or "Input: / Output:" fields seldom answers in exactly that
form: it opens with "Sure! Here are more tasks:", numbers or bullets its list its own way, bolds its
headings and field names, wraps an item in quotes, or answers with JSON in a code fence. ``render``
takes an answer in the prompt's own format and rewrites it in one of those styles, drawn by a seeded
random generator, so every pipeline test and benchmark meets them as a real run would. Only the
wrapping changes: the instructions, labels, inputs and outputs stay exactly the same, so a parser that
reads every style accepts exactly what it accepts from the clean answers.
"""

from __future__ import annotations

import json
import random
import re

# One stage's styles and how often each is drawn; "clean" leaves the answer as the prompt asks.
WEIGHTS = {
    "instructions": {"clean": 3, "chatty": 2, "bold_numbers": 1, "bullets": 1, "json": 1, "quoted": 1},
    "classify": {"clean": 2, "sentence": 2, "bold": 1},
    "instances": {"clean": 2, "bold_headings": 1, "markdown_headings": 1, "chatty": 1, "json": 1},
    "instances_classification": {"clean": 2, "bold_fields": 1, "markdown_headings": 1},
    "alpaca": {"clean": 2, "chatty": 1, "bold_fields": 1, "json": 1},
    "evolve": {"clean": 2, "bold_label": 1, "quoted": 1},
    "compare": {"clean": 2, "sentence": 1},
    "judge": {"clean": 2, "bold_out_of": 1, "json": 1},
}

_TASK = re.compile(r"^(?:Task |任务)(\d+)[:：]\s*(.*)$")
_EXAMPLE = re.compile(r"^(?:Example|示例)\s*(\d+)$")
_FIELD = re.compile(r"^(Input|Output|Class label|输入|输出|类别)[:：]\s?(.*)$")
_ALPACA = re.compile(r"^(\d+)\.\s*(?:Instruction|指令)[:：]\s*(.*)$")
_NO_INPUT = ("None", "无")


class AnswerStyles:
    """Styles are drawn from a shuffled bag per stage (each style as often as its weight), refilled when
    empty: a seeded mix in which every style comes up within one bag's worth of answers."""

    def __init__(self, seed: int):
        self.rng = random.Random(f"styles:{seed}")
        self.bags: dict[str, list[str]] = {}
        self.drawn: list[tuple[str, str]] = []  # (stage, style) of each answer, for tests that look

    def render(self, stage: str, text: str, zh: bool) -> str:
        """``text`` (the prompt's own format) in a style drawn for ``stage``."""
        weights = WEIGHTS.get(stage)
        if not weights:
            return text
        bag = self.bags.setdefault(stage, [])
        if not bag:
            bag += [style for style, weight in weights.items() for _ in range(weight)]
            self.rng.shuffle(bag)
        style = bag.pop()
        self.drawn.append((stage, style))
        if style == "clean":
            return text
        return getattr(self, f"_{stage}")(style, text.strip(), zh) or text  # None: not in the prompt's format

    # -- per stage ------------------------------------------------------------------------------

    def _instructions(self, style: str, text: str, zh: bool) -> str:
        items = [(int(m[1]), m[2]) for m in map(_TASK.match, text.splitlines()) if m]
        if not items:
            return None
        if style == "json":
            return _fenced(json.dumps([{"instruction": t} for _, t in items], ensure_ascii=False, indent=2))
        if style == "bullets":
            body = "\n".join(f"- {t}" for _, t in items)
        elif style == "bold_numbers":
            body = "\n".join(f"**{n}.** {t}" for n, t in items)
        elif style == "quoted":
            body = "\n".join(f"{n}. “{t}”" if zh else f'{n}. "{t}"' for n, t in items)
        else:
            body = "\n".join(f"{n}. {t}" for n, t in items)
        intro = "好的，下面是更多的任务：" if zh else "Sure! Here are some more tasks:"
        outro = "如果需要更多任务，请告诉我。" if zh else "Let me know if you would like more!"
        return f"{intro}\n\n{body}\n\n{outro}" if style in ("chatty", "bullets") else body

    def _classify(self, style: str, text: str, zh: bool) -> str | None:
        if text not in ("Yes", "No", "是", "否"):
            return None
        yes = text in ("Yes", "是")
        if style == "bold":
            return f"**{text}**"
        if zh:
            return "是的，这是一个分类任务。" if yes else "否，这不是分类任务，输出是开放的文字。"
        return ("Yes, this is a classification task: the output is one of a few labels." if yes
                else "No, this is not a classification task; the output is open-ended text.")

    def _instances(self, style: str, text: str, zh: bool) -> str | None:
        examples = _examples(text)
        if not examples or not all("output" in e for e in examples):
            return None
        if style == "json":
            return _fenced(json.dumps([{"input": "" if e.get("input") in _NO_INPUT else e.get("input", ""),
                                        "output": e["output"]} for e in examples], ensure_ascii=False, indent=2))
        return self._with_headings(style, examples, ("input", "output"), zh)

    def _instances_classification(self, style: str, text: str, zh: bool) -> str | None:
        examples = _examples(text, opening="label")
        if not examples or not all("label" in e and "input" in e for e in examples):
            return None
        return self._with_headings(style, examples, ("label", "input"), zh)

    def _with_headings(self, style: str, examples: list[dict], order: tuple[str, str], zh: bool) -> str:
        names = ({"input": "输入", "output": "输出", "label": "类别"} if zh else
                 {"input": "Input", "output": "Output", "label": "Class label"})
        colon = "：" if zh else ": "
        blocks = []
        for i, example in enumerate(examples, start=1):
            heading = {"bold_headings": f"**示例 {i}**" if zh else f"**Example {i}**",
                       "markdown_headings": f"### 示例 {i}" if zh else f"### Example {i}"}.get(
                style, f"示例 {i}" if zh else f"Example {i}")
            if style == "bold_fields":
                fields = [f"**{names[key]}{colon.strip()}** {example[key]}" for key in order]
            else:
                fields = [f"{names[key]}{colon}{example[key]}" for key in order]
            blocks.append("\n".join([heading, *fields]))
        body = "\n\n".join(blocks)
        if style == "chatty":
            intro = "好的，下面是两个示例：" if zh else "Here are two examples for this task:"
            outro = "希望这些示例对你有帮助！" if zh else "I hope these examples help!"
            return f"{intro}\n\n{body}\n\n{outro}"
        return body

    def _alpaca(self, style: str, text: str, zh: bool) -> str:
        tasks = []
        for block in text.split("###"):
            lines = [line for line in block.strip().splitlines() if line.strip()]
            head = _ALPACA.match(lines[0]) if lines else None
            if not head:
                continue
            fields, name = {}, None
            for line in lines[1:]:  # a line that starts no field goes on the field before it: multi-line outputs
                field = _FIELD.match(line)
                if field:
                    name = field[1]
                    fields[name] = field[2]
                elif name is not None:
                    fields[name] += "\n" + line
            tasks.append((int(head[1]), head[2], fields.get("输入" if zh else "Input", ""),
                          fields.get("输出" if zh else "Output")))
        if not tasks:
            return None
        if style == "json":
            return _fenced(json.dumps([{"instruction": i, "input": "" if given in _NO_INPUT else given,
                                        "output": output} for _, i, given, output in tasks if output is not None],
                                      ensure_ascii=False, indent=2))
        names = ("指令", "输入", "输出") if zh else ("Instruction", "Input", "Output")
        colon = "：" if zh else ":"
        blocks = []
        for n, instruction, given, output in tasks:
            values = (instruction, given, "" if output is None else output)
            if style == "bold_fields":
                blocks.append(f"###\n{n}. " + "\n".join(f"**{name}{colon}** {value}".rstrip()
                                                       for name, value in zip(names, values)))
            else:
                blocks.append(f"###\n{n}. " + "\n".join(f"{name}{colon} {value}".rstrip()
                                                       for name, value in zip(names, values)))
        body = "\n".join(blocks)
        intro = "好的，下面是新的任务：" if zh else "Sure! Here are the new tasks:"
        return f"{intro}\n\n{body}" if style == "chatty" else body

    def _evolve(self, style: str, text: str, zh: bool) -> str | None:
        label, found, rewritten = text.partition("：" if zh else ": ")
        if not found or "\n" in label:
            return None
        if style == "bold_label":
            return f"**{label}{'：' if zh else ':'}** {rewritten}"
        return f"{label}{'：' if zh else ': '}" + (f"“{rewritten}”" if zh else f'"{rewritten}"')

    def _compare(self, style: str, text: str, zh: bool) -> str | None:
        if text not in ("Yes", "No", "是", "否"):
            return None
        yes = text in ("Yes", "是")
        if zh:
            return "是的，改写后的指令增加了新的要求。" if yes else "否，改写没有带来新的内容。"
        return ("Yes, the rewritten instruction adds a new requirement." if yes
                else "No, the rewrite adds nothing new.")

    def _judge(self, style: str, text: str, zh: bool) -> str:
        found = re.search(r"(\d)\s*\n(?:Reason: |理由：)(.*)", text, re.S)
        if not found:  # a subclass's own answer (no score at all, say): left as it is
            return None
        score, reason = int(found[1]), found[2].strip()
        if style == "json":
            return _fenced(json.dumps({"score": score, "reason": reason}, ensure_ascii=False))
        if zh:
            return f"**评分：** {score}/5\n**理由：** {reason}"
        return f"**Score:** {score}/5\n**Reason:** {reason}"


def _examples(text: str, opening: str = "input") -> list[dict]:
    """The fields of each example of an instances answer in the prompt's format."""
    names = {"Input": "input", "输入": "input", "Output": "output", "输出": "output", "Class label": "label",
             "类别": "label"}
    examples: list[dict] = []
    for line in text.splitlines():
        field = _FIELD.match(line.strip())
        if _EXAMPLE.match(line.strip()) or (field and names[field[1]] == opening and examples and
                                            opening in examples[-1]):
            examples.append({})
        if field:
            if not examples:
                examples.append({})
            examples[-1][names[field[1]]] = field[2]
    return [e for e in examples if e]


def _fenced(text: str) -> str:
    return f"```json\n{text}\n```"
