"""Seeds and prompts ship inside the wheel and are found from anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_wheel_carries_seeds_and_prompts_and_they_load(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            tmp_path / "dist", ROOT], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("selfinstruct-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for lang in ("zh", "en"):
        assert f"selfinstruct/_data/seeds/{lang}_seed_tasks.jsonl" in names
        for stage in ("instructions", "classify", "instances", "instances_classification", "alpaca"):
            assert f"selfinstruct/_data/prompts/{lang}/{stage}.txt" in names
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = ("import selfinstruct.resources as r, selfinstruct.seeds as s, selfinstruct.prompts as p;"
             "print(r.default_seeds('zh'));"
             "print(len(s.load_seed_tasks(r.default_seeds('zh'))), len(s.load_seed_tasks(r.default_seeds('en'))));"
             "print(len(p.PromptSet.load(r.default_prompts(), 'zh').templates))")
    ran = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    where, counts, templates = ran.stdout.split("\n")[:3]
    assert where.startswith(str(target / "selfinstruct" / "_data"))
    assert counts == "175 175" and templates == "5"
