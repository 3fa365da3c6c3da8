"""--structured with the embedded model: the bundled Gemma 3 270M (a base model) answers through the chat
API with the GGUF's Gemma chat template, and llama-cpp-python's server turns each stage's schema
(sent as {"type": "json_object", "schema": ...}, the form it takes) into a grammar, so even this
model answers JSON that fits. Kept short: two tasks, a bounded number of requests."""

from __future__ import annotations

import json
import subprocess

import pytest
from helpers import SCRIPT, assert_well_formed_run, processes_writing_to, read_jsonl
from selfinstruct import Config
from selfinstruct.endpoint.structured import read

pytestmark = pytest.mark.real_model


def test_generate_structured_with_the_embedded_model(tmp_path):
    run_dir = tmp_path / "run"
    done = subprocess.run([SCRIPT, "generate", "--structured", "--lang", "en", "-n", "2", "-o", str(run_dir),
                           "--requests-per-round", "2", "--seed", "1", "--max-requests", "80", "--quiet"],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert "(chat API), structured (json_schema)" in done.stderr and "accepted 2/2" in done.stdout
    settings = json.loads((run_dir / "config.json").read_text())["settings"]
    assert (settings["local"], settings["api"], settings["structured"]) == (True, "chat", "json_schema")
    assert_well_formed_run(run_dir, Config(**{**settings, "output": run_dir}))
    answers = [r for r in read_jsonl(run_dir / "responses.jsonl") if not r["error"]]
    assert answers
    for answer in answers:  # the grammar holds the model to each stage's schema; only max_tokens cuts it short
        if answer["finish_reason"] != "length":
            shape = answer["stage"] if answer["stage"] != "instances" else None
            assert shape is None or read(shape, answer["text"], "stop").value is not None, answer["text"]
            assert json.loads(answer["text"], strict=False)
    assert processes_writing_to(run_dir / "server.log") == []
