"""The installed `selfinstruct filter` console script on paths it must refuse: exit 2, one line, nothing written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(sys.executable).parent / "selfinstruct"


@pytest.mark.parametrize("args, needle", [
    (["-o", "clean.jsonl", "--dropped", "data.jsonl"],
     "data.jsonl: the dropped-records file is the same file as the input (data.jsonl); choose another path"),
    (["-o", "missing/clean.jsonl"], "missing/clean.jsonl: cannot write there: missing is not an existing directory"),
])
def test_console_script_exits_2_with_one_error_line(tmp_path, args, needle):
    source = tmp_path / "data.jsonl"
    source.write_text(json.dumps({"instruction": "Name a colour.", "input": "", "output": "Blue."}) + "\n")
    before = source.read_bytes()
    result = subprocess.run([str(SCRIPT), "filter", "data.jsonl", *args], cwd=tmp_path, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"error: {needle}"]
    assert source.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["data.jsonl"]
