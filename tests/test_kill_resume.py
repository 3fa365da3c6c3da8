"""Kill a real `selfinstruct generate` process at random moments, resume, and check nothing is lost,
duplicated or paid for twice. Every answer carries a serial number so the journal can be matched
against what the server was asked."""

from __future__ import annotations

import itertools
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from helpers import Delayed, KeyedModel
from openai_stub import Reply

pytestmark = pytest.mark.slow  # every test here kills and resumes real processes

TRIALS = 6
TARGET = 60
SCRIPT = str(Path(sys.executable).parent / "selfinstruct")
SERIAL = re.compile(r"<reply (\d+)>")


class SerialResponder:
    """The fake model's answer plus a serial number the parser ignores, after a short random delay."""

    def __init__(self, fake_model, seed):
        self.fake_model, self.rng = fake_model, random.Random(seed)
        self.lock = threading.Lock()
        self.counter = itertools.count()
        self.sent: dict[int, str] = {}  # serial -> request body key

    def __call__(self, request):
        answer = self.fake_model(request)
        with self.lock:
            serial = next(self.counter)
            self.sent[serial] = request.key
            delay = self.rng.uniform(0.01, 0.06)
        return Reply(text=f"{answer}\n\nTask: <reply {serial}>", delay=delay)


def command(server, run_dir, *more):
    return [SCRIPT, "generate", "--lang", "en", "-n", str(TARGET), "-o", str(run_dir), "--model", "stub-model",
            "--api", "chat", "--requests-per-round", "3", "--concurrency", "4", "--quiet", *more]


def environment(server):
    return dict(os.environ, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-test")


def complete_records(path: Path) -> list[dict]:
    """The complete lines of a journal as it is on disk right now (without setting anything aside)."""
    if not path.exists():
        return []
    data = path.read_bytes()
    data = data[: data.rfind(b"\n") + 1]
    return [json.loads(line) for line in data.splitlines() if line.strip()]


def wait_for_growth(path: Path, timeout: float) -> None:
    size = path.stat().st_size if path.exists() else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > size:
            return
        time.sleep(0.001)


def assert_nothing_paid_twice(responder: SerialResponder, run_dir: Path) -> None:
    journaled = {int(m.group(1)) for r in complete_records(run_dir / "responses.jsonl")
                 for m in [SERIAL.search(r["text"])] if m}
    sends: dict[str, list[int]] = {}
    for serial in sorted(responder.sent):
        sends.setdefault(responder.sent[serial], []).append(serial)
    for serials in sends.values():
        answered = [s for s in serials if s in journaled]
        assert len(answered) <= 1, f"request answered and journaled {len(answered)} times"
        assert not answered or answered[0] == serials[-1], "a journaled request was sent again"


def assert_final_run(run_dir: Path, kept_before_kills: list[dict]) -> None:
    tasks = complete_records(run_dir / "tasks.jsonl")
    assert len(tasks) == TARGET
    assert len({t["id"] for t in tasks}) == TARGET
    assert len({t["instruction"] for t in tasks}) == TARGET
    final = {t["id"]: t for t in tasks}
    for task in kept_before_kills:
        assert final[task["id"]] == task
    for name in ("tasks.jsonl", "responses.jsonl", "rejected.jsonl"):
        path = run_dir / name
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                json.loads(line)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["complete"] and summary["accepted"] == TARGET


def test_sigkill_at_random_moments_then_resume(fake_model, tmp_path):
    from openai_stub import ScriptedServer

    rng = random.Random(2024)
    outcomes = []
    for trial in range(TRIALS):
        responder = SerialResponder(fake_model, seed=trial)
        with ScriptedServer(responder) as server:
            run_dir = tmp_path / f"trial{trial}"
            kept: list[dict] = []
            kills = 0
            for attempt in range(3):
                process = subprocess.Popen(command(server, run_dir), env=environment(server),
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                if attempt == 0 and trial % 2:
                    wait_for_growth(run_dir / "tasks.jsonl", timeout=30)  # in the middle of a write burst
                else:
                    time.sleep(rng.uniform(0.8, 3.0))
                if process.poll() is not None:  # it finished before the kill
                    assert process.returncode == 0, process.stderr.read().decode()
                    break
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills += 1
                kept = complete_records(run_dir / "tasks.jsonl")
            resume_and_check(server, responder, run_dir, kept)
            outcomes.append((kills, len(kept)))
    print(f"\nkill trials: {outcomes} (kills, tasks journaled before the last kill)")
    assert sum(kills for kills, _ in outcomes) >= TRIALS  # the kills really happened mid-run
    assert any(kept for _, kept in outcomes)


def start_and_wait_for_answers(server, run_dir: Path, answers: int = 5) -> subprocess.Popen:
    process = subprocess.Popen(command(server, run_dir), env=environment(server), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while len(complete_records(run_dir / "responses.jsonl")) < answers and time.monotonic() < deadline:
        time.sleep(0.01)
    return process


def interrupt(process: subprocess.Popen, times: int) -> str:
    """Press Ctrl+C `times` times; the process must be gone within 5 seconds. Returns its stderr."""
    for _ in range(times):
        process.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - started < 5
    return stderr


def resume_and_check(server, responder, run_dir: Path, kept: list[dict], *args: str) -> None:
    resumed = subprocess.run(list(args) or command(server, run_dir), env=environment(server), capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert_final_run(run_dir, kept)
    assert_nothing_paid_twice(responder, run_dir)


def test_sigint_stops_gracefully_and_resumes(fake_model, tmp_path):
    from openai_stub import ScriptedServer

    responder = SerialResponder(fake_model, seed=99)
    with ScriptedServer(responder) as server:
        run_dir = tmp_path / "run"
        process = start_and_wait_for_answers(server, run_dir)
        stderr = interrupt(process, times=1)
        assert process.returncode == 130, stderr
        assert f"selfinstruct resume {run_dir}" in stderr
        assert "Traceback" not in stderr
        kept = complete_records(run_dir / "tasks.jsonl")
        summary = json.loads((run_dir / "summary.json").read_text())
        assert summary["complete"] is False and summary["accepted"] <= TARGET
        resume_and_check(server, responder, run_dir, kept, SCRIPT, "resume", str(run_dir), "--quiet")


def test_second_ctrl_c_exits_at_once_without_corrupting(fake_model, tmp_path):
    from openai_stub import ScriptedServer

    responder = SerialResponder(fake_model, seed=7)
    with ScriptedServer(responder) as server:
        run_dir = tmp_path / "run"
        process = start_and_wait_for_answers(server, run_dir)
        interrupt(process, times=2)
        assert process.returncode != 0
        resume_and_check(server, responder, run_dir, complete_records(run_dir / "tasks.jsonl"))


def test_killed_and_resumed_runs_give_the_uninterrupted_runs_tasks(tmp_path):
    """kill -9 at random moments, then resume: with the same answers (helpers.KeyedModel) in other timings,
    tasks.jsonl and rejected.jsonl come out byte for byte as a run never killed, and what is sent again is
    at most what was in flight at the kills."""
    from openai_stub import ScriptedServer

    with ScriptedServer(Delayed(KeyedModel(), seed=0)) as server:
        whole = tmp_path / "whole"
        done = subprocess.run(command(server, whole), env=environment(server), capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr
    rng = random.Random(11)
    kills = []
    for trial in range(3):
        with ScriptedServer(Delayed(KeyedModel(), seed=trial + 1)) as server:
            run_dir = tmp_path / f"trial{trial}"
            kills.append(0)
            for attempt in range(rng.randint(1, 3)):
                process = subprocess.Popen(command(server, run_dir), env=environment(server),
                                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                time.sleep(rng.uniform(0.6, 2.5))
                if process.poll() is not None:
                    assert process.returncode == 0, process.stderr.read().decode()
                    break
                process.send_signal(signal.SIGKILL)
                process.wait()
                kills[-1] += 1
            resumed = subprocess.run(command(server, run_dir), env=environment(server), capture_output=True,
                                     text=True, timeout=300)
            assert resumed.returncode == 0, resumed.stderr
            answered = {r["slot"] for r in complete_records(run_dir / "responses.jsonl") if r["error"] is None}
            assert len(server.requests) - len(answered) <= 4 * kills[-1]  # --concurrency 4 in flight at each kill
        for name in ("tasks.jsonl", "rejected.jsonl"):
            assert (run_dir / name).read_bytes() == (whole / name).read_bytes(), (trial, name)
    assert sum(kills) >= 2, kills  # the kills really happened mid-run
