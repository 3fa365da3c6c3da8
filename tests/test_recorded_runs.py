"""Recorded runs (every method, and --judge) replay to the same bytes: the guard for any change to how
a method builds its requests or turns answers into tasks (issue 12: methods become parts; issue 23:
the package becomes subpackages; both unchanged in behaviour). The evol and --judge runs were recorded
by the code before issue 23's moves.

tests/data/recorded/<name>/ holds a run's config.json and responses.jsonl, recorded against the
scripted server, and the tasks.jsonl and rejected.jsonl the run derived from them. Resuming a copy
without its derived files must send no request (the recorded endpoint is long gone) and derive
the same bytes. Re-record only when a change of behaviour is intended:

    python tests/test_recorded_runs.py
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

from selfinstruct import Config, generate, resume
from selfinstruct.resources import default_prompts, default_seeds

HERE = Path(__file__).resolve().parent
RECORDED = HERE / "data" / "recorded"
DERIVED = ("tasks.jsonl", "rejected.jsonl")
RUNS = {
    "self-instruct-en": dict(mode="self-instruct", lang="en", num_instructions=24, seed=7),
    "alpaca-zh": dict(mode="alpaca", lang="zh", num_instructions=24, seed=11),
    "evol-en": dict(mode="evol", lang="en", num_instructions=16, seed=5),
    "self-instruct-zh-judge": dict(mode="self-instruct", lang="zh", num_instructions=16, seed=3, judge=True,
                                   min_score=3),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_recorded_run_replays_to_the_same_tasks(name, tmp_path):
    run = tmp_path / name
    run.mkdir()
    shutil.copy(RECORDED / name / "responses.jsonl", run / "responses.jsonl")
    stored = json.loads((RECORDED / name / "config.json").read_text())
    assert stored["settings"]["mode"] == RUNS[name]["mode"]
    assert stored["settings"].get("judge", False) == RUNS[name].get("judge", False)
    # Paths were recorded as placeholders; the signature pins the seeds' and prompts' content.
    lang = stored["settings"]["lang"]
    stored["settings"].update(seeds=str(default_seeds(lang)), prompts=str(default_prompts()), output=str(run))
    (run / "config.json").write_text(json.dumps(stored))
    summary = resume(run, api_key="sk-test-key")  # a request would go to a closed port and fail
    assert summary["accepted"] == RUNS[name]["num_instructions"] and summary["complete"] is True
    for file in DERIVED:
        assert (run / file).read_bytes() == (RECORDED / name / file).read_bytes(), file
    assert (run / "responses.jsonl").read_bytes() == (RECORDED / name / "responses.jsonl").read_bytes()


def record() -> None:
    """Run each recorded run named on the command line (all when none is) afresh against the scripted server
    and keep its files."""
    sys.path.insert(0, str(HERE))
    from helpers import OddModel
    from openai_stub import ScriptedServer

    for name, settings in RUNS.items():
        if sys.argv[1:] and name not in sys.argv[1:]:
            continue
        with tempfile.TemporaryDirectory() as scratch, ScriptedServer(OddModel()) as server:
            run = Path(scratch) / name
            generate(Config(base_url=server.base_url, api_key="sk-test-key", model="stub-model", output=run,
                            requests_per_round=2, concurrency=1, retry_wait=0.01, timeout=5, **settings))
            target = RECORDED / name
            target.mkdir(parents=True, exist_ok=True)
            for file in ("responses.jsonl",) + DERIVED:
                shutil.copy(run / file, target / file)
            stored = json.loads((run / "config.json").read_text())
            stored["settings"].update(seeds="<bundled>", prompts="<bundled>", output="<run>")
            (target / "config.json").write_text(json.dumps(stored, indent=2, ensure_ascii=False) + "\n")
            print(f"recorded {target}")


if __name__ == "__main__":
    record()
