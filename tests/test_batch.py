"""--batch: a run through the provider's Batch API (files, batches, polling) against the scripted batch
server, which answers through a batch exactly what it answers online (helpers.KeyedModel: the answer is a
function of the prompt, in the mixed styles of real chat models), and misbehaves as providers do."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess

import pytest
from batch_stub import BatchServer
from openai_stub import Reply

from helpers import KEY, SCRIPT, KeyedModel, read_jsonl, run_config, wait_for
from selfinstruct import RunStopped, generate
from selfinstruct.endpoint.client import FatalAPIError

pytestmark = pytest.mark.slow  # every test runs a whole run through batches


def batch_config(server, tmp_path, name="run", **overrides):
    values = dict(lang="en", num_instructions=24, output=tmp_path / name, model="gpt-4o-mini", batch=True,
                  requests_per_round=4)
    values.update(overrides)
    return run_config(server, tmp_path, **values)


def online_requests(server) -> int:
    return server.count(lambda r: r.path.startswith("/v1/chat") or r.path.startswith("/v1/completions"))


def batch_events(run_dir, event=None) -> list[dict]:
    return [r for r in read_jsonl(run_dir / "batches.jsonl") if event is None or r["event"] == event]


def answered_twice(server) -> list[str]:
    keys = [r.key for r in server.requests if r.path.startswith("batch:")]
    return sorted({key for key in keys if keys.count(key) > 1})


@pytest.mark.parametrize("mode, judge", [("alpaca", False), ("self-instruct", False), ("evol", False),
                                         ("self-instruct", True)])
def test_a_batch_run_gives_the_online_runs_tasks(tmp_path, mode, judge):
    """The same answers through batches and one by one: tasks.jsonl and rejected.jsonl byte for byte."""
    extra = dict(mode=mode, judge=judge, min_score=3 if judge else None)
    with BatchServer(KeyedModel()) as online:
        generate(batch_config(online, tmp_path, "online", batch=False, **extra))
    with BatchServer(KeyedModel()) as server:
        summary = generate(batch_config(server, tmp_path, "batched", **extra))
        assert online_requests(server) == 0 and server.creates >= 2  # every request went in a batch
        assert answered_twice(server) == []
    assert summary["complete"] and summary["accepted"] == 24
    for name in ("tasks.jsonl", "rejected.jsonl"):
        assert (tmp_path / "batched" / name).read_bytes() == (tmp_path / "online" / name).read_bytes(), name
    ended = batch_events(tmp_path / "batched", "ended")
    assert len(ended) == server.creates and {e["status"] for e in ended} == {"completed"}
    for event in batch_events(tmp_path / "batched", "input"):  # each batch's files are kept in the run
        assert (tmp_path / "batched" / "batches" / f"{event['name']}.input.jsonl").is_file()
        assert (tmp_path / "batched" / "batches" / f"{event['name']}.output.jsonl").is_file()


def test_an_expired_batch_keeps_its_answers_and_sends_only_the_rest(tmp_path):
    with BatchServer(KeyedModel()) as online:
        generate(batch_config(online, tmp_path, "online", batch=False, mode="alpaca"))
    notes = []
    with BatchServer(KeyedModel(), expire_after=2) as server:
        generate(batch_config(server, tmp_path, "batched", mode="alpaca"), notify=notes.append)
        assert answered_twice(server) == []  # the two answered before it expired were not asked again
    first = batch_events(tmp_path / "batched", "ended")[0]
    assert first["status"] == "expired"
    assert any(line.startswith("batch 00001: expired") for line in notes), notes
    assert (tmp_path / "batched" / "tasks.jsonl").read_bytes() == (tmp_path / "online" / "tasks.jsonl").read_bytes()


def test_failed_lines_are_counted_failures_and_the_run_goes_on(tmp_path):
    keyed = KeyedModel()

    def some_fail(request):
        if request.path.startswith("batch:") and hashlib.sha256(request.key.encode()).digest()[0] % 5 == 0:
            return Reply(status=500, text="the model is overloaded")
        return keyed(request)

    with BatchServer(some_fail) as server:
        summary = generate(batch_config(server, tmp_path, mode="alpaca", num_instructions=40))
    failed = [r for r in read_jsonl(tmp_path / "run" / "responses.jsonl") if r["error"]]
    assert failed and {r["error"] for r in failed} == {"http_500"}
    assert all("overloaded" in r["detail"] for r in failed)
    assert summary["complete"] and summary["failed_requests_by_reason"] == {"http_500": len(failed)}


def test_answers_missing_from_a_completed_batch_are_failures_not_paid_again(tmp_path):
    with BatchServer(KeyedModel(), omit_lines=2) as server:
        summary = generate(batch_config(server, tmp_path, mode="alpaca", num_instructions=40))
        assert answered_twice(server) == []
    assert summary["complete"] and summary["failed_requests_by_reason"] == {"missing_answer": 2}


@pytest.mark.timeout(120)
def test_a_batch_whose_answers_cannot_be_written_stops_the_run_in_one_line(tmp_path, monkeypatch):
    """A read-only file system under batches/ left the run waiting forever for a batch it had stopped
    following; now it stops: JournalError (exit 1) naming the file."""
    from selfinstruct.endpoint import batcher
    from selfinstruct.store.journal import JournalError

    real = batcher.write_atomic

    def read_only(path, text):
        if path.name.endswith(".output.jsonl"):
            raise OSError(30, "Read-only file system", str(path))
        real(path, text)

    monkeypatch.setattr(batcher, "write_atomic", read_only)
    with BatchServer(KeyedModel()) as server:
        with pytest.raises(JournalError, match=r"cannot write .*00001\.output\.jsonl: Read-only file system"):
            generate(batch_config(server, tmp_path, mode="alpaca"))


def test_an_input_file_over_the_providers_size_limit_is_split(tmp_path):
    notes = []
    with BatchServer(KeyedModel(), size_limit=6_000) as server:
        summary = generate(batch_config(server, tmp_path, mode="alpaca", num_instructions=60), notify=notes.append)
        assert server.refused_files >= 1
    assert summary["complete"]
    assert any("too large" in line and "two halves" in line for line in notes), notes
    refused = {e["name"] for e in batch_events(tmp_path / "run", "ended") if e["status"] == "refused"}
    assert len(refused) == server.refused_files
    sent = [e for e in batch_events(tmp_path / "run", "input") if e["name"] not in refused]
    assert sent and all(e["bytes"] <= 6_000 for e in sent)


def test_a_429_on_submit_waits_and_submits_again(tmp_path):
    notes = []
    with BatchServer(KeyedModel(), refuse_submits=2) as server:
        summary = generate(batch_config(server, tmp_path, mode="alpaca"), notify=notes.append)
        assert server.create_started == server.creates + 2
    assert summary["complete"]
    assert sum("could not submit a batch (429); trying again" in line for line in notes) == 2, notes


def test_a_lost_batch_is_sent_again(tmp_path):
    notes = []
    with BatchServer(KeyedModel(), lose=(2,)) as server:
        summary = generate(batch_config(server, tmp_path, mode="alpaca"), notify=notes.append)
    assert summary["complete"]
    assert any("is no longer known to the provider (404)" in line for line in notes), notes
    assert [e["status"] for e in batch_events(tmp_path / "run", "ended")].count("lost") == 1


def test_a_provider_that_loses_every_batch_stops_the_run(tmp_path):
    with BatchServer(KeyedModel(), lose=tuple(range(1, 100))) as server:
        with pytest.raises(RunStopped, match="lost 3 batches"):
            generate(batch_config(server, tmp_path, mode="alpaca"))
        assert server.creates == 3


def test_an_endpoint_without_a_batch_api_is_refused_before_anything_is_sent(tmp_path):
    from openai_stub import ScriptedServer

    with ScriptedServer(KeyedModel()) as server:  # chat only: /v1/batches is a 404
        with pytest.raises(FatalAPIError, match=r"has no Batch API .*drop --batch \(resume --no-batch\)"):
            generate(batch_config(server, tmp_path, mode="alpaca"))
        assert [r.path.split("?")[0] for r in server.requests] == ["/v1/batches"]  # one look, nothing sent
        with BatchServer(KeyedModel()) as runs:  # a judge elsewhere without one: said before the run pays
            with pytest.raises(FatalAPIError, match="has no Batch API"):
                generate(batch_config(runs, tmp_path, "judged", mode="alpaca", judge=True,
                                      judge_base_url=server.base_url, judge_model="stub-model"))
            assert runs.uploads == 0 and runs.creates == 0


def test_a_batch_is_submitted_only_if_its_worst_case_fits_the_budget(tmp_path):
    prices = dict(price_in=1.0, price_out=2.0)
    with BatchServer(KeyedModel()) as server:  # one request's worst case: ~500 tokens in, 1,024 out: ~$0.0025
        with pytest.raises(RunStopped, match="budget reached: max-cost .*worst case"):
            generate(batch_config(server, tmp_path, "poor", mode="alpaca", max_cost=0.002, **prices))
        assert server.creates == 0 and server.uploads == 0
        with pytest.raises(RunStopped, match=r"budget reached: max-cost .*worst case .*; 0 of \d+ sent"):
            generate(batch_config(server, tmp_path, "one", mode="alpaca", max_cost=0.004, **prices))
        # What fits goes; the rest wait for its answer, which frees its worst case, and go while they fit.
        assert server.creates >= 2 and server.batch_lines() == server.creates  # one at a time, at this budget
        spent = json.loads((tmp_path / "one" / "summary.json").read_text())["cost_usd"]
        assert 0 < spent <= 0.004
        with pytest.raises(RunStopped, match="budget reached: max-cost"):
            generate(batch_config(server, tmp_path, "some", mode="alpaca", num_instructions=200, max_cost=0.02,
                                  **prices))
        summary = json.loads((tmp_path / "some" / "summary.json").read_text())
        assert server.creates >= 1 and 0 < summary["cost_usd"] <= 0.02


def test_batch_prices_are_half_the_list_price():
    from selfinstruct.endpoint.pricing import price_for

    online = price_for("gpt-4o-mini", local=False, base_url="https://api.openai.com/v1")
    batch = price_for("gpt-4o-mini", local=False, base_url="https://api.openai.com/v1", batch=True)
    assert (batch.input, batch.output) == (online.input / 2, online.output / 2) and "batch price" in batch.source
    assert price_for("deepseek-chat", local=False, base_url="https://api.deepseek.com", batch=True) is None


def test_the_key_is_never_written(tmp_path):
    secret = "sk-batch-Secret-Key-93ab1c"
    with BatchServer(KeyedModel()) as server:
        generate(batch_config(server, tmp_path, mode="alpaca", api_key=secret))
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert secret not in path.read_text(errors="replace"), path


# -- processes killed and interrupted --------------------------------------------------------------


def cli(server, run_dir, *more):
    env = dict(os.environ, OPENAI_API_KEY=KEY)
    return subprocess.Popen([SCRIPT, "generate", "--lang", "en", "--mode", "alpaca", "-n", "24", "-o", str(run_dir),
                             "--base-url", server.base_url, "--model", "gpt-4o-mini", "--requests-per-round", "4",
                             "--batch", *more], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def resumed(run_dir, *more):
    env = dict(os.environ, OPENAI_API_KEY=KEY)
    return subprocess.run([SCRIPT, "resume", str(run_dir), "--quiet", *more], env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture
def uninterrupted(tmp_path):
    with BatchServer(KeyedModel()) as server:
        generate(batch_config(server, tmp_path, "uninterrupted", mode="alpaca"))
    return (tmp_path / "uninterrupted" / "tasks.jsonl").read_bytes()


@pytest.mark.parametrize("moment", ["upload", "submit", "polling"])
def test_kill_9_then_resume_follows_the_batch_instead_of_sending_it_again(tmp_path, uninterrupted, moment):
    delays = {"upload": dict(upload_delay=30), "submit": dict(create_delay=30),
              "polling": dict(line_delay=0.5)}[moment]
    with BatchServer(KeyedModel(), **delays) as server:
        run_dir = tmp_path / "run"
        process = cli(server, run_dir, "--quiet")
        ready = {"upload": lambda: server.upload_started >= 1, "submit": lambda: server.create_started >= 1,
                 "polling": lambda: any(b["status"] == "in_progress" for b in list(server.batches.values()))}[moment]
        wait_for(ready, timeout=60)
        process.kill()
        process.wait()
        server.upload_delay = server.create_delay = server.line_delay = 0
        done = resumed(run_dir)
        assert done.returncode == 0, done.stderr
        inputs = {e["name"] for e in batch_events(run_dir, "input")}
        # Every batch created was followed to its end: none was made twice for the same requests.
        assert server.creates == len({e["batch_id"] for e in batch_events(run_dir, "submitted")})
        assert answered_twice(server) == []
        if moment != "upload":
            assert "00001" in inputs and batch_events(run_dir, "submitted")[0]["name"] == "00001"
    assert (run_dir / "tasks.jsonl").read_bytes() == uninterrupted


def test_a_resume_at_another_endpoint_with_batches_in_flight_is_refused(tmp_path):
    """The batches at the first endpoint would be lost there (404 here) and paid for twice."""
    with BatchServer(KeyedModel(), line_delay=3) as slow, BatchServer(KeyedModel()) as other:
        run_dir = tmp_path / "run"
        process = cli(slow, run_dir, "--quiet")
        wait_for(lambda: any(b["status"] == "in_progress" for b in list(slow.batches.values())), timeout=60)
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=60)
        refused = resumed(run_dir, "--base-url", other.base_url)
        assert refused.returncode == 2, refused.stderr
        assert (f"has batch 00001 at {slow.base_url}, not at {other.base_url}: give --base-url {slow.base_url} "
                "again") in refused.stderr
        assert other.creates == 0 and other.uploads == 0


def test_ctrl_c_leaves_the_batches_running_and_cancel_batches_cancels_them(tmp_path, uninterrupted):
    with BatchServer(KeyedModel(), line_delay=3) as server:
        run_dir = tmp_path / "run"
        process = cli(server, run_dir, "--quiet")
        wait_for(lambda: any(b["status"] == "in_progress" for b in list(server.batches.values())), timeout=60)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
        assert process.returncode == 130, err
        assert "1 batch still at the provider (paid for)" in err and "--cancel-batches" in err, err
        assert "Traceback" not in err
        refused = subprocess.run([SCRIPT, "generate", "-o", str(run_dir), "--base-url", server.base_url,
                                  "--model", "gpt-4o-mini", "--lang", "en", "--mode", "alpaca", "-n", "24",
                                  "--requests-per-round", "4", "--quiet"], env=dict(os.environ, OPENAI_API_KEY=KEY),
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode == 2 and "--cancel-batches" in refused.stderr, refused.stderr
        cancelled = resumed(run_dir, "--cancel-batches")
        assert cancelled.returncode == 0, cancelled.stderr
        assert "cancelled 1 batch;" in cancelled.stdout
        assert [b["status"] for b in server.batches.values()] == ["cancelled"]
        server.line_delay = 0
        done = resumed(run_dir)
        assert done.returncode == 0, done.stderr
        assert answered_twice(server) == []  # what the cancelled batch answered was kept
    assert (run_dir / "tasks.jsonl").read_bytes() == uninterrupted


def test_filter_judge_through_batches_decides_as_online_and_asks_nothing_twice(tmp_path):
    from selfinstruct import filter_dataset
    from selfinstruct.generation.judge import JudgeOptions

    records = [{"instruction": instruction, "input": "", "output": "An answer that is long enough to keep."}
               for instruction in ("Explain why harbours freeze later than lakes.",
                                   "List three fruits that grow in an orchard.",
                                   "Describe how a glacier carves a valley.",
                                   "Suggest a practice plan for a beginner violinist.",
                                   "Write a riddle about a paper lantern.",
                                   "Compare a compass with a phone map for hiking.",
                                   "Name wildflowers found in an alpine meadow.",
                                   "Outline the steps to descale an electric kettle.")]
    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in records))
    outputs = {}
    for batch in (False, True):
        with BatchServer(KeyedModel()) as server:
            options = JudgeOptions(model="gpt-4o-mini", base_url=server.base_url, api_key="sk-test-key", min_score=3,
                                   directory=tmp_path / f"judge-{batch}", batch=batch)
            out = tmp_path / f"out-{batch}.jsonl"
            filter_dataset(source, out, judge=options)
            if batch:
                assert server.creates == 1 and server.batch_lines() == len(records) and online_requests(server) == 0
                filter_dataset(source, tmp_path / "again.jsonl", judge=options)
                assert server.creates == 1  # every answer was journaled: nothing is asked again
                assert (tmp_path / "again.jsonl").read_bytes() == out.read_bytes()
            outputs[batch] = out.read_bytes()
    assert outputs[True] == outputs[False]
    assert (tmp_path / "judge-True" / "batches.jsonl").is_file()


def test_the_dry_run_shows_the_batch_price_the_online_price_and_the_window(tmp_path, monkeypatch):
    from helpers import invoke

    monkeypatch.chdir(tmp_path)
    result = invoke("generate", "--dry-run", "--batch", "--api-key", "sk-dry-run", "--mode", "alpaca", "--lang", "en",
                    "-n", "5000")
    assert result.exit_code == 0, result.output
    assert re.search(r"price \$0\.075 in / \$0\.3 out per million tokens \(batch price: 50% of genai-prices "
                     r"[\d.]+: openai gpt-4o-mini\)", result.output), result.output
    cost = next(line for line in result.output.splitlines() if line.strip().startswith("cost"))
    batch, online = (float(x) for x in re.findall(r"\$([\d.]+)", cost))
    assert cost.strip().endswith("sent one by one)") and abs(online - 2 * batch) <= 0.011
    assert "each batch is answered within 24h" in result.output
    assert list(tmp_path.iterdir()) == []  # nothing written
    deepseek = invoke("generate", "--dry-run", "--batch", "--api-key", "sk-dry-run", "--base-url",
                      "https://api.deepseek.com", "--model", "deepseek-chat", "-n", "100")
    assert re.search(r"cost +unknown at batch prices: deepseek-chat has no known batch price \(its provider may "
                     r"have no Batch API; DeepSeek has none\); \$[\d.]+ sent one by one", deepseek.output), deepseek.output
