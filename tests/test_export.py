"""`selfinstruct export` in every format, checked against the run's own tasks.jsonl, and its dataset card."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections import Counter
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from helpers import EXPORT_KEY as KEY, PASSWORD, USER, invoke, read_jsonl

from selfinstruct import export_run
from selfinstruct.report.export import CARD_MARKER, ExportError, card_exports
from selfinstruct.store.rundir import run_identity
from selfinstruct.formats.seeds import load_seed_tasks

SCRIPT = Path(sys.executable).parent / "selfinstruct"
FILE_FORMATS = {"alpaca": "alpaca_data.json", "alpaca-jsonl": "alpaca_data.jsonl", "sharegpt": "sharegpt.jsonl",
                "messages": "messages.jsonl", "seeds": "seed_tasks.jsonl"}





def instances(run: Path) -> list[tuple[str, str, str]]:
    """(instruction, input, output) of every instance, in tasks.jsonl's order."""
    return [(t["instruction"], i["input"], i["output"]) for t in read_jsonl(run / "tasks.jsonl") for i in t["instances"]]


def test_the_made_run_has_what_the_checks_need(run):
    tasks = read_jsonl(run / "tasks.jsonl")
    assert len(tasks) == 6 and any(t["is_classification"] for t in tasks)
    assert any(len(t["instances"]) > 1 for t in tasks)
    assert {bool(i) for _, i, _ in instances(run)} == {True, False}  # instances with and without input
    assert Counter(r["reason"] for r in read_jsonl(run / "rejected.jsonl")) == {
        "unsupported_modality": 1, "too_short": 1, "too_similar": 1}


@pytest.mark.parametrize("fmt", ["alpaca", "alpaca-jsonl"])
def test_alpaca_formats_have_one_record_per_instance(run, fmt):
    path, count = export_run(run, fmt)
    assert path == run / FILE_FORMATS[fmt]
    text = path.read_text(encoding="utf-8")
    records = json.loads(text) if fmt == "alpaca" else read_jsonl(path)
    if fmt == "alpaca-jsonl":
        assert len(text.splitlines()) == count and not text.startswith("[")
    assert records == [{"instruction": a, "input": b, "output": c} for a, b, c in instances(run)]
    assert count == len(records) == 12  # 6 tasks of 2 instances
    assert "春天" in text and "\\u" not in text  # unicode kept (ensure_ascii=False)


def test_sharegpt_joins_the_input_to_the_instruction(run):
    path, count = export_run(run, "sharegpt")
    assert path == run / "sharegpt.jsonl"
    records = read_jsonl(path)
    assert count == len(records) == len(instances(run))
    for record, (instruction, given, output) in zip(records, instances(run)):
        assert list(record) == ["conversations"]
        human, gpt = record["conversations"]
        assert human == {"from": "human", "value": f"{instruction}\n\n{given}" if given else instruction}
        assert gpt == {"from": "gpt", "value": output}
    first = read_jsonl(run / "tasks.jsonl")[0]
    assert first["instances"][0]["input"] == "一段关于春天的文字" and first["instances"][1]["input"] == ""
    assert records[0]["conversations"][0]["value"] == first["instruction"] + "\n\n一段关于春天的文字"
    assert records[1]["conversations"][0]["value"] == first["instruction"]
    assert "\\u" not in path.read_text(encoding="utf-8")


def test_messages_are_openai_chat_fine_tuning_lines(run, tmp_path):
    path, count = export_run(run, "messages", tmp_path / "train.jsonl")
    records = read_jsonl(path)
    assert count == len(records) == len(instances(run))
    for record, (instruction, given, output) in zip(records, instances(run)):
        assert record == {"messages": [
            {"role": "user", "content": f"{instruction}\n\n{given}" if given else instruction},
            {"role": "assistant", "content": output}]}
    assert "\\u" not in path.read_text(encoding="utf-8") and "春天" in path.read_text(encoding="utf-8")


def test_seeds_are_one_task_each_and_seed_another_run(run):
    path, count = export_run(run, "seeds")
    tasks = read_jsonl(run / "tasks.jsonl")
    assert [(s["instruction"], s["instances"], s["is_classification"]) for s in read_jsonl(path)] == [
        (t["instruction"], t["instances"], t["is_classification"]) for t in tasks]
    assert count == len(tasks) == len(load_seed_tasks(path))


@pytest.mark.slow
def test_hf_is_a_datasets_dataset_with_one_row_per_instance(run):
    from datasets import load_from_disk

    path, count = export_run(run, "hf")
    assert path == run / "hf" and count == len(instances(run))
    dataset = load_from_disk(str(path))
    assert dataset.column_names == ["instruction", "input", "output"]
    assert [(r["instruction"], r["input"], r["output"]) for r in dataset] == instances(run)
    card = (path / "README.md").read_text(encoding="utf-8")
    assert card.startswith(CARD_MARKER + "\n")
    assert f"\n- this directory: `hf`, {count} records (one per instance)" in card
    assert list(card_exports(path / "README.md")) == ["."]
    assert not (run / "README.md").exists()


def test_hf_reexport_replaces_a_previous_one_and_leaves_no_temporaries(run, made_run):
    export_run(run, "hf")
    (run / "tasks.jsonl").write_text("".join(line + "\n" for line in (run / "tasks.jsonl").read_text(
        encoding="utf-8").splitlines()[:2]), encoding="utf-8")  # a smaller run: the same directory, new rows
    path, count = export_run(run, "hf")
    from datasets import load_from_disk
    assert len(load_from_disk(str(path))) == count == len(instances(run)) < len(instances(made_run))
    assert "- tasks: 2\n" in (path / "README.md").read_text(encoding="utf-8")
    assert not [p.name for p in run.iterdir() if p.name.startswith(".hf")]  # no .hf.tmp, no .hf.old


def test_hf_refuses_a_directory_that_is_not_a_previous_export(run, tmp_path):
    target = tmp_path / "mine"
    target.mkdir()
    (target / "notes.txt").write_text("keep me")
    result = subprocess.run([str(SCRIPT), "export", "run", "--format", "hf", "-o", "mine"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: mine is not empty and is not a previous hf export; choose a new or empty directory"]
    assert [p.name for p in target.iterdir()] == ["notes.txt"] and (target / "notes.txt").read_text() == "keep me"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ExportError, match="exists and is not a directory"):
        export_run(run, "hf", tmp_path / "a-file")


def test_hf_without_datasets_says_how_to_install_it(run, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # `import datasets` raises ImportError
    result = invoke("export", run, "--format", "hf")
    assert result.exit_code == 2
    assert result.output.splitlines() == [
        "error: the hf format needs the datasets package: pip install 'selfinstruct[hf]'"]
    assert not (run / "hf").exists() and not [p for p in run.iterdir() if p.name.startswith(".hf")]


def test_card_describes_the_run_and_holds_no_credential(run):
    result = invoke("export", run, "--format", "messages")
    assert result.exit_code == 0, result.output
    assert f"dataset card: {run / 'README.md'}" in result.output
    card = (run / "README.md").read_text(encoding="utf-8")
    tasks = read_jsonl(run / "tasks.jsonl")
    stored = json.loads((run / "config.json").read_text(encoding="utf-8"))
    settings = stored["settings"]
    assert len(stored["id"]) == 32  # what tells this run from another whose folder has the same name
    port = settings["base_url"].rsplit(":", 1)[1].split("/")[0]
    today = {f"{datetime.now(timezone.utc) - timedelta(minutes=m):%Y-%m-%d}" for m in (0, 5)}
    lines = card.splitlines()
    assert lines[0] == CARD_MARKER and lines[2] == "# run: instruction-tuning data made with selfinstruct"
    (day,) = [e["exported"] for e in card_exports(run / "README.md").values()]
    assert day in today
    assert lines[1] == ('<!-- {"exports": {"messages.jsonl": {"format": "messages", "records": %d, "exported": "%s", '
                        '"run": "run", "run_id": "%s"}}} -->' % (len(instances(run)), day, run_identity(run)))
    for line in [f"- tasks: {len(tasks)}", f"- instances: {len(instances(run))}",
                 f"- `messages.jsonl`: `messages`, {len(instances(run))} records (one per instance), exported {day}; "
                 'OpenAI chat fine-tuning JSONL: {"messages": [user, assistant]}, one per instance; prompt: the '
                 'instruction alone when the input is empty, otherwise `instruction + "\\n\\n" + input`',
                 f"- classification tasks: {sum(1 for t in tasks if t['is_classification'])}",
                 "- language: zh", "- model: stub-model (chat API)",
                 f"- endpoint: http://REDACTED@127.0.0.1:{port}/v1",
                 "- settings: num_instructions 6, threshold 0.7, temperature 0.7, concurrency 4, "
                 "mode self-instruct, seed 0",
                 "- near-duplicates: rejected when ROUGE-L against the pool is above 0.7",
                 "- instruction length: 6 to 300 characters"]:
        assert line in lines, line
    reasons = next(line for line in lines if line.startswith("- rejected candidates by reason (rejected.jsonl): "))
    assert sorted(reasons.split(": ", 1)[1].split(", ")) == ["too_short 1", "too_similar 1", "unsupported_modality 1"]
    for secret in (KEY, USER, PASSWORD):
        for path in [p for p in run.rglob("*") if p.is_file() and p.name != "responses.jsonl"]:
            assert secret not in path.read_text(encoding="utf-8", errors="replace"), (secret, path)


def files_section(card: Path) -> list[str]:
    """The lines of a card's Files section, in order."""
    text = card.read_text(encoding="utf-8")
    return [line for line in text.split("\n## Files\n", 1)[1].split("\n## ", 1)[0].splitlines() if line]


def test_card_of_a_file_export_sits_next_to_it_and_lists_the_next_too(run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    export_run(run, "alpaca", out / "train.json")
    (day,) = {e["exported"] for e in card_exports(out / "README.md").values()}
    assert files_section(out / "README.md") == [
        f"- `train.json`: `alpaca`, 12 records (one per instance), exported {day}; a JSON array of "
        "{instruction, input, output}, one per instance; prompt: not joined: instruction and input are separate fields"]
    export_run(run, "seeds", out / "seeds.jsonl")
    assert (out / "README.md").read_text(encoding="utf-8").startswith(CARD_MARKER)
    assert [line.split(";")[0] for line in files_section(out / "README.md")] == [
        f"- `train.json`: `alpaca`, 12 records (one per instance), exported {day}",
        f"- `seeds.jsonl`: `seeds`, 6 records (one per task), exported {day}"]
    assert sorted(p.name for p in out.iterdir()) == ["README.md", "seeds.jsonl", "train.json"]


def test_one_card_lists_every_export_in_the_run_directory(run):
    """alpaca, then seeds, then sharegpt next to the run: one card for the three, with each one's records."""
    for fmt in ("alpaca", "seeds", "sharegpt"):
        result = invoke("export", run, "--format", fmt)
        assert result.exit_code == 0, result.output
    exports = card_exports(run / "README.md")
    assert {name: (e["format"], e["records"]) for name, e in exports.items()} == {
        "alpaca_data.json": ("alpaca", 12), "seed_tasks.jsonl": ("seeds", 6), "sharegpt.jsonl": ("sharegpt", 12)}
    assert len(json.loads((run / "alpaca_data.json").read_text(encoding="utf-8"))) == 12
    assert len(read_jsonl(run / "seed_tasks.jsonl")) == 6 and len(read_jsonl(run / "sharegpt.jsonl")) == 12
    lines = files_section(run / "README.md")
    assert [line.split(",")[:2] for line in lines] == [
        ["- `alpaca_data.json`: `alpaca`", " 12 records (one per instance)"],
        ["- `seed_tasks.jsonl`: `seeds`", " 6 records (one per task)"],
        ["- `sharegpt.jsonl`: `sharegpt`", " 12 records (one per instance)"]]
    assert lines[0].endswith("prompt: not joined: instruction and input are separate fields")
    assert lines[2].endswith('prompt: the instruction alone when the input is empty, otherwise '
                             '`instruction + "\\n\\n" + input`')
    assert invoke("export", run, "--format", "hf").exit_code == 0  # hf: its own card, in its directory
    assert list(card_exports(run / "README.md")) == ["alpaca_data.json", "seed_tasks.jsonl", "sharegpt.jsonl"]
    assert list(card_exports(run / "hf" / "README.md")) == ["."]
    for secret in (KEY, USER, PASSWORD):
        for card in (run / "README.md", run / "hf" / "README.md"):
            assert secret not in card.read_text(encoding="utf-8"), (secret, card)


def test_no_card_export_removes_its_entry_from_the_card(run):
    """The card must not describe a file an export without a card replaced; the other entries stay."""
    for fmt in ("alpaca", "seeds", "sharegpt"):
        export_run(run, fmt)
    (run / "tasks.jsonl").write_text("".join(line + "\n" for line in (run / "tasks.jsonl").read_text(
        encoding="utf-8").splitlines()[:2]), encoding="utf-8")  # the file now holds fewer records
    result = invoke("export", run, "--format", "seeds", "--no-card")
    assert result.exit_code == 0, result.output
    assert "dataset card" not in result.output and len(read_jsonl(run / "seed_tasks.jsonl")) == 2
    card = (run / "README.md").read_text(encoding="utf-8")
    assert list(card_exports(run / "README.md")) == ["alpaca_data.json", "sharegpt.jsonl"]
    assert [line.split(":")[0] for line in files_section(run / "README.md")] == [
        "- `alpaca_data.json`", "- `sharegpt.jsonl`"]
    assert "seed_tasks" not in card and "- tasks: 6" in card  # the rest of the card is left as it was
    export_run(run, "sharegpt", card=False)
    export_run(run, "alpaca", card=False)
    assert card_exports(run / "README.md") == {} and files_section(run / "README.md") == []


def test_the_card_forgets_deleted_files(run, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    export_run(run, "alpaca", out / "a.json")
    export_run(run, "seeds", out / "s.jsonl")
    (out / "a.json").unlink()
    export_run(run, "messages", out / "m.jsonl")
    assert list(card_exports(out / "README.md")) == ["s.jsonl", "m.jsonl"]


def test_another_runs_card_is_refused_and_left_whole(run, tmp_path):
    """The card describes one run: a second run's export there would drop the first run's entries."""
    out = tmp_path / "out"
    out.mkdir()
    export_run(run, "alpaca", out / "a.json")
    card = (out / "README.md").read_bytes()
    other = Path(shutil.copytree(run, tmp_path / "other"))
    result = subprocess.run([str(SCRIPT), "export", "other", "--format", "sharegpt", "-o", "out/g.jsonl"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == ["error: out/README.md is the dataset card of another run (run); "
                                          "choose another folder, or pass --no-card"]
    assert (out / "README.md").read_bytes() == card and sorted(p.name for p in out.iterdir()) == ["README.md", "a.json"]
    export_run(other, "sharegpt", out / "g.jsonl", card=False)
    assert (out / "README.md").read_bytes() == card and (out / "g.jsonl").is_file()
    export_run(run, "messages", out / "m.jsonl")  # the card's own run still adds to it
    assert list(card_exports(out / "README.md")) == ["a.json", "m.jsonl"]
    assert "# run: instruction-tuning data" in (out / "README.md").read_text(encoding="utf-8")


def test_runs_whose_folders_share_a_name_are_told_apart(made_run, tmp_path):
    """exp1/run and exp2/run exported into one folder: the second must not rewrite the first's card, nor
    must a run made again in a deleted run's folder (a new id in its config.json)."""
    first = Path(shutil.copytree(made_run, tmp_path / "exp1" / "run"))
    second = Path(shutil.copytree(made_run, tmp_path / "exp2" / "run"))
    out = tmp_path / "out"
    out.mkdir()
    export_run(first, "alpaca", out / "a.json")
    card = (out / "README.md").read_bytes()
    with pytest.raises(ExportError, match=r"README.md is the dataset card of another run \(run\)"):
        export_run(second, "sharegpt", out / "b.jsonl")
    assert (out / "README.md").read_bytes() == card and not (out / "b.jsonl").exists()
    stored = json.loads((first / "config.json").read_text(encoding="utf-8"))
    (first / "config.json").write_text(json.dumps({**stored, "id": "0" * 32}), encoding="utf-8")
    with pytest.raises(ExportError, match="dataset card of another run"):
        export_run(first, "sharegpt", out / "b.jsonl")
    (first / "config.json").write_text(json.dumps(stored), encoding="utf-8")
    export_run(first, "messages", out / "m.jsonl")  # the card's own run still adds to it
    assert list(card_exports(out / "README.md")) == ["a.json", "m.jsonl"]


def test_a_foreign_readme_is_never_overwritten(run, tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# My project\n", encoding="utf-8")
    result = subprocess.run([str(SCRIPT), "export", "run", "--format", "sharegpt", "-o", "train.jsonl"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: README.md exists and is not a selfinstruct dataset card; "
                                          "pass --no-card or choose another directory"]
    assert readme.read_text(encoding="utf-8") == "# My project\n" and not (tmp_path / "train.jsonl").exists()
    result = subprocess.run([str(SCRIPT), "export", "run", "--format", "sharegpt", "-o", "train.jsonl", "--no-card"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote {len(instances(run))} records to train.jsonl\n" and "card" not in result.stderr
    assert readme.read_text(encoding="utf-8") == "# My project\n"
    assert len(read_jsonl(tmp_path / "train.jsonl")) == len(instances(run))


def test_no_card_writes_only_the_data(run, tmp_path):
    path, count = export_run(run, "hf", tmp_path / "ds", card=False)
    assert sorted(p.name for p in path.iterdir()) == ["data-00000-of-00001.arrow", "dataset_info.json", "state.json"]
    path, count = export_run(run, "messages", tmp_path / "m.jsonl", card=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds", "m.jsonl", "run"]


def test_the_data_file_cannot_be_the_card(run):
    with pytest.raises(ExportError, match="README.md is where the dataset card goes"):
        export_run(run, "alpaca", run / "README.md")
    path, _ = export_run(run, "alpaca", run / "README.md", card=False)  # asked for: data named README.md
    assert json.loads(path.read_text(encoding="utf-8"))[0]["instruction"] == instances(run)[0][0]


@pytest.mark.parametrize("args, error", [
    (["run", "--format", "csv"], "error: unknown format 'csv'; choose one of: alpaca, alpaca-jsonl, sharegpt, "
                                 "messages, hf, seeds"),
    (["missing", "--format", "messages"], "error: missing is not a selfinstruct run directory (no config.json)"),
    (["run", "-o", "nowhere/x.json"], "error: nowhere/x.json: cannot write there: nowhere is not an existing directory"),
    (["run", "-o", "run/tasks.jsonl"], "error: run/tasks.jsonl is one of the run's own files; export somewhere else"),
])
def test_cli_errors_are_one_line_and_exit_2(run, tmp_path, args, error):
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    result = subprocess.run([str(SCRIPT), "export", *args], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [error] and result.stdout == ""
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


@pytest.mark.parametrize("fmt", FILE_FORMATS)
def test_cli_writes_each_format_next_to_the_run(run, tmp_path, fmt):
    result = subprocess.run([str(SCRIPT), "export", "run", "--format", fmt], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    count = len(read_jsonl(run / "tasks.jsonl")) if fmt == "seeds" else len(instances(run))
    assert result.stdout == f"wrote {count} records to run/{FILE_FORMATS[fmt]}\n"
    assert result.stderr == "dataset card: run/README.md\n"
    assert f"\n- `{FILE_FORMATS[fmt]}`: `{fmt}`, {count} records (one per " in (run / "README.md").read_text(
        encoding="utf-8")


def test_a_failed_hf_save_leaves_the_previous_export_whole(run, monkeypatch):
    import datasets

    export_run(run, "hf")
    before = {p.name: p.read_bytes() for p in (run / "hf").iterdir()}

    def crash(self, path, **kwargs):  # half a dataset written, then the disk is full
        Path(path).mkdir()
        (Path(path) / "data-00000-of-00001.arrow").write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(datasets.Dataset, "save_to_disk", crash)
    result = invoke("export", run, "--format", "hf")
    assert result.exit_code == 1
    assert result.output.splitlines() == [f"error: cannot write {run / 'hf'}: No space left on device"]
    assert {p.name: p.read_bytes() for p in (run / "hf").iterdir()} == before
    assert not [p.name for p in run.iterdir() if p.name.startswith(".hf")]


def test_a_file_that_is_not_an_earlier_export_is_replaced_only_with_overwrite(run, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes\n", encoding="utf-8")
    command = [str(SCRIPT), "export", "run", "-o", "notes.txt"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.splitlines() == [
        "error: notes.txt exists; pass --overwrite to replace it, or choose another --output"]
    assert notes.read_text(encoding="utf-8") == "my notes\n" and not (tmp_path / "README.md").exists()
    result = subprocess.run([*command, "--overwrite"], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert [(r["instruction"], r["input"], r["output"]) for r in json.loads(notes.read_text(encoding="utf-8"))] == \
        instances(run)
    assert list(card_exports(tmp_path / "README.md")) == ["notes.txt"]


def test_an_earlier_export_at_the_default_place_is_replaced_without_overwrite(run):
    export_run(run, "alpaca")
    (run / "tasks.jsonl").write_text("".join(line + "\n" for line in (run / "tasks.jsonl").read_text(
        encoding="utf-8").splitlines()[:2]), encoding="utf-8")
    path, count = export_run(run, "alpaca", run / "alpaca_data.json")  # named, but still the default place
    assert count == len(json.loads(path.read_text(encoding="utf-8"))) == len(instances(run)) == 4
    with pytest.raises(ExportError, match="alpaca_data.json exists; pass --overwrite"):
        export_run(run, "messages", run / "alpaca_data.json")  # not where messages go by default
    assert len(json.loads(path.read_text(encoding="utf-8"))) == 4


def test_an_export_elsewhere_is_replaced_only_with_overwrite(run, tmp_path):
    from datasets import load_from_disk

    target = tmp_path / "train.json"
    export_run(run, "alpaca", target)
    target.write_text("edited by hand\n", encoding="utf-8")
    with pytest.raises(ExportError) as raised:
        export_run(run, "alpaca", target)
    assert str(raised.value) == f"{target} exists; pass --overwrite to replace it, or choose another --output"
    assert target.read_text(encoding="utf-8") == "edited by hand\n"
    export_run(run, "alpaca", target, overwrite=True)
    assert len(json.loads(target.read_text(encoding="utf-8"))) == len(instances(run))
    export_run(run, "hf", tmp_path / "ds")
    with pytest.raises(ExportError, match="ds exists; pass --overwrite"):
        export_run(run, "hf", tmp_path / "ds")
    path, count = export_run(run, "hf", tmp_path / "ds", overwrite=True)
    assert len(load_from_disk(str(path))) == count == len(instances(run))


@pytest.mark.parametrize("target", ["run/config.json", "run/responses.jsonl", "other/tasks.jsonl",
                                    "other/summary.json", "other/.lock", "other/responses.jsonl.torn"])
def test_a_runs_own_files_are_never_replaced_even_with_overwrite(run, tmp_path, target):
    """Not the exported run's, nor another run's (a directory with config.json and responses.jsonl)."""
    shutil.copytree(run, tmp_path / "other")
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    result = subprocess.run([str(SCRIPT), "export", "run", "-o", target, "--overwrite"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"error: {target} is one of the run's own files; export somewhere else"]
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before


@pytest.mark.parametrize("fmt", sorted(FILE_FORMATS) + ["hf"])
def test_a_run_with_no_task_is_refused_in_one_line_and_nothing_is_written(run, fmt):
    (run / "tasks.jsonl").write_bytes(b"")
    before = sorted(path.name for path in run.iterdir())
    result = invoke("export", run, "--format", fmt)
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"error: {run} has no accepted task yet: nothing to export; "
                                                  "resume the run first"]
    assert sorted(path.name for path in run.iterdir()) == before
