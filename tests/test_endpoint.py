"""Which endpoint a run uses: the one the user named, and nothing else; credentials never stored."""

from __future__ import annotations

import json

import pytest
from openai_stub import Reply
from helpers import invoke
from selfinstruct.config import BUNDLED_MODEL_NAME, OPENAI_BASE_URL, Config, ConfigError, redact_url


def test_a_key_alone_means_openai(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    config = Config(lang="en", model="gpt-4o-mini").resolve()
    assert (config.local, config.base_url, config.model, config.api) == (False, OPENAI_BASE_URL, "gpt-4o-mini", "chat")
    assert config.endpoint_line() == f"endpoint: {OPENAI_BASE_URL}, model gpt-4o-mini (chat API)"


def test_neither_key_nor_url_means_the_embedded_model():
    config = Config(lang="en").resolve()
    assert (config.local, config.model, config.api) == (True, BUNDLED_MODEL_NAME, "completion")
    assert config.endpoint_line().startswith("endpoint: embedded llama.cpp server")


def test_a_model_name_without_an_endpoint_is_refused():
    with pytest.raises(ConfigError) as raised:
        Config(lang="en", model="gpt-4o-mini").resolve()
    message = str(raised.value)
    assert "OPENAI_API_KEY" in message and "--base-url" in message and "drop --model" in message


def test_local_wins_over_an_endpoint(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    assert Config(local=True).resolve().local is True


def test_the_bundled_model_behind_a_url_gets_its_own_settings():
    """`selfinstruct serve` then `generate --base-url ... --model <bundled>`: base-model settings."""
    config = Config(base_url="http://127.0.0.1:8000/v1", model=BUNDLED_MODEL_NAME).resolve()
    assert (config.local, config.api, config.temperature, config.max_tokens) == (False, "completion", 0.9, 256)


def test_the_cli_exits_2_naming_both_ways_out(tmp_path):
    result = invoke("generate", "--lang", "en", "--model", "gpt-4o-mini", "-n", 2, "-o", tmp_path / "run")
    assert result.exit_code == 2
    assert "OPENAI_API_KEY" in result.output and "--base-url" in result.output
    assert not (tmp_path / "run").exists()


def test_only_a_key_stores_openai_as_the_endpoint(tmp_path, monkeypatch):
    """(Tests never contact OpenAI: this checks what a run would store and use.)"""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-abc")
    config = Config(lang="en", model="gpt-4o-mini", output=tmp_path / "run").resolve()
    assert config.to_dict()["local"] is False and config.to_dict()["base_url"] == OPENAI_BASE_URL


@pytest.mark.parametrize("url, shown", [
    ("https://user:pass@host.example/v1", "https://REDACTED@host.example/v1"),
    ("https://host.example/v1?api-key=abc123&x=1", "https://host.example/v1?api-key=REDACTED&x=REDACTED"),
    ("https://acct.example/v1?sv=2024&sig=s1g%2Bx", "https://acct.example/v1?sv=REDACTED&sig=REDACTED"),
    ("https://host.example/v1?token=t0k&sig=s1g", "https://host.example/v1?token=REDACTED&sig=REDACTED"),
    ("http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1"),
])
def test_credentials_in_a_url_are_redacted(url, shown):
    assert redact_url(url) == shown


def test_url_credentials_never_land_in_the_run_directory(server, tmp_path):
    url = server.base_url.replace("http://", "http://alice:s3cretpw@") + "?api-key=qwerty987"
    result = invoke("generate", "--lang", "en", "-n", 2, "-o", tmp_path / "run", "--base-url", url,
                    "--api-key", "sk-x", "--model", "stub-model", "--quiet")
    assert result.exit_code == 0, result.output
    assert "s3cretpw" not in result.output and "qwerty987" not in result.output
    assert "endpoint: http://REDACTED@127.0.0.1" in result.output
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            text = path.read_text(errors="replace")
            assert "s3cretpw" not in text and "qwerty987" not in text, path
    stored = json.loads((tmp_path / "run" / "config.json").read_text())["settings"]["base_url"]
    assert "REDACTED" in stored
    # resume cannot reuse a redacted URL: it asks for it again, in one line
    result = invoke("resume", tmp_path / "run", "-n", 3, "--api-key", "sk-x", "--quiet")
    assert result.exit_code == 2 and "pass --base-url again" in result.output
    result = invoke("resume", tmp_path / "run", "-n", 3, "--api-key", "sk-x", "--base-url", url, "--quiet")
    assert result.exit_code == 0, result.output


def test_a_base_url_password_sent_as_basic_auth_and_echoed_is_redacted(server, tmp_path):
    import base64

    server.responder = lambda request: Reply(status=401, text=f"bad credentials: {request.headers['authorization']}")
    url = server.base_url.replace("http://", "http://alice:s3cretpw@")
    result = invoke("generate", "--lang", "en", "-n", 2, "-o", tmp_path / "run", "--base-url", url,
                    "--api-key", "sk-x", "--model", "stub-model", "--quiet")
    assert result.exit_code == 3
    assert base64.b64encode(b"alice:s3cretpw").decode() not in result.output and "s3cretpw" not in result.output
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            assert "YWxpY2U6czNjcmV0cHc" not in path.read_text(errors="replace")
