"""Seed files in every accepted format, and every way they can be wrong."""

from __future__ import annotations

import json

import pytest

from selfinstruct.formats.records import RecordError
from selfinstruct.formats.seeds import load_seed_tasks
from selfinstruct.formats.task import Instance

SEED = {"id": "seed_task_0", "name": "polite", "instruction": "把这句话改得更礼貌。",
        "instances": [{"input": "快点把文件给我。", "output": "麻烦您尽快把材料发给我，谢谢。"}], "is_classification": False}
ALPACA = {"instruction": "Name a colour.", "input": "", "output": "Blue."}


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes(text.encode(encoding) if isinstance(text, str) else text)
    return path


def lines(*records):
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)


def test_reads_seed_jsonl(tmp_path):
    other = dict(SEED, id="seed_task_1", instruction="判断这句话是褒义还是贬义。", is_classification=True)
    tasks = load_seed_tasks(write(tmp_path, "s.jsonl", lines(SEED, other)))
    assert [t.id for t in tasks] == ["seed_task_0", "seed_task_1"]
    assert tasks[0].instances == [Instance("快点把文件给我。", "麻烦您尽快把材料发给我，谢谢。")]
    assert tasks[1].is_classification is True


def test_reads_json_lines_under_a_json_name(tmp_path):
    tasks = load_seed_tasks(write(tmp_path, "zh_seed_tasks.json", lines(SEED)))
    assert tasks[0].instruction == SEED["instruction"]


def test_reads_a_json_array(tmp_path):
    tasks = load_seed_tasks(write(tmp_path, "s.json", json.dumps([SEED, dict(SEED, id="b")], indent=2)))
    assert [t.id for t in tasks] == ["seed_task_0", "b"]


def test_reads_alpaca_records_as_one_instance_tasks(tmp_path):
    tasks = load_seed_tasks(write(tmp_path, "a.json", json.dumps([ALPACA, dict(ALPACA, input="x")])))
    assert tasks[0].instances == [Instance("", "Blue.")]
    assert tasks[1].instances == [Instance("x", "Blue.")]
    assert [t.id for t in tasks] == ["seed_task_0", "seed_task_1"]
    assert tasks[0].is_classification is False


def test_blank_lines_are_skipped(tmp_path):
    assert len(load_seed_tasks(write(tmp_path, "s.jsonl", "\n" + lines(SEED) + "\n\n"))) == 1


@pytest.mark.parametrize(
    "text, line, needle",
    [
        (lines(SEED) + "{not json}\n", 2, "invalid JSON"),
        (lines(SEED, {"name": "x", "instances": []}), 2, "field 'instruction': missing"),
        (lines(dict(SEED, instruction=5)), 1, "field 'instruction': expected a string, got int"),
        (lines(dict(SEED, instruction="   ")), 1, "field 'instruction': is empty"),
        (lines(dict(SEED, instances="nope")), 1, "field 'instances': expected a list"),
        (lines(dict(SEED, instances=[{"input": "a"}])), 1, "field 'instances[0].output': missing"),
        (lines(dict(SEED, instances=[{"input": 3, "output": "b"}])), 1, "field 'instances[0].input': expected a string"),
        (lines(dict(SEED, instances=["x"])), 1, "field 'instances[0]': expected an object"),
        (lines(dict(SEED, is_classification="yes")), 1, "field 'is_classification': expected true or false"),
        (lines({"instruction": "only an instruction"}), 1, "field 'instances': missing"),
        (lines(SEED, SEED), 2, "field 'id': duplicate id 'seed_task_0' (first on line 1)"),
        ("[1, 2]", 1, "expected a JSON object, got int"),
        (lines(SEED) + "[", 2, "invalid JSON"),
    ],
)
def test_errors_name_file_line_and_field(tmp_path, text, line, needle):
    path = write(tmp_path, "bad.jsonl", text)
    with pytest.raises(RecordError) as raised:
        load_seed_tasks(path)
    message = str(raised.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert needle in message
    assert raised.value.line == line


@pytest.mark.parametrize("record, field", [
    (dict(SEED, id="c", instances=[{"input": "a", "output": "b\ud800"}]), "instances[0].output"),
    (dict(SEED, id="c", instances=[SEED["instances"][0], {"input": "\ud800", "output": "b"}]), "instances[1].input"),
    (dict(SEED, id="c", instruction="\ud800把这句话改得更礼貌。"), "instruction"),
    (dict(SEED, id="c", name="polite\ud800"), "name"),
    (dict(SEED, id="seed\ud800"), "id"),
    (dict(ALPACA, input="x\ud800"), "input"),
    (dict(ALPACA, output="\ud800"), "output"),
])
def test_lone_surrogate_is_an_error_naming_file_line_and_field(tmp_path, record, field):
    good = [SEED, dict(SEED, id="seed_task_1", instruction="Say it with an emoji 😀.")]
    # ensure_ascii: non-ASCII as JSON \u escapes, the only way a lone surrogate gets into a UTF-8 file
    path = write(tmp_path, "seeds.jsonl", "".join(json.dumps(r) + "\n" for r in [*good, record]))
    assert len(load_seed_tasks(write(tmp_path, "good.jsonl", "".join(json.dumps(r) + "\n" for r in good)))) == 2
    with pytest.raises(RecordError) as raised:
        load_seed_tasks(path)
    assert str(raised.value).startswith(f"{path}:3: field '{field}': contains an invalid character "
                                        "(a lone surrogate \\ud800); ")
    assert (raised.value.line, raised.value.field) == (3, field)


def test_error_in_a_json_array_names_the_items_line(tmp_path):
    records = [SEED, dict(SEED, id="b"), {"id": "c", "instances": []}]
    path = write(tmp_path, "s.json", json.dumps(records, ensure_ascii=False, indent=2))
    with pytest.raises(RecordError) as raised:
        load_seed_tasks(path)
    text = path.read_text(encoding="utf-8").splitlines()
    assert '"id": "c"' in text[raised.value.line]  # the line after the item's opening brace
    assert "field 'instruction': missing" in str(raised.value)


def test_empty_file(tmp_path):
    with pytest.raises(RecordError, match="holds no tasks"):
        load_seed_tasks(write(tmp_path, "empty.jsonl", ""))


def test_byte_order_mark(tmp_path):
    path = write(tmp_path, "bom.jsonl", b"\xef\xbb\xbf" + lines(SEED).encode())
    with pytest.raises(RecordError, match=r"bom.jsonl:1: starts with a UTF-8 byte order mark"):
        load_seed_tasks(path)


def test_not_utf8(tmp_path):
    path = write(tmp_path, "gbk.jsonl", lines(SEED), encoding="gbk")
    with pytest.raises(RecordError, match=r"gbk.jsonl:1: not valid UTF-8"):
        load_seed_tasks(path)


def test_missing_file(tmp_path):
    with pytest.raises(RecordError, match="cannot read"):
        load_seed_tasks(tmp_path / "nope.jsonl")


def test_unclosed_array(tmp_path):
    with pytest.raises(RecordError, match="expected ',' or ']'"):
        load_seed_tasks(write(tmp_path, "s.json", "[" + json.dumps(SEED)))
