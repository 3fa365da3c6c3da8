"""The run directory: one writer, responses.jsonl the single source of truth, counts rebuilt, readers read."""

from __future__ import annotations

import json
from dataclasses import replace
import signal
import sys
import time
from pathlib import Path

import pytest
from fake_model import FakeModel
from openai_stub import Reply
from helpers import KEY, assert_well_formed_run, invoke, read_jsonl, run_config, start_cli, wait_for
from selfinstruct import export_run, generate, resume
from selfinstruct.resources import default_seeds
from selfinstruct.store.rundir import FORMAT_VERSION
from selfinstruct.formats.seeds import load_seed_tasks

SCRIPT = str(Path(sys.executable).parent / "selfinstruct")
EN_SEEDS = [t.instruction for t in load_seed_tasks(default_seeds("en"))]


@pytest.mark.slow
def test_a_second_writer_is_refused_at_once_naming_the_first(server, fake_model, tmp_path):
    server.responder = lambda request: Reply(text=fake_model(request), delay=0.2)
    first = start_cli(server, tmp_path / "run")
    try:
        wait_for(lambda: (tmp_path / "run" / "responses.jsonl").exists()
                 and (tmp_path / "run" / "responses.jsonl").stat().st_size > 0)
        started = time.monotonic()
        second = start_cli(server, tmp_path / "run")
        out, err = second.communicate(timeout=60)
        assert second.returncode == 2, err
        assert f"in use by another selfinstruct process (PID {first.pid})" in err
        assert "Traceback" not in err and time.monotonic() - started < 30
    finally:
        first.kill()
        first.wait()
    # a lock left by a killed process does not block: the kernel released it
    server.responder = fake_model
    third = start_cli(server, tmp_path / "run")
    out, err = third.communicate(timeout=120)
    assert third.returncode == 0, err
    tasks = read_jsonl(tmp_path / "run" / "tasks.jsonl")
    assert len(tasks) == 40 and len({t["id"] for t in tasks}) == 40


def test_derived_journals_are_rebuilt_without_a_request(server, tmp_path):
    config = run_config(server, tmp_path, lang="en", num_instructions=10)
    generate(config)
    run = tmp_path / "run"
    tasks, rejected = (run / "tasks.jsonl").read_bytes(), (run / "rejected.jsonl").read_bytes()
    sent = server.count()
    (run / "tasks.jsonl").unlink()
    (run / "rejected.jsonl").write_bytes(rejected[: len(rejected) // 2] + b"\x00garbage\n")
    summary = generate(config)
    assert server.count() == sent
    assert (run / "tasks.jsonl").read_bytes() == tasks and (run / "rejected.jsonl").read_bytes() == rejected
    assert summary["accepted"] == 10
    lines = tasks.splitlines(keepends=True)
    (run / "tasks.jsonl").write_bytes(b"".join(lines[:3]) + b'{"id": "damaged' + b"\n" + b"".join(lines[4:]))
    result = invoke("resume", run, "--quiet", "--api-key", "sk-test-key")
    assert result.exit_code == 0, result.output
    assert (run / "tasks.jsonl").read_bytes() == tasks and server.count() == sent


def test_lost_answers_are_asked_again_and_the_tasks_follow_them(server, tmp_path):
    """A power loss can keep tasks.jsonl lines whose answers never reached responses.jsonl. The new
    answers differ; tasks.jsonl must follow them, and the pool must hold exactly what tasks.jsonl holds."""
    config = run_config(server, tmp_path, lang="en", num_instructions=12, concurrency=1)
    generate(config)
    run = tmp_path / "run"
    before = read_jsonl(run / "tasks.jsonl")
    responses = (run / "responses.jsonl").read_bytes().splitlines(keepends=True)
    kept = [line for line in responses if json.loads(line)["slot"].startswith("r0.")]  # round 1 on is lost
    assert 0 < len(kept) < len(responses)
    (run / "responses.jsonl").write_bytes(b"".join(kept))
    server.responder = FakeModel(seed=99)  # different answers from here on
    generate(config)
    after, _, _ = assert_well_formed_run(run, config, EN_SEEDS)
    assert after != before and after[0] == before[0]
    derived = (run / "tasks.jsonl").read_bytes()
    (run / "tasks.jsonl").unlink()
    sent = server.count()
    generate(config)
    assert (run / "tasks.jsonl").read_bytes() == derived and server.count() == sent


def test_allowed_changes_redecide_every_round_from_the_same_answers(server, tmp_path):
    generate(run_config(server, tmp_path, lang="en", num_instructions=10, concurrency=1))
    changed = run_config(server, tmp_path, lang="en", num_instructions=10, concurrency=1, threshold=0.3)
    generate(changed, allow_changes=True)
    assert_well_formed_run(tmp_path / "run", changed, EN_SEEDS)  # pool = seeds + tasks.jsonl at threshold 0.3


def test_counts_are_rebuilt_from_the_journals_after_resumes(server, fake_model, tmp_path):
    server.script(Reply(status=429, headers={"Retry-After": "0"}))
    generate(run_config(server, tmp_path, lang="en", num_instructions=3))
    result = invoke("resume", tmp_path / "run", "-n", 7, "--quiet", "--api-key", "sk-test-key")
    assert result.exit_code == 0 and "accepted 7/7" in result.output
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    lines = (tmp_path / "run" / "tasks.jsonl").read_text().splitlines()
    rejected = (tmp_path / "run" / "rejected.jsonl").read_text().splitlines()
    assert summary["accepted"] == len(lines) == 7
    assert summary["rejected"] == len(rejected) == sum(summary["rejected_by_reason"].values())
    assert summary["retries_by_reason"] == {"rate_limited": 1}
    assert summary["candidates_by_stage"]["generated"] >= 7
    assert summary["requests"] == len((tmp_path / "run" / "responses.jsonl").read_text().splitlines())
    assert json.loads((tmp_path / "run" / "config.json").read_text())["settings"]["num_instructions"] == 7
    result = invoke("resume", tmp_path / "run", "-n", 5, "--quiet", "--api-key", "sk-test-key")
    assert result.exit_code == 2 and "below the 7 tasks" in result.output
    assert len((tmp_path / "run" / "tasks.jsonl").read_text().splitlines()) == 7


def test_readers_never_repair_a_live_runs_journal(server, tmp_path):
    generate(run_config(server, tmp_path, lang="en", num_instructions=3))
    tasks = tmp_path / "run" / "tasks.jsonl"
    with tasks.open("ab") as out:
        out.write(b'{"id": "r0009-0-00", "instruction": "half writ')
    before = tasks.read_bytes()
    complete = [json.loads(line) for line in before.splitlines()[:-1]]
    path, count = export_run(tmp_path / "run")
    assert count == sum(len(t["instances"]) for t in complete) == len(json.loads(path.read_text()))
    assert tasks.read_bytes() == before
    assert not (tmp_path / "run" / "tasks.jsonl.torn").exists()


def test_a_damaged_answer_line_exits_2_naming_it(server, tmp_path):
    generate(run_config(server, tmp_path, lang="en", num_instructions=3))
    responses = tmp_path / "run" / "responses.jsonl"
    lines = responses.read_bytes().splitlines(keepends=True)
    responses.write_bytes(lines[0] + b"{not json\n" + b"".join(lines[1:]))
    result = invoke("resume", tmp_path / "run", "-n", 5, "--quiet", "--api-key", "sk-test-key")
    assert result.exit_code == 2
    assert f"{responses}:2: damaged journal line" in result.output and "delete that line" in result.output


@pytest.mark.parametrize("field, value, problem", [
    ("slot", 5, "field 'slot': expected a string, got int"),
    ("stage", ["instructions"], "field 'stage': expected a string, got array"),
    ("stage", "bogus", "field 'stage': unknown stage 'bogus'"),
    ("text", None, "field 'text': expected a string, got null"),
    ("error", 3, "field 'error': expected a string or null, got int"),
    ("finish_reason", {}, "field 'finish_reason': expected a string or null, got object"),
    ("prompt_tokens", "12", "field 'prompt_tokens': expected a count (an integer, 0 or more), got str"),
    ("completion_tokens", -1, "field 'completion_tokens': expected a count (an integer, 0 or more), got -1"),
    ("retries", ["http_500"], "field 'retries': expected an object of reason: count, got array"),
    ("retries", {"http_500": "2"}, "field 'retries': expected an object of reason: count, got"),
    ("attempts", 0, "field 'attempts': expected a count of 1 or more, got 0"),
    ("seconds", "slow", "field 'seconds': expected a number, got str"),
])
def test_an_answer_line_of_a_wrong_type_exits_2_naming_it(server, tmp_path, field, value, problem):
    """A hand-edited answer of the right shape but a wrong type is one line and exit 2, not a traceback."""
    generate(run_config(server, tmp_path, lang="en", num_instructions=3))
    responses = tmp_path / "run" / "responses.jsonl"
    records = read_jsonl(responses)
    records[1][field] = value
    responses.write_text("".join(json.dumps(r) + "\n" for r in records))
    result = invoke("resume", tmp_path / "run", "-n", 5, "--quiet", "--api-key", "sk-test-key")
    assert result.exit_code == 2, result.output
    assert f"{responses}:2: damaged journal line ({problem}" in result.output, result.output
    assert "Traceback" not in result.output
    assert len([line for line in result.output.splitlines() if problem in line]) == 1


def test_an_answer_line_nested_thousands_deep_is_a_damaged_line(server, tmp_path):
    generate(run_config(server, tmp_path, lang="en", num_instructions=3))
    responses = tmp_path / "run" / "responses.jsonl"
    lines = responses.read_bytes().splitlines(keepends=True)
    responses.write_bytes(lines[0] + b'{"a":' + b"[" * 100_000 + b"]" * 100_000 + b"}\n" + b"".join(lines[1:]))
    result = invoke("resume", tmp_path / "run", "-n", 5, "--quiet", "--api-key", "sk-test-key")
    assert result.exit_code == 2, result.output
    assert f"{responses}:2: damaged journal line" in result.output and "Traceback" not in result.output


def test_resume_works_from_another_directory_with_relative_paths(server, tmp_path, monkeypatch):
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    seeds = Path("my_seeds.jsonl")
    seeds.write_text(default_seeds("en").read_text())
    result = invoke("generate", "--base-url", server.base_url, "--api-key", KEY, "--model", "stub-model",
                    "--lang", "en", "-n", 3, "-o", "run", "--seeds", seeds, "--quiet")
    assert result.exit_code == 0, result.output
    settings = json.loads(Path("run/config.json").read_text())["settings"]
    assert settings["seeds"] == str(tmp_path / "work" / "my_seeds.jsonl")
    assert settings["output"] == str(tmp_path / "work" / "run")
    monkeypatch.chdir(tmp_path)
    result = invoke("resume", "work/run", "-n", 5, "--api-key", KEY, "--quiet")
    assert result.exit_code == 0, result.output
    assert len((tmp_path / "work" / "run" / "tasks.jsonl").read_text().splitlines()) == 5


@pytest.mark.parametrize("content, needle", [
    ('{"format": 99, "settings": {}, "signature": {}}', "format 99 is newer than this selfinstruct reads"),
    ("[]", "not a selfinstruct config"),
    ('{"format": "two", "settings": {}, "signature": {}}', "unknown run-directory format 'two'"),
    ('{"settings": {"concurrency": 2.5}, "signature": {}}', "concurrency must be a whole number"),
])
def test_an_unreadable_run_directory_exits_2(tmp_path, content, needle):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(content)
    result = invoke("resume", tmp_path / "run")
    assert result.exit_code == 2
    assert needle in result.output and "Traceback" not in result.output


def test_a_format_1_run_directory_is_migrated(server, tmp_path):
    config = run_config(server, tmp_path, lang="en", num_instructions=3)
    generate(config)
    config_file = tmp_path / "run" / "config.json"
    stored = json.loads(config_file.read_text())
    del stored["format"]
    config_file.write_text(json.dumps(stored))
    sent = server.count()
    summary = resume(tmp_path / "run", api_key="sk-test-key", num_instructions=4)
    assert summary["accepted"] == 4 and server.count() > sent
    assert json.loads(config_file.read_text())["format"] == FORMAT_VERSION


def test_a_format_2_run_keeps_comparing_raw_text(server, tmp_path):
    """Runs made before NFKC normalisation resume without it (their decisions replay exactly); new runs
    normalise, and the same generate command on an old run directory is not refused."""
    config = run_config(server, tmp_path, lang="en", num_instructions=3)
    generate(config)
    config_file = tmp_path / "run" / "config.json"
    stored = json.loads(config_file.read_text())
    assert stored["format"] == FORMAT_VERSION and stored["settings"]["normalize"] is True
    assert stored["signature"]["normalize"] is True
    stored["format"] = 2
    del stored["settings"]["normalize"], stored["signature"]["normalize"]
    config_file.write_text(json.dumps(stored))
    summary = resume(tmp_path / "run", api_key="sk-test-key", num_instructions=4)
    assert summary["accepted"] == 4
    stored = json.loads(config_file.read_text())
    assert stored["format"] == FORMAT_VERSION and stored["settings"]["normalize"] is False
    assert stored["signature"]["normalize"] is False
    generate(replace(config, num_instructions=5))  # not refused: normalize comes from the run
    assert json.loads(config_file.read_text())["settings"]["normalize"] is False


def test_a_format_3_run_counts_each_answer_as_one_attempt_plus_its_retries(server, tmp_path):
    """Answers journaled before format 4 have no attempts field: each is one attempt plus its retries."""
    server.script(Reply(status=503), Reply(status=503))
    generate(run_config(server, tmp_path, lang="en", num_instructions=3, concurrency=1))
    run = tmp_path / "run"
    assert json.loads((run / "summary.json").read_text())["attempts"] == server.count()
    records = read_jsonl(run / "responses.jsonl")
    assert records[0]["attempts"] == 3 and records[0]["retries"] == {"http_503": 2}
    (run / "responses.jsonl").write_text("".join(json.dumps({k: v for k, v in r.items() if k != "attempts"}) + "\n"
                                                 for r in records))
    stored = json.loads((run / "config.json").read_text())
    (run / "config.json").write_text(json.dumps({**stored, "format": 3}))
    summary = resume(run, api_key="sk-test-key", num_instructions=4)
    assert summary["attempts"] == server.count() and summary["accepted"] == 4
    assert json.loads((run / "config.json").read_text())["format"] == FORMAT_VERSION == 4


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_sigterm_and_sighup_end_the_run_like_ctrl_c(server, fake_model, tmp_path, signum, code):
    server.responder = lambda request: Reply(text=fake_model(request), delay=0.2)
    process = start_cli(server, tmp_path / "run", n=200)
    wait_for(lambda: (tmp_path / "run" / "tasks.jsonl").exists()
             and (tmp_path / "run" / "tasks.jsonl").stat().st_size > 0)
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == code, err
    assert f"selfinstruct resume {tmp_path / 'run'}" in err and "Traceback" not in err
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["accepted"] == len((tmp_path / "run" / "tasks.jsonl").read_text().splitlines()) > 0
    assert summary["stop_reason"] == f"interrupted ({signal.Signals(signum).name})"
    server.responder = fake_model
    result = invoke("resume", tmp_path / "run", "-n", summary["accepted"] + 2, "--quiet", "--api-key", KEY)
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize("name", ["responses.jsonl", "config.json", "tasks.jsonl", "summary.json"])
def test_export_never_overwrites_the_runs_own_files(server, tmp_path, name):
    generate(run_config(server, tmp_path, lang="en", num_instructions=3))
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()}
    result = invoke("export", tmp_path / "run", "-o", tmp_path / "run" / name)
    assert result.exit_code == 2 and "one of the run's own files" in result.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir() if p.is_file()} == before


def test_a_damaged_tasks_file_does_not_block_resume(server, tmp_path):
    config = run_config(server, tmp_path, lang="en", num_instructions=3)
    generate(config)
    tasks = tmp_path / "run" / "tasks.jsonl"
    good = tasks.read_bytes()
    tasks.write_bytes(good + b"garbage\n" + good.splitlines(keepends=True)[0])
    sent = server.count()
    result = invoke("resume", tmp_path / "run", "--quiet", "--api-key", "sk-test-key")
    assert result.exit_code == 0, result.output
    assert tasks.read_bytes() == good and server.count() == sent


def test_export_of_an_incomplete_run_says_so(server, tmp_path):
    result = invoke("generate", "--base-url", server.base_url, "--api-key", KEY, "--model", "stub-model",
                    "--lang", "en", "-n", 500, "-o", tmp_path / "run", "--quiet", "--requests-per-round", 2,
                    "--concurrency", 1, "--max-requests", 12)
    assert result.exit_code == 4
    accepted = len((tmp_path / "run" / "tasks.jsonl").read_text().splitlines())
    assert 0 < accepted < 500
    result = invoke("export", tmp_path / "run")
    assert result.exit_code == 0
    assert "note: " in result.output
    assert f"is not complete ({accepted} of 500 tasks; stopped: budget reached: max-requests 12" in result.output


@pytest.mark.slow
def test_the_journals_do_not_depend_on_when_answers_arrive(server, fake_model, tmp_path):
    """Answers arrive in a random order; replaying them (all at once) must derive the same files."""
    import random

    rng = random.Random(5)

    def jittery(request):
        answer = fake_model(request)
        if request.prompt.rstrip().endswith("Classification:") and rng.random() < 0.3:
            answer = "perhaps"  # an unparseable_classification rejection from the completion stage
        return Reply(text=answer, delay=rng.uniform(0, 0.15))

    server.responder = jittery
    config = run_config(server, tmp_path, lang="en", num_instructions=15, concurrency=8)
    generate(config)
    run = tmp_path / "run"
    tasks, rejected = (run / "tasks.jsonl").read_bytes(), (run / "rejected.jsonl").read_bytes()
    assert b"unparseable_classification" in rejected
    (run / "tasks.jsonl").unlink()
    (run / "rejected.jsonl").unlink()
    sent = server.count()
    generate(config)
    assert server.count() == sent
    assert (run / "tasks.jsonl").read_bytes() == tasks and (run / "rejected.jsonl").read_bytes() == rejected
