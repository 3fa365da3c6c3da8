"""Reading model output back: tolerant of formats, never raising on junk."""

from __future__ import annotations

import pytest

from selfinstruct.generation.parsing.items import parse_alpaca_tasks, parse_instances, parse_instructions
from selfinstruct.generation.parsing.rewrite import parse_rewrite
from selfinstruct.generation.parsing.yes_no import parse_yes_no
from selfinstruct.formats.task import Instance


@pytest.mark.parametrize(
    "text",
    [
        "9. Write a haiku about rain.\n10. Summarise the article.",
        "9、Write a haiku about rain.\n10、Summarise the article.",
        "任务9：Write a haiku about rain.\n任务10：Summarise the article.",
        "任务9:Write a haiku about rain.\n任务 10 ： Summarise the article.",
        "Task 9: Write a haiku about rain.\nTask 10: Summarise the article.",
        "9) Write a haiku about rain.\n10) Summarise the article.",
        "Sure! Here are two more:\n\n9. **Write** a haiku about rain.\n10. Summarise the article.\n\nEnjoy!",
    ],
)
def test_numbered_list_formats(text):
    assert parse_instructions(text, 9, continued=False, cut_off=False).items == [
        "Write a haiku about rain.", "Summarise the article."]


def test_continuation_gets_its_number_back():
    parsed = parse_instructions(" 写一首关于秋天的诗。\n10. 总结这段文字。", 9, continued=True, cut_off=False)
    assert parsed.items == ["写一首关于秋天的诗。", "总结这段文字。"]


def test_cut_off_response_drops_the_last_item():
    parsed = parse_instructions("9. Plan a picnic.\n10. Explain how vacc", 9, continued=False, cut_off=True)
    assert parsed.items == ["Plan a picnic."]
    assert [(d.reason, d.text) for d in parsed.dropped] == [("cut_off", "Explain how vacc")]


def test_item_continues_over_lines_until_a_blank_line():
    parsed = parse_instructions("9. Explain gravity\n   to a child.\n\nThis line is chatter.", 9, False, False)
    assert parsed.items == ["Explain gravity\nto a child."]  # lines keep their breaks, so sub-lists keep their shape


TRIP_EN = "Plan a trip with these constraints:\n1. Total budget under 500 dollars\n2. No flights"
TRIP_ZH = "按以下要求安排一次旅行：\n1. 总预算不超过500元\n2. 不坐飞机"


@pytest.mark.parametrize("text, continued, expected", [
    (f"Task 9: {TRIP_EN}\nTask 10: Write a haiku about rain.", False, [TRIP_EN, "Write a haiku about rain."]),
    (f"任务9：{TRIP_ZH}\n任务10：写一首关于雨的短诗。", False, [TRIP_ZH, "写一首关于雨的短诗。"]),
    (f"9. {TRIP_EN}\n10. Write a haiku about rain.", False, [TRIP_EN, "Write a haiku about rain."]),
    # completion API: the text goes on after the prompt's "Task 9:"; the model numbers the rest as the prompt does
    (f" {TRIP_EN}\nTask 10: Write a haiku about rain.\nTask 11: Summarise the article.", True,
     [TRIP_EN, "Write a haiku about rain.", "Summarise the article."]),
    (f" {TRIP_ZH}\n任务10：写一首关于雨的短诗。\n任务11：总结这段文字。", True, [TRIP_ZH, "写一首关于雨的短诗。", "总结这段文字。"]),
    (f" {TRIP_EN}\n10. Write a haiku about rain.", True, [TRIP_EN, "Write a haiku about rain."]),
])
def test_numbered_sub_list_stays_in_its_instruction(text, continued, expected):
    assert parse_instructions(text, 9, continued=continued, cut_off=False).items == expected


def test_only_the_lists_own_style_and_next_number_start_an_item():
    text = "Task 9: Rank these cities:\n9. Paris\n10. Rome\nTask 11: Not next.\nTask 10: Write a haiku.\n11. Not a task."
    assert parse_instructions(text, 9, continued=False, cut_off=False).items == [
        "Rank these cities:\n9. Paris\n10. Rome\nTask 11: Not next.", "Write a haiku.\n11. Not a task."]
    continued = " Rank these cities:\n1. Paris\nTask 10: Write a haiku.\n11. Not a task.\nTask 11: Summarise it."
    assert parse_instructions(continued, 9, continued=True, cut_off=False).items == [
        "Rank these cities:\n1. Paris", "Write a haiku.\n11. Not a task.", "Summarise it."]


def test_list_starts_at_next_number():
    text = "Task 7: Repeated example.\nTask 8: Another one.\nTask 9: Write a haiku.\nTask 10: Summarise it."
    assert parse_instructions(text, 9, continued=False, cut_off=False).items == ["Write a haiku.", "Summarise it."]
    assert parse_instructions("1. Write a haiku.\n2. Summarise it.", 9, False, False).items == [
        "Write a haiku.", "Summarise it."]


def test_sub_list_after_a_blank_line_follows_a_colon_only():
    text = "Task 9: Plan a trip with these constraints:\n\n1. Total budget under 500 dollars\n2. No flights\n\n" \
           "Task 10: Write a haiku about rain.\n\n1. Hope these help!\nEnjoy."
    assert parse_instructions(text, 9, continued=False, cut_off=False).items == [TRIP_EN, "Write a haiku about rain."]
    zh = "任务9：按以下要求安排一次旅行：\n\n1. 总预算不超过500元\n2. 不坐飞机\n\n任务10：写一首诗。"
    assert parse_instructions(zh, 9, continued=False, cut_off=False).items == [TRIP_ZH, "写一首诗。"]


def test_cut_off_drops_the_last_item_with_its_sub_list():
    parsed = parse_instructions(f"Task 9: Write a haiku.\nTask 10: {TRIP_EN}", 9, continued=False, cut_off=True)
    assert parsed.items == ["Write a haiku."]
    assert [(d.reason, d.text) for d in parsed.dropped] == [("cut_off", TRIP_EN)]


@pytest.mark.parametrize("junk", ["", "   ", "<html></html>", "random chatter without numbers", "\x00\x01"])
def test_junk_gives_nothing(junk):
    assert parse_instructions(junk, 9, continued=False, cut_off=False).items == []
    assert parse_instances(junk, classification=False, continued=False).items == []
    assert parse_alpaca_tasks(junk, 4, continued=False).items == []
    assert parse_yes_no(junk) is None


@pytest.mark.parametrize("text, expected", [
    ("Yes", True), (" yes, it is.", True), ("No", False), ("no.", False), ("是", True), ("否", False),
    ("不是", False), (" 是的，这是分类任务", True), ("Classification: Yes", True), ("分类任务：否", False),
    ("maybe", None), ("Noted", None),
])
def test_yes_no(text, expected):
    assert parse_yes_no(text) is expected


@pytest.mark.parametrize("text, expected", [
    # Chinese: no word boundary between two CJK characters, so these were all read as neither
    ("是", True), ("是。", True), ("是的", True), ("是分类任务", True), ("是的，这是一个分类任务", True),
    ("这是一个分类任务", True), ("属于分类任务", True), ("答案：是的", True), ("分类任务：是分类任务。", True),
    ("否", False), ("不是", False), ("不。", False), ("不是分类任务。", False), ("这不是分类任务", False),
    ("不属于分类任务", False), ("非分类任务", False), ("分类任务：这不是一个分类任务", False),
    # English sentences
    ("Yes", True), ("yes.", True), ("Yes, it is a classification task.", True), ("This is a classification task.", True),
    ("**Yes**", True), ("Yes, the answer is one label, not free text.", True),
    ("No", False), ("No, it is not.", False), ("This is not a classification task.", False),
    ("It isn't a classification task", False), ("Classification: Not a classification task.", False),
    # undecidable
    ("Maybe", None), ("", None), ("我不知道", None), ("不知道", None), ("不确定是不是分类任务", None),
    ("I'm not sure.", None), ("I don't know if this is a classification task.", None),
    ("This is a generation task.", None), ("非常难说", None),
])
def test_yes_no_sentences(text, expected):
    assert parse_yes_no(text) is expected


def test_yes_no_reads_only_the_first_line():
    assert parse_yes_no("是\n不是分类任务") is True
    assert parse_yes_no("Let me think about it.\nYes") is None


def test_input_first_instances_continued():
    text = " None\nOutput: Paris.\nExample 2\nInput: Germany\nOutput: Berlin\n\nTask: Another task\nExample 1"
    assert parse_instances(text, classification=False, continued=True).items == [
        Instance("", "Paris."), Instance("Germany", "Berlin")]


def test_input_first_instances_chat_with_markdown():
    text = "Example 1\n**Input:** 2, 3\n**Output:** 5\n\nExample 2\nInput: 无\nOutput: 7"
    assert parse_instances(text, classification=False, continued=False).items == [Instance("2, 3", "5"), Instance("", "7")]


def test_multiline_outputs_are_kept():
    text = "输入：无\n输出：def f():\n    return 1\n示例 2\n输入：x\n输出：y"
    assert parse_instances(text, classification=False, continued=False).items == [
        Instance("", "def f():\n    return 1"), Instance("x", "y")]


def test_output_first_instances():
    text = " 正面\n输入：很好吃。\n类别：负面\n输入：太咸了。"
    assert parse_instances(text, classification=True, continued=True).items == [
        Instance("很好吃。", "正面"), Instance("太咸了。", "负面")]
    english = "Class label: Spam\nInput: Win money!\nClass label: Not spam\nInput: Lunch at 1?"
    assert parse_instances(english, classification=True, continued=False).items == [
        Instance("Win money!", "Spam"), Instance("Lunch at 1?", "Not spam")]


def test_label_without_input_is_skipped():
    assert parse_instances("Class label: A\nClass label: B\nInput: x", True, False).items == [Instance("x", "B")]


def test_alpaca_tasks():
    text = (" Name a fruit.\nInput: None\nOutput: Apple.\n###\n5. Instruction: Add the numbers.\nInput: 2, 3\n"
            "Output: 5\n###\n6. Instruction: Unfinished")
    assert parse_alpaca_tasks(text, 4, continued=True).items == [
        {"instruction": "Name a fruit.", "input": "", "output": "Apple."},
        {"instruction": "Add the numbers.", "input": "2, 3", "output": "5"},
    ]


def test_alpaca_tasks_chinese_chat():
    text = "###\n4. 指令：写一句口号。\n输入：无\n输出：绿水青山。\n###\n5. 指令：计算。\n输入：1+1\n输出：2"
    assert parse_alpaca_tasks(text, 4, continued=False).items == [
        {"instruction": "写一句口号。", "input": "", "output": "绿水青山。"},
        {"instruction": "计算。", "input": "1+1", "output": "2"},
    ]


def test_prompts_end_where_the_model_continues():
    from selfinstruct.generation.prompts import PromptSet
    from selfinstruct.generation.methods.self_instruct import SelfInstruct
    from selfinstruct.resources import default_prompts

    for lang, ending in (("zh", "任务9："), ("en", "Task 9:")):
        prompts = PromptSet.load(default_prompts(), lang, SelfInstruct.templates)
        rendered = prompts.render("instructions", examples=prompts.numbered(["a"] * 8), next=prompts.task_item(9))
        assert rendered.endswith(ending)
        assert prompts.render("classify", instruction="x").endswith(("Classification:", "分类任务："))
        assert prompts.render("instances", instruction="x").endswith(("Input:", "输入："))


def test_json_in_an_output_is_the_outputs_own():
    text = 'Example 1\nInput: None\nOutput:\n```json\n[{"input": "x", "output": "y"}]\n```'
    assert parse_instances(text, classification=False, continued=False).items == [
        Instance("", '```json\n[{"input": "x", "output": "y"}]\n```')]


@pytest.mark.parametrize("text", ["[" * 100000, '{"tasks": ' * 50000, "```json\n" + "[" * 5000])
def test_json_nested_too_deep_is_no_crash(text):
    assert parse_instructions(text, 9, continued=False, cut_off=False).items == []
    assert parse_instances(text, classification=False, continued=False).items == []
    assert parse_alpaca_tasks(text, 4, continued=False).items == []
    assert parse_yes_no(text) is None and parse_rewrite(text)


def test_a_closing_remark_is_dropped_only_after_the_last_item():
    text = "9. Summarise the survey.\nThese examples are from 2020:\nA, B\n10. Write a haiku.\nHope this helps!"
    assert parse_instructions(text, 9, continued=False, cut_off=False).items == [
        "Summarise the survey.\nThese examples are from 2020:\nA, B", "Write a haiku."]
    letter = "Example 1\nInput: None\nOutput: Dear Sam,\n\nLet me know if you can come.\n\nBest, Tom"
    assert parse_instances(letter, classification=False, continued=False).items == [
        Instance("", "Dear Sam,\n\nLet me know if you can come.\n\nBest, Tom")]


def test_a_rewrite_keeps_its_own_first_line_and_note():
    text = "Here is a list of numbers:\n3, 5, 8\nFind the median.\n\nNote: show your work."
    assert parse_rewrite(text) == text


def test_json_answers_drop_what_they_cannot_use():
    parsed = parse_instructions('["Write a haiku.", 7, "", {"instruction": "Name a river."}, {"inst', 9, False, False)
    assert parsed.items == ["Write a haiku.", "Name a river."]
    assert [(d.reason, d.text) for d in parsed.dropped] == [
        ("malformed_item", "7"), ("empty_item", '""'), ("cut_off", '{"inst')]
