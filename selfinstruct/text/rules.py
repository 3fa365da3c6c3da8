"""Heuristic filters, shared by ``generate`` and ``filter``. Each rule returns the reason it
rejects, so every rejection is explained: INSTRUCTION_RULES for an instruction, clean_instances
for a task's instances (which are judged together: outputs may conflict)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

from selfinstruct.formats.task import Instance
from selfinstruct.text.rouge import tokenize
from selfinstruct.text.lang import detect_lang, length_of

_OPENING_QUOTES = "《「『“‘"  # Chinese titles and quotations legitimately start a sentence
# Japanese kana (full and half width) and Korean hangul: such text counts as CJK above but is not Chinese.
# U+30FB (katakana middle dot) is left out: Chinese uses it in foreign names such as 列夫・托尔斯泰.
_KANA_HANGUL = re.compile(r"[\u3040-\u30fa\u30fc-\u30ff\uff66-\uff9d\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
# Tasks a text-only model cannot do.
_UNSUPPORTED_EN_WORDS = ("image", "images", "picture", "pictures", "photo", "photos", "photograph", "photographs",
                         "graph", "graphs", "file", "files", "draw", "drawing", "plot", "plots", "video", "videos",
                         "audio", "music", "flowchart", "flowcharts", "diagram", "diagrams", "go to")
_UNSUPPORTED_EN = re.compile(r"\b(" + "|".join(_UNSUPPORTED_EN_WORDS) + r")\b", re.IGNORECASE)
# The regex is slow (case-insensitive, a word boundary at each position), so a text is searched only if
# its lower case holds one of the words. Lower case misses three letters the regex matches (ı, ſ as i, s;
# İ lower-cases to two characters): a text with one of them is always searched.
_EN_WORDS_LOWER = re.compile("|".join(_UNSUPPORTED_EN_WORDS))
_UNSUPPORTED_ZH = re.compile(r"图片|图像|照片|视频|音频|音乐|绘制|画一|画出|流程图|示意图|图表|录音|附件|上传")


@dataclass
class Instruction:
    """An instruction as the rules see it: stripped, with the run's (or the record's) language and limits."""

    text: str
    lang: str
    min_length: int
    max_length: int
    detected: str | None = None  # detect_lang(text), where the caller has it already


def starts_with_punctuation(instruction: Instruction) -> str | None:
    text = instruction.text
    if unicodedata.category(text[0])[0] in "PS" and text[0] not in _OPENING_QUOTES:
        return "starts_with_punctuation"
    return None


def wrong_language(instruction: Instruction) -> str | None:
    text, lang = instruction.text, instruction.lang
    if ((instruction.detected or detect_lang(text)) != lang or (lang == "en" and not text[0].isascii())
            or (lang == "zh" and _KANA_HANGUL.search(text))):
        return "wrong_language"
    return None


def out_of_length(instruction: Instruction) -> str | None:
    length = length_of(instruction.text, instruction.lang)
    if length < instruction.min_length:
        return "too_short"
    if length > instruction.max_length:
        return "too_long"
    return None


def unsupported_modality(instruction: Instruction) -> str | None:
    """Tasks a text-only model cannot do: images, audio, files, drawing."""
    text, lang = instruction.text, instruction.lang
    found = lang == "zh" and _UNSUPPORTED_ZH.search(text)
    return "unsupported_modality" if found or _english_modality(text) else None


def _english_modality(text: str) -> bool:
    if text.isascii() or not ("\u0131" in text or "\u017f" in text or "\u0130" in text):
        if not _EN_WORDS_LOWER.search(text.lower()):
            return False
    return _UNSUPPORTED_EN.search(text) is not None


# The heuristic rules, in order; the first reason given is the rejection. `generate` applies them to
# every new instruction and `filter` to every record: add a rule here and both use it.
INSTRUCTION_RULES: list[Callable[[Instruction], str | None]] = [
    starts_with_punctuation, wrong_language, out_of_length, unsupported_modality]


def instruction_rejection(text: str, lang: str, min_length: int, max_length: int,
                          detected: str | None = None) -> str | None:
    """Why an instruction is rejected by the heuristics (INSTRUCTION_RULES), or None if it passes.
    ``detected`` is detect_lang(text) where the caller has it already (it is a large share of the time)."""
    text = text.strip()
    if not text:
        return "empty"
    instruction = Instruction(text, lang, min_length, max_length, detected)
    for rule in INSTRUCTION_RULES:
        reason = rule(instruction)
        if reason:
            return reason
    return None


def clean_instances(instances: list[Instance]) -> tuple[list[Instance], list[tuple[Instance, str]]]:
    """Keep the usable instances; return the dropped ones with their reasons.

    Different outputs for the same non-empty input conflict; with no input (open-ended
    tasks such as "write a poem about autumn") different outputs are all fine.
    """
    if len(instances) == 1:  # most records: nothing to conflict with (``filter`` calls this per record)
        instance = instances[0]
        given, output = instance.input.strip(), instance.output.strip()
        reason = _unusable(given, output)
        return ([], [(instance, reason)]) if reason else ([Instance(given, output)], [])
    kept: list[Instance] = []
    dropped: list[tuple[Instance, str]] = []
    outputs_by_input: dict[str, set[str]] = {}
    for instance in instances:
        if instance.output.strip():
            outputs_by_input.setdefault(instance.input.strip(), set()).add(instance.output.strip())
    seen: set[tuple[str, str]] = set()
    for instance in instances:
        given, output = instance.input.strip(), instance.output.strip()
        reason = (_unusable(given, output)
                  or ("conflicting_outputs" if given and len(outputs_by_input[given]) > 1 else None)
                  or ("duplicate_instance" if (given, output) in seen else None))
        if reason:
            dropped.append((instance, reason))
        else:
            seen.add((given, output))
            kept.append(Instance(given, output))
    return kept, dropped


def _unusable(given: str, output: str) -> str | None:
    """Why an instance (input and output stripped) is unusable whatever the task's other instances are."""
    if not output:
        return "empty_output"
    if given and given == output:
        return "input_equals_output"
    return None


# An answer that apologises or refuses, and is short, means the model could not do the task
# (WizardLM's elimination step: "sorry" in fewer than 80 words). Chinese counts characters.
_REFUSAL = {
    "en": re.compile(r"\b(sorry|apologi[sz]e|I (?:cannot|can't|am unable to|'m unable to|am not able to)|"
                     r"as an AI)\b", re.IGNORECASE),
    "zh": re.compile(r"抱歉|对不起|无法(?:回答|完成|提供|满足)|不能(?:回答|完成|提供)|作为一个?(?:AI|人工智能)"),
}
REFUSAL_SHORTER_THAN = {"en": 80, "zh": 160}
_STOP_WORDS = {
    "en": set("a an the and or but if of to in on at by for with from as is are was were be been it this that "
              "these those i you he she we they me him her us them my your his its our their yes no not ok okay "
              "so do does did have has had will would can could should may might there here what which who".split()),
    "zh": set("的了是在和与及或也就都而着之其这那个我你他她它们吗呢吧啊嗯哦好不没有一"),  # tokens are characters
}


def response_rejection(text: str, lang: str) -> str | None:
    """Why a response shows the task failed, or None: it refuses or apologises and is short
    (``could_not_answer``), or holds nothing but punctuation and stop words (``no_content``)."""
    words = [token for token in tokenize(text) if any(c.isalnum() for c in token)]
    if not [word for word in words if word.lower() not in _STOP_WORDS[lang]]:
        return "no_content"
    if _REFUSAL[lang].search(text) and length_of(text, lang) < REFUSAL_SHORTER_THAN[lang]:
        return "could_not_answer"
    return None
