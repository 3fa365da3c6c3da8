"""One configuration object, built and checked the same way by the CLI, a TOML file and the Python API.

``Config`` holds what the user asked for; ``resolve()`` settles, once, everything that
depends on other settings or on the environment (the endpoint, the model, sampling
defaults, absolute paths). The resolved settings are what a run directory stores.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from selfinstruct.paths import special_kind
from selfinstruct.resources import default_prompts, default_seeds
from selfinstruct.store.rundir import RunDirError, read_config
from selfinstruct.errors import BadInput

LANGS = ("zh", "en")
# The --mode values: one per module of generation/methods (its registry checks that they match).
MODES = ("self-instruct", "alpaca", "evol")
# The --structured styles: response_format json_schema (a schema per stage) or json_object (any JSON).
STYLES = ("json_schema", "json_object")
APIS = ("chat", "completion")

# What changes the data a run produces. Resuming with any of these changed is refused,
# while concurrency, timeouts, retries, stop rules and the endpoint address may change freely.
DATA_KEYS = (
    "lang", "mode", "seed", "api", "model", "temperature", "top_p", "max_tokens", "threshold",
    "instances_per_task", "requests_per_round", "seed_examples", "machine_examples",
    "tasks_per_request", "min_length", "max_length", "normalize",
)
# What `resume` may change: where requests go and how they are sent, never what they ask.
RESUME_KEYS = ("num_instructions", "batch", "api_key", "base_url", "judge_api_key", "judge_base_url", "concurrency", "timeout", "max_retries", "retry_wait",
               "max_idle_rounds", "failure_window", "max_failure_share", "price_in", "price_out", "judge_price_in",
               "judge_price_out", "max_cost",
               "max_requests", "max_total_tokens", "rpm", "tpm")
LENGTH_DEFAULTS = {"en": (4, 150), "zh": (6, 300)}  # words for English, characters for Chinese
# temperature, top_p, max_tokens. The small bundled base model copies its examples at lower
# temperatures and rambles past a few hundred tokens; API models get Self-Instruct's settings.
SAMPLING_DEFAULTS = {"bundled": (0.9, 0.95, 256), "api": (0.7, 1.0, 1024)}
OPENAI_BASE_URL = "https://api.openai.com/v1"
DEFAULT_REMOTE_MODEL = "gpt-4o-mini"
BUNDLED_MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"
REDACTED = "REDACTED"  # in place of a credential in a URL (brackets would make it unparseable)
# A query value this short is not scrubbed from free text ("?v=1" would take every 1 out of every message);
# it is still never shown or stored as part of the URL.
MIN_SCRUBBED = 4


class ConfigError(BadInput, ValueError):
    pass


@dataclass
class Config:
    lang: str = "zh"
    mode: str = "self-instruct"
    num_instructions: int = 100
    output: Path | None = None
    seeds: Path | None = None
    from_dataset: Path | None = None  # evol mode: a dataset to evolve instead of the seeds (--from)
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
    batch: bool = False  # through the provider's Batch API (batcher.py): half the price, answers within a day
    concurrency: int = 8
    timeout: float = 120.0
    max_retries: int = 6
    retry_wait: float = 1.0  # first back-off, seconds; doubles per retry, with jitter
    # stop rules (0 turns one off): a run that cannot progress ends by itself, resumably
    max_idle_rounds: int = 10  # rounds in a row that accept nothing
    failure_window: int = 20  # the last N requests sent...
    max_failure_share: float = 0.9  # ...of which at least this share failed
    # cost, budgets (None: no budget) and provider rate limits (None: none)
    price_in: float | None = None  # USD per million prompt tokens; None: the built-in table
    price_out: float | None = None  # USD per million completion tokens
    max_cost: float | None = None  # USD, for the whole run
    max_requests: int | None = None
    max_total_tokens: int | None = None
    rpm: float | None = None  # requests per minute
    tpm: float | None = None  # tokens per minute
    # the loop
    threshold: float = 0.7
    instances_per_task: int = 3
    requests_per_round: int | None = None  # None: --concurrency, at least 8, so a round fills every slot
    seed_examples: int = 6
    machine_examples: int = 2
    tasks_per_request: int = 10  # alpaca mode
    min_length: int | None = None
    max_length: int | None = None
    # the LLM judge (judge.py): scores each task 1-5; --min-score rejects below it
    judge: bool = False
    min_score: int | None = None
    judge_model: str | None = None  # None: the run's model
    judge_base_url: str | None = None  # None: the run's endpoint
    judge_api_key: str | None = field(default=None, repr=False)  # None: the run's key
    judge_price_in: float | None = None  # USD per million tokens of the judge's model; None: as price_in
    judge_price_out: float | None = None
    # JSON answers that follow a schema per stage (structured.py): "json_schema", or "json_object" for
    # endpoints with JSON mode alone; True means "json_schema". None: the papers' free-text prompts.
    structured: bool | str | None = None
    # NFKC before ROUGE-L (full-width Ｐｙｔｈｏｎ equals Python). None: on, except in a run directory
    # made before it existed (format 2), which keeps comparing raw text so that it resumes exactly.
    normalize: bool | None = None

    def __post_init__(self) -> None:
        # A value pasted or read with $(cat file) brings a newline along; an HTTP request cannot carry it.
        for name in ("base_url", "judge_base_url", "api_key", "judge_api_key"):
            if isinstance(getattr(self, name), str):
                setattr(self, name, getattr(self, name).strip())
        for name in ("api_key", "judge_api_key"):
            if isinstance(getattr(self, name), str):
                check_header_value(f"--{_flag(name)}", getattr(self, name))
        self.validate()
        if isinstance(self.structured, bool):  # one spelling in settings and signatures
            self.structured = STYLES[0] if self.structured else None
        for name in ("output", "seeds", "from_dataset", "prompts", "local_model"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, Path):
                setattr(self, name, Path(value))

    def validate(self) -> None:
        for spec in fields(self):
            _check_type(spec.name, getattr(self, spec.name), spec.type)
        _choice("lang", self.lang, LANGS)
        _choice("mode", self.mode, MODES)
        if self.from_dataset is not None and self.mode != "evol":
            raise ConfigError("--from gives --mode evol a dataset to evolve; self-instruct and alpaca start from "
                              "--seeds")
        if self.from_dataset is not None and self.seeds is not None:
            raise ConfigError("give --from or --seeds, not both: an evol run starts from one of them")
        if self.api is not None:
            _choice("api", self.api, APIS)
        if isinstance(self.structured, str):
            _choice("structured", self.structured, STYLES)
        if self.structured and self.api == "completion":
            raise ConfigError("--structured needs the chat API: response_format belongs to chat requests; "
                              "drop --api completion")
        for name in ("num_instructions", "concurrency", "max_tokens", "instances_per_task",
                     "requests_per_round", "tasks_per_request", "ctx", "threads", "min_length", "max_length"):
            _at_least(name, getattr(self, name), 1)
        for name in ("seed_examples", "machine_examples", "max_retries", "max_idle_rounds", "failure_window",
                     "temperature", "retry_wait", "price_in", "price_out", "judge_price_in", "judge_price_out",
                     "max_cost", "max_requests",
                     "max_total_tokens"):
            _at_least(name, getattr(self, name), 0)
        for name in ("rpm", "tpm"):
            if getattr(self, name) is not None and getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be more than 0, got {getattr(self, name)}")
        for name in ("threshold", "top_p"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ConfigError(f"{_flag(name)} must be between 0 and 1, got {value}")
        if not 0.0 < self.max_failure_share <= 1.0:
            raise ConfigError(f"max-failure-share must be more than 0 and at most 1, got {self.max_failure_share}")
        for name in ("base_url", "judge_base_url"):
            parts = urlsplit(getattr(self, name) or "")
            if getattr(self, name) is not None and (parts.scheme not in ("http", "https") or not parts.hostname):
                raise ConfigError(f"{_flag(name)} must be an http:// or https:// URL with a host, "
                                  f"got {redact_url(getattr(self, name))!r}")
        if self.min_score is not None and not 1 <= self.min_score <= 5:
            raise ConfigError(f"min-score must be from 1 to 5, got {self.min_score}")
        judging = [f"--{_flag(name)}" for name in ("min_score", "judge_model", "judge_base_url", "judge_api_key",
                                                   "judge_price_in", "judge_price_out")
                   if getattr(self, name) is not None]
        if judging and not self.judge:
            raise ConfigError(f"{', '.join(judging)} needs --judge, which is off")
        if self.batch and self.local:
            raise ConfigError("--batch needs a provider's Batch API; the embedded model answers at once: drop --batch "
                              "or --local")
        if self.timeout <= 0:
            raise ConfigError(f"timeout must be more than 0 seconds, got {self.timeout}")

    @classmethod
    def from_toml(cls, path: Path | str, **overrides) -> Config:
        """Settings from a TOML file (keys as the CLI's long options), then the given overrides."""
        path = Path(path)
        if kind := special_kind(path):
            raise ConfigError(f"{path}: is {kind}, not a regular file; give a TOML file")
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError(f"{path}: not valid TOML: {exc}") from None
        except RecursionError:
            raise ConfigError(f"{path}: not valid TOML: arrays or tables nested too deep") from None
        values = settings_from(data, path)
        for key, instead in (("api_key", "set OPENAI_API_KEY"), ("judge_api_key", "pass --judge-api-key")):
            if key in values:
                raise ConfigError(f"{path}: do not store {_flag(key)} in a file; {instead} instead")
        try:
            cls(**values)  # the file's own values are checked even where a flag overrides them
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        return cls(**{**values, **{k: v for k, v in overrides.items() if v is not None}})

    def resolve(self) -> Config:
        """Settle the endpoint, model, sampling, lengths and paths; resolving twice changes nothing."""
        low, high = LENGTH_DEFAULTS[self.lang]
        output = _absolute(self.output or Path("runs") / f"{self.lang}-{self.mode}-{datetime.now():%Y%m%d-%H%M%S}")
        config = replace(
            self,
            output=output,
            seeds=None if self.from_dataset else _absolute(self.seeds or default_seeds(self.lang)),
            from_dataset=_absolute(self.from_dataset) if self.from_dataset else None,
            prompts=_absolute(self.prompts or default_prompts()),
            local_model=_absolute(self.local_model) if self.local_model else None,
            min_length=_given(self.min_length, low),
            max_length=_given(self.max_length, high),
            # An existing run keeps its round size whatever the concurrency is now.
            requests_per_round=_given(self.requests_per_round,
                                      _stored(output, "requests_per_round") or max(8, self.concurrency)),
            normalize=_given(self.normalize, _given(_stored(output, "normalize"), True)),
        )
        config = config._resolve_endpoint()
        return replace(config, judge_model=config.judge_model or config.model) if config.judge else config

    def _resolve_endpoint(self) -> Config:
        """The endpoint rule: --local/--local-model, else the given or environment endpoint (a key alone
        means OpenAI), else, with neither a base URL nor a key, the embedded model."""
        base_url = self.base_url or os.environ.get("OPENAI_BASE_URL", "").strip() or None
        api_key = self.api_key or check_header_value("OPENAI_API_KEY", os.environ.get("OPENAI_API_KEY", "").strip())
        api_key = api_key or None
        if self.local or self.local_model is not None:
            embedded = True
        elif base_url is None and api_key is None:
            if self.model is not None and self.model != BUNDLED_MODEL_NAME:
                raise ConfigError(
                    f"--model {self.model} needs an endpoint, but neither OPENAI_API_KEY / --api-key nor "
                    "OPENAI_BASE_URL / --base-url is set, so the embedded model would run. Set a key (OpenAI) "
                    "or --base-url, or drop --model to use the embedded model (--local-model FILE for your own GGUF)")
            embedded = True
        else:
            embedded = False
        if embedded:
            own = self.local_model is not None
            model = self.model or (self.local_model.name if own else BUNDLED_MODEL_NAME)
            config = self._with_sampling("api" if own else "bundled")
            return replace(config, local=True, base_url=None, api_key=None, model=model,
                           api=self.api or ("chat" if self.structured else "completion"))
        base_url = base_url or OPENAI_BASE_URL
        if api_key is None and urlsplit(base_url).hostname == urlsplit(OPENAI_BASE_URL).hostname:
            raise ConfigError("no API key for OpenAI: set OPENAI_API_KEY or pass --api-key")
        model = self.model or DEFAULT_REMOTE_MODEL
        bundled = model == BUNDLED_MODEL_NAME  # `selfinstruct serve` elsewhere: its base model's settings
        config = self._with_sampling("bundled" if bundled else "api")
        return replace(config, local=False, base_url=base_url, api_key=api_key, model=model,
                       api=self.api or ("completion" if bundled and not self.structured else "chat"))

    def _with_sampling(self, endpoint: str) -> Config:
        temperature, top_p, max_tokens = SAMPLING_DEFAULTS[endpoint]
        return replace(self, temperature=_given(self.temperature, temperature), top_p=_given(self.top_p, top_p),
                       max_tokens=_given(self.max_tokens, max_tokens))

    def serves_llama_cpp_python(self, judge: bool = False) -> bool:
        """Whether requests (the judge's, with ``judge``) go to llama-cpp-python's server: the embedded one,
        or the bundled model wherever `selfinstruct serve` runs it. It takes a response_format schema its
        own way (structured.py)."""
        if judge and self.judge_base_url:
            return self.judge_model == BUNDLED_MODEL_NAME
        return self.local or (self.judge_model if judge else self.model) == BUNDLED_MODEL_NAME

    def endpoint_line(self) -> str:
        """One line naming where a resolved config sends its requests."""
        if self.local:
            where = f"embedded llama.cpp server, model {self.model}"
        else:
            where = f"{redact_url(self.base_url)}, model {self.model}"
        line = f"endpoint: {where} ({self.api} API)" + (f", structured ({self.structured})" if self.structured else "")
        if self.judge:
            at = f" at {redact_url(self.judge_base_url)}" if self.judge_base_url else ""
            line += f"; judge: model {self.judge_model}{at}" + (f", min-score {self.min_score}" if self.min_score else "")
        return line

    def secrets(self) -> list[str]:
        """What must never be shown or stored: the key and any credential inside the base URL."""
        found = [key for key in (self.api_key, self.judge_api_key) if key]
        for url in (self.base_url, self.judge_base_url):
            found += _url_secrets(url) if url else []
        return found

    def to_dict(self) -> dict:
        """JSON-ready settings: never the API key, and the base URL without credentials."""
        data = asdict(self)
        data.pop("api_key")
        data.pop("judge_api_key")
        data["base_url"], data["judge_base_url"] = redact_url(self.base_url), redact_url(self.judge_base_url)
        return {k: str(v) if isinstance(v, Path) else v for k, v in data.items()}

    def signature(self, prompt_files: list[Path]) -> dict:
        """Everything that changes the data: settings plus the content of seeds and prompts."""
        sig = {key: getattr(self, key) for key in DATA_KEYS}
        sig["seeds_sha256"] = _sha256_files([self.seeds]) if self.seeds else None
        # Only when set, so that runs made before these settings existed keep their signature.
        if self.from_dataset:
            sig["from_sha256"] = _sha256_files([self.from_dataset])
        if self.judge:
            sig["judge"] = {"model": self.judge_model, "min_score": self.min_score}
        if self.structured:
            sig["structured"] = self.structured
        sig["prompts_sha256"] = _sha256_files(prompt_files)
        return sig


def _url_secrets(url: str) -> list[str]:
    """Credentials inside a URL: user info (also as Basic auth sends it) and every query value (a signature
    has no fixed name: sig=, code=, se=...), as written and decoded."""
    parts = urlsplit(url)
    found = []
    if "@" in parts.netloc:
        userinfo = parts.netloc.rsplit("@", 1)[0]
        found += [userinfo, base64.b64encode(unquote(userinfo).encode()).decode()]  # as Basic auth
    raw = [pair.partition("=")[2] for pair in parts.query.split("&")]
    values = raw + [value for _, value in parse_qsl(parts.query)]
    return found + sorted({v for v in values if len(v) >= MIN_SCRUBBED}, key=len, reverse=True)


def check_header_value(name: str, value: str) -> str:
    """``value`` if an HTTP header can carry it (visible ASCII only), else a ConfigError that names the
    setting and the character but never shows the value, which is a secret."""
    for position, char in enumerate(value, 1):
        if not "\x21" <= char <= "\x7e":
            raise ConfigError(f"{name} holds a character an HTTP header cannot carry: U+{ord(char):04X} at position "
                              f"{position} of {len(value)}; copy it again without that character")
    return value


def settings_from(data: object, source: Path | str) -> dict:
    """A mapping of setting names (``max-tokens`` or ``max_tokens``) to values, names checked."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: expected a table of settings, got {type(data).__name__}")
    known = {f.name for f in fields(Config)}
    values = {}
    for key, value in data.items():
        name = "from_dataset" if key == "from" else str(key).replace("-", "_")  # --from
        if name not in known:
            raise ConfigError(f"{source}: unknown setting {key!r}")
        values[name] = value
    return values


def redact_url(url: str | None) -> str | None:
    """The URL without a password or token in it: user:pass@ and every query value (?sig=, ?api-key=, and
    names no list foresees), since any of them may be a signature."""
    if not url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        query = urlencode([(k, REDACTED) for k, _ in parse_qsl(query, keep_blank_values=True)])
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))



_KINDS = {"str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "Path": (str, Path)}
_KIND_NAMES = {"str": "text", "int": "a whole number", "float": "a number", "bool": "true or false",
               "Path": "a path"}


def _check_type(name: str, value: object, annotation: str) -> None:
    kinds = [kind.strip() for kind in annotation.split("|")]
    if value is None and "None" in kinds:
        return
    wanted = [kind for kind in kinds if kind != "None"]
    fits = any(isinstance(value, _KINDS[kind]) for kind in wanted)
    if isinstance(value, bool) and "bool" not in wanted:
        fits = False
    if not fits:
        raise ConfigError(f"{_flag(name)} must be {_KIND_NAMES[wanted[0]]}, got {value!r}")
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{_flag(name)} must be a finite number, got {value!r}")


def _flag(name: str) -> str:
    return name.replace("_", "-")


def _at_least(name: str, value, low: int) -> None:
    if value is not None and value < low:
        raise ConfigError(f"{_flag(name)} must be at least {low}, got {value}")


def _stored(run_dir: Path, name: str):
    """A setting an existing run directory holds (migrated to the current format), or None."""
    if not (run_dir / "config.json").is_file():
        return None
    try:
        return read_config(run_dir)["settings"].get(name)
    except (RunDirError, OSError, KeyError, TypeError, AttributeError):
        return None


def _given(value, default):
    return default if value is None else value


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(Path(path).expanduser()))


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: {', '.join(allowed)}")


def _sha256_files(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()

def read_settings(run_dir: Path) -> dict:
    """A run's stored settings, checked as a resume checks them (names, types, ranges)."""
    config_file = Path(run_dir) / "config.json"
    try:
        settings = settings_from(read_config(run_dir)["settings"], config_file)
        Config(**{**settings, "output": run_dir})
    except ConfigError as exc:
        raise RunDirError(f"{config_file}: {str(exc).removeprefix(f'{config_file}: ')}") from None
    return settings
