"""What tokens cost: prices per model.

Prices are USD per million tokens (input, output). They come from genai-prices, a maintained
library of many providers' prices that is updated often (so estimates and budgets stay right
without a release of ours; its data ships with it, nothing is fetched), for the provider the base
URL names, at the time the run starts (DeepSeek's off-peak hours are cheaper). A model it does not
know falls back to our own table (PRICES: Qwen on DashScope, which it does not cover, and common
models as read on PRICES_READ). ``--price-in`` / ``--price-out`` override both, and a model
found in neither has no known cost until they are given. The embedded model and servers on this machine
(localhost, 127.x) cost 0. BATCH_SHARE says which providers' Batch APIs answer at a share of the
list price (their pricing pages: half, for every model listed here); DeepSeek has no Batch API.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib.metadata import version
from urllib.parse import urlsplit

from genai_prices import Usage, calc_price


PRICES_READ = "2025-06"
GENAI_PRICES = version("genai-prices")
OPENAI_URL = "https://api.openai.com/v1"  # where a run without a base URL sends its requests
# Longest matching prefix wins: "gpt-4o-mini-2024-07-18" is priced as "gpt-4o-mini".
PRICES = {
    # OpenAI
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-3.5-turbo": (0.50, 1.50),
    "o3-mini": (1.10, 4.40),
    # DeepSeek (cache-miss input prices)
    "deepseek-chat": (0.27, 1.10),
    "deepseek-reasoner": (0.55, 2.19),
    # Qwen on DashScope (international)
    "qwen-turbo": (0.05, 0.20),
    "qwen-plus": (0.40, 1.20),
    "qwen-max": (1.60, 6.40),
}


# The share of the list price a model's tokens cost through its provider's Batch API (--batch); a model
# that is not listed here has no known batch price.
BATCH_SHARE = {"gpt-": 0.5, "o3-": 0.5, "qwen-": 0.5}


@dataclass(frozen=True)
class Price:
    input: float  # USD per million prompt tokens
    output: float  # USD per million completion tokens
    source: str  # where the price comes from, for people

    def cost(self, tokens_in: int, tokens_out: int) -> float:
        return (tokens_in * self.input + tokens_out * self.output) / 1e6

    def describe(self) -> str:
        return f"price ${self.input:g} in / ${self.output:g} out per million tokens ({self.source})"


FREE = Price(0.0, 0.0, "local endpoint")


def price_for(model: str | None, *, local: bool, base_url: str | None, price_in: float | None = None,
              price_out: float | None = None, batch: bool = False) -> Price | None:
    """The price of a run's tokens, or None when it is not known; ``batch``: through the Batch API.
    --price-in/--price-out are what the user pays, batch or not."""
    if price_in is not None or price_out is not None:
        return Price(price_in or 0.0, price_out or 0.0, "--price-in/--price-out")
    if local or _is_loopback(base_url):
        return FREE
    listed = maintained_price(model, base_url) or list_price(model)
    if listed is None or not batch:
        return listed
    share = next((share for prefix, share in BATCH_SHARE.items() if (model or "").lower().startswith(prefix)), None)
    if share is None:
        return None
    return Price(listed.input * share, listed.output * share, f"batch price: {share:.0%} of {listed.source}")


def maintained_price(model: str | None, base_url: str | None) -> Price | None:
    """A model's price from genai-prices, for the provider of ``base_url`` (OpenAI's by default), now."""
    try:
        found = calc_price(Usage(input_tokens=1_000_000, output_tokens=1_000_000), model or "",
                           provider_api_url=base_url or OPENAI_URL)
    except (LookupError, ValueError):
        return None
    return Price(float(found.input_price), float(found.output_price),
                 f"genai-prices {GENAI_PRICES}: {found.provider.id} {found.model.id}")


def list_price(model: str | None) -> Price | None:
    """A model's online list price from our table, or None."""
    matches = [name for name in PRICES if (model or "").lower().startswith(name)]
    if not matches:
        return None
    name = max(matches, key=len)
    return Price(*PRICES[name], f"the list price of {name}, read {PRICES_READ}")


def _is_loopback(base_url: str | None) -> bool:
    host = urlsplit(base_url or "").hostname or ""
    return host == "localhost" or host.startswith("127.") or host == "::1"
