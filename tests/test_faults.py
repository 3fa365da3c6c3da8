"""Each fault the run must survive, counted, with journals intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from openai_stub import Reply
from helpers import read_jsonl, run_config
from selfinstruct import generate
from selfinstruct.endpoint.client import FatalAPIError
from selfinstruct.store.journal import Journal


def one_at_a_time(server, tmp_path, **overrides):
    values = dict(lang="en", num_instructions=3, concurrency=1, requests_per_round=1, max_retries=3)
    values.update(overrides)
    return run_config(server, tmp_path, **values)


@pytest.mark.parametrize("fault, reason", [
    (Reply(status=429), "rate_limited"),
    (Reply(status=429, headers={"Retry-After": "0"}), "rate_limited"),
    (Reply(status=500), "http_500"),
    (Reply(status=502, raw_body="<html>bad gateway</html>", headers={"Content-Type": "text/html"}), "http_502"),
    (Reply(status=503), "http_503"),
    (Reply(status=504), "http_504"),
    (Reply(delay=3), "timeout"),
    (Reply(drop=True), "connection_error"),
    (Reply(raw_body="this is not json"), "unreadable_response"),
    (Reply(raw_body="<html>proxy page</html>", headers={"Content-Type": "text/html"}), "unreadable_response"),
    (Reply(raw_body="{}"), "unreadable_response"),
])
@pytest.mark.slow
def test_transient_faults_are_retried_and_counted(server, tmp_path, fault, reason):
    server.script(fault)
    summary = generate(one_at_a_time(server, tmp_path, timeout=1))
    assert summary["accepted"] == 3
    assert summary["retries_by_reason"] == {reason: 1}
    assert summary["failed_requests_by_reason"] == {}
    assert server.requests[0].key == server.requests[1].key


@pytest.mark.parametrize("fault, reason", [
    (Reply(no_choices=True), "no_choices"),
    (Reply(text=""), "empty_content"),
    (Reply(text="   \n"), "empty_content"),
    (Reply(text="9. Something withheld", finish_reason="content_filter"), "content_filter"),
])
def test_unusable_answers_fail_the_request_and_the_run_goes_on(server, tmp_path, fault, reason):
    server.script(fault)
    summary = generate(one_at_a_time(server, tmp_path))
    assert summary["accepted"] == 3
    assert summary["failed_requests_by_reason"] == {reason: 1}
    assert summary["retries_by_reason"] == {}
    failed = [r for r in read_jsonl(tmp_path / "run" / "responses.jsonl") if r["error"]]
    assert [r["error"] for r in failed] == [reason]


def test_refused_key_keeps_journals_and_resumes_after_the_fix(server, fake_model, tmp_path):
    good = "sk-good-key-123"

    def check_key(request):
        if request.headers.get("authorization") != f"Bearer {good}":
            return Reply(status=401, text="Incorrect API key provided")
        return fake_model(request)

    server.responder = check_key
    generate(one_at_a_time(server, tmp_path, api_key=good, num_instructions=2))
    before = (tmp_path / "run" / "responses.jsonl").read_bytes()
    answered = server.count(lambda r: r.headers.get("authorization") == f"Bearer {good}")
    with pytest.raises(FatalAPIError, match="401"):
        generate(one_at_a_time(server, tmp_path, api_key="sk-revoked", num_instructions=12))
    assert (tmp_path / "run" / "responses.jsonl").read_bytes() == before
    summary = generate(one_at_a_time(server, tmp_path, api_key=good, num_instructions=12))
    assert summary["accepted"] == 12
    good_bodies = [r.key for r in server.requests if r.headers.get("authorization") == f"Bearer {good}"]
    assert len(good_bodies) == len(set(good_bodies))  # nothing answered was asked again
    assert len(good_bodies) > answered


@pytest.mark.slow
def test_full_disk_is_a_clear_error_and_keeps_what_was_journaled(server, tmp_path):
    """A real 48 KB filesystem fills up mid-run (mounted in a private namespace, no root needed)."""
    disk, saved = tmp_path / "disk", tmp_path / "saved"
    disk.mkdir()
    saved.mkdir()
    script = Path(sys.executable).parent / "selfinstruct"
    shell = ('mount -t tmpfs -o size=48k tmpfs "$1" || exit 99; "$2" generate --lang en -n 500 -o "$1/run" '
             '--model stub-model --requests-per-round 2 --quiet; code=$?; cp -r "$1/run" "$3/"; exit $code')
    env = dict(os.environ, OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY="sk-test")
    done = subprocess.run(["unshare", "-rm", "sh", "-c", shell, "sh", disk, script, saved], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr
    assert "No space left on device" in done.stderr and "intact" in done.stderr
    assert "Traceback" not in done.stderr
    run = saved / "run"
    tasks = Journal(run / "tasks.jsonl").read()
    responses = Journal(run / "responses.jsonl").read()
    assert tasks and responses
    assert len({t["id"] for t in tasks}) == len(tasks)


def test_torn_last_line_is_set_aside_and_never_read(server, tmp_path, capsys):
    generate(one_at_a_time(server, tmp_path, num_instructions=2))
    responses_file, tasks_file = tmp_path / "run" / "responses.jsonl", tmp_path / "run" / "tasks.jsonl"
    with responses_file.open("ab") as out:
        out.write(b'{"key": "abc", "slot": "r9.instructions.0", "text": "half an ans')
    with tasks_file.open("ab") as out:
        out.write(b'{"id": "r9999-0-00", "instruction": "half a li')
    summary = generate(one_at_a_time(server, tmp_path, num_instructions=12))
    assert summary["accepted"] == 12
    assert "cut off" in capsys.readouterr().err
    assert "half an ans" in (tmp_path / "run" / "responses.jsonl.torn").read_text()
    records = Journal(tasks_file).read()
    assert len(records) == 12 and all("half a li" not in r["instruction"] for r in records)
    for name in ("tasks.jsonl", "responses.jsonl", "rejected.jsonl"):
        for line in (tmp_path / "run" / name).read_text(encoding="utf-8").splitlines():
            json.loads(line)
