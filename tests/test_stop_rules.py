"""A run that cannot progress ends by itself, resumably, with exit code 4 and the reason.

The bound the README states: with default settings a stalled `-n 5` run ends within
STALLED_BOUND requests (10 idle rounds of at most 8 instruction requests plus 2 requests
for each of at most 2 x 5 candidates), whatever the endpoint does.
"""

from __future__ import annotations

import json
import time

import pytest
from openai_stub import Reply
from helpers import KEY, invoke, run_config
from selfinstruct import RunStopped, generate, resume
from selfinstruct.endpoint.client import FatalAPIError

STALLED_BOUND = 10 * (8 + 2 * 2 * 5)  # 280: the figure in the README


def stalled(server, tmp_path, **overrides):
    values = dict(lang="en", num_instructions=5, requests_per_round=8, concurrency=8, max_retries=1)
    values.update(overrides)
    config = run_config(server, tmp_path, **values)
    with pytest.raises(RunStopped) as raised:
        generate(config)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == str(raised.value)
    assert summary["complete"] is False
    assert server.count(lambda r: r.endpoint in ("chat", "completion")) <= STALLED_BOUND
    return str(raised.value), summary


@pytest.mark.parametrize("answer", [
    "Task 9: Write a poem about the sea.\nTask 10: Write a poem about the sea.",  # the same answer forever
    "lorem ipsum dolor sit amet",  # nonsense forever
])
def test_answers_that_never_add_a_task_stop_after_idle_rounds(server, tmp_path, answer):
    server.responder = lambda request: answer
    reason, summary = stalled(server, tmp_path)
    assert "10 rounds in a row accepted nothing" in reason
    assert summary["accepted"] == 0


def test_threshold_zero_stops_after_idle_rounds(server, tmp_path):
    reason, _ = stalled(server, tmp_path, threshold=0.0)
    assert "rounds in a row accepted nothing" in reason


def test_empty_answers_stop_on_failures(server, tmp_path):
    server.responder = lambda request: Reply(text="")
    reason, summary = stalled(server, tmp_path)
    assert "of the last 20 requests failed (empty_content" in reason
    assert summary["failed_requests_by_reason"]["empty_content"] >= 18
    assert server.count() <= 20 + 8  # the window, plus what was in flight


def test_a_server_that_is_down_stops_on_failures(server, tmp_path):
    server.responder = lambda request: Reply(status=503)
    reason, summary = stalled(server, tmp_path)
    assert "http_503" in reason
    assert server.count() <= (20 + 8) * 2  # each request tried twice (max_retries=1)


def test_an_endpoint_that_dies_mid_run_keeps_retrying_then_stops_on_failures(server, fake_model, tmp_path):
    """An endpoint that has answered is not unreachable when it goes away: its requests are retried, and the
    failure rule stops the run (an unreachable endpoint stops at once: test_unreachable.py)."""
    import threading

    server.responder = fake_model
    stopper = threading.Thread(target=lambda: (wait_until(lambda: server.count() >= 4), server.stop()), daemon=True)
    stopper.start()
    with pytest.raises(RunStopped, match=r"of the last 20 requests failed \(connection_error"):
        generate(run_config(server, tmp_path, lang="en", num_instructions=200, max_retries=1, retry_wait=0.01))
    stopper.join()


def wait_until(predicate, timeout=60.0):
    deadline = time.monotonic() + timeout
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.01)


def test_a_stopped_run_resumes_without_paying_twice(server, fake_model, tmp_path):
    server.responder = lambda request: Reply(text="")
    stalled(server, tmp_path)
    journaled = server.count()
    server.responder = fake_model
    summary = resume(tmp_path / "run", api_key="sk-test-key", base_url=server.base_url)
    assert summary["complete"] is True and summary["accepted"] == 5 and summary["stop_reason"] is None
    assert len({r.key for r in server.requests[journaled:]}) == len(server.requests[journaled:])


def test_the_cli_exits_4_with_the_reason_and_a_resume_hint(server, tmp_path):
    server.responder = lambda request: "nothing useful"
    result = invoke("generate", "--base-url", server.base_url, "--api-key", KEY, "--model", "stub-model",
                    "--lang", "en", "-n", 5, "-o", tmp_path / "run", "--quiet", "--max-idle-rounds", 2)
    assert result.exit_code == 4, result.output
    assert "stopped before the target: 2 rounds in a row accepted nothing" in result.output
    assert f"selfinstruct resume {tmp_path / 'run'}" in result.output
    assert "Traceback" not in result.output
    assert server.count() <= 2 * 8


def test_stop_rules_can_be_turned_off_and_changed_on_resume(server, tmp_path):
    server.responder = lambda request: "nothing useful"
    config = run_config(server, tmp_path, lang="en", num_instructions=5, max_idle_rounds=1)
    with pytest.raises(RunStopped):
        generate(config)
    first = server.count()
    with pytest.raises(RunStopped):
        resume(tmp_path / "run", api_key="sk-test-key", max_idle_rounds=3)
    assert server.count() - first == 3 * config.requests_per_round


def test_a_refusal_of_one_request_is_that_requests_failure(server, fake_model, tmp_path):
    """A 400 on one stage (a provider's content filter, a prompt too long) fails that request, not the run."""
    def refuse_some(request):
        if request.prompt.rstrip().endswith("Classification:") and "case 3" in request.prompt:
            return Reply(status=400, text="Your request was rejected as a result of our safety system.")
        return fake_model(request)

    server.responder = refuse_some
    summary = generate(run_config(server, tmp_path, lang="en", num_instructions=8, concurrency=1))
    assert summary["accepted"] == 8
    assert summary["failed_requests_by_reason"] == {"http_400": 1}
    assert summary["rejected_by_reason"]["request_failed:http_400"] == 1
    refused = [json.loads(line) for line in (tmp_path / "run" / "responses.jsonl").read_text().splitlines()
               if '"http_400"' in line]
    assert len(refused) == 1 and "safety system" in refused[0]["detail"]
    sent = server.count()
    generate(run_config(server, tmp_path, lang="en", num_instructions=8, concurrency=1))
    assert server.count() == sent  # the refused request is journaled: a resume does not send it again


@pytest.mark.parametrize("status", [400, 413, 422])
def test_refusal_of_every_first_request_stops_with_the_endpoints_message(server, tmp_path, status):
    server.responder = lambda request: Reply(status=status, text="max_tokens is too large for this model")
    with pytest.raises(FatalAPIError, match="max_tokens is too large"):
        generate(run_config(server, tmp_path, lang="en", concurrency=1, requests_per_round=1))
    assert server.count() == 3
    assert (tmp_path / "run" / "responses.jsonl").read_text() == ""  # nothing journaled: fix and resume


def test_requests_retrying_when_the_run_stops_are_abandoned(server, tmp_path):
    """A stop rule fires while other requests wait to retry: they stop at once, journaled as abandoned (their
    attempts were sent) but not as failures, and a resume sends them again."""
    def answer(request):
        if request.body["messages"][0]["content"].count("Task") and server.count() == 1:
            return Reply(text="")  # the first request fails for good at once
        return Reply(status=503)  # the others would retry for ~19 s

    server.responder = answer
    config = run_config(server, tmp_path, lang="en", num_instructions=5, concurrency=4, requests_per_round=4,
                        max_retries=6, retry_wait=0.3, failure_window=1, max_failure_share=1.0)
    started = time.monotonic()
    with pytest.raises(RunStopped, match="empty_content"):
        generate(config)
    assert time.monotonic() - started < 5
    journaled = [json.loads(line) for line in (tmp_path / "run" / "responses.jsonl").read_text().splitlines()]
    answered = [r for r in journaled if r["error"] != "abandoned"]
    assert len(answered) == 1 and answered[0]["error"] == "empty_content"
    assert sum(r["attempts"] for r in journaled) == server.count()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["failed_requests_by_reason"] == {"empty_content": 1} and summary["attempts"] == server.count()
    server.responder = lambda request: ""
    sent = server.count()
    with pytest.raises(RunStopped, match="empty_content"):
        generate(config)
    resent, abandoned = {r.prompt for r in server.requests[sent:]}, {r.prompt for r in server.requests[1:sent]}
    assert resent and resent <= abandoned and server.requests[0].prompt not in resent


def test_a_refused_run_says_why_in_its_summary(server, tmp_path):
    server.responder = lambda request: Reply(status=401, text="bad key")
    with pytest.raises(FatalAPIError):
        generate(run_config(server, tmp_path, lang="en"))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"].startswith("the endpoint refused the run: 401")
