"""One config object: defaults, TOML, overrides, validation and the data signature."""

from __future__ import annotations

import pytest

from selfinstruct.config import Config, ConfigError
from selfinstruct.store.rundir import signature_changes


def test_toml_with_overrides(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text('lang = "en"\nnum-instructions = 50\ntemperature = 0.9\nmode = "alpaca"\n')
    config = Config.from_toml(path, temperature=0.3, model=None)
    assert (config.lang, config.num_instructions, config.temperature, config.mode) == ("en", 50, 0.3, "alpaca")


@pytest.mark.parametrize("text, needle", [
    ('colour = "red"\n', "unknown setting 'colour'"),
    ('lang = "fr"\n', "unknown lang 'fr'"),
    ('lang = \n', "not valid TOML"),
    ('api_key = "sk-abc"\n', "do not store api-key"),
    ('threshold = 1.5\n', "threshold must be between 0 and 1"),
    ('local = "no"\n', "local must be true or false, got 'no'"),
    ('concurrency = 2.5\n', "concurrency must be a whole number, got 2.5"),
    ('temperature = nan\n', "temperature must be a finite number"),
    ('top-p = inf\n', "top-p must be a finite number"),
    ('num-instructions = "100"\n', "num-instructions must be a whole number, got '100'"),
    ('seeds = 7\n', "seeds must be a path, got 7"),
    ('concurrency = true\n', "concurrency must be a whole number, got True"),
    ('model = ["a"]\n', "model must be text"),
])
def test_toml_errors_name_the_file(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        Config.from_toml(path)
    assert needle in str(raised.value)
    assert str(raised.value).startswith(f"{path}: ")
    assert "sk-abc" not in str(raised.value)


@pytest.mark.parametrize("kwargs, needle", [
    (dict(local="no"), "local must be true or false"),
    (dict(concurrency=2.5), "concurrency must be a whole number"),
    (dict(temperature=float("nan")), "temperature must be a finite number"),
    (dict(timeout=float("inf")), "timeout must be a finite number"),
    (dict(max_idle_rounds=-1), "max-idle-rounds must be at least 0"),
    (dict(max_failure_share=1.5), "max-failure-share must be more than 0 and at most 1"),
    (dict(threshold="0.7"), "threshold must be a number"),
])
def test_python_api_checks_types_and_ranges(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        Config(**kwargs)


@pytest.mark.parametrize("kwargs", [dict(lang="de"), dict(mode="wizard"), dict(api="rest"), dict(concurrency=0),
                                    dict(num_instructions=0), dict(top_p=2.0), dict(timeout=0)])
def test_invalid_values(kwargs):
    with pytest.raises(ConfigError):
        Config(**kwargs)


def test_defaults_depend_on_language():
    assert Config(lang="en").resolve().seeds.name == "en_seed_tasks.jsonl"
    assert (Config(lang="en").resolve().min_length, Config(lang="zh").resolve().min_length) == (4, 6)


def test_resolving_twice_changes_nothing(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-env")
    once = Config(lang="en", output="out").resolve()
    assert once.resolve() == once
    local = Config(lang="en", output="out", local=True).resolve()
    assert local.resolve() == local


def test_paths_are_stored_absolute(tmp_path):
    (tmp_path / "s.jsonl").write_text("")
    config = Config(seeds="s.jsonl", prompts="p", output="runs/x", local_model="m.gguf").resolve()
    settings = config.to_dict()
    for name, given in (("seeds", "s.jsonl"), ("prompts", "p"), ("output", "runs/x"), ("local_model", "m.gguf")):
        assert settings[name] == str(tmp_path / given)


def test_api_key_is_never_serialised():
    config = Config(api_key="sk-secret-123")
    assert "api_key" not in config.to_dict()
    assert "sk-secret-123" not in repr(config)


def test_signature_covers_data_not_throughput(tmp_path):
    prompt = tmp_path / "p.txt"
    prompt.write_text("x")
    remote = dict(base_url="http://somewhere/v1")
    base = Config(lang="en", **remote).resolve()
    same = Config(lang="en", concurrency=64, timeout=5, max_retries=1, base_url="http://elsewhere/v1",
                  max_idle_rounds=3, requests_per_round=8).resolve()
    assert base.signature([prompt]) == same.signature([prompt])
    changed = Config(lang="en", temperature=0.2, threshold=0.5, **remote).resolve()
    assert signature_changes(base.signature([prompt]), changed.signature([prompt])) == [
        "temperature: 0.7 -> 0.2", "threshold: 0.7 -> 0.5"]
    before = base.signature([prompt])
    prompt.write_text("y")
    assert [c.split(":")[0] for c in signature_changes(before, base.signature([prompt]))] == ["prompts_sha256"]


def test_sampling_defaults_follow_the_endpoint():
    assert Config().resolve().max_tokens == 256  # the embedded bundled model
    assert Config(base_url="http://h/v1").resolve().temperature == 0.7
    assert Config(temperature=0.3).resolve().temperature == 0.3


@pytest.mark.parametrize("kwargs, needle", [
    (dict(max_failure_share=0.0), "max-failure-share must be more than 0"),
    (dict(base_url="notaurl"), "base-url must be an http:// or https:// URL"),
    (dict(base_url="ftp://127.0.0.1:1/v1"), "base-url must be an http:// or https:// URL"),
    (dict(rpm=0), "rpm must be more than 0"),
    (dict(max_cost=-1.0), "max-cost must be at least 0"),
])
def test_more_invalid_settings(kwargs, needle):
    with pytest.raises(ConfigError, match=needle):
        Config(**kwargs)


def test_a_bad_toml_value_is_reported_even_when_a_flag_overrides_it(tmp_path):
    path = tmp_path / "run.toml"
    path.write_text("num-instructions = 2.5\n")
    with pytest.raises(ConfigError, match="num-instructions must be a whole number"):
        Config.from_toml(path, num_instructions=3)


def test_rounds_are_sized_from_the_concurrency_and_kept_by_an_existing_run(tmp_path):
    assert Config(concurrency=4).resolve().requests_per_round == 8
    assert Config(concurrency=32).resolve().requests_per_round == 32
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text('{"settings": {"requests_per_round": 16}, "signature": {}}')
    assert Config(concurrency=128, output=tmp_path / "run").resolve().requests_per_round == 16
