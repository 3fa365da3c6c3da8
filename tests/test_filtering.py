"""`selfinstruct filter` on existing datasets in every accepted layout."""

from __future__ import annotations

import errno
import json
import os
import random
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from selfinstruct import export_run, filter_dataset
from selfinstruct.dedup import command as filtering
from selfinstruct.dedup import write as writing
from selfinstruct.cli import app
from selfinstruct.dedup.result import FilterError
from selfinstruct.formats.records import RecordError
from selfinstruct.text.rouge import RougeIndex, rouge_l, tokenize

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
    assert dropped_reasons(tmp_path / "clean.json.dropped.jsonl") == [
        "duplicate", "duplicate", "unsupported_modality", "bad_record", "empty_output", "bad_record"]
    drops = [json.loads(line) for line in (tmp_path / "clean.json.dropped.jsonl").read_text().splitlines()]
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


def test_jsonl_records_are_copied_as_written(tmp_path):
    """Kept lines come out byte for byte (escapes and spacing as the user wrote them, CRLF ends and
    blank lines aside); a dropped entry holds the record as written, and parses; the two key modes agree."""
    again = [RECORDS[0] | {"output": "Je bois du thé."}, RECORDS[2] | {"output": "I enjoy tea."}]
    lines = [json.dumps(RECORDS[0], separators=(",", ":")),  # compact
             json.dumps(again[0]),  # a duplicate of the first
             json.dumps(RECORDS[2]),  # \\u escapes for Chinese
             "",  # blank: no record
             '  {"instruction" : "写一首关于春天的五言绝句。", "output": "春风吹柳绿。", "input": ""}  ',
             json.dumps(again[1], ensure_ascii=False, separators=(", ", " : ")),  # a duplicate of the third
             "{not json"]
    source = tmp_path / "data.jsonl"
    source.write_bytes("\r\n".join(lines).encode("utf-8") + b"\r\n")
    for key in filtering.KEYS:
        out = tmp_path / f"clean-{key}.jsonl"
        report = filter_dataset(source, out, key=key)
        assert out.read_bytes().decode("utf-8").splitlines() == [lines[0], lines[2], lines[4].strip()]
        drops = [json.loads(line) for line in out.with_name(out.stem + ".dropped.jsonl").read_text("utf-8").splitlines()]
        assert [(d["line"], d["reason"]) for d in drops] == [(2, "duplicate"), (6, "duplicate"), (7, "bad_record")]
        assert [drops[0]["record"], drops[1]["record"]] == again and "record" not in drops[2]
        assert drops[1]["duplicate_of"]["line"] == 3 and drops[1]["duplicate_of"]["instruction"] == "把这句话翻译成英文。"
        if key == "instruction+input":
            assert drops[1]["duplicate_of"]["input"] == "我喜欢喝茶。" and drops[1]["duplicate_of"]["input_score"] == 1.0
        assert (report.total, report.kept) == (6, 3)


def test_lines_with_unicode_spaces_are_copied_as_they_are_read(tmp_path):
    """Lines are copied in bulk as bytes, stripped of ASCII spaces; where a line's ends are not ASCII (an
    ideographic space, NEL) or it holds only such spaces, it is still stripped as str.strip strips it."""
    lines = ['\u3000{"instruction": "写一首关于大海的诗。", "output": "好"}\u3000',
             '\x1c{"instruction": "Name three colours of the rainbow.", "output": "red"} \t',
             "\u3000\u2028\x85",  # only spaces: no record
             '\x85{"instruction": "写一首关于大海的诗！", "output": "好"}',  # a duplicate of the first
             '{"instruction": "Write a poem about the sea.", "output": "x"}\u00a0']
    source = tmp_path / "data.jsonl"
    source.write_bytes("\n".join(lines).encode("utf-8"))
    out = tmp_path / "clean.jsonl"
    report = filter_dataset(source, out)
    assert out.read_bytes().decode("utf-8") == "".join(lines[i].strip() + "\n" for i in (0, 1, 4))
    drops = out.with_name("clean.dropped.jsonl").read_bytes().decode("utf-8").splitlines()
    assert len(drops) == 1 and drops[0].endswith(', "record": ' + lines[3].strip() + "}")
    assert json.loads(drops[0])["line"] == 4 and json.loads(drops[0])["duplicate_of"]["line"] == 1
    assert (report.total, report.kept) == (4, 3)


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
    assert dropped_reasons(tmp_path / "out.json.dropped.jsonl") == ["duplicate", "input_equals_output"]


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
    assert filter_dataset(source, tmp_path / "o.jsonl", threshold=0.82, lang="en", overwrite=True).kept == 1


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


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _data(tmp_path, name="data.jsonl"):
    source = tmp_path / name
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in RECORDS), encoding="utf-8")
    return source


def _no_write(tmp_path, inputs, match, **kwargs):
    """filter_dataset raises FilterError matching ``match``, leaving every file as it was and adding none."""
    before, contents = _files(tmp_path), {p: p.read_bytes() for p in inputs}
    with pytest.raises(FilterError) as raised:
        filter_dataset(**kwargs)
    assert match in str(raised.value), str(raised.value)
    assert "\n" not in str(raised.value)
    assert _files(tmp_path) == before
    assert {p: p.read_bytes() for p in inputs} == contents


@pytest.mark.parametrize("input, output, dropped, match", [
    ("data.jsonl", "clean.jsonl", "data.jsonl",
     "data.jsonl: the dropped-records file is the same file as the input (data.jsonl); choose another path"),
    ("data.jsonl", "data.jsonl", None, "data.jsonl: the output is the same file as the input (data.jsonl)"),
    ("data.jsonl", "./data.jsonl", None, "the output is the same file as the input"),
    ("data.jsonl", "link.jsonl", None, "link.jsonl: the output is the same file as the input (data.jsonl)"),
    ("link.jsonl", "clean.jsonl", "sub/../data.jsonl", "sub/../data.jsonl: the dropped-records file is the same"),
    ("data.jsonl", "clean.jsonl", "./clean.jsonl",
     "clean.jsonl: the dropped-records file is the same file as the output (clean.jsonl)"),
    ("clean.dropped.jsonl", "clean.jsonl", None, "clean.dropped.jsonl: the dropped-records file is the same file as"),
])
def test_filter_refuses_to_overwrite_its_input_or_write_two_things_to_one_file(tmp_path, input, output, dropped,
                                                                               match):
    source = _data(tmp_path, "clean.dropped.jsonl" if input == "clean.dropped.jsonl" else "data.jsonl")
    (tmp_path / "link.jsonl").symlink_to(source)
    (tmp_path / "sub").mkdir()
    _no_write(tmp_path, [source], match, input=input, output=output, dropped_output=dropped)  # relative to tmp_path


def test_filter_refuses_a_hard_link_to_the_input_as_output(tmp_path):
    source = _data(tmp_path)
    os.link(source, tmp_path / "same.jsonl")
    _no_write(tmp_path, [source], "same.jsonl: the output is the same file as the input", input="data.jsonl",
              output="same.jsonl")


@pytest.mark.parametrize("output, dropped, role", [
    ("eval.json", None, "output"), ("clean.jsonl", "eval.json", "dropped-records file"),
    ("clean.jsonl", "eval_link.json", "dropped-records file"),
])
def test_filter_refuses_to_overwrite_an_against_file(tmp_path, output, dropped, role):
    source = _data(tmp_path)
    evaluation = tmp_path / "eval.json"
    evaluation.write_text(json.dumps([{"instruction": "List three prime numbers.", "output": "2, 3, 5"}]))
    (tmp_path / "eval_link.json").symlink_to(evaluation)
    _no_write(tmp_path, [source, evaluation], f"the {role} is the same file as the --against file", input=source,
              output=tmp_path / output, dropped_output=tmp_path / dropped if dropped else None,
              # a list of --against files too; the paths are checked before any is read
              against=[tmp_path / "not_read_yet.json", evaluation] if dropped == "eval.json" else evaluation)


@pytest.mark.parametrize("input, output, dropped, match", [
    ("missing.jsonl", "clean.jsonl", None, "missing.jsonl: no such file"),
    ("adir", "clean.jsonl", None, "adir: is a directory, not a dataset file"),
    ("data.jsonl", "nodir/clean.jsonl", None, "nodir/clean.jsonl: cannot write there: "),
    ("data.jsonl", "nodir/", None, "nodir/: no such directory; create it first, or name a file"),
    ("data.jsonl", "clean.jsonl", "nodir/drops.jsonl", "nodir/drops.jsonl: cannot write there: "),
    ("data.jsonl", "clean.jsonl", "adir", "adir: is a directory; give a file name to write to"),
    ("data.jsonl", "data.jsonl/clean.jsonl", None, "data.jsonl is not an existing directory"),
])
def test_filter_reports_unusable_paths_in_one_line_and_writes_nothing(tmp_path, input, output, dropped, match):
    source = _data(tmp_path)
    (tmp_path / "adir").mkdir()
    _no_write(tmp_path, [source], match, input=tmp_path / input, output=f"{tmp_path}/{output}",
              dropped_output=tmp_path / dropped if dropped else None)


def test_filter_turns_a_failed_write_into_a_filter_error(tmp_path, monkeypatch):
    source = _data(tmp_path)

    def full_disk(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    monkeypatch.setattr(filtering.os, "replace", full_disk)
    _no_write(tmp_path, [source], "clean.jsonl: No space left on device", input=source,
              output=tmp_path / "clean.jsonl")


def _escaped_lines(*records):
    """JSON lines as a user's file may hold them: non-ASCII text as \\u escapes, so lone surrogates fit."""
    return "".join(json.dumps(r) + "\n" for r in records)


SURROGATE_RECORDS = [
    ({"instruction": "Say hello\ud800 politely.", "input": "", "output": "Hello."}, "instruction"),
    ({"instruction": "Give a synonym.", "input": "\udfff", "output": "x"}, "input"),
    ({"instruction": "Give an antonym.", "input": "hot", "output": "cold\ud800"}, "output"),
    ({"instruction": "Name a fruit.", "instances": [{"input": "", "output": "apple"},
                                                    {"input": "", "output": "\udc00 pear"}]}, "instances[1].output"),
    ({"instruction": "Name a tree.", "output": "oak", "meta": {"tags": ["ok", "\ud800"]}}, "meta.tags[1]"),
    ({"instruction": "Name a bird.", "output": "owl", "a\ud800": 1}, "a\\ud800"),
]


@pytest.mark.parametrize("layout", ["lines", "array"])
def test_lone_surrogates_are_bad_records_and_every_file_stays_utf8(tmp_path, layout):
    good = [{"instruction": "Describe the weather today in one sentence.", "input": "", "output": "Sunny 😀."},
            {"instruction": "写一首关于春天的五言绝句。", "input": "", "output": "春风吹柳绿。"}]
    records = [good[0], *[r for r, _ in SURROGATE_RECORDS], good[1]]
    source = tmp_path / ("data.jsonl" if layout == "lines" else "data.json")
    source.write_text(_escaped_lines(*records) if layout == "lines" else json.dumps(records, indent=1))
    report = filter_dataset(source, tmp_path / "clean.out")
    assert report.kept == 2 and report.dropped == {"bad_record": len(SURROGATE_RECORDS)}
    kept_text = (tmp_path / "clean.out").read_bytes().decode("utf-8")
    kept = json.loads(kept_text) if layout == "array" else [json.loads(line) for line in kept_text.splitlines()]
    assert kept == good
    drops = [json.loads(line) for line in (tmp_path / "clean.out.dropped.jsonl").read_bytes().decode("utf-8").splitlines()]
    for entry, (record, where) in zip(drops, SURROGATE_RECORDS, strict=True):
        assert entry["reason"] == "bad_record" and entry["record"] == record
        assert entry["error"].startswith(f"field '{where}': ")
        assert "contains an invalid character (a lone surrogate \\u" in entry["error"]
    assert "(a lone surrogate \\ud800)" in drops[0]["error"]


def test_lone_surrogate_in_an_against_file_is_a_record_error(tmp_path):
    source = _data(tmp_path)
    evaluation = tmp_path / "eval.jsonl"
    evaluation.write_text(_escaped_lines({"instruction": "List three prime numbers.", "output": "2, 3, 5"},
                                         {"instruction": "Name a colour.", "instances": [{"output": "re\ud800d"}]}))
    before = _files(tmp_path)
    with pytest.raises(RecordError) as raised:
        filter_dataset(source, tmp_path / "clean.jsonl", against=evaluation)
    assert str(raised.value).startswith(f"{evaluation}:2: field 'instances[0].output': contains an invalid "
                                        "character (a lone surrogate \\ud800)")
    assert _files(tmp_path) == before


def test_undecodable_and_non_object_lines_are_bad_records_and_the_rest_is_filtered(tmp_path):
    source = tmp_path / "data.jsonl"
    good = [json.dumps(r, ensure_ascii=False).encode() for r in (RECORDS[0], RECORDS[2])]
    source.write_bytes(b"\n".join([good[0], '{"instruction": "坏"}'.encode("gbk"), b"5", b'["a"]', b"null",
                                   good[1]]) + b"\n")
    report = filter_dataset(source, tmp_path / "clean.jsonl")
    assert [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text(encoding="utf-8").splitlines()] == [
        RECORDS[0], RECORDS[2]]
    drops = [json.loads(line) for line in (tmp_path / "clean.dropped.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [(d["line"], d["reason"]) for d in drops] == [(2, "bad_record"), (3, "bad_record"), (4, "bad_record"),
                                                         (5, "bad_record")]
    assert drops[0]["error"].startswith("not valid UTF-8") and "record" not in drops[0]
    assert [d["error"] for d in drops[1:]] == ["expected a JSON object, got int", "expected a JSON object, got list",
                                               "expected a JSON object, got NoneType"]
    assert (report.total, report.kept) == (6, 2)


def test_a_field_no_record_has_is_an_error(tmp_path):
    source = tmp_path / "data.jsonl"
    source.write_text('{"instruction": "Name a colour.", "output": "Blue."}\n' * 3)
    with pytest.raises(FilterError, match="no record has the field 'nosuch'"):
        filter_dataset(source, tmp_path / "out.jsonl", field="nosuch")
    assert not (tmp_path / "out.jsonl").exists()


# --key: what ROUGE-L compares. An Alpaca export repeats a task's instruction once per instance.
ONE_TASK = [
    {"instruction": "Translate the sentence into French.", "input": "The weather is lovely in spring today.",
     "output": "Il fait beau au printemps aujourd'hui."},
    {"instruction": "Translate the sentence into French.", "input": "My brother plays football every weekend.",
     "output": "Mon frère joue au football chaque week-end."},
    {"instruction": "Translate the sentence into French.", "input": "Where did you buy those green apples?",
     "output": "Où as-tu acheté ces pommes vertes ?"},
    {"instruction": "Translate the sentence into French.", "input": "The weather is lovely in spring today.",
     "output": "Le temps est beau au printemps."},
]


def test_key_instruction_input_keeps_instances_whose_inputs_differ(tmp_path):
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps(ONE_TASK[:3]), encoding="utf-8")
    by_instruction = filter_dataset(source, tmp_path / "one.json")
    assert (by_instruction.total, by_instruction.kept) == (3, 1) and by_instruction.dropped == {"duplicate": 2}
    assert json.loads((tmp_path / "one.json").read_text()) == ONE_TASK[:1]
    by_input = filter_dataset(source, tmp_path / "all.json", key="instruction+input")
    assert (by_input.total, by_input.kept) == (3, 3) and not by_input.dropped
    assert json.loads((tmp_path / "all.json").read_text()) == ONE_TASK[:3]
    assert (tmp_path / "all.json.dropped.jsonl").read_text() == ""


def test_key_instruction_input_still_drops_a_repeated_input(tmp_path):
    source = tmp_path / "alpaca.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in ONE_TASK), encoding="utf-8")
    result = CliRunner().invoke(app, ["filter", str(source), "-o", str(tmp_path / "clean.jsonl"),
                                      "--key", "instruction+input"])
    assert result.exit_code == 0, result.output
    assert "kept       3 of 4" in result.output
    assert [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()] == ONE_TASK[:3]
    (drop,) = [json.loads(line) for line in (tmp_path / "clean.dropped.jsonl").read_text().splitlines()]
    assert drop["reason"] == "duplicate" and drop["score"] == 1.0 and drop["line"] == 4
    assert drop["duplicate_of"] == {"line": 1, "instruction": ONE_TASK[0]["instruction"],
                                    "input": ONE_TASK[0]["input"], "instruction_score": 1.0, "input_score": 1.0}


def test_key_applies_to_seed_tasks_and_against_files(tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text(json.dumps({"id": "t1", "instruction": ONE_TASK[0]["instruction"], "instances": [
        {"input": r["input"], "output": r["output"]} for r in ONE_TASK[:2]]}) + "\n", encoding="utf-8")
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps(ONE_TASK[2:3]), encoding="utf-8")
    assert filter_dataset(source, tmp_path / "a.json", against=seeds).dropped == {"similar_to_against": 1}
    assert filter_dataset(source, tmp_path / "b.json", against=seeds, key="instruction+input").kept == 1
    with pytest.raises(FilterError, match="unknown --key 'input'; choose instruction or instruction\\+input"):
        filter_dataset(source, tmp_path / "c.json", key="input")


def test_cli_key_help_and_a_bad_key(tmp_path):
    help_text = " ".join(CliRunner().invoke(app, ["filter", "--help"]).output.split())
    assert "--key <instruction|instruction+input> What ROUGE-L compares" in help_text
    assert "[default: instruction]" in help_text.split("--key", 1)[1]
    source = tmp_path / "alpaca.json"
    source.write_text(json.dumps(ONE_TASK), encoding="utf-8")
    result = CliRunner().invoke(app, ["filter", str(source), "-o", str(tmp_path / "out.json"), "--key", "input"])
    assert result.exit_code == 2 and "Invalid value for '--key'" in result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alpaca.json"]


def test_full_width_duplicates_are_duplicates(tmp_path):
    """filter NFKC-normalises like the loop: a full-width copy of a kept instruction is a duplicate."""
    source = tmp_path / "data.json"
    source.write_text(json.dumps([{"instruction": "用Python写一个计算10的阶乘的函数", "output": "x"},
                                  {"instruction": "用Ｐｙｔｈｏｎ写一个计算１０的阶乘的函数", "output": "y"}],
                                 ensure_ascii=False), encoding="utf-8")
    report = filter_dataset(source, tmp_path / "clean.json")
    assert report.kept == 1 and dropped_reasons(tmp_path / "clean.json.dropped.jsonl") == ["duplicate"]


def _alpaca_export(tmp_path: Path, instances: list[dict]) -> Path:
    """The Alpaca export of a run directory holding one task with these instances."""
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"format": 3, "settings": {}, "signature": {}}))
    (run / "tasks.jsonl").write_text(json.dumps({"id": "t1", "instruction": "Write one short sentence about the topic.",
                                                 "instances": instances, "is_classification": False}) + "\n")
    path, _ = export_run(run, "alpaca", card=False)
    return path


def test_key_instruction_input_keeps_instances_with_empty_and_short_inputs(tmp_path):
    """Joined into one text, a short or empty input left every instance a duplicate; compared apart, none is."""
    instances = [{"input": "", "output": "A sunny street."}, {"input": "a cat", "output": "A cat sleeps."},
                 {"input": "the weather in Paris", "output": "It rains in Paris."}]
    source = _alpaca_export(tmp_path, instances)
    assert [r["input"] for r in json.loads(source.read_text())] == ["", "a cat", "the weather in Paris"]
    by_input = filter_dataset(source, tmp_path / "all.json", key="instruction+input")
    assert (by_input.total, by_input.kept) == (3, 3)
    assert json.loads((tmp_path / "all.json").read_text()) == json.loads(source.read_text())
    by_instruction = filter_dataset(source, tmp_path / "one.json")
    assert (by_instruction.kept, by_instruction.dropped) == (1, {"duplicate": 2})
    assert [r["input"] for r in json.loads((tmp_path / "one.json").read_text())] == [""]


def test_key_instruction_input_drops_the_same_instruction_with_the_same_input(tmp_path):
    """Two empty inputs are equal (1.0); an empty and a non-empty one are not (0.0)."""
    rows = [{"instruction": "Name a colour.", "input": "", "output": "Blue."},
            {"instruction": "Name a colour.", "input": "", "output": "Red."},
            {"instruction": "Name a colour.", "input": "sky", "output": "Blue."},
            {"instruction": "Name a colour.", "input": "sky", "output": "Azure."}]
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    report = filter_dataset(source, tmp_path / "clean.jsonl", key="instruction+input", only="dedup")
    assert [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()] == [rows[0], rows[2]]
    drops = [json.loads(line) for line in (tmp_path / "clean.dropped.jsonl").read_text().splitlines()]
    assert [(d["line"], d["duplicate_of"]["line"], d["duplicate_of"]["input"], d["duplicate_of"]["input_score"])
            for d in drops] == [(2, 1, "", 1.0), (4, 3, "sky", 1.0)]
    assert report.dropped == {"duplicate": 2}


def test_key_instruction_input_against_a_file_checks_the_inputs_too(tmp_path):
    """An --against seed task counts once per instance; a match names the input it matched."""
    seeds = tmp_path / "eval.jsonl"
    seeds.write_text(json.dumps({"id": "e1", "instruction": "Sort the numbers in ascending order.", "instances": [
        {"input": "3 1 2", "output": "1 2 3"}, {"input": "9 8 4 6 5", "output": "4 5 6 8 9"}]}) + "\n")
    rows = [{"instruction": "Sort the numbers in ascending order.", "input": "9 8 4 6 5", "output": "x"},
            {"instruction": "Sort the numbers in ascending order.", "input": "5 4 7 6 0", "output": "y"}]
    source = tmp_path / "data.json"
    source.write_text(json.dumps(rows))
    report = filter_dataset(source, tmp_path / "clean.json", against=seeds, key="instruction+input")
    assert json.loads((tmp_path / "clean.json").read_text()) == [rows[1]]
    (drop,) = [json.loads(line) for line in (tmp_path / "clean.json.dropped.jsonl").read_text().splitlines()]
    assert drop["reason"] == "similar_to_against" and drop["similar_to"] == rows[0]["instruction"]
    assert drop["similar_to_input"] == "9 8 4 6 5" and drop["input_score"] == 1.0 and drop["score"] == 1.0
    assert drop["against"] == str(seeds)
    assert report.dropped == {"similar_to_against": 1}


def _generated(count: int, seed: int) -> list[dict]:
    """Records with repeated and near-repeated instructions and empty, short and longer inputs."""
    rng = random.Random(seed)
    verbs = ["Describe", "Summarize", "Explain", "Describe briefly", "Translate"]
    objects = ["the picture", "this text", "the weather today", "the picture in one sentence", "a cat"]
    inputs = ["", "", "a cat", "the cat", "a black cat", "Paris", "the weather in Paris",
              "the weather in Paris today", "Il pleut.", "x", "1 2 3", "one two three four five six"]
    return [{"instruction": f"{rng.choice(verbs)} {rng.choice(objects)}.", "input": rng.choice(inputs),
             "output": f"answer {i}"} for i in range(count)]


def _reference_kept(records: list[dict], threshold: float) -> list[bool]:
    """The rule by brute force: a record is a duplicate of the first earlier kept record whose
    instruction and input both score above the threshold (two empty inputs: 1.0)."""
    kept: list[tuple[list[str], list[str]]] = []
    decisions = []
    for record in records:
        instruction, given = tokenize(record["instruction"]), tokenize(record["input"])
        duplicate = any(rouge_l(instruction, other) > threshold
                        and (1.0 if not given and not other_input else rouge_l(given, other_input)) > threshold
                        for other, other_input in kept)
        decisions.append(not duplicate)
        if not duplicate:
            kept.append((instruction, given))
    return decisions


@pytest.mark.parametrize("seed, threshold", [(0, 0.7), (1, 0.5), (2, 0.9)])
def test_key_instruction_input_equals_a_brute_force_reference(tmp_path, seed, threshold):
    records = _generated(400, seed)
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = filter_dataset(source, tmp_path / "clean.jsonl", key="instruction+input", only="dedup",
                            threshold=threshold)
    expected = [r for r, keep in zip(records, _reference_kept(records, threshold)) if keep]
    assert [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()] == expected
    assert 20 < report.kept < 380  # the rule both keeps and drops here
    for drop in map(json.loads, (tmp_path / "clean.dropped.jsonl").read_text().splitlines()):
        kept = records[drop["duplicate_of"]["line"] - 1]
        assert kept in expected and drop["duplicate_of"]["input"] == kept["input"]
        assert drop["score"] == rouge_l(tokenize(drop["record"]["instruction"]), tokenize(kept["instruction"]))
        assert drop["duplicate_of"]["instruction_score"] == drop["score"] > threshold
        assert drop["duplicate_of"]["input_score"] > threshold


def test_all_above_returns_every_entry_above_the_threshold():
    texts = [r["instruction"] for r in _generated(200, 3)]
    index = RougeIndex(texts)
    for query in texts[:40] + ["Describe the picture of a dog.", "nothing shared"]:
        scores = [rouge_l(tokenize(query), tokenize(text)) for text in texts]
        for threshold in (0.0, 0.5, 0.8):
            found = index.all_above(query, threshold)
            assert sorted((m.index, m.score) for m in found) == [
                (i, score) for i, score in enumerate(scores) if score > threshold]
            assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)


def test_an_alpaca_export_against_its_own_seeds_export_drops_everything(tmp_path):
    """Each Alpaca record is one instance of a seed task: it matches that instance, not the inputs joined."""
    instances = [{"input": "", "output": "A sunny street."}, {"input": "a cat", "output": "A cat sleeps."},
                 {"input": "the weather in Paris", "output": "It rains in Paris."}]
    source = _alpaca_export(tmp_path, instances)
    seeds, _ = export_run(tmp_path / "run", "seeds", card=False)
    report = filter_dataset(source, tmp_path / "clean.json", against=seeds, key="instruction+input")
    assert (report.total, report.kept, report.dropped) == (3, 0, {"similar_to_against": 3})
    assert json.loads((tmp_path / "clean.json").read_text()) == []
    drops = [json.loads(line) for line in (tmp_path / "clean.json.dropped.jsonl").read_text().splitlines()]
    assert [(d["record"]["input"], d["similar_to_input"], d["input_score"]) for d in drops] == [
        ("", "", 1.0), ("a cat", "a cat", 1.0), ("the weather in Paris", "the weather in Paris", 1.0)]


@pytest.mark.parametrize("name, option", [("clean.jsonl", "--output"), ("clean.dropped.jsonl", "--dropped")])
def test_an_existing_output_is_refused_and_replaced_only_with_overwrite(tmp_path, name, option):
    source = _data(tmp_path)
    existing = tmp_path / name
    existing.write_text("important\n")
    _no_write(tmp_path, [source, existing], f"{existing} exists; pass --overwrite to replace it, or choose "
              f"another {option}", input=source, output=tmp_path / "clean.jsonl")
    result = CliRunner().invoke(app, ["filter", str(source), "-o", str(tmp_path / "clean.jsonl")])
    assert result.exit_code == 2 and result.output.splitlines() == [
        f"error: {existing} exists; pass --overwrite to replace it, or choose another {option}"]
    assert existing.read_text() == "important\n"
    result = CliRunner().invoke(app, ["filter", str(source), "-o", str(tmp_path / "clean.jsonl"), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line) for line in (tmp_path / "clean.jsonl").read_text().splitlines()] == KEPT
    assert len((tmp_path / "clean.dropped.jsonl").read_text().splitlines()) == len(RECORDS) - len(KEPT)


@pytest.mark.parametrize("output, dropped", [("run/tasks.jsonl", None), ("run/config.json", None),
                                             ("clean.jsonl", "run/responses.jsonl"), ("run/x.jsonl", "run/summary.json")])
def test_a_runs_own_files_are_refused_even_with_overwrite(tmp_path, output, dropped):
    source = _data(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    files = [run / name for name in ("config.json", "responses.jsonl", "tasks.jsonl", "summary.json")]
    for path in files:
        path.write_text("the run's\n")
    target = dropped or output
    _no_write(tmp_path, [source, *files], f"{tmp_path / target} is one of a run's own files; choose another "
              f"{'--dropped' if dropped else '--output'}", input=source, output=tmp_path / output,
              dropped_output=tmp_path / dropped if dropped else None, overwrite=True)


@pytest.mark.parametrize("named", [False, True])
def test_dropped_duplicates_are_written_as_the_general_path_writes_them(tmp_path, monkeypatch, named):
    """The quick writing of a duplicate's entry (writing.Writing._copy) gives the bytes that
    building the entry and json_line give: Chinese and escaped text, --against matches, one input or two."""
    records = _generated(300, seed=4) + [RECORDS[2], RECORDS[3] | {"output": "你好。"}]
    lines = [json.dumps(r, ensure_ascii=i % 2 == 0) for i, r in enumerate(records)]
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    first.write_text("\n".join(lines[:150]) + "\n", encoding="utf-8")
    second.write_text("\r\n".join(lines[150:]) + "\r\n", encoding="utf-8")
    against = tmp_path / "against.jsonl"
    against.write_text(json.dumps({"instruction": "Explain a cat.", "output": "x"}) + "\n")
    inputs = [first, second] if named else [first]

    def run(name):
        out = tmp_path / name
        report = filter_dataset(inputs, out / "clean.jsonl", against=against, only="dedup")
        return report.dropped, {p.name: p.read_bytes() for p in out.iterdir()}

    (tmp_path / "quick").mkdir()
    (tmp_path / "general").mkdir()
    quick = run("quick")
    monkeypatch.setattr(writing.Writing, "_fragment", lambda self, entry: None)  # each through _one
    general = run("general")
    assert quick == general
    assert quick[0]["duplicate"] > 100 and quick[0]["similar_to_against"] > 0
    assert b'"file": ' in quick[1]["clean.dropped.jsonl"] if named else b'"file"' not in quick[1]["clean.dropped.jsonl"]


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
def test_a_file_changed_while_deduplicating_is_an_error_and_leaves_no_file(tmp_path, suffix):
    """Records are written beside deduplication (JSON lines) or after it (a JSON array); either way a line
    added meanwhile is found, the writer's thread ends, and no output is left."""
    records = _generated(3000, seed=5)
    source = tmp_path / f"data{suffix}"
    write = (lambda rs: source.write_text("\n".join(json.dumps(r) for r in rs) + "\n")) if suffix == ".jsonl" \
        else (lambda rs: source.write_text(json.dumps(rs, indent=0)))
    write(records)
    threads = threading.active_count()

    def progress(stage, done, total):
        if stage == "dedup" and done == 0:
            write(records[:10] + [{"instruction": "A new line.", "output": "x"}] + records[10:])

    with pytest.raises(FilterError, match="changed while it was being filtered"):
        filter_dataset(source, tmp_path / "out.jsonl", progress=progress, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]
    assert threading.active_count() == threads


@pytest.mark.parametrize("suffix, parts", [(".jsonl", False), (".jsonl", True), (".json", False)])
def test_a_same_length_edit_between_the_two_reads_is_found(tmp_path, monkeypatch, suffix, parts):
    """An edit that keeps the size, and whose time stamp is put back, between filter's first read and its
    second: the output would hold two copies of one instruction. The digests of the two reads differ."""
    copied = "Name three rivers that flow north."
    other = "Describe a walk along a harbour.".ljust(len(copied))  # the same length, nothing alike
    records = _generated(400, seed=7)
    records[200:200] = [{"instruction": copied, "input": "", "output": "x"},
                        {"instruction": other, "input": "", "output": "y"}]
    source = tmp_path / f"data{suffix}"
    source.write_text("\n".join(json.dumps(r) for r in records) + "\n" if suffix == ".jsonl"
                      else json.dumps(records, indent=0))
    if parts:  # read in parts by two processes, each with its own digest
        monkeypatch.setattr(filtering, "screen", _screen_in_parts_of(4096))
    edited = []

    def progress(stage, done, total):
        if stage == "read" and done == total and not edited:
            before = source.stat()
            data = source.read_bytes()
            source.write_bytes(data.replace(other.encode(), copied.encode()))
            os.utime(source, ns=(before.st_atime_ns, before.st_mtime_ns))
            assert source.stat().st_size == before.st_size
            edited.append(True)

    with pytest.raises(FilterError, match="changed while it was being filtered"):
        filter_dataset(source, tmp_path / "out.jsonl", progress=progress, workers=2)
    assert edited and sorted(p.name for p in tmp_path.iterdir()) == [source.name]


def _screen_in_parts_of(size: int):
    from selfinstruct.dedup import read as screening

    def screen(*args, **kwargs):
        original = screening.PART_BYTES
        screening.PART_BYTES = size
        try:
            return screening.screen(*args, **kwargs)
        finally:
            screening.PART_BYTES = original
    return screen


def test_an_interrupted_deduplication_ends_the_writer_and_leaves_no_file(tmp_path, monkeypatch):
    records = _generated(3000, seed=6)
    source = tmp_path / "data.jsonl"
    source.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    threads = threading.active_count()

    def progress(stage, done, total):
        if stage == "dedup" and done > 0:  # some records are decided, and may be written already
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        filter_dataset(source, tmp_path / "out.jsonl", progress=progress, workers=1)
    assert sorted(p.name for p in tmp_path.iterdir()) == [source.name]
    assert threading.active_count() == threads
