"""Every test runs in its own temporary directory with no real keys or endpoints."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_model import FakeModel  # noqa: E402
from helpers import EXPORT_KEY, PASSWORD, USER, RejectingModel  # noqa: E402
from openai_stub import ScriptedServer  # noqa: E402

from selfinstruct import Config, generate  # noqa: E402


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch, tmp_path_factory):
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SELFINSTRUCT_CACHE_DIR", str(_shared_cache(tmp_path_factory)))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _shared_cache(factory) -> Path:
    """One model cache for the whole session, so the bundled model is assembled once."""
    path = factory.getbasetemp() / "model-cache"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture
def fake_model():
    return FakeModel()


@pytest.fixture
def server(fake_model):
    with ScriptedServer(fake_model) as running:
        yield running


@pytest.fixture(scope="module")
def made_run(tmp_path_factory) -> Path:
    """A finished Chinese run against the scripted server, with a rejection per rule, whose base URL holds a user
    and password (so tests can check neither lands in what export and report write)."""
    run_dir = tmp_path_factory.mktemp("made") / "run"
    with ScriptedServer(RejectingModel()) as server:
        url = server.base_url.replace("http://", f"http://{USER}:{PASSWORD}@")
        generate(Config(lang="zh", base_url=url, api_key=EXPORT_KEY, model="stub-model", num_instructions=6,
                        output=run_dir, requests_per_round=2, concurrency=4, retry_wait=0.01, timeout=5),
                 progress="off")
    return run_dir


@pytest.fixture
def run(made_run, tmp_path) -> Path:
    """A copy of the made run for one test."""
    return Path(shutil.copytree(made_run, tmp_path / "run"))
