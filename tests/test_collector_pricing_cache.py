"""The cached token pricer gives exactly genai_prices.calc_price's answers."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal

import pytest
from genai_prices.data import providers
from genai_prices.types import TieredPrices
from spanledger_collector._pricing._llm import TokenRate, UnknownLlmPrice, calc_genai_price

CLASSES = ("input", "cache_read", "cache_write", "output")
DATES = (datetime(2024, 6, 1, tzinfo=timezone.utc), datetime(2026, 11, 24, 3, 30, tzinfo=timezone.utc))
QUANTITIES = [Decimal(q) for q in ("1", "212", "1830", "999999", "1234567.5", "0.000000001", "31415926535")]


def genai_price(meter_class: str, quantity: Decimal, model: str, provider_id: str | None, when: datetime) -> Decimal:
    return TokenRate(meter_class, model, provider_id, when, "v").cost(quantity, when)


def _models(provider_ids: tuple[str, ...], *, tiered: bool) -> list[tuple[str, str]]:
    chosen = []
    for provider in providers:
        if provider.id not in provider_ids:
            continue
        for model in provider.models:
            prices = model.prices if isinstance(model.prices, list) else [model.prices]
            has_tiers = any(
                isinstance(value, TieredPrices)
                for price in prices
                for value in vars(getattr(price, "prices", price)).values()
            )
            if has_tiers == tiered:
                chosen.append((provider.id, model.id))
    return chosen


def _tier_quantities(provider_id: str, model_id: str) -> list[Decimal]:
    provider = next(p for p in providers if p.id == provider_id)
    model = next(m for m in provider.models if m.id == model_id)
    prices = model.prices if isinstance(model.prices, list) else [model.prices]
    starts = {
        tier.start
        for price in prices
        for value in vars(getattr(price, "prices", price)).values()
        if isinstance(value, TieredPrices)
        for tier in value.tiers
    }
    around = [Decimal(start + delta) for start in starts for delta in (-1, 0, 1, 2)] + [
        Decimal(s) + Decimal("0.5") for s in starts
    ]
    return [q for q in around if q > 0]


def _same(meter_class: str, quantity: Decimal, model: str, provider_id: str | None, when: datetime) -> None:
    try:
        expected = calc_genai_price(meter_class, quantity, model, provider_id, when)
    except UnknownLlmPrice as error:
        with pytest.raises(UnknownLlmPrice, match=str(error).split(":")[0]):
            genai_price(meter_class, quantity, model, provider_id, when)
        return
    got = genai_price(meter_class, quantity, model, provider_id, when)
    assert got == expected, (meter_class, quantity, model, provider_id, when)
    assert got.quantize(Decimal("1e-12")) == expected.quantize(Decimal("1e-12"))


@pytest.mark.parametrize(
    ("provider_id", "model"), _models(("openai", "anthropic", "aws", "google", "deepseek"), tiered=False)
)
def test_flat_prices_equal_calc_price(provider_id: str, model: str) -> None:
    for when in DATES:
        for meter_class in CLASSES:
            for quantity in QUANTITIES:
                _same(meter_class, quantity, model, provider_id, when)


@pytest.mark.parametrize(("provider_id", "model"), _models(("openai", "anthropic", "aws", "google"), tiered=True))
def test_tiered_prices_equal_calc_price_around_every_tier_start(provider_id: str, model: str) -> None:
    for when in DATES:
        for meter_class in CLASSES:
            for quantity in QUANTITIES + _tier_quantities(provider_id, model):
                _same(meter_class, quantity, model, provider_id, when)


def test_model_matched_without_provider_and_unknown_models() -> None:
    when = DATES[1]
    for model in ("gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022", "no-such-model-xyz"):
        for meter_class in CLASSES:
            _same(meter_class, Decimal(1830), model, None, when)
    with pytest.raises(UnknownLlmPrice, match="unknown_model"):
        genai_price("input", Decimal(1), "no-such-model-xyz", "openai", when)


def test_time_of_day_prices_follow_the_timestamp() -> None:
    # DeepSeek's off-peak discount is a time-of-day price: the cached line must be per price period.
    for hour in range(0, 24, 3):
        when = datetime(2025, 3, 1, hour, 15, tzinfo=timezone.utc)
        for meter_class in CLASSES:
            _same(meter_class, Decimal(100_000), "deepseek-chat", "deepseek", when)
