"""`--judge` and `--min-score` against the scripted server, in every method: scores in each task,
`low_score` rejections, journaled judgements that a resume does not pay for again, and a judge on an
endpoint and model of its own."""

from __future__ import annotations

import json
import shutil

import pytest

from fake_model import FakeModel
from openai_stub import ScriptedServer
from selfinstruct import Config, generate, resume
from selfinstruct.config import ConfigError
from selfinstruct.judge import parse_score


class Chatty(FakeModel):
    """A judge that answers the way chat models do, and now and then gives no score at all."""

    def judge(self, prompt: str, chat: bool) -> str:
        answer = super().judge(prompt, chat)
        score = int(answer.split("\n")[0].strip().split("：")[-1].split(": ")[-1])
        if score == 2:
            return "I think this task is fine overall." if "评分：" not in prompt[-10:] else "这个任务总体还行。"
        return f"**Score:** {score}/5\n**Reason:** Clear enough." if score == 4 else answer


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("mode, lang, api", [("self-instruct", "en", "chat"), ("alpaca", "zh", "completion"),
                                             ("evol", "en", "completion")])
def test_judge_scores_every_task_and_min_score_rejects(tmp_path, mode, lang, api):
    run = tmp_path / "run"
    with ScriptedServer(Chatty()) as server:
        config = Config(mode=mode, lang=lang, api=api, num_instructions=12, base_url=server.base_url,
                        api_key="sk-test-key", model="stub-model", output=run, requests_per_round=4,
                        concurrency=1, judge=True, min_score=3)
        summary = generate(config)
        judged = [r for r in server.requests if r.prompt.rstrip().endswith(("Score:", "评分："))]
    tasks, rejected = read(run / "tasks.jsonl"), read(run / "rejected.jsonl")
    assert summary["accepted"] == 12 == len(tasks)
    assert all(t["judge"]["score"] >= 3 and t["judge"]["reason"] for t in tasks)
    low = [r for r in rejected if r["reason"] == "low_score"]
    unscored = [r for r in rejected if r["reason"] == "unparseable_score"]
    assert low and unscored and all(r["stage"] == "judge" for r in low + unscored)
    assert all(r["detail"].split(":")[0] == "1" for r in low)  # "1: <reason>": 2 is the unscored one here
    assert summary["requests_by_stage"]["judge"] == len(judged)
    assert len(judged) - 2 * 4 <= len(tasks) + len(low) + len(unscored) <= len(judged)  # past the target: not kept
    assert summary["tokens_out_by_stage"]["judge"] > 0

    copy = tmp_path / "copy"
    shutil.copytree(run, copy, ignore=shutil.ignore_patterns("tasks.jsonl", "rejected.jsonl", "summary.json"))
    resume(copy, api_key="sk-test-key", base_url="http://127.0.0.1:9/v1")  # a request would fail
    for name in ("tasks.jsonl", "rejected.jsonl", "responses.jsonl"):
        assert (copy / name).read_bytes() == (run / name).read_bytes(), name


def test_judge_without_min_score_keeps_every_task_with_its_score(tmp_path):
    with ScriptedServer(Chatty()) as server:
        generate(Config(mode="alpaca", lang="en", num_instructions=24, base_url=server.base_url, api_key="sk-test-key",
                        model="stub-model", output=tmp_path / "run", concurrency=1, judge=True))
    tasks = read(tmp_path / "run" / "tasks.jsonl")
    assert {t["judge"]["score"] for t in tasks} == {None, 1, 3, 4, 5}  # no --min-score: low and unscored are kept


def test_a_judge_of_its_own_endpoint_and_model(tmp_path):
    with ScriptedServer(FakeModel()) as server, ScriptedServer(FakeModel()) as judge_server:
        config = Config(mode="alpaca", lang="en", num_instructions=6, base_url=server.base_url, api_key="sk-test-key",
                        model="stub-model", output=tmp_path / "run", concurrency=1, judge=True,
                        judge_model="judge-model", judge_base_url=judge_server.base_url,
                        judge_api_key="sk-judge-secret", price_in=1.0, price_out=2.0)
        lines = []
        summary = generate(config, notify=lines.append)
        main, judging = server.requests, judge_server.requests
        first_line = (f"endpoint: {server.base_url}, model stub-model (chat API); judge: model judge-model at "
                      f"{judge_server.base_url}")
    assert main and all(not r.prompt.rstrip().endswith("Score:") for r in main)
    assert judging and all(r.prompt.rstrip().endswith("Score:") and r.body["model"] == "judge-model" for r in judging)
    assert {r.headers["authorization"] for r in judging} == {"Bearer sk-judge-secret"}
    assert {r.headers["authorization"] for r in main} == {"Bearer sk-test-key"}
    assert lines[0].startswith(first_line)
    assert summary["requests_by_stage"]["judge"] == len(judging)
    # --price-in/--price-out price the run's model; the judge's own endpoint is on this machine: free.
    assert summary["cost_usd_by_stage"]["judge"] == 0 < summary["cost_usd_by_stage"]["alpaca"] == summary["cost_usd"]
    for path in (tmp_path / "run").rglob("*"):
        assert "sk-judge-secret" not in path.read_text(encoding="utf-8", errors="replace"), path


@pytest.mark.parametrize("settings, message", [
    ({"min_score": 4}, "--min-score needs --judge, which is off"),
    ({"judge_model": "m", "judge_api_key": "k"}, "--judge-model, --judge-api-key needs --judge"),
    ({"judge": True, "min_score": 6}, "min-score must be from 1 to 5, got 6"),
    ({"judge": True, "judge_base_url": "ftp://x"}, "judge-base-url must be an http:// or https:// URL"),
])
def test_judge_settings_are_checked(settings, message):
    with pytest.raises(ConfigError, match=message):
        Config(**settings)


@pytest.mark.parametrize("answer, score, reason", [
    (" 4\nReason: Clear and correct.", 4, "Clear and correct"),
    ("Score: 5/5 - an excellent answer.", 5, "an excellent answer"),
    ("**Score:** 3\n**Reason:** vague", 3, "vague"),
    ("评分：4分\n理由：指令清楚，回答正确。", 4, "指令清楚，回答正确"),
    ("I would rate this 2 out of 5 because the answer is brief.", 2, "the answer is brief"),
    ("3分，回答基本正确但不够完整。", 3, "回答基本正确但不够完整"),
    ("The response is great.", None, "The response is great."),
    ("Rating: 10 out of 10", None, "Rating: 10 out of 10"),
    ("", None, ""),
])
def test_parse_score_reads_chat_answers(answer, score, reason):
    assert parse_score(answer) == (score, reason)
