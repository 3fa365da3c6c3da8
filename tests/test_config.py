"""One config object: defaults, TOML, overrides, validation and the data signature."""

from __future__ import annotations

import pytest

from selfinstruct.config import Config, ConfigError, signature_changes


def test_toml_with_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('lang = "en"\nnum-instructions = 50\ntemperature = 0.9\nmode = "alpaca"\n')
    config = Config.from_toml(path, temperature=0.3, model=None)
    assert (config.lang, config.num_instructions, config.temperature, config.mode) == ("en", 50, 0.3, "alpaca")


@pytest.mark.parametrize("text, needle", [
    ('colour = "red"\n', "unknown setting 'colour'"),
    ('lang = "fr"\n', "unknown lang 'fr'"),
    ('lang = \n', "not valid TOML"),
    ('api_key = "sk-abc"\n', "do not store api_key"),
    ('threshold = 1.5\n', "threshold must be between 0 and 1"),
])
def test_toml_errors_name_the_file(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        Config.from_toml(path)
    assert needle in str(raised.value)
    assert "sk-abc" not in str(raised.value)


@pytest.mark.parametrize("kwargs", [dict(lang="de"), dict(mode="evol"), dict(api="rest"), dict(concurrency=0),
                                    dict(num_instructions=0), dict(top_p=2.0), dict(timeout=0)])
def test_invalid_values(kwargs):
    with pytest.raises(ConfigError):
        Config(**kwargs)


def test_defaults_depend_on_language():
    assert Config(lang="en").with_defaults().seeds.name == "en_seed_tasks.jsonl"
    assert (Config(lang="en").with_defaults().min_length, Config(lang="zh").with_defaults().min_length) == (4, 6)


def test_api_key_is_never_serialised():
    config = Config(api_key="sk-secret-123")
    assert "api_key" not in config.to_dict()
    assert "sk-secret-123" not in repr(config)


def test_signature_covers_data_not_throughput(tmp_path):
    prompt = tmp_path / "p.txt"
    prompt.write_text("x")
    base = Config(lang="en").with_defaults().with_sampling_defaults("api")
    same = Config(lang="en", concurrency=64, timeout=5, max_retries=1, base_url="http://elsewhere").with_defaults()
    same = same.with_sampling_defaults("api")
    assert base.signature([prompt]) == same.signature([prompt])
    changed = Config(lang="en", temperature=0.2, threshold=0.5).with_defaults().with_sampling_defaults("api")
    assert signature_changes(base.signature([prompt]), changed.signature([prompt])) == [
        "temperature: 0.7 -> 0.2", "threshold: 0.7 -> 0.5"]
    before = base.signature([prompt])
    prompt.write_text("y")
    assert [c.split(":")[0] for c in signature_changes(before, base.signature([prompt]))] == ["prompts_sha256"]


def test_sampling_defaults_follow_the_endpoint():
    assert Config().with_sampling_defaults("bundled").max_tokens == 256
    assert Config().with_sampling_defaults("api").temperature == 0.7
    assert Config(temperature=0.3).with_sampling_defaults("bundled").temperature == 0.3
