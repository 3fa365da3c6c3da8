"""The whole pipeline against the real embedded model: the bundled Gemma 3 270M behind
llama.cpp's OpenAI-compatible server, through the openai client. Asserts only what holds
for any model: the run completes, requests succeed, what is accepted is well-formed and
passed every filter, every rejection has a reason, and no server process is left."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import assert_well_formed_run, processes_writing_to
from selfinstruct import Config, generate
from selfinstruct.resources import default_seeds
from selfinstruct.formats.seeds import load_seed_tasks

pytestmark = pytest.mark.real_model
SCRIPT = str(Path(sys.executable).parent / "selfinstruct")


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("mode", ["self-instruct", "alpaca"])
def test_short_real_run(tmp_path, lang, mode):
    config = Config(lang=lang, mode=mode, num_instructions=2, output=tmp_path / "run", requests_per_round=2,
                    tasks_per_request=4, seed=1)
    summary = generate(config)
    seeds = [t.instruction for t in load_seed_tasks(default_seeds(lang))]
    assert_well_formed_run(tmp_path / "run", config, seeds if mode == "self-instruct" else ())
    assert summary["failed_requests_by_reason"] == {}
    assert summary["requests"] >= 1 and summary["tokens_out"] > 0
    settings = json.loads((tmp_path / "run" / "config.json").read_text())["settings"]
    assert (settings["local"], settings["api"], settings["model"]) == (True, "completion", "gemma-3-270m-q4_k_m.gguf")
    log = tmp_path / "run" / "server.log"
    assert "llama" in log.read_text(errors="replace").lower()
    assert processes_writing_to(log) == []


def test_ctrl_c_leaves_no_server_behind(tmp_path):
    run_dir = tmp_path / "run"
    process = subprocess.Popen([SCRIPT, "generate", "--lang", "zh", "-n", "50", "-o", str(run_dir), "--quiet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log, responses = run_dir / "server.log", run_dir / "responses.jsonl"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not (responses.exists() and responses.stat().st_size):
        time.sleep(0.2)
    servers = processes_writing_to(log)
    assert len(servers) == 1, "the embedded server should be running"
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert f"selfinstruct resume {run_dir}" in stderr
    deadline = time.monotonic() + 10
    while processes_writing_to(log) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_writing_to(log) == []
    for line in responses.read_text(encoding="utf-8").splitlines():
        json.loads(line)


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_short_real_evol_run_with_the_judge(tmp_path, lang):
    """Evol-Instruct and the judge on the bundled base model: every request answered, each accepted task
    with its lineage and score, every rejection with a reason, no server left."""
    config = Config(lang=lang, mode="evol", num_instructions=1, output=tmp_path / "run", requests_per_round=4,
                    seed=1, judge=True)
    summary = generate(config)
    assert summary["accepted"] == 1
    # A base model may answer a rewriting prompt with nothing at all: that answer is journaled as failed.
    assert set(summary["failed_requests_by_reason"]) <= {"empty_content"}
    assert {"evolve", "compare", "respond", "judge"} <= set(summary["requests_by_stage"])
    [task] = [json.loads(line) for line in (tmp_path / "run" / "tasks.jsonl").read_text(encoding="utf-8").splitlines()]
    seeds = {t.id for t in load_seed_tasks(default_seeds(lang))}
    assert task["lineage"]["parent"] in seeds and task["lineage"]["depth"] == 1
    assert task["instances"][0]["output"].strip() and "score" in task["judge"]
    for line in (tmp_path / "run" / "rejected.jsonl").read_text(encoding="utf-8").splitlines():
        assert json.loads(line)["reason"]
    assert processes_writing_to(tmp_path / "run" / "server.log") == []


def test_filter_judge_with_the_bundled_model(tmp_path):
    """`filter --judge` with no endpoint set scores with the embedded model, offline."""
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in (
        {"instruction": "Name the capital of France.", "input": "", "output": "Paris."},
        {"instruction": "把这句话翻译成英文。", "input": "我喜欢喝茶。", "output": "I like tea."})), encoding="utf-8")
    result = subprocess.run([SCRIPT, "filter", str(source), "-o", str(tmp_path / "scored.jsonl"), "--judge", "--quiet"],
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "judge: embedded llama.cpp server, model gemma-3-270m-q4_k_m.gguf" in result.stderr
    scored = [json.loads(line) for line in (tmp_path / "scored.jsonl").read_text(encoding="utf-8").splitlines()]
    assert len(scored) == 2 and all(set(r["judge"]) == {"score", "reason"} for r in scored)
    journal = (tmp_path / "scored.judge" / "responses.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(journal) == 2 and processes_writing_to(tmp_path / "scored.judge" / "server.log") == []
