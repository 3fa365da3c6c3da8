"""Which language a text is in, and how long it is in that language's units.

The CJK range here (kana, CJK ideographs and their extensions, compatibility ideographs, hangul) is
the one the tokenizer, the language rules and the token estimate all use.
"""

from __future__ import annotations

import re

CJK_RANGE = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af"
CJK = re.compile(f"[{CJK_RANGE}]")
_LETTER = re.compile(r"[^\W\d_]")


def detect_lang(text: str) -> str:
    """``zh`` when at least a fifth of the letters are CJK characters, else ``en``."""
    if text.isascii():
        return "en"  # no CJK character (and the quickest test: filter calls this per record)
    cjk = len(CJK.findall(text))
    if cjk * 5 >= len(text):  # text is not empty here, so cjk is not 0
        return "zh"  # a fifth of all characters, so of the letters too
    return "zh" if cjk and cjk * 5 >= len(_LETTER.findall(text)) else "en"


def length_of(text: str, lang: str) -> int:
    """Words for English, characters (without spaces) for Chinese."""
    return len(text.split()) if lang == "en" else len("".join(text.split()))  # split's spaces are regex \s
