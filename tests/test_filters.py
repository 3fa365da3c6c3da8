"""Every heuristic rule, in both languages."""

from __future__ import annotations

import json
import random
import re

import pytest

from selfinstruct.text import rules as filters
from selfinstruct.text.lang import detect_lang, length_of
from selfinstruct.text.rules import clean_instances, instruction_rejection
from selfinstruct.formats.task import Instance


def en(text):
    return instruction_rejection(text, "en", 4, 150)


def zh(text):
    return instruction_rejection(text, "zh", 6, 300)


def test_good_instructions_pass():
    assert en("Write a short poem about autumn leaves.") is None
    assert zh("写一首关于秋天落叶的短诗。") is None
    assert zh("《静夜思》的作者是谁？请简要介绍他。") is None  # titles may open a sentence
    assert zh("用 Python 写一个函数，计算列表的平均值。") is None


@pytest.mark.parametrize("text, reason", [
    ("", "empty"), ("   ", "empty"),
    ("- Write a poem about rain.", "starts_with_punctuation"),
    (", and then summarise the text.", "starts_with_punctuation"),
    ("Summarise it.", "too_short"),
    (" ".join(["word"] * 151), "too_long"),
    ("Describe the image of a cat on the sofa.", "unsupported_modality"),
    ("Draw a map of your neighbourhood.", "unsupported_modality"),
    ("Create a flowchart of the login process.", "unsupported_modality"),
    ("Plot the sales figures for each month.", "unsupported_modality"),
    ("Compose music for a short birthday song.", "unsupported_modality"),
    ("Go to the website and book a table.", "unsupported_modality"),
    ("Summarise the attached video lecture.", "unsupported_modality"),
    ("Open the file and count the lines.", "unsupported_modality"),
    ("请把这段话翻译成英文吧谢谢", "wrong_language"),
    ("Ésta es una instrucción rara.", "wrong_language"),
])
def test_english_rules(text, reason):
    assert en(text) == reason


@pytest.mark.parametrize("text, reason", [
    ("、把这句话改写得更正式。", "starts_with_punctuation"),
    ("写诗", "too_short"),
    ("写" * 301, "too_long"),
    ("描述这张图片里的人在做什么。", "unsupported_modality"),
    ("根据这段视频总结主要内容。", "unsupported_modality"),
    ("为这首歌配上一段音乐伴奏。", "unsupported_modality"),
    ("画一只正在睡觉的小猫。", "unsupported_modality"),
    ("画出这道几何题的辅助线。", "unsupported_modality"),
    ("绘制公司组织结构的流程图。", "unsupported_modality"),
    ("请把这张照片修得更亮一些。", "unsupported_modality"),
    ("Please write an English poem about the sea.", "wrong_language"),
])
def test_chinese_rules(text, reason):
    assert zh(text) == reason


@pytest.mark.parametrize("text", [
    "次の文章を英語に翻訳してください。",  # kanji with hiragana
    "请把这段ﾃｷｽﾄ翻译成中文句子。",  # half-width katakana
    "다음 문장을 영어로 번역하세요.",  # hangul syllables
    "请解释韩文字母ㄱ和ㄴ的发音区别。",  # hangul compatibility jamo
    "请说明韩文字母ᄀ的发音方法。",  # hangul jamo
])
def test_japanese_and_korean_are_not_chinese(text):
    assert zh(text) == "wrong_language"
    assert en(text) == "wrong_language"


def test_katakana_middle_dot_is_chinese_punctuation():
    assert zh("列夫・托尔斯泰有哪些代表作？请列举三部。") is None


CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]")


def test_detect_lang_follows_its_definition_on_mixed_text():
    """Its shortcuts (ASCII text; CJK a fifth of all characters) give what counting letters gives."""
    rng = random.Random(3)
    alphabet = "ab Z 7,.!？。中文字と한éЖ\u3000"
    for _ in range(20_000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24)))
        cjk = len(CJK.findall(text))
        letters = sum(1 for ch in text if ch.isalpha())
        assert detect_lang(text) == ("zh" if cjk and cjk * 5 >= letters else "en"), text


def test_modality_and_length_shortcuts_follow_their_definitions():
    """The English modality rule searches only texts whose lower case holds a word (ı, ſ and İ aside),
    and Chinese length counts what str.split keeps: both give what the plain regexes give."""
    rng = random.Random(5)
    pieces = ["image", "IMAGES", "Photo", "graphs", "go to", "go  to", "draw", "drawing", "plotted", "ımage",
              "fıle", "fıles", "İmage", "pıcture", "ſ", "muſic", "K", "图片", "画一", "a", "b", " ", "\u3000", "\t",
              "_", "中", "é", "-", ".", "\n", "\u2028", "\x1c", "9"]
    for _ in range(30_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 8)))
        for lang in ("en", "zh"):
            found = filters._UNSUPPORTED_EN.search(text) or (lang == "zh" and filters._UNSUPPORTED_ZH.search(text))
            rule = filters.unsupported_modality(filters.Instruction(text, lang, 0, 0))
            assert rule == ("unsupported_modality" if found else None), (text, lang)
        assert length_of(text, "zh") == len(re.sub(r"\s", "", text)), text


def test_one_instance_is_cleaned_as_in_a_list():
    """clean_instances' shortcut for one instance gives what the general path gives it beside another
    instance that cannot conflict with it."""
    other = Instance("another input", "another output")
    for given, output in [("a", "b"), (" a ", " b "), ("same", "same"), ("", "  "), ("", "x"), (" q", "q "),
                          ("", ""), ("x", "")]:
        kept, dropped = clean_instances([Instance(given, output), other])
        assert kept[-1] == other
        assert clean_instances([Instance(given, output)]) == (kept[:-1], dropped)


def test_detect_lang():
    assert detect_lang("把这句话翻译成英文：I like tea.") == "zh"
    assert detect_lang("Translate into French: the weather is nice.") == "en"
    assert detect_lang("12345") == "en"


def test_instance_rules():
    kept, dropped = clean_instances([
        Instance("a", "b"),
        Instance("same", "same"),
        Instance("", "  "),
        Instance("q", "one answer"),
        Instance("q", "another answer"),
        Instance("a", "b"),
        Instance("", "no input is fine"),
    ])
    assert kept == [Instance("a", "b"), Instance("", "no input is fine")]
    assert sorted(reason for _, reason in dropped) == [
        "conflicting_outputs", "conflicting_outputs", "duplicate_instance", "empty_output", "input_equals_output"]


def test_open_ended_instances_without_input_do_not_conflict():
    poems = [Instance("", "枫叶红了，秋风起。"), Instance("", "Golden leaves drift down."), Instance(" ", "A third poem.")]
    kept, dropped = clean_instances(poems + [Instance("", "Golden leaves drift down."), Instance("q", "x"),
                                              Instance("q", "y")])
    assert kept == [Instance("", "枫叶红了，秋风起。"), Instance("", "Golden leaves drift down."), Instance("", "A third poem.")]
    assert dropped == [
        (Instance("", "Golden leaves drift down."), "duplicate_instance"),
        (Instance("q", "x"), "conflicting_outputs"), (Instance("q", "y"), "conflicting_outputs")]


def test_a_rule_added_to_the_chain_applies_to_generate_and_filter(tmp_path, monkeypatch):
    """INSTRUCTION_RULES is the one list: a new rule rejects in instruction_rejection, which the loop's
    screening and filter's heuristics both call, with the rule's own reason."""
    from selfinstruct import filter_dataset
    from selfinstruct.generation import loop as pipeline
    from selfinstruct.dedup import read as screening

    def no_bananas(instruction: filters.Instruction) -> str | None:
        return "mentions_bananas" if "banana" in instruction.text.lower() else None

    monkeypatch.setattr(filters, "INSTRUCTION_RULES", [*filters.INSTRUCTION_RULES, no_bananas])
    assert filters.instruction_rejection("Write a poem about a banana tree.", "en", 3, 150) == "mentions_bananas"
    assert filters.instruction_rejection("Write a poem about an apple tree.", "en", 3, 150) is None
    assert filters.instruction_rejection("Banana!", "en", 3, 150) == "too_short"  # earlier rules come first
    assert pipeline.instruction_rejection is filters.instruction_rejection
    assert screening.instruction_rejection is filters.instruction_rejection
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps({"instruction": text, "output": "A poem."}) + "\n" for text in (
        "Write a poem about a banana tree.", "Describe the colours of an autumn forest.")))
    report = filter_dataset(source, tmp_path / "clean.jsonl")
    assert report.dropped == {"mentions_bananas": 1} and report.kept == 1
