"""--dry-run sends nothing and writes nothing, shows each stage's first prompt and estimates the run."""

from __future__ import annotations

import math

import pytest
from helpers import KEY, common, invoke, read_jsonl, run_config
from selfinstruct import generate
from selfinstruct.generation.plan import plan


def test_a_dry_run_sends_nothing_and_writes_nothing(server, tmp_path):
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "-n", 1000, "--dry-run", "--price-in", 1,
                            "--price-out", 2))
    assert result.exit_code == 0, result.output
    assert server.count() == 0 and not (tmp_path / "run").exists()
    for stage in ("instructions", "classify", "instances", "instances_classification"):
        assert f"--- {stage}: the first prompt as sent" in result.output
    assert "Here is a list of tasks" in result.output and "estimate for 1,000 more tasks (rates: defaults)" in result.output
    assert "cost       $" in result.output


def test_the_first_prompt_is_exactly_the_one_a_run_sends(server, tmp_path):
    config = run_config(server, tmp_path, lang="zh", num_instructions=2, concurrency=1, requests_per_round=1)
    first = dict(plan(config).prompts)["instructions"]
    generate(config)
    assert server.requests[0].prompt == first


def test_an_existing_run_is_estimated_from_its_own_rates(server, tmp_path):
    config = run_config(server, tmp_path, lang="en", num_instructions=6, price_in=1.0, price_out=2.0)
    generate(config)
    sent = server.count()
    config.num_instructions = 12
    estimate = plan(config)
    assert server.count() == sent
    assert estimate.rates == f"measured in {tmp_path / 'run'}" and estimate.remaining == 6
    classify = sum(1 for r in read_jsonl(tmp_path / "run" / "responses.jsonl") if r["stage"] == "classify")
    assert estimate.requests["classify"] == math.ceil(6 * classify / 6) and estimate.cost > 0


def test_a_dry_run_on_a_run_started_with_other_settings_refuses_as_the_run_would(server, tmp_path):
    """It estimated a Chinese run with another model in an English run's directory, which the run itself
    refuses; now it says the same, exit 2, and writes nothing."""
    generate(run_config(server, tmp_path, lang="en", num_instructions=3))
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    result = invoke(*common(server, tmp_path / "run", "--lang", "zh", "-n", 10, "--dry-run"))
    assert result.exit_code == 2, result.output
    assert "was started with different settings:" in result.output and "lang: \"en\" -> \"zh\"" in result.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before


def test_alpaca_mode_and_an_unknown_price(server, tmp_path):
    result = invoke("generate", "--base-url", "https://llm.example.invalid/v1", "--api-key", KEY, "--model",
                    "my-model", "--mode", "alpaca", "-n", 50, "-o", tmp_path / "run", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "--- alpaca: the first prompt as sent" in result.output and "cost       unknown" in result.output


@pytest.mark.slow
def test_without_a_terminal_a_plain_progress_line_comes_every_10_seconds(server, fake_model, tmp_path):
    """Job logs (nohup, CI, a scheduler) get progress: stderr is a pipe here, so no bar but plain lines."""
    import os
    import subprocess
    import sys

    from openai_stub import Reply

    server.responder = lambda request: Reply(text=fake_model(request), delay=0.4)
    env = dict(os.environ, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.base_url)
    script = os.path.join(os.path.dirname(sys.executable), "selfinstruct")
    done = subprocess.run([script, "generate", "--lang", "en", "-n", "1000", "-o", "run", "--model", "stub-model",
                           "--concurrency", "2", "--max-requests", "60", "--price-in", "1", "--price-out", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 4, done.stderr
    lines = [line for line in done.stderr.splitlines() if " accepted " in line and " req/s" in line]
    assert len(lines) >= 1, done.stderr
    assert all("/1000 · " in line and "tokens " in line and "$" in line and "rejected " in line for line in lines)
