"""One configuration object, built the same way by the CLI, a TOML file and the Python API."""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path

from .resources import default_prompts, default_seeds

LANGS = ("zh", "en")
MODES = ("self-instruct", "alpaca")
APIS = ("chat", "completion")

# What changes the data a run produces. Resuming with any of these changed is refused,
# while concurrency, timeouts, retries and the endpoint address may change freely.
DATA_KEYS = (
    "lang", "mode", "seed", "api", "model", "temperature", "top_p", "max_tokens", "threshold",
    "instances_per_task", "requests_per_round", "seed_examples", "machine_examples",
    "tasks_per_request", "min_length", "max_length",
)
LENGTH_DEFAULTS = {"en": (4, 150), "zh": (6, 300)}  # words for English, characters for Chinese
# temperature, top_p, max_tokens. The small bundled base model copies its examples at lower
# temperatures and rambles past a few hundred tokens; API models get Self-Instruct's settings.
SAMPLING_DEFAULTS = {"bundled": (0.9, 0.95, 256), "api": (0.7, 1.0, 1024)}


class ConfigError(ValueError):
    pass


@dataclass
class Config:
    lang: str = "zh"
    mode: str = "self-instruct"
    num_instructions: int = 100
    output: Path | None = None
    seeds: Path | None = None
    prompts: Path | None = None
    seed: int = 0
    # endpoint
    api: str | None = None  # None: completion for the bundled base model, chat otherwise
    model: str | None = None
    base_url: str | None = None
    api_key: str | None = field(default=None, repr=False)
    local: bool = False
    local_model: Path | None = None
    ctx: int = 4096
    threads: int | None = None
    # sampling; None: the endpoint's defaults (SAMPLING_DEFAULTS)
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    # throughput and faults
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 6
    retry_wait: float = 1.0  # first back-off, seconds; doubles per retry, with jitter
    # the loop
    threshold: float = 0.7
    instances_per_task: int = 3
    requests_per_round: int = 8
    seed_examples: int = 6
    machine_examples: int = 2
    tasks_per_request: int = 10  # alpaca mode
    min_length: int | None = None
    max_length: int | None = None

    def __post_init__(self) -> None:
        for name in ("output", "seeds", "prompts", "local_model"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))
        self.validate()

    def validate(self) -> None:
        _choice("lang", self.lang, LANGS)
        _choice("mode", self.mode, MODES)
        if self.api is not None:
            _choice("api", self.api, APIS)
        for name in ("num_instructions", "concurrency", "max_tokens", "instances_per_task",
                     "requests_per_round", "tasks_per_request", "ctx"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("seed_examples", "machine_examples", "max_retries"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        if not 0.0 <= self.threshold <= 1.0:
            raise ConfigError(f"threshold must be between 0 and 1, got {self.threshold}")
        if self.top_p is not None and not 0.0 <= self.top_p <= 1.0:
            raise ConfigError(f"top_p must be between 0 and 1, got {self.top_p}")
        if (self.temperature or 0) < 0 or self.timeout <= 0 or self.retry_wait < 0:
            raise ConfigError("temperature and retry_wait must not be negative, timeout must be positive")

    @classmethod
    def from_toml(cls, path: Path | str, **overrides) -> Config:
        """Settings from a TOML file (keys as the CLI's long options), then the given overrides."""
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        known = {f.name for f in fields(cls)}
        values = {}
        for key, value in data.items():
            name = key.replace("-", "_")
            if name not in known:
                raise ConfigError(f"{path}: unknown setting {key!r}")
            values[name] = value
        if "api_key" in values:
            raise ConfigError(f"{path}: do not store api_key in a file; set OPENAI_API_KEY instead")
        values.update({k: v for k, v in overrides.items() if v is not None})
        try:
            return cls(**values)
        except TypeError as exc:
            raise ConfigError(f"{path}: {exc}") from None

    def with_defaults(self) -> Config:
        """Fill in what depends on other settings: run directory, seed file, prompts folder, lengths."""
        low, high = LENGTH_DEFAULTS[self.lang]
        return replace(
            self,
            output=self.output or Path("runs") / f"{self.lang}-{self.mode}-{datetime.now():%Y%m%d-%H%M%S}",
            seeds=self.seeds or default_seeds(self.lang),
            prompts=self.prompts or default_prompts(),
            min_length=_given(self.min_length, low),
            max_length=_given(self.max_length, high),
        )

    def with_sampling_defaults(self, endpoint: str) -> Config:
        """Fill unset sampling settings with those of the endpoint kind (``bundled`` or ``api``)."""
        temperature, top_p, max_tokens = SAMPLING_DEFAULTS[endpoint]
        return replace(self, temperature=_given(self.temperature, temperature), top_p=_given(self.top_p, top_p),
                       max_tokens=_given(self.max_tokens, max_tokens))

    def to_dict(self) -> dict:
        """JSON-ready settings; the API key is never included."""
        data = asdict(self)
        data.pop("api_key")
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}

    def signature(self, prompt_files: list[Path]) -> dict:
        """Everything that changes the data: settings plus the content of seeds and prompts."""
        sig = {key: getattr(self, key) for key in DATA_KEYS}
        sig["seeds_sha256"] = _sha256_files([self.seeds]) if self.seeds else None
        sig["prompts_sha256"] = _sha256_files(prompt_files)
        return sig


def signature_changes(old: dict, new: dict) -> list[str]:
    """Readable lines for each setting that differs between two signatures."""
    return [f"{key}: {json.dumps(old.get(key))} -> {json.dumps(new.get(key))}"
            for key in sorted(set(old) | set(new)) if old.get(key) != new.get(key)]


def _given(value, default):
    return default if value is None else value


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()
