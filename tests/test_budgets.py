"""Cost is counted from each answer's usage, budgets stop a run (exit 4), and a resume with a higher
budget goes on without paying for anything twice."""

from __future__ import annotations

import json
import signal

import pytest
from openai_stub import Reply
from helpers import KEY, invoke, read_jsonl, run_config, start_cli, wait_for
from selfinstruct import RunStopped, generate, resume

PRICES = dict(price_in=2.0, price_out=8.0)  # USD per million tokens


def journaled_cost(run_dir) -> float:
    responses = read_jsonl(run_dir / "responses.jsonl")
    return sum(r["prompt_tokens"] * 2.0 + r["completion_tokens"] * 8.0 for r in responses) / 1e6


def test_cost_matches_the_prices_and_the_journaled_tokens(server, tmp_path):
    summary = generate(run_config(server, tmp_path, lang="en", num_instructions=6, **PRICES))
    responses = read_jsonl(tmp_path / "run" / "responses.jsonl")
    assert summary["tokens_in"] == sum(r["prompt_tokens"] for r in responses) > 0
    assert summary["cost_usd"] == pytest.approx(journaled_cost(tmp_path / "run"))
    by_stage = summary["cost_usd_by_stage"]
    assert set(by_stage) == {"instructions", "classify", "instances"}
    assert sum(by_stage.values()) == pytest.approx(summary["cost_usd"], abs=1e-5)
    assert summary["price_usd_per_million"] == {"input": 2.0, "output": 8.0, "source": "--price-in/--price-out"}


def test_a_local_endpoint_costs_nothing_and_an_unknown_model_has_no_cost(server, tmp_path):
    assert generate(run_config(server, tmp_path, lang="en", num_instructions=2))["cost_usd"] == 0


def test_missing_usage_is_estimated_and_marked(server, fake_model, tmp_path):
    server.responder = lambda request: Reply(text=fake_model(request), missing_usage=True)
    summary = generate(run_config(server, tmp_path, lang="en", num_instructions=3, **PRICES))
    responses = read_jsonl(tmp_path / "run" / "responses.jsonl")
    assert all(r["tokens_estimated"] for r in responses)
    assert summary["tokens_estimated_requests"] == len(responses) and summary["tokens_in"] > 0


def test_tokens_of_failed_and_retried_attempts_are_paid_for(server, fake_model, tmp_path):
    server.script(Reply(text="", prompt_tokens=1000, completion_tokens=0))  # empty: a failed request, billed
    summary = generate(run_config(server, tmp_path, lang="en", num_instructions=3, concurrency=1, **PRICES))
    failed = [r for r in read_jsonl(tmp_path / "run" / "responses.jsonl") if r["error"]]
    assert failed[0]["prompt_tokens"] == 1000
    assert summary["cost_usd"] == pytest.approx(journaled_cost(tmp_path / "run"))


@pytest.mark.parametrize("budget, value, higher", [
    ("max_requests", 10, 10_000),
    ("max_total_tokens", 3000, 10_000_000),
    ("max_cost", 0.01, 100.0),
])
def test_each_budget_stops_and_a_higher_one_continues(server, tmp_path, budget, value, higher):
    config = run_config(server, tmp_path, lang="en", num_instructions=30, concurrency=2, **PRICES,
                        **{budget: value})
    with pytest.raises(RunStopped) as raised:
        generate(config)
    flag = budget.replace("_", "-")
    assert f"budget reached: {flag}" in str(raised.value)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["stop_reason"] == str(raised.value) and summary["complete"] is False
    spent = {"max_requests": summary["requests"], "max_cost": summary["cost_usd"],
             "max_total_tokens": summary["tokens_in"] + summary["tokens_out"]}[budget]
    if budget == "max_requests":
        assert spent == value  # counted before sending: never more
    else:
        assert spent >= value  # reached; the overshoot is at most the requests in flight
        last_two = read_jsonl(tmp_path / "run" / "responses.jsonl")[-2:]
        one = sum(r["prompt_tokens"] * 2.0 + r["completion_tokens"] * 8.0 for r in last_two) / 1e6 \
            if budget == "max_cost" else sum(r["prompt_tokens"] + r["completion_tokens"] for r in last_two)
        assert spent - value <= one
    sent = len(server.requests)
    summary = resume(tmp_path / "run", api_key="sk-test-key", **{budget: higher})
    assert summary["complete"] is True and summary["accepted"] == 30
    keys = [r.key for r in server.requests]
    assert len(set(keys[sent:])) == len(keys[sent:]) and not set(keys[sent:]) & set(keys[:sent])


def test_max_cost_without_a_known_price_is_refused_before_anything_is_sent(server, tmp_path):
    result = invoke("generate", "--base-url", "https://llm.example.invalid/v1", "--api-key", KEY, "--model", "my-model",
                    "--lang", "en", "-o", tmp_path / "run", "--max-cost", 5)
    assert result.exit_code == 2 and "--price-in and --price-out" in result.output
    assert not (tmp_path / "run").exists()


def test_the_cli_names_the_budget_and_exits_4(server, tmp_path):
    result = invoke("generate", "--base-url", server.base_url, "--api-key", KEY, "--model", "stub-model",
                    "--lang", "en", "-n", 30, "-o", tmp_path / "run", "--quiet", "--max-requests", 5)
    assert result.exit_code == 4
    assert "stopped before the target: budget reached: max-requests 5" in result.output
    assert server.count() == 5


def _failing_first(server, fake_model, failures: int, status: int = 503):
    """Each distinct request fails ``failures`` times (retried), then the fake model answers it."""
    seen: dict[str, int] = {}

    def answer(request):
        seen[request.key] = seen.get(request.key, 0) + 1
        return Reply(status=status) if seen[request.key] <= failures else fake_model(request)

    server.responder = answer


def test_max_requests_counts_retried_500s_at_the_server(server, tmp_path):
    """--max-requests counts HTTP requests, retries included: the server never sees the 13th."""
    server.responder = lambda request: Reply(status=500)
    config = run_config(server, tmp_path, lang="en", num_instructions=30, concurrency=4, requests_per_round=4,
                        max_retries=5, max_requests=12)
    with pytest.raises(RunStopped, match="budget reached: max-requests 12"):
        generate(config)
    assert server.count() == 12
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["attempts"] == 12 and summary["requests"] < 12


def test_max_requests_counts_retried_timeouts_at_the_server(server, tmp_path):
    server.responder = lambda request: Reply(delay=1.0)
    config = run_config(server, tmp_path, lang="en", num_instructions=30, concurrency=4, requests_per_round=4,
                        max_retries=3, timeout=0.3, max_requests=4)
    with pytest.raises(RunStopped, match="budget reached: max-requests 4"):
        generate(config)
    assert server.count() <= 4


@pytest.mark.slow
def test_the_request_budget_holds_across_resumes_and_abandoned_requests_are_sent_again(server, fake_model, tmp_path):
    """Requests still retrying when the budget is reached are journaled as abandoned: their attempts count
    on resume, they are not failures of the data, and a resume with a higher budget sends them again."""
    _failing_first(server, fake_model, failures=2)
    config = run_config(server, tmp_path, lang="en", num_instructions=8, concurrency=4, requests_per_round=4,
                        max_requests=10)
    with pytest.raises(RunStopped, match="budget reached: max-requests 10"):
        generate(config)
    assert server.count() <= 10
    responses = read_jsonl(tmp_path / "run" / "responses.jsonl")
    abandoned = [r for r in responses if r["error"] == "abandoned"]
    assert abandoned  # four requests of three attempts each do not fit in ten
    assert sum(r["attempts"] for r in responses) == server.count()
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["attempts"] == server.count() and "abandoned" not in summary["failed_requests_by_reason"]

    with pytest.raises(RunStopped, match="budget reached: max-requests 10"):
        resume(tmp_path / "run", api_key="sk-test-key")  # the same budget: spent already
    assert server.count() == summary["attempts"]

    summary = resume(tmp_path / "run", api_key="sk-test-key", max_requests=200)
    assert summary["complete"] is True and server.count() <= summary["attempts"] <= 200  # cancelled ones count too
    responses = read_jsonl(tmp_path / "run" / "responses.jsonl")
    answered = {r["slot"] for r in responses if r["error"] is None}
    assert {r["slot"] for r in abandoned} <= answered
    assert "abandoned" not in summary["failed_requests_by_reason"]
    assert all(r["attempts"] == 1 + sum(r.get("retries", {}).values()) for r in responses if r["error"] != "abandoned")


@pytest.mark.slow
def test_requests_in_flight_at_an_interrupt_count_on_resume(server, fake_model, tmp_path):
    """SIGTERM cancels the requests in flight: they reached the server, so they are journaled as abandoned
    with their attempts, and the resumed run's budget counts them (the server sees at most N in all)."""
    server.responder = lambda request: Reply(text=fake_model(request), delay=20)
    process = start_cli(server, tmp_path / "run", "--concurrency", "4", "--requests-per-round", "4",
                        "--max-requests", "6", n=30)
    wait_for(lambda: server.count() >= 4)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=30) == 143
    responses = read_jsonl(tmp_path / "run" / "responses.jsonl")
    assert {r["error"] for r in responses} == {"abandoned"} and sum(r["attempts"] for r in responses) == 4
    server.responder = fake_model
    result = invoke("resume", tmp_path / "run", "--quiet", "--api-key", KEY)
    assert result.exit_code == 4 and "budget reached: max-requests 6" in result.output
    assert server.count() == 6
