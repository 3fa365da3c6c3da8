"""Heuristic filters. Each rule returns the reason it rejects, so every rejection is explained."""

from __future__ import annotations

import re
import unicodedata

from .seeds import Instance

_OPENING_QUOTES = "《「『“‘"  # Chinese titles and quotations legitimately start a sentence
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")
_LETTER = re.compile(r"[^\W\d_]")
# Japanese kana (full and half width) and Korean hangul: such text counts as CJK above but is not Chinese.
# U+30FB (katakana middle dot) is left out: Chinese uses it in foreign names such as 列夫・托尔斯泰.
_KANA_HANGUL = re.compile(r"[\u3040-\u30fa\u30fc-\u30ff\uff66-\uff9d\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
# Tasks a text-only model cannot do.
_UNSUPPORTED_EN = re.compile(
    r"\b(images?|pictures?|photos?|photographs?|graphs?|files?|draw|drawing|plot|plots|videos?|audio|"
    r"music|flowcharts?|diagrams?|go to)\b",
    re.IGNORECASE,
)
_UNSUPPORTED_ZH = re.compile(r"图片|图像|照片|视频|音频|音乐|绘制|画一|画出|流程图|示意图|图表|录音|附件|上传")


def detect_lang(text: str) -> str:
    """``zh`` when at least a fifth of the letters are CJK characters, else ``en``."""
    if text.isascii():
        return "en"  # no CJK character (and the quickest test: filter calls this per record)
    cjk = len(_CJK.findall(text))
    if cjk * 5 >= len(text):  # text is not empty here, so cjk is not 0
        return "zh"  # a fifth of all characters, so of the letters too
    return "zh" if cjk and cjk * 5 >= len(_LETTER.findall(text)) else "en"


def length_of(text: str, lang: str) -> int:
    """Words for English, characters (without spaces) for Chinese."""
    return len(text.split()) if lang == "en" else len(re.sub(r"\s", "", text))


def instruction_rejection(text: str, lang: str, min_length: int, max_length: int,
                          detected: str | None = None) -> str | None:
    """Why an instruction is rejected by the heuristics, or None if it passes. ``detected`` is
    detect_lang(text) where the caller has it already (it is a large share of the time)."""
    text = text.strip()
    if not text:
        return "empty"
    if unicodedata.category(text[0])[0] in "PS" and text[0] not in _OPENING_QUOTES:
        return "starts_with_punctuation"
    if ((detected or detect_lang(text)) != lang or (lang == "en" and not text[0].isascii())
            or (lang == "zh" and _KANA_HANGUL.search(text))):
        return "wrong_language"
    length = length_of(text, lang)
    if length < min_length:
        return "too_short"
    if length > max_length:
        return "too_long"
    unsupported = (_UNSUPPORTED_EN if lang == "en" else _UNSUPPORTED_ZH).search(text)
    if unsupported is None and lang == "zh":
        unsupported = _UNSUPPORTED_EN.search(text)
    if unsupported:
        return "unsupported_modality"
    return None


def clean_instances(instances: list[Instance]) -> tuple[list[Instance], list[tuple[Instance, str]]]:
    """Keep the usable instances; return the dropped ones with their reasons.

    Different outputs for the same non-empty input conflict; with no input (open-ended
    tasks such as "write a poem about autumn") different outputs are all fine.
    """
    kept: list[Instance] = []
    dropped: list[tuple[Instance, str]] = []
    outputs_by_input: dict[str, set[str]] = {}
    for instance in instances:
        if instance.output.strip():
            outputs_by_input.setdefault(instance.input.strip(), set()).add(instance.output.strip())
    seen: set[tuple[str, str]] = set()
    for instance in instances:
        given, output = instance.input.strip(), instance.output.strip()
        if not output:
            reason = "empty_output"
        elif given and given == output:
            reason = "input_equals_output"
        elif given and len(outputs_by_input[given]) > 1:
            reason = "conflicting_outputs"
        elif (given, output) in seen:
            reason = "duplicate_instance"
        else:
            seen.add((given, output))
            kept.append(Instance(given, output))
            continue
        dropped.append((instance, reason))
    return kept, dropped
