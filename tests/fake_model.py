"""A scripted stand-in for a model: recognises each stage's prompt and answers in kind.

Instructions are built from random vocabulary so they are distinct (low ROUGE-L),
answers follow the prompt's format for the chat API (whole list) or the completion
API (continuing the prompt), and ``classification_every`` makes every n-th
instruction a classification task.
"""

from __future__ import annotations

import json
import random
import re
import threading

from answer_styles import AnswerStyles
from openai_stub import Reply, Request

EN_WORDS = ("river planet budget recipe poem engine garden ticket museum protein algebra violin harbour "
            "desert lantern bicycle glacier market volcano orchard library festival tunnel compass meadow "
            "canyon robot pepper tiger castle vaccine satellite theatre pottery forest marathon sonnet "
            "ladder island dragon coffee archive kettle magnet pilot saddle quartz ribbon sculpture walnut").split()
EN_VERBS = ("Explain Describe Compare Summarise Rewrite Classify Translate List Suggest Evaluate Outline "
            "Critique Design Plan Estimate Argue Define Predict").split()
ZH_CHARS = "山水风雨花草树木日月星云江河湖海春夏秋冬东南西北金木火土鸟鱼虫兽书画诗词茶酒琴棋米面油盐车船桥路门窗灯笔"
ZH_VERBS = ["解释", "描述", "比较", "总结", "改写", "翻译", "列出", "评价", "设计", "规划", "估算", "论证", "预测"]


class FakeModel:
    """``styles``: "mixed" (the default) answers chat requests in a seeded mix of the ways real chat models
    write (answer_styles.py), "clean" exactly in the format the prompt asks for. The content (which
    instructions, labels, inputs and outputs) is the same either way: only the wrapping differs."""

    def __init__(self, seed: int = 7, classification_every: int = 3, styles: str = "mixed"):
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.classification_every = classification_every
        self.counter = 0
        self.styles = AnswerStyles(seed) if styles == "mixed" else None

    def __call__(self, request: Request) -> Reply | str:
        prompt = request.prompt
        chat = request.endpoint == "chat"
        with self.lock:
            if "response_format" in request.body:
                return self.structured(request)
            stage, answer = self._answer(prompt, chat)
            if self.styles is None or not chat or not isinstance(answer, str):
                return answer
            return self.styles.render(stage, answer, zh=_is_zh(prompt))

    def _answer(self, prompt: str, chat: bool) -> tuple[str, Reply | str]:
        """(the stage, the answer in the prompt's own format)."""
        if "Here is a list of tasks" in prompt or "下面是人们请 AI 助手完成的一组任务" in prompt:
            return "instructions", self.instructions(prompt, chat)
        if prompt.rstrip().endswith(("Classification:", "分类任务：")):
            return "classify", self.classify(prompt)
        if prompt.rstrip().endswith(("Class label:", "类别：")):
            return "instances_classification", self.labelled_instances(prompt, chat)
        if prompt.rstrip().endswith(("Input:", "输入：")):
            return "instances", self.instances(prompt, chat)
        if "new, varied tasks" in prompt or "请想出" in prompt:
            return "alpaca", self.alpaca(prompt, chat)
        if prompt.rstrip().endswith(("Rewritten instruction:", "New instruction:", "改写后的指令：", "新指令：")):
            return "evolve", self.evolve(prompt, chat)
        if prompt.rstrip().endswith(("Adds something:", "有新内容：")):
            return "compare", self.compare(prompt)
        if prompt.rstrip().endswith(("Response:", "回答：")):
            return "respond", self.respond(prompt, chat)
        if prompt.rstrip().endswith(("Score:", "评分：")):
            return "judge", self.judge(prompt, chat)
        raise AssertionError(f"fake model cannot tell the stage of: {prompt[-200:]!r}")

    def instruction(self, zh: bool) -> str:
        self.counter += 1
        if zh:
            body = "".join(self.rng.choice(ZH_CHARS) for _ in range(10))
            return f"{self.rng.choice(ZH_VERBS)}{body}的第{self.counter}种方法"
        words = " ".join(self.rng.choice(EN_WORDS) for _ in range(6))
        return f"{self.rng.choice(EN_VERBS)} the {words} case {self.counter}"

    def instructions(self, prompt: str, chat: bool) -> str:
        zh = "下面是人们请" in prompt
        first = int(re.findall(r"^(?:Task |任务)(\d+)[:：]$", prompt, re.M)[-1])
        label = "任务{}：" if zh else "Task {}: "
        items = [label.format(n) + self.instruction(zh) for n in range(first, first + 5)]
        text = "\n".join(items)
        return text if chat else " " + text[len(label.format(first)):]

    def classify(self, prompt: str) -> str:
        number = re.findall(r"(\d+)", prompt.rstrip().splitlines()[-2])
        is_cls = bool(number) and int(number[-1]) % self.classification_every == 0
        zh = prompt.rstrip().endswith("分类任务：")
        return (" 是" if is_cls else " 否") if zh else (" Yes" if is_cls else " No")

    def instances(self, prompt: str, chat: bool) -> str:
        zh = prompt.rstrip().endswith("输入：")
        if zh:
            text = "输入：一段关于春天的文字\n输出：春天来了，花开了。\n示例 2\n输入：无\n输出：这是第二个示例的答案。"
        else:
            text = "Input: a short note about spring\nOutput: Spring has come and the flowers bloom.\n" \
                   "Example 2\nInput: None\nOutput: This is the answer of the second example."
        return ("示例 1\n" if zh else "Example 1\n") + text if chat else " " + text.split("：" if zh else ": ", 1)[1]

    def labelled_instances(self, prompt: str, chat: bool) -> str:
        zh = prompt.rstrip().endswith("类别：")
        if zh:
            text = "类别：正面\n输入：这家店的菜很好吃。\n类别：负面\n输入：服务太慢了。"
        else:
            text = "Class label: Positive\nInput: The food here is great.\nClass label: Negative\nInput: The service was slow."
        return text if chat else " " + text.split("：" if zh else ": ", 1)[1]

    def alpaca(self, prompt: str, chat: bool) -> str:
        zh = "请想出" in prompt
        first = int(re.findall(r"^(\d+)\.\s*(?:Instruction|指令)", prompt, re.M)[-1])
        blocks = []
        for n in range(first, first + 4):
            if zh:
                blocks.append(f"###\n{n}. 指令：{self.instruction(True)}\n输入：无\n输出：第{n}个任务的答案。")
            else:
                blocks.append(f"###\n{n}. Instruction: {self.instruction(False)}\nInput: None\nOutput: Answer number {n}.")
        text = "\n".join(blocks)
        if chat:
            return text
        head = f"###\n{first}. 指令：" if zh else f"###\n{first}. Instruction: "
        return text[len(head):]

    # Evol-Instruct: a rewrite is a new instruction with a requirement added; it always adds something.
    def evolve(self, prompt: str, chat: bool) -> str:
        zh = prompt.rstrip().endswith(("改写后的指令：", "新指令："))
        text = self.instruction(zh) + ("，并且只用三句话回答。" if zh else ", in exactly three sentences.")
        return ("改写后的指令：" if zh else "Rewritten instruction: ") + text if chat else " " + text

    def compare(self, prompt: str) -> str:
        return " 是" if prompt.rstrip().endswith("有新内容：") else " Yes"

    def respond(self, prompt: str, chat: bool) -> str:
        zh = prompt.rstrip().endswith("回答：")
        return ("这是一个完整的回答：先说明背景，再分三步给出做法，最后总结要点。" if zh else
                "Here is a complete answer: first the background, then the method in three steps, then a summary.")

    def judge(self, prompt: str, chat: bool) -> str:
        """A score from 1 to 5 that follows from the instruction's text, so a replay gets the same."""
        zh = prompt.rstrip().endswith("评分：")
        instruction = re.findall(r"^(?:Instruction: |指令：)(.*)$", prompt, re.M)[-1]
        score = sum(map(ord, instruction)) % 5 + 1
        reason = "指令清楚。" if zh else "The instruction is clear."
        return (f"评分：{score}\n理由：{reason}" if zh else f"Score: {score}\nReason: {reason}") if chat else \
            f" {score}\n{'理由：' if zh else 'Reason: '}{reason}"


    # --structured: JSON for the stage the json_schema names or, in JSON mode, whose shape the prompt's last line shows.
    SHOWN = {"instructions": "instructions", "classification": "classify", "examples": "instances", "tasks": "alpaca",
             "instruction": "evolve", "adds_something": "compare", "score": "judge"}

    def structured(self, request: Request) -> str:
        form, lines = request.body["response_format"], request.prompt.rstrip().splitlines()
        if form.get("json_schema"):
            shape = form["json_schema"]["name"]
        else:
            shape = self.SHOWN[re.search(r'"(\w+)"', lines[-1]).group(1)]
            shape += "_classification" if shape == "instances" and '"label"' in lines[-1] else ""
        zh = bool(re.search("[\u4e00-\u9fff]", lines[-1]))
        number = re.findall(r"(\d+)", lines[-2])
        instruction = (re.findall(r"^(?:Instruction: |指令：)(.*)$", request.prompt, re.M) or [""])[-1]
        value = {
            "instructions": lambda: {"instructions": [self.instruction(zh) for _ in range(5)]},
            "classify": lambda: {"classification": bool(number) and int(number[-1]) % self.classification_every == 0},
            "instances": lambda: {"examples": [{"input": "a short note about spring", "output": "Spring has come."},
                                               {"input": "", "output": "This is the answer of the second example."}]},
            "instances_classification": lambda: {"examples": [{"label": "Positive", "input": "The food is great."},
                                                              {"label": "Negative", "input": "The service was slow."}]},
            "alpaca": lambda: {"tasks": [{"instruction": self.instruction(zh), "input": "", "output": f"Answer {n}."}
                                         for n in range(4)]},
            "evolve": lambda: {"instruction": self.instruction(zh) + ("，并且只用三句话回答。" if zh else
                                                                     ", in exactly three sentences.")},
            "compare": lambda: {"adds_something": True},
            "judge": lambda: {"score": sum(map(ord, instruction)) % 5 + 1, "reason": "The instruction is clear."},
        }[shape]()
        return json.dumps(value, ensure_ascii=False)

def _is_zh(prompt: str) -> bool:
    return any("\u4e00" <= c <= "\u9fff" for c in prompt[-400:])
