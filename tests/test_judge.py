"""`--judge` and `--min-score` against the scripted server, in every method: scores in each task,
`low_score` rejections, journaled judgements that a resume does not pay for again, and a judge on an
endpoint and model of its own."""

from __future__ import annotations

import json

import pytest

from fake_model import FakeModel
from openai_stub import ScriptedServer
from helpers import ChattyJudge, assert_replays_without_requests
from selfinstruct import Config, generate
from selfinstruct.config import ConfigError
from selfinstruct.generation.judge import parse_score


def read(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("mode, lang, api", [("self-instruct", "en", "chat"), ("alpaca", "zh", "completion"),
                                             ("evol", "en", "completion")])
@pytest.mark.slow
def test_judge_scores_every_task_and_min_score_rejects(tmp_path, mode, lang, api):
    run = tmp_path / "run"
    with ScriptedServer(ChattyJudge()) as server:
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

    assert_replays_without_requests(run, tmp_path / "copy")


def test_judge_without_min_score_keeps_every_task_with_its_score(tmp_path):
    with ScriptedServer(ChattyJudge()) as server:
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


def test_a_judges_own_price_for_a_budget(tmp_path):
    """--max-cost with a judge model of unknown price asked for --price-in and --price-out, which were given and
    price the run's model only: the judge has --judge-price-in/--judge-price-out, shown on the first line."""
    with ScriptedServer(FakeModel()) as server:
        values = dict(mode="alpaca", lang="en", num_instructions=4, base_url="https://llm.example.invalid/v1",
                      api_key="sk-test-key", model="gpt-4o-mini", output=tmp_path / "run", judge=True,
                      judge_model="some-unknown-model", price_in=1.0, price_out=2.0, max_cost=5.0)
        with pytest.raises(ConfigError, match="price of some-unknown-model's tokens, which is not known: pass "
                                              "--judge-price-in and --judge-price-out"):
            generate(Config(**values))
        values.update(base_url=server.base_url, judge_price_in=3.0, judge_price_out=4.0)
        lines = []
        summary = generate(Config(**values), notify=lines.append)
    assert lines[0].endswith("; price $1 in / $2 out per million tokens (--price-in/--price-out); judge price $3 in / "
                             "$4 out per million tokens (--price-in/--price-out)")
    judged = summary["tokens_in_by_stage"]["judge"] * 3.0 + summary["tokens_out_by_stage"]["judge"] * 4.0
    assert summary["cost_usd_by_stage"]["judge"] == pytest.approx(judged / 1e6, abs=1e-6)
    with pytest.raises(ConfigError, match="--judge-price-in needs --judge, which is off"):
        Config(judge_price_in=1.0)


def test_resume_asks_again_for_a_judge_url_that_held_credentials(tmp_path):
    from selfinstruct.generation.session import resume_config

    with ScriptedServer(FakeModel()) as server, ScriptedServer(FakeModel()) as judge_server:
        secret_url = judge_server.base_url.replace("http://", "http://user:s3cret-pass@")
        generate(Config(mode="alpaca", lang="en", num_instructions=2, base_url=server.base_url, api_key="sk-test-key",
                        model="stub-model", output=tmp_path / "run", concurrency=1, judge=True,
                        judge_base_url=secret_url))
        assert "s3cret-pass" not in (tmp_path / "run" / "config.json").read_text()
        with pytest.raises(ConfigError, match="judge base URL .* held credentials, which are never stored; pass "
                                              "--judge-base-url again"):
            resume_config(tmp_path / "run", api_key="sk-test-key")
        assert resume_config(tmp_path / "run", judge_base_url=secret_url).judge_base_url == secret_url


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
    # A score on another scale is refused, never read as out of 5.
    ("Score: 5/10", None, "Score: 5/10"),
    ("**Score:** 4 / 10\nReason: vague", None, "**Score:** 4 / 10\nReason: vague"),
    ("I would rate this 3 out of 10.", None, "I would rate this 3 out of 10."),
    ("On a scale of 1-10, this gets a 5.", None, "On a scale of 1-10, this gets a 5."),
    ("满分10分，评分：5分。", None, "满分10分，评分：5分。"),
    ("评分：4/10", None, "评分：4/10"),
    ("Score: 4 out of 5. Reason: fine.", 4, "fine"),
    ("", None, ""),
])
def test_parse_score_reads_chat_answers(answer, score, reason):
    assert parse_score(answer) == (score, reason)


# `filter --judge`: an existing dataset scored the same way, resumably.
RECORDS = [{"instruction": text, "input": "", "output": "An answer."} for text in (
    "Explain why harbours freeze later than lakes.", "List three fruits that grow in an orchard.",
    "Describe how a glacier carves a valley.", "Suggest a practice plan for a beginner violinist.",
    "Write a riddle about a paper lantern.", "Compare a compass with a phone map for hiking.",
    "Name wildflowers found in an alpine meadow.", "Summarise how a tunnel boring machine works.",
    "Give tips for glazing pottery at home.", "Outline the steps to descale an electric kettle.")]


def test_filter_judge_scores_kept_records_and_resumes_from_its_journal(tmp_path):
    from selfinstruct import filter_dataset
    from selfinstruct.generation.judge import JudgeOptions

    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS + [RECORDS[0]]))  # the last one: a duplicate
    outputs = []
    with ScriptedServer(FakeModel()) as server:
        options = JudgeOptions(model="stub-model", base_url=server.base_url, api_key="sk-judge-secret", min_score=3)
        for attempt in range(2):
            out = tmp_path / f"scored{attempt}.jsonl"
            report = filter_dataset(source, out, judge=options, overwrite=True)
            outputs.append((out.read_bytes(), out.with_name(out.stem + ".dropped.jsonl").read_bytes(), report))
            options.directory = tmp_path / "scored0.judge"  # the second run: the first run's journal
        judged = [r for r in server.requests if r.prompt.rstrip().endswith("Score:")]
    assert len(judged) == 10  # the duplicate is dropped before judging; the second run asks nothing
    kept = [json.loads(line) for line in outputs[0][0].decode().splitlines()]
    dropped = [json.loads(line) for line in outputs[0][1].decode().splitlines()]
    assert kept and all(r["judge"]["score"] >= 3 and r["judge"]["reason"] for r in kept)
    assert [{k: v for k, v in r.items() if k != "judge"} for r in kept] == [
        r for r in RECORDS if r["instruction"] in {k["instruction"] for k in kept}]
    low = [d for d in dropped if d["reason"] == "low_score"]
    assert low and all(d["score"] < 3 and d["judge_reason"] and d["record"] in RECORDS for d in low)
    assert outputs[0][2].dropped == {"low_score": len(low), "duplicate": 1}
    assert outputs[1][:2] == outputs[0][:2]
    assert (tmp_path / "scored0.judge" / "responses.jsonl").exists()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert "sk-judge-secret" not in path.read_text(encoding="utf-8", errors="replace"), path


def test_filter_judge_reads_a_journal_written_before_the_ledger(tmp_path):
    """Judge journals of earlier releases hold only key, record, text and tokens: their answers are
    still answers, so filtering again asks for nothing and decides the same."""
    from selfinstruct import filter_dataset
    from selfinstruct.generation.judge import JudgeOptions

    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    with ScriptedServer(FakeModel()) as server:
        options = JudgeOptions(model="stub-model", base_url=server.base_url, api_key="sk-test-key", min_score=3,
                               directory=tmp_path / "judge")
        (tmp_path / "judge").mkdir()
        filter_dataset(source, tmp_path / "first.jsonl", judge=options)
        journal = tmp_path / "judge" / "responses.jsonl"
        lines = read(journal)
        assert len(lines) == len(RECORDS) and all(line["stage"] == "judge" and line["error"] is None for line in lines)
        journal.write_text("".join(json.dumps({k: line[k] for k in ("key", "record", "text", "prompt_tokens",
                                                                       "completion_tokens")}) + "\n"
                                   for line in lines))
        asked = len(server.requests)
        filter_dataset(source, tmp_path / "again.jsonl", judge=options)
        assert len(server.requests) == asked
    assert (tmp_path / "again.jsonl").read_bytes() == (tmp_path / "first.jsonl").read_bytes()


def test_filter_judge_on_the_command_line(tmp_path):
    from openai_stub import Reply
    from typer.testing import CliRunner

    from selfinstruct.cli import app

    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS[:3]))
    runner = CliRunner()
    result = runner.invoke(app, ["filter", str(source), "-o", str(tmp_path / "out.jsonl"), "--min-score", "3"])
    assert result.exit_code == 2 and result.output.strip().splitlines()[-1] == "error: --min-score needs --judge, which is off"
    with ScriptedServer(lambda request: Reply("invalid key", status=401)) as refusing:
        result = runner.invoke(app, ["filter", str(source), "-o", str(tmp_path / "out.jsonl"), "--judge",
                                     "--judge-base-url", refusing.base_url, "--judge-api-key", "sk-bad-secret",
                                     "--judge-model", "stub-model"])
    assert result.exit_code == 3, result.output
    assert "the judge's endpoint refused the request" in result.output and "--judge-api-key" in result.output
    assert "sk-bad-secret" not in result.output
    assert "Traceback" not in result.output and not (tmp_path / "out.jsonl").exists()
    with ScriptedServer(FakeModel()) as server:
        result = runner.invoke(app, ["filter", str(source), "-o", str(tmp_path / "out.jsonl"), "--judge",
                                     "--judge-base-url", server.base_url, "--judge-api-key", "sk-test-key",
                                     "--judge-model", "stub-model", "--quiet"])
        line = f"judge: {server.base_url}, model stub-model (chat API); answers journaled in"
    assert result.exit_code == 0, result.output
    assert line in result.output
    assert all("judge" in json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines())


def test_the_runs_key_never_goes_to_another_judge_host(tmp_path):
    """Without --judge-api-key, a judge on another host (here: another port) gets no key at all."""
    with ScriptedServer(FakeModel()) as server, ScriptedServer(FakeModel()) as judge_server:
        generate(Config(mode="alpaca", lang="en", num_instructions=2, base_url=server.base_url, api_key="sk-run-key",
                        model="stub-model", output=tmp_path / "run", concurrency=1, judge=True,
                        judge_base_url=judge_server.base_url))
        sent = {r.headers.get("authorization") for r in judge_server.requests}
    assert sent and not any("sk-run-key" in (header or "") for header in sent)


def _judge_cli(*args):
    from typer.testing import CliRunner

    from selfinstruct.cli import app

    return CliRunner().invoke(app, ["filter", *map(str, args)])


def test_filter_judge_goes_on_past_a_refused_record_and_asks_for_it_again(tmp_path):
    from openai_stub import Reply

    model = FakeModel()

    def refuse_the_glacier(request):
        if "glacier" in request.prompt.rsplit("Instruction:", 1)[1]:
            return Reply("this model's maximum context length is exceeded", status=400)
        return model(request)

    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in RECORDS))
    with ScriptedServer(refuse_the_glacier) as server:
        common = ["--judge", "--judge-base-url", server.base_url, "--judge-api-key", "sk-test-key", "--judge-model",
                  "stub-model", "--quiet", "--judge-dir", tmp_path / "judge"]
        kept_all = _judge_cli(source, "-o", tmp_path / "all.jsonl", *common)
        asked = len(server.requests)
        strict = _judge_cli(source, "-o", tmp_path / "strict.jsonl", "--min-score", "1", *common)
        asked_again = len(server.requests) - asked
    assert kept_all.exit_code == 0 and strict.exit_code == 0, kept_all.output + strict.output
    assert "1 requests failed (http_400 1): the same command asks for them again" in kept_all.output
    assert asked == 10 and asked_again == 1  # only the failed record is asked again
    glacier = [json.loads(line) for line in (tmp_path / "all.jsonl").read_text().splitlines() if "glacier" in line]
    assert glacier[0]["judge"]["score"] is None and glacier[0]["judge"]["error"].startswith("http_400")
    dropped = [json.loads(line) for line in (tmp_path / "strict.dropped.jsonl").read_text().splitlines()]
    assert [d["reason"] for d in dropped] == ["judge_failed"] and "glacier" in dropped[0]["record"]["instruction"]


def test_filter_judge_stops_when_nearly_every_request_fails(tmp_path):
    from openai_stub import Reply

    source = tmp_path / "data.jsonl"
    source.write_text("".join(json.dumps({"instruction": f"Write a haiku about the number {n} {'x' * n}.",
                                          "output": "A haiku."}) + "\n" for n in range(30)))
    with ScriptedServer(lambda request: Reply("bad request", status=400)) as server:
        result = _judge_cli(source, "-o", tmp_path / "out.jsonl", "--threshold", "1", "--judge", "--judge-base-url",
                            server.base_url, "--judge-api-key", "sk-test-key", "--judge-model", "m", "--quiet")
    assert result.exit_code == 1, result.output
    assert result.output.strip().splitlines()[-1].startswith("error: 20 of the judge's last 20 requests failed (http_400")
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.parametrize("where, message", [
    ("file", "--judge-dir is a file; give a directory"),
    ("run", "is a run's directory; give the judge a --judge-dir of its own"),
    ("missing/deeper", "is not an existing directory"),
])
def test_filter_judge_dir_is_checked_before_anything_is_written(tmp_path, where, message):
    source = tmp_path / "data.jsonl"
    source.write_text(json.dumps(RECORDS[0]) + "\n")
    (tmp_path / "file").write_text("x")
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text("{}")
    result = _judge_cli(source, "-o", tmp_path / "out.jsonl", "--judge", "--judge-dir", tmp_path / where,
                        "--judge-base-url", "http://127.0.0.1:9/v1", "--judge-model", "m")
    assert result.exit_code == 2 and message in result.output and not (tmp_path / "out.jsonl").exists()
    assert "Traceback" not in result.output


def test_a_journal_line_of_the_wrong_shape_is_a_damaged_line(tmp_path):
    from selfinstruct.generation.session import resume_config

    with ScriptedServer(FakeModel()) as server:
        generate(Config(mode="alpaca", lang="en", num_instructions=2, base_url=server.base_url, api_key="sk-test-key",
                        model="stub-model", output=tmp_path / "run", concurrency=1))
    with (tmp_path / "run" / "responses.jsonl").open("a") as journal:
        journal.write("{}\n")
    lines = len((tmp_path / "run" / "responses.jsonl").read_text().splitlines())
    from typer.testing import CliRunner

    from selfinstruct.cli import app

    result = CliRunner().invoke(app, ["resume", str(tmp_path / "run"), "-n", "3", "--api-key", "sk-test-key"])
    assert result.exit_code == 2, result.output
    assert f"responses.jsonl:{lines}: damaged journal line (not a record with slot, stage, text, error)" in result.output
    assert resume_config(tmp_path / "run").mode == "alpaca"
