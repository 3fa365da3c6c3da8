"""The installed `selfinstruct filter` console script on paths it must refuse: exit 2, one line, nothing written."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "selfinstruct"


@pytest.mark.parametrize("args, needle", [
    (["-o", "clean.jsonl", "--dropped", "data.jsonl"],
     "data.jsonl: the dropped-records file is the same file as the input (data.jsonl); choose another path"),
    (["-o", "missing/clean.jsonl"], "missing/clean.jsonl: cannot write there: missing is not an existing directory"),
])
@pytest.mark.slow
def test_console_script_exits_2_with_one_error_line(tmp_path, args, needle):
    source = tmp_path / "data.jsonl"
    source.write_text(json.dumps({"instruction": "Name a colour.", "input": "", "output": "Blue."}) + "\n")
    before = source.read_bytes()
    result = subprocess.run([str(SCRIPT), "filter", "data.jsonl", *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"error: {needle}"]
    assert source.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]


@pytest.mark.slow
def test_against_takes_several_files(tmp_path):
    """Records similar to any of the --against datasets are dropped, each naming what it was similar to and in
    which file (the path as given)."""
    source = tmp_path / "data.json"
    source.write_text(json.dumps([{"instruction": i, "output": "x"} for i in (
        "List three prime numbers.", "Name the capital of France.", "Write a haiku about the autumn rain.")]))
    for name, instruction in (("eval_a.json", "List three prime numbers please."),
                              ("eval_b.jsonl", "Name the capital city of France.")):
        (tmp_path / name).write_text(json.dumps([{"instruction": instruction, "output": "y"}]) if name.endswith(".json")
                                     else json.dumps({"instruction": instruction, "output": "y"}) + "\n")
    done = subprocess.run([str(SCRIPT), "filter", str(source), "-o", str(tmp_path / "clean.json"),
                           "--against", str(tmp_path / "eval_a.json"), "--against", str(tmp_path / "eval_b.jsonl")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kept = json.loads((tmp_path / "clean.json").read_text())
    assert [r["instruction"] for r in kept] == ["Write a haiku about the autumn rain."]
    dropped = [json.loads(line) for line in (tmp_path / "clean.json.dropped.jsonl").read_text().splitlines()]
    assert [(d["reason"], d["similar_to"], d["against"]) for d in dropped] == [
        ("similar_to_against", "List three prime numbers please.", str(tmp_path / "eval_a.json")),
        ("similar_to_against", "Name the capital city of France.", str(tmp_path / "eval_b.jsonl"))]


def test_a_burst_of_journaled_answers_is_not_a_rate(monkeypatch):
    """filter --judge replays its journal at once: that burst showed as 1,000,000,000 records/s. The rate
    counts from a stage's first report, and shows once a second has passed."""
    from selfinstruct.endpoint import progress as module

    clock = [100.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    printed: list[str] = []
    with module.FileProgress("lines", printed.append, interval=0) as progress:
        progress("judge", 900, 1000)  # 900 answers from the journal, at once
        clock[0] += 0.001
        progress("judge", 901, 1000)
        clock[0] += 2.0
        progress("judge", 941, 1000)  # 40 more in 2 s
        for _ in range(30):  # then one a tenth of a second: a rate shows, measured past the burst
            clock[0] += 0.1
            progress("judge", 941 + _ + 1, 1000)
    assert [line.split(" ", 1)[1] for line in printed[:3]] == [
        "filter judging: 900 of 1,000 records (90%)", "filter judging: 901 of 1,000 records (90%)",
        "filter judging: 941 of 1,000 records (94%), 20 records/s, ETA 0m02s"]
    assert printed[-1].endswith("filter judging: 971 of 1,000 records (97%), 14 records/s, ETA 0m02s")


def test_progress_lines_report_each_stage_with_rate_and_eta(tmp_path):
    """Without a terminal, filter prints a plain progress line (every 10 s; here every call) naming the stage."""
    from selfinstruct import filter_dataset
    from selfinstruct.endpoint.progress import FileProgress

    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps({"instruction": f"Task number {i} about topic {i * 7}", "output": "x"}) + "\n"
                              for i in range(3000)))
    printed: list[str] = []
    with FileProgress("lines", printed.append, interval=0) as progress:
        report = filter_dataset(source, tmp_path / "clean.jsonl", progress=progress)
    assert report.total == 3000
    # The rate and ETA show once a stage has run a second (test_a_burst_of_journaled_answers_...).
    stages = [re.match(r"^\d\d:\d\d:\d\d filter (\w+): ([\d,]+) of 3,000 (lines|records) \((\d+)%\)"
                       r"(?:, [\d,]+ (?:lines|records)/s, ETA \d+m\d\ds)?$", line) for line in printed]
    assert all(stages), printed
    seen = [(m[1], m[3]) for m in stages]
    assert [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s] == [
        ("reading", "lines"), ("deduplicating", "records"), ("writing", "lines")]
    assert [m[4] for m in stages if m[1] == "reading"] == ["0", "33", "67", "100"]
    assert [m[2] for m in stages if m[1] == "deduplicating"] == ["0", "3,000"]  # starts at 0: a true rate
    assert stages[-1][4] == "100" and stages[-1][2] == "3,000"


@pytest.mark.slow
def test_quiet_filter_prints_no_progress(tmp_path):
    source = tmp_path / "data.json"
    source.write_text(json.dumps([{"instruction": "List three prime numbers.", "output": "2, 3, 5"}]))
    done = subprocess.run([str(SCRIPT), "filter", str(source), "-o", str(tmp_path / "c.json"), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stderr == ""


@pytest.mark.slow
def test_several_inputs_are_deduplicated_together_into_a_directory(tmp_path):
    """Two files, one JSON array and one JSONL: the second's copy of the first's record is dropped, and each
    file's kept records are written back under its name, in its own layout."""
    first, second = tmp_path / "a.json", tmp_path / "b.jsonl"
    first.write_text(json.dumps([{"instruction": "Write a haiku about the autumn rain.", "output": "x"},
                                 {"instruction": "List three prime numbers please.", "output": "2, 3, 5"}]))
    second.write_text(json.dumps({"instruction": "Write a haiku about the autumn rain!", "output": "y"}) + "\n"
                      + json.dumps({"instruction": "Name the capital city of France.", "output": "Paris"}) + "\n")
    out = tmp_path / "clean"
    out.mkdir()
    done = subprocess.run([str(SCRIPT), "filter", str(first), str(second), "-o", str(out), "-q"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert [r["instruction"] for r in json.loads((out / "a.json").read_text())] == [
        "Write a haiku about the autumn rain.", "List three prime numbers please."]
    assert [json.loads(line)["instruction"] for line in (out / "b.jsonl").read_text().splitlines()] == [
        "Name the capital city of France."]
    [dropped] = [json.loads(line) for line in (out / "b.dropped.jsonl").read_text().splitlines()]
    assert (dropped["file"], dropped["line"], dropped["reason"]) == (str(second), 1, "duplicate")
    assert dropped["duplicate_of"] == {"file": str(first), "line": 1, "instruction": "Write a haiku about the autumn rain."}
    assert (out / "a.json.dropped.jsonl").read_text() == ""
    assert f"kept records: {out / 'a.json'}" in done.stdout and f"kept records: {out / 'b.jsonl'}" in done.stdout


def test_several_inputs_into_one_file_take_the_first_layout(tmp_path):
    first, second = tmp_path / "a.jsonl", tmp_path / "b.json"
    first.write_text(json.dumps({"instruction": "Write a haiku about the autumn rain.", "output": "x"}) + "\n")
    second.write_text(json.dumps([{"instruction": "Name the capital city of France.", "output": "Paris"},
                                  {"instruction": "write a haiku about the autumn rain", "output": "z"}]))
    from selfinstruct import filter_dataset

    report = filter_dataset([first, second], tmp_path / "all.jsonl")
    assert (report.total, report.kept, dict(report.dropped)) == (3, 2, {"duplicate": 1})
    assert [json.loads(line)["instruction"] for line in (tmp_path / "all.jsonl").read_text().splitlines()] == [
        "Write a haiku about the autumn rain.", "Name the capital city of France."]
    [dropped] = [json.loads(line) for line in (tmp_path / "all.dropped.jsonl").read_text().splitlines()]
    assert (dropped["file"], dropped["index"], dropped["duplicate_of"]["file"]) == (str(second), 1, str(first))


@pytest.mark.slow
def test_several_inputs_refuse_an_output_that_is_one_of_them(tmp_path):
    """Filtering into the inputs' own directory would replace them: refused before anything is read."""
    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    for path in (first, second):
        path.write_text(json.dumps({"instruction": "Name the capital city of France.", "output": "Paris"}) + "\n")
    before = first.read_bytes()
    done = subprocess.run([str(SCRIPT), "filter", str(first), str(second), "-o", str(tmp_path), "-q", "--overwrite"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is the same file as the input" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and first.read_bytes() == before


@pytest.mark.slow
def test_the_first_filter_after_an_install_says_it_is_compiling(tmp_path):
    """It spent about 36 s compiling, shown as "15 records/s": it says so, once (a cache of its own here)."""
    import os
    import subprocess

    from helpers import SCRIPT

    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps({"instruction": f"Task number {i} about topic {i * 7}", "output": "x"}) + "\n"
                              for i in range(50)))
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path / "numba-cache"))
    said = []
    for attempt in range(2):
        result = subprocess.run([SCRIPT, "filter", str(source), "-o", str(tmp_path / f"out{attempt}.jsonl"),
                                 "--quiet"], env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        said.append("compiling its deduplication kernels, once per install" in result.stderr)
    assert said == [True, False]


def test_a_json_and_a_jsonl_output_of_one_name_keep_their_own_dropped_records(tmp_path):
    """`-o clean.json` then `-o clean.jsonl` in one directory: both are written, neither refused for the
    other's dropped-records file (they shared clean.dropped.jsonl); an output directory does the same."""
    from selfinstruct import filter_dataset

    records = [{"instruction": "Write a haiku about the autumn rain.", "output": "x"},
               {"instruction": "Write a haiku about the autumn rain!", "output": "y"}]
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    for name in ("clean.json", "clean.jsonl"):
        assert filter_dataset(source, tmp_path / name).dropped == {"duplicate": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "clean.dropped.jsonl", "clean.json", "clean.json.dropped.jsonl", "clean.jsonl", "data.jsonl"]
    for dropped in ("clean.dropped.jsonl", "clean.json.dropped.jsonl"):
        [entry] = [json.loads(line) for line in (tmp_path / dropped).read_text().splitlines()]
        assert (entry["line"], entry["reason"]) == (2, "duplicate")
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "in" / "a.json").write_text(json.dumps(records[:1]))
    (tmp_path / "in" / "a.jsonl").write_text(json.dumps(records[1]) + "\n")
    filter_dataset([tmp_path / "in" / "a.json", tmp_path / "in" / "a.jsonl"], tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "a.dropped.jsonl", "a.json", "a.json.dropped.jsonl", "a.jsonl"]
    assert len((tmp_path / "out" / "a.dropped.jsonl").read_text().splitlines()) == 1  # the second copy


def _records_file(path: Path, *instructions: str) -> Path:
    path.parent.mkdir(exist_ok=True)
    path.write_text("".join(json.dumps({"instruction": i, "output": "x"}) + "\n" for i in instructions))
    return path


@pytest.mark.parametrize("names, clash", [
    (["in/a", "in/a.jsonl"], "out/a.dropped.jsonl: both {0} and {1} would write it"),  # dropped and dropped
    (["in/x.jsonl", "in/x.dropped.jsonl"], "out/x.dropped.jsonl: both {0} and {1} would write it"),  # dropped, output
    (["d1/a.jsonl", "d2/a.jsonl"], "out/a.jsonl: both {0} and {1} would write it"),  # output and output
])
def test_inputs_whose_files_would_be_one_file_in_the_directory_are_refused(tmp_path, names, clash):
    """Each of these wrote one input's records over another's and said nothing (exit 0)."""
    from selfinstruct import filter_dataset
    from selfinstruct.dedup.result import FilterError

    sources = [_records_file(tmp_path / name, f"Write a haiku about topic number {k}.", "Name three colours.")
               for k, name in enumerate(names)]
    (tmp_path / "out").mkdir()
    with pytest.raises(FilterError) as raised:
        filter_dataset(sources, tmp_path / "out")
    assert str(raised.value) == (f"{tmp_path / clash.split(':')[0]}:" + clash.split(":", 1)[1].format(*sources)
                                 + "; rename one, or filter them apart or into one file")
    assert list((tmp_path / "out").iterdir()) == []


def test_one_input_into_a_directory_keeps_its_name_as_several_do(tmp_path):
    from selfinstruct import filter_dataset

    source = _records_file(tmp_path / "in" / "a.jsonl", "Write a haiku about the autumn rain.",
                           "Write a haiku about the autumn rain!")
    (tmp_path / "out").mkdir()
    report = filter_dataset(source, tmp_path / "out")
    assert (report.kept, report.dropped) == (1, {"duplicate": 1})
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.dropped.jsonl", "a.jsonl"]


@pytest.mark.slow
def test_an_output_ending_in_a_slash_is_a_directory_that_must_exist(tmp_path):
    """`-o newdir/` wrote a file named newdir (and newdir.dropped.jsonl)."""
    _records_file(tmp_path / "data.jsonl", "Name three colours.")
    done = subprocess.run([str(SCRIPT), "filter", "data.jsonl", "-o", "newdir/"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert (done.returncode, done.stderr) == (2, "error: newdir/: no such directory; create it first, or name a file\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.jsonl"]
    (tmp_path / "newdir").mkdir()
    done = subprocess.run([str(SCRIPT), "filter", "data.jsonl", "-o", "newdir/", "-q"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in (tmp_path / "newdir").iterdir()) == ["data.dropped.jsonl", "data.jsonl"]


def test_one_input_into_a_directory_with_its_dropped_file_as_the_output_names_the_clash(tmp_path):
    """It said 'both in/a.jsonl and in/a.jsonl would write it'; the same-file check says what is wrong."""
    from selfinstruct import filter_dataset
    from selfinstruct.dedup.result import FilterError

    source = _records_file(tmp_path / "in" / "a.jsonl", "Name three colours.")
    (tmp_path / "out").mkdir()
    with pytest.raises(FilterError) as raised:
        filter_dataset(source, tmp_path / "out", dropped_output=tmp_path / "out" / "a.jsonl")
    assert str(raised.value).startswith(f"{tmp_path / 'out' / 'a.jsonl'}: the dropped-records file is the same file "
                                        f"as the output")
    assert list((tmp_path / "out").iterdir()) == []
