"""The record layouts (formats): each one's writer and reader agree, a record's layout is told from its
fields, and `filter` reads every layout, so that a chat export of a run filters as its Alpaca export does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_model import FakeModel
from openai_stub import ScriptedServer

from selfinstruct import Config, filter_dataset, generate
from selfinstruct.dedup.targets import dropped_beside
from selfinstruct.formats.alpaca import alpaca_records
from selfinstruct.formats.chat import chat_records, prompt_of, split_prompt
from selfinstruct.formats.fields import FieldError
from selfinstruct.formats.layouts import read_task
from selfinstruct.formats.records import RecordError
from selfinstruct.formats.seed_layout import seed_records
from selfinstruct.formats.seeds import load_seed_tasks
from selfinstruct.formats.task import Instance, Task

SCRIPT = Path(sys.executable).parent / "selfinstruct"
TASKS = [Task("Translate the sentence into French.", [Instance("I like tea.", "J'aime le thé."),
                                                       Instance("", "Bonjour.")], True, "t1", "french"),
         Task("把这句话翻译成英文。", [Instance("我喜欢喝茶。", "I like tea.")], False, "t2", "english"),
         Task("Write a haiku about the autumn rain.", [Instance("  ", "Grey drops on red leaves.")], None, "t3")]
CHATS = ("sharegpt", "messages")


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    return path


def drops(path: Path) -> list[dict]:
    """The entries of a dropped-records file, without the record as written (which differs by layout)."""
    return [{k: v for k, v in json.loads(line).items() if k != "record"}
            for line in path.read_text(encoding="utf-8").splitlines()]


def test_seed_writer_and_reader_agree():
    for record, task in zip(seed_records(TASKS), TASKS):
        layout, read = read_task(record)
        assert layout == "seeds"
        assert read == Task(task.instruction, task.instances, bool(task.is_classification), task.id,
                            task.name or task.id)


def test_alpaca_writer_and_reader_agree():
    records = alpaca_records(TASKS)
    assert len(records) == 4
    read = [read_task(r) for r in records]
    assert {layout for layout, _ in read} == {"alpaca"}
    assert [(t.instruction, t.instances) for _, t in read] == [
        (t.instruction, [i]) for t in TASKS for i in t.instances]
    assert all(t.is_classification is None and t.id == "" for _, t in read)  # not in the layout: unknown


@pytest.mark.parametrize("layout", CHATS)
def test_chat_writer_and_reader_agree(layout):
    """The whole user turn is read as the instruction; split_prompt undoes prompt_of (a blank input is lost
    in writing: the prompt is the instruction alone)."""
    records = chat_records(TASKS, layout)
    read = [read_task(r) for r in records]
    assert {found for found, _ in read} == {layout}
    written = [(t.instruction, i) for t in TASKS for i in t.instances]
    assert [t.instruction for _, t in read] == [prompt_of(instruction, i.input) for instruction, i in written]
    assert [t.instances for _, t in read] == [[Instance("", i.output)] for _, i in written]
    assert [split_prompt(t.instruction) for _, t in read] == [
        (instruction, i.input if i.input.strip() else "") for instruction, i in written]


def test_split_prompt_keeps_a_prompt_without_an_input_whole():
    assert split_prompt("Name a colour.") == ("Name a colour.", "")
    assert split_prompt("Name a colour.\n\n  \n") == ("Name a colour.\n\n  \n", "")
    assert split_prompt("Summarise:\n\nPara one.\n\nPara two.") == ("Summarise:", "Para one.\n\nPara two.")


@pytest.mark.parametrize("record, field, problem", [
    ({"conversations": [{"from": "gpt", "value": "Hi."}]}, "conversations", "no human turn with text"),
    ({"messages": "hello"}, "messages", "expected a list, got str"),
    ({"messages": [{"role": "user", "content": "Say hi."}, {"role": "assistant", "content": "\ud800"}]},
     "messages", "contains an invalid character"),
    ({"instruction": "Name a colour.", "instances": [{"input": "x"}]}, "instances[0].output", "missing"),
    ({"instruction": "Name a colour.", "instances": {"input": "x"}}, "instances", "expected a list, got dict"),
    ({"instruction": "Name a colour.", "output": 3}, "output", "expected a string, got int"),
    ({"instruction": "Name a colour.", "output": "Blue.", "id": [1]}, "id", "expected a string, got list"),
    ({"instruction": "Name a colour.", "output": "Blue.", "is_classification": "no"}, "is_classification",
     "expected true or false, got 'no'"),
    ({"output": "Blue."}, "instruction", "missing"),
])
def test_a_reader_names_the_field_at_fault(record, field, problem):
    with pytest.raises(FieldError) as raised:
        read_task(record)
    assert raised.value.field == field and raised.value.problem.startswith(problem)
    assert str(raised.value).startswith(f"field '{field}': {problem}")


def test_a_chat_record_reads_as_a_seed_task(tmp_path):
    """The seed loader reads every layout: a chat record is a task of its prompt and answer."""
    path = write_jsonl(tmp_path / "seeds.jsonl", chat_records(TASKS[1:2], "messages") + seed_records(TASKS[:1]))
    loaded = load_seed_tasks(path)
    assert loaded[0] == Task("把这句话翻译成英文。\n\n我喜欢喝茶。", [Instance("", "I like tea.")], False, "seed_task_0")
    assert loaded[1].id == "t1" and loaded[1].is_classification is True
    with pytest.raises(RecordError, match=r"seeds\.jsonl:1: field 'conversations': no human turn with text"):
        load_seed_tasks(write_jsonl(tmp_path / "seeds.jsonl", [{"conversations": []}]))


# -- filter: every layout, the same decisions --------------------------------------------------------------

@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[str, Path]:
    """`selfinstruct export` of a run made against the scripted server, in the Alpaca JSONL and the chat layouts."""
    run_dir = tmp_path_factory.mktemp("layouts") / "run"
    with ScriptedServer(FakeModel(seed=11)) as server:
        generate(Config(lang="en", base_url=server.base_url, api_key="sk-test", model="stub-model",
                        num_instructions=16, output=run_dir, requests_per_round=2, concurrency=4, retry_wait=0.01,
                        timeout=5), progress="off")
    made = {}
    for fmt in ("alpaca-jsonl", *CHATS):
        target = run_dir.parent / f"{fmt}.jsonl"
        done = subprocess.run([str(SCRIPT), "export", str(run_dir), "--format", fmt, "-o", str(target), "--no-card"],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        made[fmt] = target
    return made


def _filter(source: Path, out: Path, *options: str) -> tuple[bytes, list[dict]]:
    done = subprocess.run([str(SCRIPT), "filter", str(source), "-o", str(out), "-q", *options],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return out.read_bytes(), drops(dropped_beside(out))


@pytest.mark.parametrize("key, threshold", [("instruction", "0.7"), ("instruction", "0.4"),
                                            ("instruction+input", "0.4")])
@pytest.mark.slow
@pytest.mark.parametrize("layout", CHATS)
def test_a_chat_export_filters_as_the_alpaca_export(exports, tmp_path, layout, key, threshold):
    """Every record has the same fate, and a dropped one the same entry (reason, score, what it repeats),
    whichever layout the run was exported in; kept records are copied as they were written."""
    options = ("--key", key, "--threshold", threshold)
    _, alpaca = _filter(exports["alpaca-jsonl"], tmp_path / "alpaca.jsonl", *options)
    kept, chat = _filter(exports[layout], tmp_path / f"{layout}.jsonl", *options)
    assert chat == alpaca
    assert {d["reason"] for d in alpaca} == {"duplicate"}  # the run's tasks passed the rules; instances repeat
    lines = exports[layout].read_bytes().splitlines(keepends=True)
    assert kept == b"".join(line for i, line in enumerate(lines) if i not in {d["index"] for d in chat})


def test_records_whose_prompt_holds_a_long_input_filter_as_alpaca_records(tmp_path):
    """Built records where the joined prompt would decide otherwise: a long input (too long as an instruction),
    and inputs that tell instances of one task apart (with --key instruction+input)."""
    passage = " ".join(f"word{n}" for n in range(200))
    tasks = [Task("Summarise the following passage in one sentence.", [Instance(passage, "A list of words."),
                                                                        Instance("Cats sleep a lot.", "Cats nap.")]),
             Task("Summarise the following passage in one short sentence.", [Instance("Dogs bark.", "Dogs are loud.")]),
             Task("Describe the picture of a cat on the sofa.", [Instance("", "A cat.")]),
             Task("List three prime numbers in increasing order.", [Instance("", "2, 3, 5")])]
    alpaca = write_jsonl(tmp_path / "alpaca.jsonl", alpaca_records(tasks))
    fates = {"instruction": [(1, "duplicate"), (2, "duplicate"), (3, "unsupported_modality")],
             "instruction+input": [(3, "unsupported_modality")]}
    for key, fate in fates.items():
        filter_dataset(alpaca, tmp_path / "a.jsonl", key=key, overwrite=True)
        expected = drops(tmp_path / "a.dropped.jsonl")
        assert [(d["index"], d["reason"]) for d in expected] == fate
        for layout in CHATS:
            source = write_jsonl(tmp_path / f"{layout}.jsonl", chat_records(tasks, layout))
            report = filter_dataset(source, tmp_path / "c.jsonl", key=key, overwrite=True)
            assert drops(tmp_path / "c.dropped.jsonl") == expected
            assert report.kept == 5 - len(fate)


def test_filter_reads_chat_records_it_cannot_use_as_bad_records(tmp_path):
    good = chat_records(TASKS[:1], "sharegpt")
    source = write_jsonl(tmp_path / "chat.jsonl", good[:1] + [{"conversations": [{"from": "gpt", "value": "Hi."}]}])
    report = filter_dataset(source, tmp_path / "clean.jsonl")
    assert (report.total, report.kept) == (2, 1)
    [entry] = drops(tmp_path / "clean.dropped.jsonl")
    assert (entry["reason"], entry["error"]) == ("bad_record", "field 'conversations': no human turn with text")


def test_a_chat_file_can_be_filtered_against(tmp_path):
    against = write_jsonl(tmp_path / "eval.jsonl", chat_records(TASKS[:1], "messages"))
    source = write_jsonl(tmp_path / "data.jsonl", alpaca_records(TASKS))
    filter_dataset(source, tmp_path / "clean.jsonl", against=against)
    found = drops(tmp_path / "clean.dropped.jsonl")
    assert [(d["index"], d["reason"], d["similar_to"]) for d in found] == [
        (0, "similar_to_against", TASKS[0].instruction), (1, "similar_to_against", TASKS[0].instruction)]


def test_a_seed_task_without_instances_is_judged_by_its_instruction(tmp_path):
    """It used to end filter with a traceback."""
    source = write_jsonl(tmp_path / "seeds.jsonl", [
        {"instruction": "Write a poem about the sea and the sky.", "instances": []},
        {"instruction": "Write a poem about the sea and the sky!", "instances": []}])
    report = filter_dataset(source, tmp_path / "clean.jsonl")
    assert (report.total, report.kept, dict(report.dropped)) == (2, 1, {"duplicate": 1})
