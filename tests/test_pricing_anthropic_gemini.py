"""The collector prices Anthropic and Gemini tokens: every token class at its own rate, Vertex model names,
and a bundled fallback for models genai-prices lacks; never $0 for what it cannot price."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import genai_prices
import pytest
from spanledger_collector._pricing import load_catalog
from spanledger_collector._pricing._llm import model_aliases
from spanledger_collector._store import UsageFact

WHEN = datetime(2026, 11, 1, 12, 0, tzinfo=timezone.utc)
CLASSES = ("llm.input_tokens", "llm.cache_read_tokens", "llm.cache_write_tokens", "llm.output_tokens")


def fact(meter: str, quantity: int, **fields: Any) -> UsageFact:
    return UsageFact("0" * 32, "1" * 16, meter, WHEN, WHEN, Decimal(quantity), "{token}", **fields)


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog()


def reference(meter: str, quantity: int, model: str, provider: str) -> Decimal:
    usage = {
        "llm.input_tokens": genai_prices.Usage(input_tokens=quantity),
        "llm.cache_read_tokens": genai_prices.Usage(input_tokens=quantity, cache_read_tokens=quantity),
        "llm.cache_write_tokens": genai_prices.Usage(input_tokens=quantity, cache_write_tokens=quantity),
        "llm.output_tokens": genai_prices.Usage(output_tokens=quantity),
    }[meter]
    return genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=WHEN).total_price


@pytest.mark.parametrize(
    ("model", "provider", "genai_provider"),
    [
        ("claude-sonnet-4-5-20250929", "anthropic", "anthropic"),
        ("claude-haiku-4-5", "anthropic", "anthropic"),
        ("gemini-2.5-flash", "gcp.gemini", "google"),
        ("gemini-2.5-pro", "gcp.vertex_ai", "google"),
    ],
)
def test_each_token_class_at_its_own_rate(catalog: Any, model: str, provider: str, genai_provider: str) -> None:
    costs = {}
    for meter in CLASSES:
        estimate = catalog.estimate(fact(meter, 10_000, model=model, provider=provider))
        assert estimate.unpriced_reason is None, estimate
        assert estimate.cost == reference(meter, 10_000, model, genai_provider).quantize(estimate.cost)
        assert estimate.cost > 0
        costs[meter] = estimate.cost
    assert costs["llm.cache_read_tokens"] < costs["llm.input_tokens"] < costs["llm.output_tokens"]
    if provider == "anthropic":
        assert costs["llm.cache_write_tokens"] > costs["llm.input_tokens"]  # Anthropic: writes cost 1.25x input


def test_reasoning_tokens_are_priced_as_output(catalog: Any) -> None:
    # Gemini thoughts and Anthropic thinking are billed as output tokens, and counted in them.
    thoughts = catalog.estimate(fact("llm.output_tokens", 7, model="gemini-2.5-flash", provider="gcp.gemini"))
    assert thoughts.cost == reference("llm.output_tokens", 7, "gemini-2.5-flash", "google").quantize(thoughts.cost)


@pytest.mark.parametrize(
    ("model", "priced_as"),
    [
        ("gemini-2.5-flash-001", "gemini-2.5-flash"),
        ("gemini-2.5-flash-lite-001", "gemini-2.5-flash-lite"),
        ("projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro", "gemini-2.5-pro"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
    ],
)
def test_vertex_model_names(catalog: Any, model: str, priced_as: str) -> None:
    assert priced_as in model_aliases(model)
    for meter in ("llm.input_tokens", "llm.output_tokens"):
        named = catalog.estimate(fact(meter, 1000, model=model, provider="gcp.vertex_ai"))
        plain = catalog.estimate(fact(meter, 1000, model=priced_as, provider="gcp.vertex_ai"))
        assert named.unpriced_reason is None and named.cost == plain.cost > 0


def test_bundled_fallback_where_genai_prices_lacks_the_model(catalog: Any) -> None:
    with pytest.raises(LookupError):
        genai_prices.calc_price(genai_prices.Usage(input_tokens=1), "claude-instant-1.2", provider_id="anthropic")
    model = {"model": "claude-instant-1.2", "provider": "anthropic"}
    assert catalog.estimate(fact("llm.input_tokens", 1_000_000, **model)).cost == Decimal("0.80")
    assert catalog.estimate(fact("llm.output_tokens", 1_000_000, **model)).cost == Decimal("2.40")
    # a class the fallback does not list stays unpriced, never $0
    cache = catalog.estimate(fact("llm.cache_read_tokens", 1_000_000, **model))
    assert cache.cost is None and cache.unpriced_reason


def test_unknown_model_is_unpriced_not_zero(catalog: Any) -> None:
    estimate = catalog.estimate(fact("llm.input_tokens", 1000, model="gemini-9-imaginary", provider="gcp.gemini"))
    assert estimate.cost is None
    assert "unknown_model" in str(estimate.unpriced_reason)
