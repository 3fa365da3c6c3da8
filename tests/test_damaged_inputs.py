"""Every command, fed damaged inputs, answers with one line and an exit code the README lists: never a
traceback, and never a hang.

The inputs are what a user can hand over by mistake or on purpose: records of the wrong types, JSON
nested thousands deep, binary bytes, UTF-16, devices (/dev/null, /dev/zero), a FIFO with no writer, a
socket, a directory; as dataset files, seed files, TOML settings, prompt templates, model files, every
file of a run directory, and as output paths that must not be replaced.

The ~200 cases run in one child process (``python THIS_FILE``, cases on stdin), each through the CLI
in-process with a watchdog of WATCHDOG seconds, so the whole set takes seconds; a few cases run the
installed `selfinstruct` command itself, as a user would.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

WATCHDOG = 60  # seconds a case may take (most take a fraction of one): a hang fails, not a stuck test run
DOCUMENTED = {0, 1, 2, 3, 4}  # the README's exit codes
SCRIPT = Path(sys.executable).parent / "selfinstruct"
DEEP = 5000
ENDPOINT = ["--base-url", "http://127.0.0.1:9/v1", "--api-key", "sk-damage-test", "--model", "m", "--lang", "en"]
GOOD_RECORDS = [{"instruction": text, "input": "", "output": "Fine."} for text in (
    "Describe the moon to a child in two sentences.", "List three uses of a paperclip.",
    "Translate 'good morning' into Spanish.", "Suggest a name for a bakery that sells only bread.")]


def _deep(depth: int) -> str:
    return "[" * depth + "]" * depth


def damaged_files(folder: Path) -> dict[str, str]:
    """Name -> path of each damaged file kind (made in ``folder``, or a device of this machine)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = {
        "wrong_types.jsonl": "\n".join(['5', '"text"', "null", "[1, 2]", '{"instruction": 5, "output": "x"}',
                                        '{"instruction": "Write a haiku about rain.", "instances": "no"}',
                                        '{"instruction": "Name a colour.", "input": [], "output": {}}',
                                        '{"instruction": "Pick a fruit.", "instances": [{"input": 3, "output": null}]}',
                                        '{"instruction": "Add two numbers.", "input": "", "output": "\\ud800"}',
                                        '{"instruction": 1e999999, "output": "x"}']) + "\n",
        "deep.jsonl": '{"instruction": "Sort the list.", "input": %s, "output": "x"}\n' % _deep(DEEP)
                      + '{"instruction": %s}\n' % _deep(150) + _deep(DEEP) + "\n",
        "deep.json": "[" + _deep(DEEP) + "]",
        "deep_item.json": '[{"instruction": "Sort the list.", "input": %s, "output": "x"}]' % _deep(150),
        "truncated.json": '[{"instruction": "Explain tides.", "output": "Th',
        "only_blank.jsonl": "\n\n   \n",
        "empty.jsonl": "",
    }
    paths = {}
    for name, text in made.items():
        (folder / name).write_text(text, encoding="utf-8")
        paths[name] = str(folder / name)
    raw = {"binary.bin": bytes(range(256)) * 8 + b"\x00\xff\xfe{\n\x80\x81\n",
           "utf16.json": json.dumps(GOOD_RECORDS).encode("utf-16"),
           "bom.jsonl": b"\xef\xbb\xbf" + json.dumps(GOOD_RECORDS[0]).encode() + b"\n"}
    for name, data in raw.items():
        (folder / name).write_bytes(data)
        paths[name] = str(folder / name)
    os.mkfifo(folder / "fifo")
    paths["fifo"] = str(folder / "fifo")
    paths["socket"] = _socket(folder / "sock")
    (folder / "directory").mkdir()
    paths["directory"] = str(folder / "directory")
    paths["dev_null"], paths["dev_zero"] = "/dev/null", "/dev/zero"
    return paths


def _socket(path: Path) -> str:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))  # the file stays after the socket is closed: a socket file with no one behind it
    listener.close()
    return str(path)


def _kind(path: str) -> str:
    mode = os.stat(path).st_mode
    return next(name for test, name in ((stat.S_ISCHR, "chr"), (stat.S_ISFIFO, "fifo"), (stat.S_ISSOCK, "sock"),
                                        (stat.S_ISDIR, "dir"), (stat.S_ISREG, "file")) if test(mode))


@pytest.fixture(scope="module")
def made_run(tmp_path_factory) -> Path:
    """A complete English run against the scripted server (gone after this fixture: nothing may be sent)."""
    from fake_model import FakeModel
    from openai_stub import ScriptedServer

    from selfinstruct import Config, generate

    run_dir = tmp_path_factory.mktemp("made") / "run"
    with ScriptedServer(FakeModel()) as server:
        generate(Config(lang="en", base_url=server.base_url, api_key="sk-made", model="stub-model",
                        num_instructions=4, output=run_dir, requests_per_round=2, concurrency=4, retry_wait=0.01,
                        timeout=5), progress="off")
    assert (run_dir / "summary.json").is_file()
    return run_dir


def _run_damage(run: Path, name: str, how: str, files: dict[str, str]) -> None:
    """Damage one file of a copied run directory."""
    path = run / name
    if how == "binary":
        path.write_bytes(Path(files["binary.bin"]).read_bytes())
    elif how == "deep":
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        path.write_text("".join(lines[:1] + ['{"slot": %s}\n' % _deep(DEEP)] + lines[1:]), encoding="utf-8")
    elif how == "wrong_types":
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        wrong = {"responses.jsonl": {"slot": 5, "stage": "instructions", "text": None, "error": None,
                                     "prompt_tokens": "many", "retries": [1]},
                 "tasks.jsonl": {"id": "t", "instruction": "Name a river.", "instances": [{"input": ""}]},
                 "rejected.jsonl": {"id": "x", "stage": 3, "reason": None, "instruction": ["a"]},
                 "summary.json": None, "config.json": None}[name]
        if name.endswith(".json"):
            stored = json.loads(path.read_text(encoding="utf-8"))
            if name == "config.json":
                stored["settings"] = {**stored["settings"], "threshold": "high", "lang": 7}
            else:
                stored.update(requests_by_stage=5, cost_usd="free", retries_by_reason=[1])
            path.write_text(json.dumps(stored), encoding="utf-8")
        else:
            path.write_text("".join(lines[:1] + [json.dumps(wrong) + "\n"] + lines[1:]), encoding="utf-8")
    elif how == "fifo":
        path.unlink()
        os.mkfifo(path)
    elif how == "directory":
        path.unlink()
        path.mkdir()
    else:
        raise ValueError(how)


DATASET_COMMANDS = {
    "filter": ["filter", "{x}", "-o", "{out}/kept.jsonl"],
    "filter-against": ["filter", "{good}", "--against", "{x}", "-o", "{out}/kept.jsonl"],
    "report": ["report", "{x}", "-o", "{out}/report.html"],
    "seeds": ["generate", "--seeds", "{x}", "-o", "{out}/run", "--dry-run", *ENDPOINT],
    "evol-from": ["generate", "--mode", "evol", "--from", "{x}", "-o", "{out}/run", "--dry-run", *ENDPOINT],
    "config": ["generate", "--config", "{x}", "-o", "{out}/run", "--dry-run", *ENDPOINT],
    "prompts": ["generate", "--prompts", "{x_prompts}", "-o", "{out}/run", "--dry-run", *ENDPOINT],
    "local-model": ["generate", "--local-model", "{x}", "-o", "{out}/run", "--dry-run"],
    "serve": ["serve", "--local-model", "{x}", "--port", "9"],
}
OUTPUT_COMMANDS = {
    "filter -o": ["filter", "{good}", "-o", "{t}"],
    "filter --dropped": ["filter", "{good}", "-o", "{out}/kept.jsonl", "--dropped", "{t}", "--overwrite"],
    "filter --overwrite": ["filter", "{good}", "-o", "{t}", "--overwrite"],
    "export -o": ["export", "{run}", "-o", "{t}", "--overwrite"],
    "report -o": ["report", "{good}", "-o", "{t}"],
    "generate -o": ["generate", "-o", "{t}", "--dry-run", *ENDPOINT],
}
RUN_FILES = ("config.json", "responses.jsonl", "tasks.jsonl", "rejected.jsonl", "summary.json")
RUN_DAMAGE = ("binary", "deep", "wrong_types", "fifo", "directory")
RUN_COMMANDS = {
    # The run is complete: a resume replays it from the journal and sends nothing, unless the damage
    # loses answers; then the dead endpoint ends it by the stop rule, at once.
    "resume": ["resume", "{run}", "-q", "--max-retries", "0", "--failure-window", "2", "--timeout", "2"],
    "export": ["export", "{run}", "-o", "{out}/alpaca.json"],
    "report": ["report", "{run}", "-o", "{out}/report.html"],
    # With the run's own data settings (a dry run with others refuses, as the run would, before reading it).
    "dry-run": ["generate", "-o", "{run}", "--dry-run", "--base-url", "http://127.0.0.1:9/v1", "--api-key",
                "sk-damage-test", "--model", "stub-model", "--lang", "en"],
}


def build_cases(tmp: Path, made_run: Path) -> list[dict]:
    files = damaged_files(tmp / "inputs")
    good = tmp / "good.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in GOOD_RECORDS), encoding="utf-8")
    cases = []

    def add(name: str, argv: list[str], cwd: Path, allowed=frozenset({0, 2}), watch: str | None = None) -> None:
        cwd.mkdir(parents=True, exist_ok=True)
        cases.append({"name": name, "argv": argv, "cwd": str(cwd), "allowed": sorted(allowed),
                      "watch": watch, "kind": _kind(watch) if watch else None})

    for kind, path in files.items():
        prompts = tmp / "prompts" / kind
        shutil.copytree(Path(_bundled_prompts(), "en"), prompts / "en")
        (prompts / "en" / "instructions.txt").unlink()
        (prompts / "en" / "instructions.txt").symlink_to(path)
        for command, argv in DATASET_COMMANDS.items():
            out = tmp / "out" / f"{command}-{kind}"
            add(f"{command} <- {kind}", [a.format(x=path, out=out, good=good, x_prompts=prompts) for a in argv], out,
                watch=path if not path.startswith("/dev/") else None)
    targets = {k: files[k] for k in ("fifo", "socket", "dev_null", "dev_zero", "directory")}
    for kind, target in targets.items():
        for command, argv in OUTPUT_COMMANDS.items():
            if command in ("generate -o", "filter -o", "filter --overwrite") and kind == "directory":
                continue  # an empty directory is a new run's; filter writes into one (test_filter_cli)
            out = tmp / "out" / f"{command.replace(' ', '_')}-{kind}"
            run = Path(shutil.copytree(made_run, out / "run"))
            add(f"{command} {kind}", [a.format(t=target, out=out, good=good, run=run) for a in argv], out,
                allowed={2}, watch=target)
    for name in RUN_FILES:
        for how in RUN_DAMAGE:
            for command, argv in RUN_COMMANDS.items():
                out = tmp / "out" / f"run-{command}-{name}-{how}"
                run = Path(shutil.copytree(made_run, out / "run"))
                _run_damage(run, name, how, files)
                add(f"{command} <- {name} {how}", [a.format(run=run, out=out) for a in argv], out,
                    allowed={0, 2, 4}, watch=str(run / name))
    return cases


def _bundled_prompts() -> Path:
    from selfinstruct.resources import default_prompts

    return default_prompts()


def _error_lines(stderr: str) -> list[str]:
    """What stderr says beside the notes a run prints as it starts (endpoint, warnings, notes)."""
    return [line for line in stderr.splitlines()
            if line.strip() and not line.startswith(("endpoint: ", "warning: ", "note: "))]


@pytest.mark.slow
def test_every_command_answers_damaged_inputs_with_one_line(tmp_path, made_run):
    cases = build_cases(tmp_path, made_run)
    assert len(cases) > 150
    child = subprocess.run([sys.executable, __file__], input=json.dumps(cases), capture_output=True, text=True,
                           timeout=WATCHDOG * len(cases), env={**os.environ, "COLUMNS": "200"})
    assert child.returncode == 0, child.stderr[-3000:]
    results = json.loads(child.stdout.splitlines()[-1])
    assert len(results) == len(cases)
    problems = []
    for case, result in zip(cases, results):
        said = _error_lines(result["stderr"])
        wrong = []
        if result["exception"]:
            wrong.append(f"raised {result['exception']}")
        elif result["code"] not in case["allowed"] or result["code"] not in DOCUMENTED:
            wrong.append(f"exit {result['code']}, expected one of {case['allowed']}")
        elif result["code"] in (1, 2, 3) and (len(said) != 1 or not said[0].startswith("error: ")):
            wrong.append(f"{len(said)} lines instead of one 'error: ...' line")
        if "Traceback" in result["stdout"] + result["stderr"]:
            wrong.append("a traceback")
        if case["watch"] and os.path.lexists(case["watch"]) and _kind(case["watch"]) != case["kind"]:
            wrong.append(f"{case['watch']} was a {case['kind']} and is now a {_kind(case['watch'])}")
        if wrong:
            problems.append(f"{case['name']}: {'; '.join(wrong)}\n    stderr: {result['stderr'][-400:]!r}")
    assert not problems, f"{len(problems)} of {len(cases)} cases:\n" + "\n".join(problems)


@pytest.mark.parametrize("argv, target", [
    (["filter", "good.jsonl", "-o", "/dev/null"], "/dev/null"),
    (["export", "run", "-o", "/dev/null", "--overwrite"], "/dev/null"),
    (["report", "good.jsonl", "-o", "fifo"], "fifo"),
])
@pytest.mark.slow
def test_an_output_that_is_a_device_or_fifo_is_refused_and_left_as_it_is(tmp_path, made_run, argv, target):
    """`-o /dev/null` renamed a regular file over the device (as root, a broken machine)."""
    (tmp_path / "good.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOOD_RECORDS), encoding="utf-8")
    shutil.copytree(made_run, tmp_path / "run")
    os.mkfifo(tmp_path / "fifo")
    kind = _kind(str(tmp_path / target))
    result = subprocess.run([str(SCRIPT), *argv], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines() == [f"error: {target} is {'a character device' if kind == 'chr' else 'a FIFO (named pipe)'}, "
                                          "not a regular file; outputs are written whole and renamed into place, "
                                          "which would replace it: give a file path"]
    assert _kind(str(tmp_path / target)) == kind


@pytest.mark.slow
def test_dev_stdout_is_refused_and_a_link_to_a_file_stays_a_link(tmp_path):
    """/dev/stdout links to whatever standard output is (here a regular file): renaming over it would
    replace the machine's link. A link of the user's to a file is followed: the file is replaced, the
    link stays."""
    (tmp_path / "good.jsonl").write_text("".join(json.dumps(r) + "\n" for r in GOOD_RECORDS), encoding="utf-8")
    with (tmp_path / "log").open("w") as log:
        result = subprocess.run([str(SCRIPT), "filter", "good.jsonl", "-o", "/dev/stdout", "-q"], cwd=tmp_path,
                                stdout=log, stderr=subprocess.PIPE, text=True, timeout=120)
    assert result.returncode == 2 and os.path.islink("/dev/stdout")
    assert result.stderr.splitlines() == ["error: /dev/stdout is under /dev/, not a file of yours; outputs are "
                                          "written whole and renamed into place: give a file path"]
    (tmp_path / "real.jsonl").write_text("old\n")
    (tmp_path / "link.jsonl").symlink_to("real.jsonl")
    result = subprocess.run([str(SCRIPT), "filter", "good.jsonl", "-o", "link.jsonl", "--overwrite", "-q"],
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "link.jsonl").is_symlink()
    assert (tmp_path / "real.jsonl").read_text() == (tmp_path / "good.jsonl").read_text()


@pytest.mark.slow
def test_report_of_a_fifo_is_one_line_not_a_hang(tmp_path):
    os.mkfifo(tmp_path / "data.jsonl")
    result = subprocess.run([str(SCRIPT), "report", "data.jsonl"], cwd=tmp_path, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 2
    assert result.stderr.splitlines() == ["error: data.jsonl: is a FIFO (named pipe), not a regular file; a dataset "
                                          "is read more than once, so save it to a file first"]


# -- the child: runs the cases in-process ------------------------------------------------------------

class _Hung(BaseException):
    """The watchdog: a case took longer than WATCHDOG seconds."""


def _run_cases(cases: list[dict]) -> list[dict]:
    from typer.testing import CliRunner

    from selfinstruct.cli import app

    def alarm(signum, frame):
        raise _Hung()

    signal.signal(signal.SIGALRM, alarm)
    warm_up(CliRunner(), app)
    results = []
    for case in cases:
        os.chdir(case["cwd"])
        signal.alarm(WATCHDOG)
        try:
            result = CliRunner().invoke(app, case["argv"], catch_exceptions=True)
            signal.alarm(0)
            exception = None if result.exception is None or isinstance(result.exception, SystemExit) else \
                f"{type(result.exception).__name__}: {result.exception}"[:300]
            results.append({"code": result.exit_code, "stdout": result.stdout, "stderr": result.stderr,
                            "exception": exception})
        except _Hung:
            results.append({"code": None, "stdout": "", "stderr": "", "exception": f"no answer in {WATCHDOG} s"})
    return results


def warm_up(runner, app) -> None:
    """The first filter after an install compiles numba's loops (about 30 s), and the first report
    builds matplotlib's font cache: done once here, outside every case's watchdog."""
    with tempfile.TemporaryDirectory() as scratch:
        good = Path(scratch) / "good.jsonl"
        good.write_text("".join(json.dumps(r) + "\n" for r in GOOD_RECORDS), encoding="utf-8")
        for argv in (["filter", good, "-o", Path(scratch) / "kept.jsonl", "-q"],
                     ["report", good, "-o", Path(scratch) / "report.html"]):
            result = runner.invoke(app, [str(a) for a in argv], catch_exceptions=True)
            assert result.exit_code == 0, result.output


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    print(json.dumps(_run_cases(json.loads(sys.stdin.read()))))
