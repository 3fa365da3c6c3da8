"""Every command and snippet in README.md is run here, so the README cannot drift.

The harness parses README.md's fenced blocks in order (```bash, ```console, ```python, ```toml) into
items: one per command (an `export VAR=...` line belongs to the command after it), one per ```python
or ```toml block. A ```console block with no `$ ` line is the shown output of the command just above
it; in one with `$ ` lines, the lines after a command are its shown output. PLAN names, for every
item, the test that runs it; test_every_readme_block_is_covered fails on a new block kind, a block or
command no test runs, or a PLAN entry that no longer matches the README. What is not run is listed in
NOT_RUN with the reason.

How commands run: through the installed console script (the venv's bin directory first on PATH for
commands with shell syntax, run by bash), with the test's temporary directory as cwd.

- Remote providers (OpenAI, DeepSeek, DashScope, vLLM, Ollama, llama.cpp) run against the scripted
  OpenAI-compatible server on 127.0.0.1: only the base URL is rewritten to the stub's, `-n` becomes
  SMALL_N (added where there is none), `$NAME` key references are set to a fake key in the
  command's environment, and for the OpenAI example (no --base-url) OPENAI_BASE_URL is set to the
  stub: the one thing the harness adds. Model names are kept as written.
- Commands that run the embedded model are marked real_model. The set-up command's run directory
  (runs/demo) is made once per module and the export commands run on it, as in the README; the
  non-real export test makes runs/demo with the same generate command against the stub first.
- Shown output is compared line by line where it is deterministic ("..." in the README is a
  wildcard, a timing line like "6.5 s" matches any duration), and by shape elsewhere.

Known differences between the README and the program are strict xfails: they fail once fixed, so
the marker must then go.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from batch_stub import BatchServer
from conftest import _shared_cache
from helpers import KeyedModel

from selfinstruct.cli_output import one_line  # how the summary shows a field; tested in test_cli
from selfinstruct.config import BUNDLED_MODEL_NAME, DEFAULT_REMOTE_MODEL, Config

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
SCRIPT = Path(sys.executable).parent / "selfinstruct"
HANDLED_KINDS = ("bash", "console", "python", "toml")
FAKE_KEY = "sk-readme-fake-key-5e0b7"
SMALL_N = 3
TIMING_LINE = re.compile(r"\d+(?:\.\d+)? s")  # a shown duration such as "6.5 s": machine-dependent

# ------------------------------------------------------------------ parsing README.md


@dataclass
class Block:
    index: int
    kind: str
    line: int  # README line of the opening fence
    lines: list[str]


@dataclass
class Item:
    text: str  # the command (with any export lines before it), or the whole python/toml block
    kind: str
    line: int
    block: int
    label: str = ""  # the comment line above a command in a bash block
    output: list[str] | None = None  # shown output
    output_block: int | None = None  # the block holding the shown output, if it is a separate one


def readme_blocks() -> list[Block]:
    blocks, current = [], None
    for number, line in enumerate(README.read_text(encoding="utf-8").splitlines(), 1):
        if current is None:
            opening = re.match(r"^\s*(```|~~~)\s*(\S*)", line)
            if opening:
                current = Block(len(blocks), opening.group(2), number, [])
        elif re.match(r"^\s*(```|~~~)\s*$", line):
            blocks.append(current)
            current = None
        else:
            current.lines.append(line)
    assert current is None, f"README.md:{current.line}: unclosed code block"
    return blocks


def readme_items() -> list[Item]:
    items: list[Item] = []
    for block in readme_blocks():
        if block.kind == "bash":
            label, pending = "", []
            for offset, raw in enumerate(block.lines, 1):
                line = raw.strip()
                if not line:
                    label = ""
                elif line.startswith("#"):
                    label = line.lstrip("#").strip()
                elif line.startswith("export "):
                    pending.append(line)
                else:
                    items.append(Item("\n".join([*pending, line]), "bash", block.line + offset, block.index, label))
                    pending = []
            assert not pending, f"README.md:{block.line}: an export with no command after it"
        elif block.kind == "console":
            starts = [i for i, line in enumerate(block.lines) if line.startswith("$ ")]
            if not starts:  # the shown output of the command just above
                assert items and items[-1].output is None, f"README.md:{block.line}: output of no command"
                items[-1].output, items[-1].output_block = block.lines, block.index
                continue
            assert starts[0] == 0, f"README.md:{block.line}: output before the first command"
            for start, end in zip(starts, [*starts[1:], len(block.lines)]):
                items.append(Item(block.lines[start][2:], "console", block.line + 1 + start, block.index,
                                  output=block.lines[start + 1:end]))
        else:  # python, toml, and any kind the harness does not know (the coverage test rejects those)
            items.append(Item("\n".join(block.lines) + "\n", block.kind, block.line, block.index))
    return items


# Every README item: (block kind, a pattern that finds it, the tests that run it).
ON_A_RUN = ["test_export_commands_on_stub_run", "test_export_commands_after_real_demo"]  # need runs/demo
PLAN = {
    "setup": ("bash", r'^python3 -m venv \.venv && \.venv/bin/pip install "\.\[local\]" && \.venv/bin/selfinstruct ',
              ["test_setup_command_real_demo", "test_setup_demo_run_directory_line_as_shown",
               "test_export_commands_on_stub_run", "test_readme_test_command_is_what_ci_runs"]),
    "ci": ("bash", r'\.venv/bin/python -m pytest -m ""$', ["test_readme_test_command_is_what_ci_runs",
                                                              "test_plain_pytest_is_the_fast_tier"]),
    "openai": ("bash", r"^export OPENAI_API_KEY=", ["test_endpoint_example_against_stub"]),
    "deepseek": ("bash", r"--base-url https://api\.deepseek\.com/.* -o runs/zh$", ["test_endpoint_example_against_stub"]),
    "qwen": ("bash", r"--base-url https://dashscope\.", ["test_endpoint_example_against_stub"]),
    "vllm": ("bash", r"--base-url http://localhost:8000/.* -o runs/vllm$", ["test_endpoint_example_against_stub"]),
    "ollama": ("bash", r"--base-url http://localhost:11434/", ["test_endpoint_example_against_stub"]),
    "llamacpp": ("bash", r"--base-url http://localhost:8080/", ["test_endpoint_example_against_stub"]),
    "structured": ("bash", r"^selfinstruct generate --structured ", ["test_endpoint_example_against_stub"]),
    "json-mode": ("bash", r"^selfinstruct generate --json-mode ", ["test_endpoint_example_against_stub"]),
    "local-model": ("bash", r"^selfinstruct generate --local-model ", ["test_local_model_command_real"]),
    "serve": ("console", r"^selfinstruct serve\b", ["test_serve_command_real"]),
    "toml": ("toml", r"^num-instructions = ", ["test_toml_config_block"]),
    "python": ("python", r"^from selfinstruct import ", ["test_python_api_snippet_real"]),
    "export-alpaca": ("bash", r"^selfinstruct export runs/demo --format alpaca\b", ON_A_RUN),
    "export-seeds": ("bash", r"^selfinstruct export runs/demo --format seeds\b", ON_A_RUN),
    "export-sharegpt": ("bash", r"^selfinstruct export runs/demo --format sharegpt\b", ON_A_RUN),
    "export-messages": ("bash", r"^selfinstruct export runs/demo --format messages\b", ON_A_RUN),
    "export-hf": ("bash", r"^selfinstruct export runs/demo --format hf\b", ON_A_RUN),
    "report-run": ("bash", r"^selfinstruct report runs/demo\b", ON_A_RUN),
    "report-file": ("console", r"^selfinstruct report alpaca_52k\.json$", ["test_filter_example"]),
    "make-dataset": ("bash", r"^python bench/make_dataset\.py ", ["test_filter_example"]),
    "filter": ("console", r"^selfinstruct filter ", ["test_filter_example"]),
    "head-dropped": ("console", r"^head -1 ", ["test_filter_example"]),
    "dry-run": ("console", r"--dry-run$", ["test_dry_run_example"]),
    "batch-run": ("console", r"^selfinstruct generate --batch ", ["test_batch_example"]),
    "batch-cancel": ("bash", r"^selfinstruct resume runs/batch --cancel-batches$", ["test_batch_example"]),
}

# What is not run here, and why. Everything else in every block is.
NOT_RUN = {
    # CI itself creates the venv and installs the package (.ci/run runs the README's test command
    # verbatim, checked by test_readme_test_command_is_what_ci_runs); these tests run inside it.
    "setup": 'python3 -m venv .venv && .venv/bin/pip install ".[local]"',
    "ci": 'python3 -m venv .venv && .venv/bin/pip install ".[local,test]" && .venv/bin/python -m pytest -m ""',
}


def item(key: str) -> Item:
    kind, pattern, _ = PLAN[key]
    found = [i for i in readme_items() if i.kind == kind and re.search(pattern, i.text, re.M)]
    assert len(found) == 1, f"README: {len(found)} {kind} items match {key}'s pattern {pattern!r}"
    return found[0]


def test_every_readme_block_is_covered():
    blocks = readme_blocks()
    unknown = [(b.line, b.kind) for b in blocks if b.kind not in HANDLED_KINDS]
    assert not unknown, f"README blocks of a kind this harness does not run (README line, kind): {unknown}"
    assert len(blocks) == 16, "README code blocks were added or removed: update PLAN and this count"
    items = readme_items()
    owners: dict[int, list[str]] = {}
    for key, (kind, pattern, tests) in PLAN.items():
        found = [i for i in items if i.kind == kind and re.search(pattern, i.text, re.M)]
        assert len(found) == 1, f"PLAN[{key!r}] matches {len(found)} README items"
        owners.setdefault(id(found[0]), []).append(key)
        for name in tests:
            assert callable(globals().get(name)), f"PLAN[{key!r}] names a missing test {name}"
    unowned = [(i.line, i.text) for i in items if id(i) not in owners]
    assert not unowned, f"README commands no test runs (line, text): {unowned}"
    assert all(len(keys) == 1 for keys in owners.values()), owners
    covered = {i.block for i in items} | {i.output_block for i in items if i.output_block is not None}
    assert covered == {b.index for b in blocks}
    for key, skipped in NOT_RUN.items():  # a skipped part is exactly what the README says
        assert item(key).text.startswith(skipped), (key, item(key).text)
    # the outputs the tests compare are where the tests expect them
    assert item("setup").output and item("serve").output and item("filter").output and item("head-dropped").output


def test_readme_test_command_is_what_ci_runs():
    ci = item("ci").text
    assert ci == NOT_RUN["ci"]
    assert ci in (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    # The set-up command installs the same way, without the test extra, and both extras exist.
    setup_install = NOT_RUN["setup"]
    assert ci.startswith(setup_install.replace('".[local]"', '".[local,test]"') + " && ")
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert {"local", "test"} <= set(pyproject["project"]["optional-dependencies"])
    assert "selfinstruct" in pyproject["project"]["scripts"] and SCRIPT.is_file()


def collected(*marker) -> set[str]:
    done = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *marker],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {line for line in done.stdout.splitlines() if "::" in line}


@pytest.mark.slow
def test_plain_pytest_is_the_fast_tier():
    """What the README says of the tiers: plain pytest leaves out exactly the slow and real-model tests, and the
    CI command's -m "" leaves out nothing."""
    fast, everything = collected(), collected("-m", "")
    slow, real = collected("-m", "slow"), collected("-m", "real_model")
    assert fast and slow and real
    assert fast | slow | real == everything
    assert not fast & (slow | real)
    assert any("test_readme.py::test_plain_pytest_is_the_fast_tier" in line for line in slow)


# ------------------------------------------------------------------ running commands


def base_env(factory, extra: dict | None = None) -> dict:
    """No real keys or endpoints, the session's model cache, the venv's scripts first on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["SELFINSTRUCT_CACHE_DIR"] = str(_shared_cache(factory))
    env["PATH"] = f"{SCRIPT.parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra or {})
    return env


def argv_of(command: str, env: dict) -> list[str]:
    """A plain command runs as argv through the console script; one with shell syntax through bash."""
    if re.search(r"&&|\||;|\$|~|>|<|^export |^[A-Z_]+=", command, re.M):
        assert shutil.which("selfinstruct", path=env["PATH"]) == str(SCRIPT)
        return ["bash", "-ec", command]
    argv = shlex.split(command, comments=True)
    argv[0] = {"selfinstruct": str(SCRIPT), "python": sys.executable}.get(argv[0], argv[0])
    return argv


def run(command: str, cwd: Path, env: dict, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(argv_of(command, env), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


def with_small_n(command: str, n: int = SMALL_N) -> str:
    command, found = re.subn(r"(?<=\s)-n \d+(?=\s|$)", f"-n {n}", command)
    return command if found else f"{command} -n {n}"


def option(command: str, *names: str, default: str | None = None) -> str | None:
    words = shlex.split(command.splitlines()[-1], comments=True)
    for i, word in enumerate(words[:-1]):
        if word in names:
            return words[i + 1]
    return default


def assert_shown_output(shown: list[str], actual: str) -> None:
    """The README's shown lines against the printed ones: '...' matches anything, and a shown
    duration ("6.5 s") any duration."""
    printed = actual.rstrip("\n").split("\n")
    patterns = [r"\d+\.\d s" if TIMING_LINE.fullmatch(line) else ".*".join(map(re.escape, line.split("...")))
                for line in shown]
    differences = [(n, s, p) for n, (pattern, s, p) in enumerate(zip(patterns, shown, printed), 1)
                   if not re.fullmatch(pattern, p)]
    assert not differences and len(shown) == len(printed), (
        "README output differs from the program's:\n"
        + "\n".join(f"  line {n}: README {s!r}\n          actual {p!r}" for n, s, p in differences)
        + (f"\n  README {len(shown)} lines, actual {len(printed)}:\n{actual}" if len(shown) != len(printed) else ""))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def settings_of(run_dir: Path) -> dict:
    return json.loads((run_dir / "config.json").read_text(encoding="utf-8"))["settings"]


def printed_run_dir(stdout: str, cwd: Path) -> Path:
    first = stdout.splitlines()[0]
    assert first.startswith("run directory: "), stdout
    return (cwd / first.removeprefix("run directory: ")).resolve()


# ------------------------------------------------------------------ remote endpoints, against the stub

STUB_EXAMPLES = ["openai", "deepseek", "qwen", "vllm", "ollama", "llamacpp", "structured", "json-mode"]


@pytest.mark.slow
@pytest.mark.parametrize("key", STUB_EXAMPLES)
def test_endpoint_example_against_stub(key, server, tmp_path, tmp_path_factory):
    readme = item(key)
    command = with_small_n(re.sub(r"--base-url \S+", f"--base-url {server.base_url}", readme.text))
    env = base_env(tmp_path_factory)
    if "--base-url" not in readme.text:  # the OpenAI example: the SDK's default endpoint, moved to the stub
        env["OPENAI_BASE_URL"] = server.base_url
    for name in re.findall(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)", readme.text):
        env[name] = FAKE_KEY
    result = run(command, tmp_path, env)
    assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"

    model = option(readme.text, "--model", default=DEFAULT_REMOTE_MODEL)
    api = option(readme.text, "--api", default="chat")
    lang = option(readme.text, "--lang", default="zh")
    run_dir = tmp_path / option(readme.text, "-o", "--output")
    assert printed_run_dir(result.stdout, tmp_path) == run_dir.resolve()
    assert f"accepted {SMALL_N}/{SMALL_N}," in result.stdout
    # the first line names the endpoint and model (the README's example form; more may follow on the line)
    assert result.stderr.splitlines()[0].startswith(f"endpoint: {server.base_url}, model {model} ({api} API)")
    assert len(read_jsonl(run_dir / "tasks.jsonl")) == SMALL_N
    assert read_jsonl(run_dir / "responses.jsonl") and (run_dir / "summary.json").is_file()
    settings = settings_of(run_dir)
    assert (settings["model"], settings["api"], settings["lang"], settings["base_url"], settings["local"]) == (
        model, api, lang, server.base_url, False)
    sent = [r for r in server.requests if r.endpoint in ("chat", "completion")]
    assert sent and all(r.endpoint == api and r.body["model"] == model for r in sent)
    structured = "json_object" if "--json-mode" in readme.text else "json_schema" if "--structured" in readme.text else None
    assert settings["structured"] == structured
    assert all(r.body.get("response_format", {}).get("type") == structured for r in sent)
    key_given = re.search(r"^export OPENAI_API_KEY=(\S+)", readme.text, re.M)
    expected_key = key_given.group(1) if key_given else FAKE_KEY if "--api-key" in readme.text else None
    if expected_key:
        assert all(r.headers["authorization"] == f"Bearer {expected_key}" for r in sent)


@pytest.mark.slow
def test_toml_config_block(server, tmp_path, tmp_path_factory):
    text = item("toml").text
    path = tmp_path / "selfinstruct.toml"
    path.write_text(text, encoding="utf-8")
    values = tomllib.loads(text)
    config = Config.from_toml(path)
    for key, value in values.items():
        assert getattr(config, key.replace("-", "_")) == value, key
    command = f"selfinstruct generate --config {path.name} -n {SMALL_N} -o run --base-url {server.base_url} --api-key x"
    result = run(command, tmp_path, base_env(tmp_path_factory))
    assert result.returncode == 0, result.stderr
    settings = settings_of(tmp_path / "run")
    for key, value in values.items():  # flags override the file
        expected = SMALL_N if key == "num-instructions" else value
        assert settings[key.replace("-", "_")] == expected, key
    assert all(r.body["model"] == values["model"] for r in server.requests if r.endpoint == "chat")
    assert len(read_jsonl(tmp_path / "run" / "tasks.jsonl")) == SMALL_N


# ------------------------------------------------------------------ the set-up run and its exports


def setup_generate_command() -> str:
    """The set-up command's part this harness runs: after the install, the generate command."""
    readme = item("setup").text
    assert readme.startswith(NOT_RUN["setup"] + " && .venv/bin/selfinstruct ")
    return readme.removeprefix(NOT_RUN["setup"] + " && .venv/bin/")


def check_export_commands(cwd: Path, env: dict) -> None:
    tasks = read_jsonl(cwd / "runs" / "demo" / "tasks.jsonl")
    assert tasks
    alpaca = item("export-alpaca").text
    result = run(alpaca, cwd, env)
    assert result.returncode == 0, result.stderr
    target = re.search(r"#\s*(\S+)$", alpaca).group(1)  # where the README's comment says it goes
    records = json.loads((cwd / target).read_text(encoding="utf-8"))
    assert records == [{"instruction": t["instruction"], "input": i["input"], "output": i["output"]}
                       for t in tasks for i in t["instances"]]
    assert result.stdout.strip() == f"wrote {len(records)} records to {target}"

    user_turns = [t["instruction"] + (f"\n\n{i['input']}" if i["input"] else "") for t in tasks for i in t["instances"]]
    outputs = [i["output"] for t in tasks for i in t["instances"]]
    for key, turns in (("export-sharegpt", ("conversations", "from", "value", "human", "gpt")),
                       ("export-messages", ("messages", "role", "content", "user", "assistant"))):
        command = item(key).text
        result = run(command, cwd, env)
        assert result.returncode == 0, result.stderr
        target = re.search(r"#\s*(\S+)$", command).group(1)
        field, who, text, user, assistant = turns
        lines = [line[field] for line in read_jsonl(cwd / target)]
        assert [[turn[who] for turn in line] for line in lines] == [[user, assistant]] * len(outputs)
        assert [line[0][text] for line in lines] == user_turns and [line[1][text] for line in lines] == outputs
        assert result.stdout.strip() == f"wrote {len(outputs)} records to {target}"
    command = item("export-hf").text
    result = run(command, cwd, env)
    assert result.returncode == 0, result.stderr
    import datasets

    loaded = datasets.load_from_disk(str(cwd / re.search(r"#\s*(\S+)$", command).group(1)))
    assert loaded["output"] == outputs and loaded.column_names == ["instruction", "input", "output"]
    card = (cwd / "runs" / "demo" / "README.md").read_text(encoding="utf-8")
    assert card.startswith("<!-- selfinstruct dataset card -->")

    command = item("report-run").text
    result = run(command, cwd, env, timeout=300)
    assert result.returncode == 0, result.stderr
    target = re.search(r"#\s*(\S+)$", command).group(1)
    assert result.stdout.strip() == target
    assert (cwd / target).read_text(encoding="utf-8").count("data:image/png;base64,") == 4

    seeds = item("export-seeds").text
    result = run(seeds, cwd, env)
    assert result.returncode == 0, result.stderr
    target = option(seeds, "-o")
    exported = read_jsonl(cwd / target)
    assert [(s["instruction"], s["instances"]) for s in exported] == [(t["instruction"], t["instances"]) for t in tasks]
    assert result.stdout.strip() == f"wrote {len(tasks)} records to {target}"
    from selfinstruct.formats.seeds import load_seed_tasks  # usable as --seeds for another run
    assert len(load_seed_tasks(cwd / target)) == len(tasks)


@pytest.mark.slow
def test_export_commands_on_stub_run(server, tmp_path, tmp_path_factory):
    """`selfinstruct export runs/demo ...` needs runs/demo: made first by the set-up's generate
    command, pointed at the stub."""
    env = base_env(tmp_path_factory)
    command = f"{setup_generate_command()} --base-url {server.base_url} --api-key {FAKE_KEY}"
    result = run(command, tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert "accepted 10/10," in result.stdout
    check_export_commands(tmp_path, env)


# ------------------------------------------------------------------ a dry run


@pytest.mark.slow
def test_dry_run_example(tmp_path, tmp_path_factory):
    """Sends nothing (so it runs as written, with OpenAI as the endpoint); the shown lines match, the
    prompts between them are elided in the README."""
    readme = item("dry-run")
    result = run(readme.text, tmp_path, base_env(tmp_path_factory))
    assert result.returncode == 0, result.stderr
    printed = result.stdout.rstrip("\n").split("\n")
    head = readme.output.index("...")
    assert_shown_output(readme.output[:head], "\n".join(printed[:head]))
    tail = len(readme.output) - head - 1
    assert_shown_output(readme.output[-tail:], "\n".join(printed[-tail:]))
    assert list(tmp_path.iterdir()) == []  # nothing written


@pytest.mark.slow
def test_batch_example(tmp_path, tmp_path_factory):
    """Against the scripted batch server, moved in by OPENAI_BASE_URL as the OpenAI example is (it is on
    127.0.0.1, so free: the first line names it and its price, not OpenAI's); the other shown lines come in
    that order on stderr, among the progress lines between them. Then the cancel command, on a run with no
    batch left at the provider."""
    readme = item("batch-run")
    env = base_env(tmp_path_factory)
    with BatchServer(KeyedModel()) as server:
        env.update(OPENAI_BASE_URL=server.base_url, OPENAI_API_KEY=FAKE_KEY)
        command = re.sub(r"-n \d+", "-n 300", readme.text)
        assert command != readme.text
        result = run(command, tmp_path, env)
        assert result.returncode == 0, result.stderr
        lines = result.stderr.splitlines()
        assert lines[0].startswith(f"endpoint: {server.base_url}, model {DEFAULT_REMOTE_MODEL} (chat API); price ")
        remaining = iter(lines[1:])
        for shown in readme.output[1:]:
            pattern = ".*".join(map(re.escape, shown.split("...")))
            assert any(re.fullmatch(pattern, line) for line in remaining), (shown, result.stderr)
        assert server.creates >= 2 and not server.count(lambda r: r.path.startswith("/v1/chat"))
        cancel = run(item("batch-cancel").text, tmp_path, env)
    assert cancel.returncode == 0, cancel.stderr
    assert cancel.stdout.strip() == "runs/batch has no batch running at the provider"
    assert len(read_jsonl(tmp_path / "runs" / "batch" / "tasks.jsonl")) == 300


# ------------------------------------------------------------------ filtering an existing dataset


@pytest.mark.slow
def test_filter_example(tmp_path, tmp_path_factory):
    env = base_env(tmp_path_factory)
    make = item("make-dataset").text
    command = make.replace("python bench/", f"python {ROOT / 'bench'}/", 1)
    assert command != make
    result = run(command, tmp_path, env, timeout=300)
    assert result.returncode == 0, result.stderr
    records = int(option(make, "--records"))
    dataset = tmp_path / shlex.split(make)[2]
    assert len(json.loads(dataset.read_text(encoding="utf-8"))) == records

    for key in ("filter", "head-dropped"):
        readme = item(key)
        result = run(readme.text, tmp_path, env, timeout=300)
        assert result.returncode == 0, result.stderr
        assert_shown_output(readme.output, result.stdout)
    kept = json.loads((tmp_path / option(item("filter").text, "-o")).read_text(encoding="utf-8"))
    assert f"kept                  {len(kept)} of {records}" in item("filter").output

    readme = item("report-file")
    result = run(readme.text, tmp_path, env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert_shown_output(readme.output, result.stdout)
    assert (tmp_path / readme.output[0]).read_text(encoding="utf-8").count("data:image/png;base64,") == 3


# ------------------------------------------------------------------ the embedded model, for real

DEMO_HEADER = re.compile(
    r"run directory: (?P<dir>.+)\n"
    r"accepted (?P<accepted>\d+)/(?P<target>\d+), rejected (?P<rejected>\d+), requests (?P<requests>\d+), "
    r"tokens in \d+ / out \d+, \d+\.\d s\n"
    r"(?P<reasons>(?:  rejected [a-z_:]+: \d+\n)*)"
    r"(?P<failures>(?:  failed requests \S+: \d+\n)*)")
DEMO_EXAMPLE = re.compile(r"\n- .+\n(?:  input: .*\n)?  output: .*\n")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The set-up command's generate part, run once: the export tests use its runs/demo."""
    cwd = tmp_path_factory.mktemp("readme-demo")
    env = base_env(tmp_path_factory)
    result = run(setup_generate_command(), cwd, env, timeout=560)
    return cwd, env, result


@pytest.mark.real_model
def test_setup_command_real_demo(demo):
    cwd, _, result = demo
    assert result.returncode == 0, result.stderr
    shown = "\n".join(item("setup").output) + "\n"
    for text in (shown, result.stdout):  # the README's shown output and the real one have the same shape
        header = DEMO_HEADER.match(text)
        assert header, text
        assert (header["accepted"], header["target"]) == ("10", "10")
        assert header["reasons"]
        assert len(DEMO_EXAMPLE.findall(text[header.end():])) == 3
    assert DEMO_HEADER.match(shown).end() + sum(map(len, DEMO_EXAMPLE.findall(shown))) == len(shown)

    header = DEMO_HEADER.match(result.stdout)
    run_dir = cwd / "runs" / "demo"
    assert printed_run_dir(result.stdout, cwd) == run_dir.resolve()
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    assert (int(header["rejected"]), int(header["requests"])) == (summary["rejected"], summary["requests"])
    assert dict(re.findall(r"  rejected ([a-z_:]+): (\d+)", header["reasons"])) == {
        k: str(v) for k, v in summary["rejected_by_reason"].items()}
    tasks = read_jsonl(run_dir / "tasks.jsonl")
    assert len(tasks) == 10
    examples = "".join(f"\n- {one_line(t['instruction'])}\n" + (f"  input: {one_line(t['instances'][0]['input'])}\n"
                                                                  if t["instances"][0]["input"] else "")
                       + f"  output: {one_line(t['instances'][0]['output'])}\n" for t in tasks[:3])
    assert result.stdout[header.end():] == examples
    assert result.stderr.splitlines()[0].startswith(
        f"endpoint: embedded llama.cpp server, model {BUNDLED_MODEL_NAME} (completion API)")


@pytest.mark.real_model
def test_setup_demo_run_directory_line_as_shown(demo):
    _, _, result = demo
    assert result.stdout.splitlines()[0] == item("setup").output[0]


@pytest.mark.real_model
def test_export_commands_after_real_demo(demo):
    cwd, env, result = demo
    assert result.returncode == 0, result.stderr
    check_export_commands(cwd, env)


def collect_lines(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line.rstrip("\n"))


@pytest.mark.real_model
def test_serve_command_real(tmp_path, tmp_path_factory):
    readme = item("serve")
    port = free_port()
    command = readme.text.replace("--port 8000", f"--port {port}")
    assert command != readme.text
    shown = [line.replace("127.0.0.1:8000", f"127.0.0.1:{port}").replace("serve-8000", f"serve-{port}")
             for line in readme.output]
    env = base_env(tmp_path_factory)
    process = subprocess.Popen(argv_of(command, env), cwd=tmp_path, env=env, text=True, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        lines: queue.Queue = queue.Queue()
        reader = threading.Thread(target=collect_lines, args=(process.stdout, lines), daemon=True)
        reader.start()
        printed, deadline = [], time.monotonic() + 180
        while not printed or printed[-1] != shown[-1]:
            printed.append(lines.get(timeout=max(0.1, deadline - time.monotonic())))
        assert_shown_output(shown, "\n".join(printed))
        log = Path(printed[2].removeprefix("Server log: ").removesuffix(" (kept when it stops)"))
        assert log.is_file()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=30) as response:
            assert [m["id"] for m in json.load(response)["data"]] == [BUNDLED_MODEL_NAME]

        # The printed command uses it, with the bundled base model's settings (-n 1 to keep it short).
        generate = printed[3].removeprefix("Generate with it: ")
        result = run(f"{generate} -n 1 -o run", tmp_path, env, timeout=600)
        assert result.returncode == 0, result.stderr
        settings = settings_of(tmp_path / "run")
        assert (settings["local"], settings["base_url"], settings["model"], settings["api"], settings["temperature"],
                settings["top_p"], settings["max_tokens"]) == (
            False, f"http://127.0.0.1:{port}/v1", BUNDLED_MODEL_NAME, "completion", 0.9, 0.95, 256)
        assert len(read_jsonl(tmp_path / "run" / "tasks.jsonl")) == 1

        process.send_signal(signal.SIGINT)  # Ctrl+C
        process.wait(timeout=60)
        reader.join(timeout=10)
        rest = []
        while not lines.empty():
            rest.append(lines.get())
        assert process.returncode == 0, process.stderr.read()
        assert "Local model server stopped." in rest
        with pytest.raises(ConnectionRefusedError):  # nothing listens there any more
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
        assert log.is_file() and log.stat().st_size > 0  # the log it printed is still there
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.real_model
def test_local_model_command_real(tmp_path, tmp_path_factory):
    """Pointed at the bundled GGUF. As written (chat API, 1024 tokens per answer, 8 in flight on this
    model) a run takes far longer than a test may, so it runs until the first answer is journaled,
    then is stopped with Ctrl+C, which must name the `selfinstruct resume` command (see Resume)."""
    from selfinstruct.endpoint.local import bundled_model_path

    readme = item("local-model")
    gguf = bundled_model_path()
    command = with_small_n(re.sub(r"--local-model \S+", f"--local-model {gguf}", readme.text), 1)
    assert "--local-model ~/" in readme.text and str(gguf) in command
    env = base_env(tmp_path_factory)
    with open(tmp_path / "stdout", "w") as out, open(tmp_path / "stderr", "w") as err:
        process = subprocess.Popen(argv_of(command, env), cwd=tmp_path, env=env, text=True, stdin=subprocess.DEVNULL,
                                   stdout=out, stderr=err)
    try:
        deadline, answers = time.monotonic() + 450, []  # 8 answers of up to 1024 tokens share 2 cores
        while not answers and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
            answers = [json.loads(line) for path in tmp_path.glob("runs/*/responses.jsonl")
                       for line in path.read_text(encoding="utf-8").splitlines(keepends=True)
                       if line.endswith("\n")]  # a line being written is not an answer yet
        assert answers, "no answer from the embedded server"
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
        process.wait(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = (tmp_path / "stderr").read_text(encoding="utf-8")
    [run_dir] = tmp_path.glob("runs/zh-self-instruct-*")  # no -o: the default runs/<lang>-<mode>-<time>
    assert process.returncode in (0, 130), stderr
    if process.returncode == 130:
        assert f"selfinstruct resume {run_dir}" in stderr
    assert stderr.splitlines()[0].startswith(f"endpoint: embedded llama.cpp server, model {gguf.name} (chat API)")
    assert any(a["error"] is None and a["text"].strip() for a in answers), answers
    settings = settings_of(run_dir)
    assert (settings["local"], settings["local_model"], settings["api"], settings["ctx"], settings["threads"]) == (
        True, str(gguf), "chat", 8192, 2)
    assert re.search(r"n_ctx\s*=\s*8192", (run_dir / "server.log").read_text(errors="replace"))


@pytest.mark.real_model
def test_python_api_snippet_real(tmp_path, tmp_path_factory):
    (tmp_path / "snippet.py").write_text(item("python").text, encoding="utf-8")
    result = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, env=base_env(tmp_path_factory),
                            capture_output=True, text=True, timeout=560, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    run_dir = tmp_path / "runs" / "py"
    requests_after_3 = re.fullmatch(r"3 (\d+)", first)
    assert requests_after_3 and int(requests_after_3.group(1)) >= 1
    assert len(read_jsonl(run_dir / "tasks.jsonl")) == 4  # resumed to 4
    records = json.loads((run_dir / "alpaca_data.json").read_text(encoding="utf-8"))
    kept = json.loads((run_dir / "clean.json").read_text(encoding="utf-8"))
    assert second == f"{len(kept)} of {len(records)}"
