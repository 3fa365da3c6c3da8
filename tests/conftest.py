"""Every test runs in its own temporary directory with no real keys or endpoints."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from fake_model import FakeModel  # noqa: E402
from openai_stub import ScriptedServer  # noqa: E402


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
