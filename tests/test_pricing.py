"""Prices come from genai-prices (maintained, updated often) for the base URL's provider, then our own
table, with --price-in/--price-out over both and local endpoints at 0 (issue 26: the table alone, read in
2025-06, went stale)."""

from __future__ import annotations

from selfinstruct.endpoint.pricing import FREE, PRICES, price_for

OPENAI = "https://api.openai.com/v1"


def test_a_model_our_table_never_listed_has_its_price():
    assert not any("gpt-5-mini".startswith(name) for name in PRICES)
    price = price_for("gpt-5-mini", local=False, base_url=OPENAI)
    assert price is not None and price.input > 0 and price.output > price.input
    assert price.source.startswith("genai-prices ") and price.source.endswith(": openai gpt-5-mini")
    assert price_for("gpt-5-mini", local=False, base_url=None) == price  # no base URL: OpenAI


def test_a_provider_genai_prices_does_not_cover_falls_back_to_the_table():
    price = price_for("qwen-plus", local=False, base_url="https://dashscope.aliyuncs.com/compatible-mode/v1")
    assert (price.input, price.output) == PRICES["qwen-plus"] and "the list price of qwen-plus" in price.source


def test_overrides_and_local_endpoints_come_first():
    given = price_for("gpt-5-mini", local=False, base_url=OPENAI, price_in=1.0, price_out=2.0)
    assert (given.input, given.output, given.source) == (1.0, 2.0, "--price-in/--price-out")
    assert price_for("gpt-5-mini", local=False, base_url="http://127.0.0.1:8000/v1") is FREE
    assert price_for("gpt-5-mini", local=True, base_url=None) is FREE
    assert price_for("some-model-nobody-lists", local=False, base_url="https://llm.example.org/v1") is None
