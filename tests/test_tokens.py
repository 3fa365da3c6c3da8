"""A dry run counts an OpenAI model's prompt tokens with its encoding (the tokens extra), and estimates
any other model's. The count is checked against a reference written here from the encoding's
definition: OpenAI's published rank file (its SHA-256 as OpenAI publishes it), its split pattern, and
byte-pair merging by lowest rank."""

from __future__ import annotations

import base64
import gzip
import hashlib
from functools import lru_cache
from importlib.resources import files
from pathlib import Path

import pytest
import regex
from helpers import KEY, invoke

from selfinstruct.endpoint import tokens
from selfinstruct.endpoint.tokens import CHAT_WRAPPING, encoding_of, estimate_tokens, prompt_tokens
from selfinstruct.generation.plan import plan
from selfinstruct.config import Config

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
# The SHA-256 of OpenAI's rank files, as OpenAI publishes them with the encodings.
PUBLISHED = {"o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
             "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"}
_LETTERS_UPPER, _LETTERS_LOWER = r"[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]", r"[\p{Ll}\p{Lm}\p{Lo}\p{M}]"
_CONTRACTION = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)?"
SPLIT = {  # how each encoding cuts text into pieces before merging
    "o200k_base": "|".join([
        rf"[^\r\n\p{{L}}\p{{N}}]?{_LETTERS_UPPER}*{_LETTERS_LOWER}+{_CONTRACTION}",
        rf"[^\r\n\p{{L}}\p{{N}}]?{_LETTERS_UPPER}+{_LETTERS_LOWER}*{_CONTRACTION}",
        r"\p{N}{1,3}", r" ?[^\s\p{L}\p{N}]+[\r\n/]*", r"\s*[\r\n]+", r"\s+(?!\S)", r"\s+"]),
    "cl100k_base": (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*"
                    r"|\s*[\r\n]+|\s+(?!\S)|\s+"),
}
TEXTS = ["hello world", "Write a haiku about the autumn rain.", "请写一首关于秋天的五言绝句，并解释它的意境。",
         "Here are 3 tasks:\n\n1. **Summarise** the passage below.\n2. Translate \"good morning\" into French.\n"
         "```json\n{\"instruction\": \"List three primes\", \"output\": \"2, 3, 5\"}\n```\n",
         "It's   a mixed 中文 and English line — with ümlauts, 😀, and 12345678 digits.\r\n  \n"]


def _rank_file(encoding: str) -> bytes:
    return gzip.decompress((files("bpe_openai") / "data" / f"{encoding}.tiktoken.gz").read_bytes())


@lru_cache(maxsize=None)
def _ranks(encoding: str) -> dict[bytes, int]:
    return {base64.b64decode(token): int(rank) for token, rank in
            (line.split() for line in _rank_file(encoding).splitlines() if line)}


def reference_count(text: str, encoding: str) -> int:
    """Byte-pair merging as the encodings define it: each piece, as bytes, merges its adjacent pair of the
    lowest rank until no pair is in the ranks."""
    ranks, count = _ranks(encoding), 0
    for piece in regex.findall(SPLIT[encoding], text):
        parts = [bytes([b]) for b in piece.encode("utf-8")]
        while len(parts) > 1:
            pairs = [(ranks.get(parts[i] + parts[i + 1]), i) for i in range(len(parts) - 1)]
            pairs = [(rank, i) for rank, i in pairs if rank is not None]
            if not pairs:
                break
            _, i = min(pairs)
            parts[i:i + 2] = [parts[i] + parts[i + 1]]
        count += len(parts)
    return count


@pytest.mark.parametrize("model, encoding", [
    ("gpt-4o-mini", "o200k_base"), ("gpt-4o-2024-08-06", "o200k_base"), ("gpt-4.1-nano", "o200k_base"),
    ("openai/gpt-4o", "o200k_base"), ("ft:gpt-4o-mini-2024-07-18:acme::9xYz", "o200k_base"), ("o3-mini", "o200k_base"), ("gpt-5-mini", "o200k_base"),
    ("gpt-4-turbo", "cl100k_base"), ("gpt-4", "cl100k_base"), ("gpt-3.5-turbo", "cl100k_base"),
    ("deepseek-chat", None), ("qwen-plus", None), ("gemma-3-270m-q4_k_m.gguf", None), (None, None)])
def test_an_openai_model_has_its_encoding_and_no_other_model_has_one(model, encoding):
    assert encoding_of(model) == encoding


@pytest.mark.slow
@pytest.mark.parametrize("encoding", sorted(PUBLISHED))
def test_the_encodings_are_openais_and_count_as_the_reference_does(encoding):
    assert hashlib.sha256(_rank_file(encoding)).hexdigest() == PUBLISHED[encoding]
    assert reference_count("hello world", encoding) == 2
    completion = prompt_tokens("gpt-4o" if encoding == "o200k_base" else "gpt-4", "completion", local=False)
    chat = prompt_tokens("gpt-4o" if encoding == "o200k_base" else "gpt-4", "chat", local=False)
    assert completion.encoding == chat.encoding == encoding and chat.says() == f"counted with {encoding}"
    prompts = TEXTS + [path.read_text(encoding="utf-8") for path in sorted(PROMPTS.rglob("*.txt"))]
    assert len(prompts) > 10
    for text in prompts:
        assert completion.count(text) == reference_count(text, encoding), text[:60]
        assert chat.count(text) == reference_count(text, encoding) + CHAT_WRAPPING


def test_other_models_the_embedded_model_and_a_missing_extra_are_estimated(monkeypatch):
    text = TEXTS[3]
    for model, local in (("deepseek-chat", False), ("gpt-4o", True)):
        counter = prompt_tokens(model, "chat", local=local)
        assert (counter.count(text), counter.says()) == (estimate_tokens(text), "estimated")
    real_import = tokens.importlib.import_module

    def without_extra(name, *args):
        if name == "bpe_openai":
            raise ImportError("No module named 'bpe_openai'")
        return real_import(name, *args)
    monkeypatch.setattr(tokens.importlib, "import_module", without_extra)
    tokens._library.cache_clear()
    try:
        counter = prompt_tokens("gpt-4o-mini", "chat", local=False)
        assert counter.count(text) == estimate_tokens(text)
        assert counter.says() == "estimated; pip install 'selfinstruct[tokens]' counts them"
    finally:
        tokens._library.cache_clear()


@pytest.mark.slow
def test_the_dry_run_counts_each_first_prompt_and_scales_that_count(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    config = Config(model="gpt-4o-mini", lang="en", num_instructions=100, output=tmp_path / "run")
    estimate = plan(config)
    assert not (tmp_path / "run").exists()
    for stage, prompt in estimate.prompts:
        count, counter = estimate.prompt_tokens[stage]
        assert (count, counter.says()) == (reference_count(prompt, "o200k_base") + CHAT_WRAPPING,
                                           "counted with o200k_base")
    first = dict(estimate.prompts)
    assert estimate.tokens_in == sum(round(count * estimate.prompt_tokens[stage][0])
                                     for stage, count in estimate.requests.items())
    result = invoke("generate", "--model", "gpt-4o-mini", "--lang", "en", "-n", 100, "-o", tmp_path / "run",
                    "--dry-run")
    assert result.exit_code == 0, result.output
    count = estimate.prompt_tokens["instructions"][0]
    assert (f"--- instructions: the first prompt as sent ({len(first['instructions'])} characters, {count} tokens, "
            "counted with o200k_base) ---") in result.output
    deepseek = invoke("generate", "--base-url", "https://api.deepseek.com/v1", "--model", "deepseek-chat", "--lang",
                      "en", "--mode", "alpaca", "-n", 100, "-o", tmp_path / "run", "--dry-run")
    assert deepseek.exit_code == 0, deepseek.output
    prompt = deepseek.output.split("---\n", 1)[1].split("\n--- end of alpaca prompt", 1)[0]
    assert f"characters, ~{estimate_tokens(prompt)} tokens, estimated) ---" in deepseek.output
