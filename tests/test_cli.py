"""The command line, end to end against the scripted server."""

from __future__ import annotations

import json
import re
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from openai_stub import Reply
from helpers import KEY, common, invoke


def test_generate_prints_summary_and_exports(server, tmp_path):
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "-n", 5))
    assert result.exit_code == 0, result.output
    assert "run directory: run\n" in result.output  # relative to the working directory, as typed
    assert "accepted 5/5" in result.output
    result = invoke("export", tmp_path / "run", "--format", "alpaca")
    assert result.exit_code == 0
    records = json.loads((tmp_path / "run" / "alpaca_data.json").read_text())
    assert f"wrote {len(records)} records" in result.output


def test_api_key_lands_nowhere(server, tmp_path):
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "-n", 4))
    assert result.exit_code == 0
    assert KEY not in result.output
    written = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert len(written) >= 4
    for path in written:
        assert KEY not in path.read_text(encoding="utf-8", errors="replace"), path
    assert all(r.headers["authorization"] == f"Bearer {KEY}" for r in server.requests)


def test_refused_key_exits_non_zero_without_showing_it(server, tmp_path):
    server.responder = lambda request: Reply(status=401, text=f"Incorrect API key provided: {KEY}")
    result = invoke(*common(server, tmp_path / "run", "--lang", "en"))
    assert result.exit_code == 3
    assert "401" in result.output and "OPENAI_API_KEY" in result.output
    assert KEY not in result.output
    assert server.count() <= 2


def test_bad_seed_file_exits_2_and_writes_nothing(server, tmp_path):
    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text('{"instruction": "Name a colour.", "instances": [{"input": "", "output": "Blue."}]}\n'
                     '{"instruction": 7, "instances": []}\n')
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "--seeds", seeds))
    assert result.exit_code == 2
    assert f"{seeds}:2: field 'instruction': expected a string, got int" in result.output.replace("\n", "")
    assert not (tmp_path / "run").exists()
    assert server.count() == 0


def test_unknown_language_exits_2_before_any_request(server, tmp_path):
    result = invoke(*common(server, tmp_path / "run", "--lang", "fr"))
    assert result.exit_code == 2
    assert "Invalid value for '--lang'" in result.output and "'fr' is not one of 'zh', 'en'" in result.output
    assert server.count() == 0


def test_missing_prompt_template_exits_2(server, tmp_path):
    (tmp_path / "prompts" / "en").mkdir(parents=True)
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "--prompts", tmp_path / "prompts"))
    assert result.exit_code == 2
    assert "missing prompt template" in result.output and "instructions.txt" in result.output
    assert server.count() == 0


def test_unwritable_output_exits_2(server, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = invoke(*common(server, blocker / "run", "--lang", "en"))
    assert result.exit_code == 2
    assert "cannot create run directory" in result.output
    assert server.count() == 0


def test_config_file_and_flags(server, tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text(f'lang = "en"\nnum-instructions = 3\nbase-url = "{server.base_url}"\nmodel = "stub-model"\n')
    result = invoke("generate", "--config", toml, "-n", 4, "-o", tmp_path / "run", "--quiet")
    assert result.exit_code == 0, result.output
    settings = json.loads((tmp_path / "run" / "config.json").read_text())["settings"]
    assert (settings["lang"], settings["num_instructions"]) == ("en", 4)


def test_changed_settings_are_refused_on_resume(server, tmp_path):
    assert invoke(*common(server, tmp_path / "run", "--lang", "en", "-n", 3)).exit_code == 0
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "-n", 6, "--temperature", 0.2))
    assert result.exit_code == 2
    assert "temperature: 0.7 -> 0.2" in result.output and "--allow-changes" in result.output
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "-n", 6, "--temperature", 0.2,
                            "--allow-changes"))
    assert result.exit_code == 0, result.output


def test_resume_extends_the_target(server, tmp_path):
    assert invoke(*common(server, tmp_path / "run", "--lang", "en", "-n", 3)).exit_code == 0
    result = invoke("resume", tmp_path / "run", "-n", 6, "--quiet", env={"OPENAI_API_KEY": KEY})
    assert result.exit_code == 0, result.output
    tasks = (tmp_path / "run" / "tasks.jsonl").read_text().splitlines()
    assert len(tasks) == 6


@pytest.mark.slow
def test_console_script_runs_from_another_directory(server, tmp_path):
    env = dict(os.environ, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.base_url)
    script = os.path.join(os.path.dirname(sys.executable), "selfinstruct")
    args = ["generate", "--lang", "zh", "-n", "3", "-o", "out", "--model", "stub-model", "--quiet"]
    done = subprocess.run([script, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "accepted 3/3" in done.stdout
    assert len((tmp_path / "out" / "tasks.jsonl").read_text(encoding="utf-8").splitlines()) == 3


def _help_blocks(command: str) -> dict[str, str]:
    """Each option of `selfinstruct COMMAND --help` with its whole help text, as rendered."""
    text = invoke(command, "--help").output
    blocks: dict[str, str] = {}
    name = None
    for line in text.split("Options:", 1)[1].splitlines():
        stripped = line.strip()
        if line.startswith("  -"):
            name = [part for part in stripped.split() if part.startswith("--")][0].rstrip(",")
            blocks[name] = stripped
        elif name and stripped:
            blocks[name] += " " + stripped
    return blocks


# Options with nothing to default to: flags, required ones, and those that are off unless given.
NO_DEFAULT = {"--help", "--config", "--local", "--judge", "--batch", "--cancel-batches", "--local-model", "--allow-changes", "--quiet", "--output", "--dry-run",
              "--only", "--against"}


@pytest.mark.parametrize("command", ["generate", "resume", "export", "filter", "serve"])
def test_every_option_shows_its_help_default_and_choices(command):
    blocks = _help_blocks(command)
    assert len(blocks) >= 3
    for name, block in blocks.items():
        assert len(block.split(name, 1)[1].strip()) > 12, f"{command} {name} has no help: {block!r}"
        if name not in NO_DEFAULT or (command, name) in {("export", "--output"), ("serve", "--local-model")}:
            assert "[default: " in block, f"{command} {name} shows no default: {block!r}"
    if command == "generate":
        assert "<zh|en>" in blocks["--lang"] and "[default: zh]" in blocks["--lang"]
        assert "<self-instruct|alpaca|evol>" in blocks["--mode"] and "<chat|completion>" in blocks["--api"]
        for name in ("--temperature", "--top-p", "--instances-per-task"):
            assert "[default: " in blocks[name]
    if command == "filter":
        assert "<auto|zh|en>" in blocks["--lang"] and "<dedup|heuristics>" in blocks["--only"]
    if command == "export":
        assert "<alpaca|alpaca-jsonl|sharegpt|messages|hf|seeds>" in blocks["--format"]


def test_version():
    result = invoke("--version")
    assert result.exit_code == 0 and result.output.startswith("selfinstruct ")


# A module that holds its import until the test has signalled: what loads next is still loading.
HELD_IMPORT = """import pathlib, time
pathlib.Path({marker!r}).write_text("loading")
time.sleep(120)
"""


@pytest.mark.parametrize("held, args", [
    ("typer", ["--version"]),  # the command line itself is loading
    ("openai", ["generate", "--lang", "en", "-n", "1", "-o", "run", "--base-url", "http://127.0.0.1:9",
                "--api-key", KEY, "--quiet"]),  # generate is loading its implementation
    ("numpy", ["filter", "in.jsonl", "-o", "out.jsonl", "--quiet"]),  # and filter its own
], ids=["command-line", "generate", "filter"])
def test_ctrl_c_while_the_command_is_still_loading_exits_130_quietly(tmp_path, held, args):
    """Ctrl+C while a module is being imported, before the command runs, exits 130 with nothing printed.
    The module is held on its import (a stand-in first on PYTHONPATH) until the signal is sent."""
    stand_in = tmp_path / "held" / held
    stand_in.mkdir(parents=True)
    marker = tmp_path / "loading"
    (stand_in / "__init__.py").write_text(HELD_IMPORT.format(marker=str(marker)))
    (tmp_path / "in.jsonl").write_text('{"instruction": "Name a colour.", "input": "", "output": "Blue."}\n')
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path / "held"), os.environ.get("PYTHONPATH", "")]))
    script = Path(sys.executable).parent / "selfinstruct"
    process = subprocess.Popen([str(script), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=env, cwd=tmp_path)
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert process.poll() is None, f"the command ended without importing {held}: {process.communicate()}"
        assert time.monotonic() < deadline, f"the command never imported {held}"
        time.sleep(0.01)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 130 and out == "" and err == "", (process.returncode, err)


def test_the_command_line_loads_no_heavy_module():
    """--help and every command's start load typer and the option declarations only; each command
    loads what it runs (openai, numba, numpy, matplotlib, ray, a progress bar) once it runs."""
    heavy = ("openai", "numba", "numpy", "rich.progress", "matplotlib", "ray")
    code = f"import sys, selfinstruct.cli; print(sorted(m for m in {heavy!r} if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "[]\n", done.stdout + done.stderr


def test_the_choices_written_out_for_a_fast_start_are_the_real_ones():
    from selfinstruct.cli_options import KEYS, Mode
    from selfinstruct.dedup.command import KEYS as FILTER_KEYS
    from selfinstruct.generation.methods.registry import METHODS

    assert Mode.__args__ == tuple(METHODS) and KEYS == FILTER_KEYS


@pytest.mark.parametrize("args, needle", [
    (["--port", 99999], "--port must be from 1 to 65535, got 99999"),
    (["--port", -1], "--port must be from 1 to 65535"),
    (["--threads", -3], "--threads must be at least 1"),
])
def test_serve_checks_its_options(args, needle):
    result = invoke("serve", *args)
    assert result.exit_code == 2 and needle in result.output


def test_resume_names_a_bad_flag_not_the_config_file(server, tmp_path):
    assert invoke(*common(server, tmp_path / "run", "--lang", "en", "-n", 2)).exit_code == 0
    result = invoke("resume", tmp_path / "run", "-n", -1)
    assert result.exit_code == 2
    assert "num-instructions must be at least 1, got -1" in result.output and "config.json" not in result.output


@pytest.mark.slow
def test_a_closed_stdout_does_not_fail_a_finished_run(server, tmp_path):
    """`generate ... | true`: the reader is gone before the summary is printed."""
    env = dict(os.environ, OPENAI_API_KEY=KEY, OPENAI_BASE_URL=server.base_url)
    script = os.path.join(os.path.dirname(sys.executable), "selfinstruct")
    done = subprocess.run(["bash", "-c", f'"{script}" generate --lang en -n 8 -o out --model stub-model --quiet '
                           '| true; echo "status ${PIPESTATUS[0]}"'], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.stdout.strip() == "status 0", done.stdout + done.stderr
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr
    assert len((tmp_path / "out" / "tasks.jsonl").read_text().splitlines()) == 8


def test_summary_shows_each_example_field_on_one_line(server, fake_model, tmp_path):
    """A model's multi-line answer is shown on one line (⏎ for each break), so the summary keeps its shape."""
    alpaca = fake_model.alpaca
    fake_model.alpaca = lambda prompt, chat: alpaca(prompt, chat).replace(
        "Output: Answer number", "Output: Step one.\n  Step two.\nAnswer number")
    result = invoke(*common(server, tmp_path / "run", "--lang", "en", "-n", 3, "--mode", "alpaca"))
    assert result.exit_code == 0, result.output
    examples = result.output.split("\n\n", 1)[1]
    assert examples.count("\n- ") == 2 and examples.startswith("- ")
    outputs = [line for line in examples.splitlines() if line.startswith("  output: ")]
    assert len(outputs) == 3
    assert all(re.fullmatch(r"  output: Step one\. ⏎ Step two\. ⏎ Answer number \d+\.", line) for line in outputs)
    tasks = [json.loads(line) for line in (tmp_path / "run" / "tasks.jsonl").read_text().splitlines()]
    assert tasks[0]["instances"][0]["output"].count("\n") == 2  # the data keeps its line breaks
