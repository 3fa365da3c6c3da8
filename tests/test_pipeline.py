"""The real pipeline, through the real openai client, against the scripted server."""

from __future__ import annotations

import json

import pytest
from openai_stub import Reply
from helpers import assert_well_formed_run, read_jsonl, run_config

from selfinstruct import RunStopped, export_run, generate
from selfinstruct.endpoint.client import FatalAPIError
from selfinstruct.store.journal import Journal


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("api", ["chat", "completion"])
def test_self_instruct_mode_end_to_end(server, tmp_path, lang, api):
    from selfinstruct.formats.seeds import load_seed_tasks
    from selfinstruct.resources import default_seeds

    config = run_config(server, tmp_path, lang=lang, api=api)
    summary = generate(config)
    seeds = [t.instruction for t in load_seed_tasks(default_seeds(lang))]
    tasks, _, _ = assert_well_formed_run(tmp_path / "run", config, seeds)
    assert summary["accepted"] == 12
    assert any(t["is_classification"] for t in tasks) and not all(t["is_classification"] for t in tasks)
    labelled = [t for t in tasks if t["is_classification"]]
    assert labelled[0]["instances"][0]["output"] in ("正面", "负面", "Positive", "Negative")
    endpoints = {r.endpoint for r in server.requests}
    assert endpoints == {api}
    assert all(r.headers["authorization"] == "Bearer sk-test-key" for r in server.requests)
    if lang == "zh":
        assert all("任务" in r.prompt or "指令" in r.prompt or "输入" in r.prompt for r in server.requests)


@pytest.mark.parametrize("lang", ["zh", "en"])
@pytest.mark.parametrize("api", ["chat", "completion"])
def test_alpaca_mode_end_to_end(server, tmp_path, lang, api):
    config = run_config(server, tmp_path, lang=lang, api=api, mode="alpaca", num_instructions=10)
    generate(config)
    tasks, _, summary = assert_well_formed_run(tmp_path / "run", config)
    assert all(t["is_classification"] is None and len(t["instances"]) == 1 for t in tasks)
    assert set(summary["requests_by_stage"]) == {"alpaca"}
    path, count = export_run(tmp_path / "run")
    records = json.loads(path.read_text(encoding="utf-8"))
    assert count == len(records) == 10
    assert set(records[0]) == {"instruction", "input", "output"}


def test_export_writes_one_alpaca_record_per_instance(server, tmp_path):
    config = run_config(server, tmp_path, lang="en", num_instructions=5)
    generate(config)
    path, count = export_run(tmp_path / "run", "alpaca", tmp_path / "out.json")
    tasks = read_jsonl(tmp_path / "run" / "tasks.jsonl")
    records = json.loads(path.read_text())
    assert count == len(records) == sum(len(t["instances"]) for t in tasks)
    assert records[0]["instruction"] == tasks[0]["instruction"]
    assert records[0]["input"] == tasks[0]["instances"][0]["input"]
    seeds_path, seeds_count = export_run(tmp_path / "run", "seeds")
    from selfinstruct.formats.seeds import load_seed_tasks
    assert len(load_seed_tasks(seeds_path)) == seeds_count == 5


@pytest.mark.slow
def test_retries_transient_faults_then_succeeds(server, tmp_path):
    server.script(Reply(status=429, headers={"Retry-After": "0"}), Reply(status=500), Reply(status=502),
                  Reply(status=503), Reply(status=504))
    config = run_config(server, tmp_path, lang="en", num_instructions=4, concurrency=1)
    summary = generate(config)
    assert summary["accepted"] == 4
    assert summary["retries_by_reason"] == {"rate_limited": 1, "http_500": 1, "http_502": 1, "http_503": 1,
                                            "http_504": 1}
    assert summary["failed_requests_by_reason"] == {}


@pytest.mark.slow
def test_honours_retry_after(server, tmp_path):
    import time

    server.script(Reply(status=429, headers={"Retry-After": "1"}))
    config = run_config(server, tmp_path, lang="en", num_instructions=2, concurrency=1)
    started = time.monotonic()
    generate(config)
    keys = [r.key for r in server.requests]
    assert keys[0] in keys[1:]  # the refused request was sent again
    assert time.monotonic() - started >= 1.0


def test_gives_up_after_retry_budget_and_goes_on(server, tmp_path):
    server.script(*[Reply(status=503)] * 3)
    config = run_config(server, tmp_path, lang="en", num_instructions=4, concurrency=1, max_retries=2,
                        requests_per_round=1)
    summary = generate(config)
    assert summary["failed_requests_by_reason"] == {"http_503": 1}
    assert summary["accepted"] == 4
    failed = [r for r in read_jsonl(tmp_path / "run" / "responses.jsonl") if r["error"]]
    assert len(failed) == 1 and failed[0]["error"] == "http_503"


@pytest.mark.parametrize("status", [401, 402, 403, 404])  # 400, 413, 422: tests/test_stop_rules.py
def test_refusals_stop_the_run_at_once(server, tmp_path, status):
    server.responder = lambda request: Reply(status=status, text="nope: Incorrect API key provided: sk-test-key")
    config = run_config(server, tmp_path, lang="en")
    with pytest.raises(FatalAPIError) as raised:
        generate(config)
    assert str(status) in str(raised.value)
    assert "sk-test-key" not in str(raised.value)
    keys = [r.key for r in server.requests]
    assert len(keys) == len(set(keys)) <= 2 * config.requests_per_round  # no retries; a round and the next
    assert (tmp_path / "run" / "config.json").exists()


def test_cut_off_response_drops_its_last_item(server, fake_model, tmp_path):
    def cut_off(request):
        answer = fake_model(request)
        if "Here is a list of tasks" in request.prompt:
            return Reply(text=answer, finish_reason="length")
        return answer

    server.responder = cut_off
    config = run_config(server, tmp_path, lang="en", num_instructions=6)
    generate(config)
    rejected = read_jsonl(tmp_path / "run" / "rejected.jsonl")
    cut = [r for r in rejected if r["reason"] == "cut_off"]
    assert cut and all(r["instruction"].endswith(("case 5", "case 10", "case 15", "case 20", "case 25", "case 30",
                                                  "case 35", "case 40")) for r in cut)


def test_garbage_responses_are_counted_rejections(server, fake_model, tmp_path):
    calls = {"all": 0, "classify": 0, "instances": 0}  # counted per stage: the order of stages is the loop's

    def garbage(request):
        calls["all"] += 1
        if calls["all"] <= 2:
            return "<html>totally not a list</html>"
        if request.prompt.rstrip().endswith("Classification:"):
            calls["classify"] += 1
            if calls["classify"] % 4 == 0:
                return "perhaps?"
        if request.prompt.rstrip().endswith("Input:"):
            calls["instances"] += 1
            if calls["instances"] % 3 == 0:
                return "I cannot help with that."
        return fake_model(request)

    server.responder = garbage
    config = run_config(server, tmp_path, lang="en", num_instructions=6, concurrency=1)
    summary = generate(config)
    reasons = summary["rejected_by_reason"]
    assert reasons.get("unparseable_response") == 2
    assert reasons.get("unparseable_classification", 0) >= 1
    assert reasons.get("unparseable_instances", 0) >= 1
    assert summary["accepted"] == 6


def test_near_duplicates_are_rejected_as_too_similar(server, tmp_path):
    from selfinstruct.resources import default_seeds
    from selfinstruct.formats.seeds import load_seed_tasks

    seed = load_seed_tasks(default_seeds("zh"))[0].instruction

    def repeats(request):
        if "下面是人们请" in request.prompt:
            return f"任务7：{seed}\n任务8：{seed}"
        return "否"

    server.responder = repeats
    config = run_config(server, tmp_path, lang="zh", num_instructions=1, requests_per_round=1, max_idle_rounds=2)
    with pytest.raises(RunStopped):  # never reaches the target
        generate(config)
    rejected = read_jsonl(tmp_path / "run" / "rejected.jsonl")
    assert rejected and all(r["reason"] == "too_similar" for r in rejected)
    assert rejected[0]["most_similar"][0] == {"instruction": seed, "score": 1.0}


def test_same_seed_same_prompts(server, tmp_path):
    generate(run_config(server, tmp_path, lang="en", output=tmp_path / "a", num_instructions=4, concurrency=1))
    first = [r.prompt for r in server.requests if "Here is a list" in r.prompt]
    count = len(server.requests)
    generate(run_config(server, tmp_path, lang="en", output=tmp_path / "b", num_instructions=4, concurrency=1))
    second = [r.prompt for r in server.requests[count:] if "Here is a list" in r.prompt]
    assert first[:2] == second[:2]


def test_journaled_answers_are_not_requested_again(server, tmp_path):
    config = run_config(server, tmp_path, lang="en", num_instructions=4)
    generate(config)
    sent = server.count()
    journal = Journal(tmp_path / "run" / "responses.jsonl").read()
    assert len(journal) == sent
    summary = generate(run_config(server, tmp_path, lang="en", num_instructions=4))
    assert server.count() == sent  # complete: nothing new to ask
    assert summary["accepted"] == 4
