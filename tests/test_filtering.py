"""`selfinstruct filter` on existing datasets in every accepted layout."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from selfinstruct import filter_dataset
from selfinstruct.cli import app

RECORDS = [
    {"instruction": "Translate the sentence into French.", "input": "I like tea.", "output": "J'aime le thé."},
    {"instruction": "Translate this sentence into French.", "input": "Hello", "output": "Bonjour"},
    {"instruction": "把这句话翻译成英文。", "input": "我喜欢喝茶。", "output": "I like tea."},
    {"instruction": "把这句话翻译成英文。", "input": "你好", "output": "Hello"},
    {"instruction": "Describe the picture of a cat.", "input": "", "output": "A cat."},
    {"instruction": 5, "input": "", "output": "x"},
    {"instruction": "Give three tips for staying healthy.", "input": "", "output": ""},
    {"input": "no instruction here", "output": "y"},
    {"instruction": "写一首关于春天的五言绝句。", "input": "", "output": "春风吹柳绿，细雨润花红。"},
]
KEPT = [RECORDS[0], RECORDS[2], RECORDS[8]]


def dropped_reasons(path):
    return [json.loads(line)["reason"] for line in path.read_text(encoding="utf-8").splitlines()]


def test_alpaca_json_array_keeps_layout_and_explains_drops(tmp_path):
    source = tmp_path / "data.json"
    source.write_text(json.dumps(RECORDS, ensure_ascii=False, indent=2), encoding="utf-8")
    report = filter_dataset(source, tmp_path / "clean.json")
    assert json.loads((tmp_path / "clean.json").read_text(encoding="utf-8")) == KEPT
    assert (report.total, report.kept) == (9, 3)
    assert dropped_reasons(tmp_path / "clean.dropped.jsonl") == [
        "duplicate", "duplicate", "unsupported_modality", "bad_record", "empty_output", "bad_record"]
    drops = [json.loads(line) for line in (tmp_path / "clean.dropped.jsonl").read_text().splitlines()]
    chinese = drops[1]
    assert chinese["score"] == 1.0 and chinese["duplicate_of"]["instruction"] == "把这句话翻译成英文。"
    assert chinese["index"] == 3 and chinese["record"] == RECORDS[3]
    assert drops[3]["error"] == "field 'instruction': expected a string, got int"
    assert drops[5]["error"] == "field 'instruction': missing"


def test_jsonl_in_jsonl_out(tmp_path):
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    filter_dataset(source, tmp_path / "clean.jsonl")
    lines = (tmp_path / "clean.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line) for line in lines] == KEPT
    first_dup = json.loads((tmp_path / "clean.dropped.jsonl").read_text().splitlines()[0])
    assert first_dup["line"] == 2 and first_dup["duplicate_of"]["line"] == 1


def test_seed_task_jsonl_under_a_json_name(tmp_path):
    seeds = [
        {"id": "a", "instruction": "判断这句话的情感是正面还是负面。", "instances": [{"input": "很好", "output": "正面"}],
         "is_classification": True},
        {"id": "b", "instruction": "判断这句话的情感是正面还是负面。", "instances": [{"input": "很差", "output": "负面"}],
         "is_classification": True},
        {"id": "c", "instruction": "解释成语“守株待兔”的意思。", "instances": [{"input": "无", "output": "无"}],
         "is_classification": False},
    ]
    source = tmp_path / "zh_seed_tasks.json"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in seeds), encoding="utf-8")
    filter_dataset(source, tmp_path / "out.json")
    kept = [json.loads(line) for line in (tmp_path / "out.json").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in kept] == ["a"]
    assert dropped_reasons(tmp_path / "out.dropped.jsonl") == ["duplicate", "input_equals_output"]


def test_field_only_and_against(tmp_path):
    source = tmp_path / "data.jsonl"
    rows = [{"prompt": "Name the capital of France."}, {"prompt": "Name the capital of France!"},
            {"prompt": "List three prime numbers."}, {"prompt": "Draw a picture of a dog."}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    filter_dataset(source, tmp_path / "a.jsonl", field="prompt", only="dedup")
    assert dropped_reasons(tmp_path / "a.dropped.jsonl") == ["duplicate"]
    filter_dataset(source, tmp_path / "b.jsonl", field="prompt", only="heuristics")
    assert dropped_reasons(tmp_path / "b.dropped.jsonl") == ["unsupported_modality"]
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps([{"instruction": "List three prime numbers.", "output": "2, 3, 5"}]))
    filter_dataset(source, tmp_path / "c.jsonl", field="prompt", against=evaluation)
    assert dropped_reasons(tmp_path / "c.dropped.jsonl") == ["duplicate", "similar_to_against",
                                                             "unsupported_modality"]


def test_threshold_is_strictly_above(tmp_path):
    source = tmp_path / "d.jsonl"
    rows = [{"instruction": "a b c d e f g", "output": "1"}, {"instruction": "a b c d e f g h i j", "output": "2"}]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    # LCS 7 of lengths 7 and 10: F = 2*1*0.7/1.7 = 0.8235...
    assert filter_dataset(source, tmp_path / "o.jsonl", threshold=0.8235294117647058, lang="en").kept == 2
    assert filter_dataset(source, tmp_path / "o.jsonl", threshold=0.82, lang="en").kept == 1


@pytest.mark.parametrize("content", ["this is not json at all\nnor this\n", "[{\"instruction\": \"x\"},, ]"])
def test_invalid_file_exits_2_and_writes_nothing(tmp_path, content):
    source = tmp_path / "broken.json"
    source.write_text(content)
    result = CliRunner().invoke(app, ["filter", str(source), "-o", str(tmp_path / "out.json")])
    assert result.exit_code == 2
    assert "broken.json" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json"]


def test_cli_prints_a_table_of_rules(tmp_path):
    source = tmp_path / "data.json"
    source.write_text(json.dumps(RECORDS, ensure_ascii=False))
    result = CliRunner().invoke(app, ["filter", str(source), "-o", str(tmp_path / "clean.json")])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["rule", "records"]
    assert ["duplicate", "2"] in [line.split() for line in lines]
    assert ["bad_record", "2"] in [line.split() for line in lines]
    assert any(line.split()[:4] == ["kept", "3", "of", "9"] for line in lines)
