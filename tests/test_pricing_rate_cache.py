"""The per-key rate cache prices every fact exactly as resolving its price afresh does.

The reference is the cache's own miss path: a catalog with an empty cache resolves each fact's rate at that
fact's own start time. The cached catalog is shared by all examples, so most facts hit rates that another
fact (another quantity, another time in the rate's interval) created. Token prices are also checked against
``genai_prices.calc_price`` itself, so a token rate that is wrong for every fact alike would be caught too;
cloud prices' values are checked in ``test_pricing.py``.
"""

from __future__ import annotations

import decimal
import threading
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
from genai_prices.data import providers
from genai_prices.types import StartDateConstraint, TimeOfDateConstraint
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from spanledger import semconv
from spanledger.semconv import SpanledgerMeterValues as Meter
from spanledger_collector._pricing import Estimate, PriceCatalog, _catalog, load_catalog
from spanledger_collector._pricing._llm import UnknownLlmPrice, calc_genai_price, genai_provider_id
from spanledger_collector._store import UsageFact
from spanledger_collector._store._compiled import columns

ENDPOINT = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/summarizer"
APP_PROFILE = "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123"
OVERRIDES = f"""
version: acme-2026
instances:
  p5.48xlarge:
    gpus: 8
    hourly:
      - {{valid_from: 2024-01-01, us-east-1: "40.00"}}
      - {{valid_from: 2025-09-15, us-east-1: "38.50", us-west-2: "39.125"}}
accelerators:
  - {{pattern: "TPU", instance_type: p5.48xlarge}}
data_transfer:
  egress:
    internet:
      - {{valid_from: 2024-01-01, us-east-1: "0.05"}}
      - {{valid_from: 2026-02-01, us-east-1: "0.045", eu-west-1: "0.07"}}
resources:
  {ENDPOINT}: {{instance_type: ml.g5.2xlarge}}
  {APP_PROFILE}: {{model: gpt-4o}}
  openai/finetune: {{model: gpt-4o-mini}}
llm:
  - {{provider: openai, model: gpt-4o, input_per_mtok: "2.00", cache_read_per_mtok: "0.3"}}
  - {{model: claude-3-5-haiku-20241022, output_per_mtok: "3.3333"}}
"""
UTC = timezone.utc
OFFSETS = (timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(hours=-8)))
TOKEN_METERS = (
    Meter.LLM_INPUT_TOKENS.value,
    Meter.LLM_CACHE_READ_TOKENS.value,
    Meter.LLM_CACHE_WRITE_TOKENS.value,
    Meter.LLM_OUTPUT_TOKENS.value,
)
METERS = (
    *TOKEN_METERS,
    Meter.ACCELERATOR_SECONDS.value,
    Meter.ENDPOINT_SECONDS.value,
    Meter.EGRESS_BYTES.value,
    Meter.INGRESS_BYTES.value,
    "something.else",
)
FLAT_MODELS = ("gpt-4o-mini", "gpt-4o", "text-embedding-3-small", "claude-3-5-haiku-20241022", "o3")
TIERED_MODELS = ("gemini-1.5-pro", "gemini-2.5-pro", "claude-opus-4-6", "claude-sonnet-4-5", "gpt-5.4")
TIME_OF_DAY_MODELS = ("deepseek-chat", "deepseek-reasoner", "deepseek-v4-flash")
MODELS = (
    *FLAT_MODELS,
    *TIERED_MODELS,
    *TIME_OF_DAY_MODELS,
    "anthropic.claude-3-5-sonnet-20240620-v1:0",
    "us.anthropic.claude-3-5-sonnet-20240620-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
    APP_PROFILE,
    "my-finetune-7b",
    "",
)
PROVIDERS = (
    None,
    semconv.GenAiProviderNameValues.OPENAI.value,
    semconv.GenAiProviderNameValues.ANTHROPIC.value,
    semconv.GenAiProviderNameValues.AWS_BEDROCK.value,
    semconv.GenAiProviderNameValues.GCP_GEMINI.value,
    semconv.GenAiProviderNameValues.DEEPSEEK.value,
    "aws",
    "aws.sagemaker",
    "gcp",
    "vllm",
)
RESOURCES = (None, "openai/gpt-4o-mini", "openai/finetune", ENDPOINT, APP_PROFILE, "arn:aws:sagemaker:x:endpoint/other")
REGIONS = (None, "us-east-1", "us-west-2", "eu-west-1", "mars-1")
BOUNDARIES = (None, "internet", "inter_region", "inter_zone", "intra_zone", "unknown", "sideways")
ACCELERATORS = (None, "NVIDIA H100 80GB HBM3", "NVIDIA L4", "NVIDIA A10G", "Google TPU v5e", "Mystery NPU")


def _price_changes() -> list[datetime]:
    """Every moment (naive UTC) at which some price in the catalogs or genai-prices changes."""
    days = {date(2017, 10, 25), date(2019, 9, 20), date(2021, 12, 1), date(2022, 3, 1), date(2023, 7, 26)}
    days |= {date(2024, 1, 1), date(2024, 4, 4), date(2025, 6, 1), date(2025, 9, 15), date(2026, 2, 1)}
    changes = [datetime.combine(day, time()) for day in days]
    for provider in providers:
        for model in provider.models:
            if model.id not in MODELS or not isinstance(model.prices, list):
                continue
            for conditional in model.prices:
                constraint = conditional.constraint
                if isinstance(constraint, StartDateConstraint):
                    changes.append(datetime.combine(constraint.start_date, time()))
                elif isinstance(constraint, TimeOfDateConstraint):
                    for moment in (constraint.start_time, constraint.end_time):
                        naive = moment.replace(tzinfo=None)  # genai-prices' times of day are UTC here
                        changes += [datetime.combine(date(2026, 3, 1) + timedelta(days=d), naive) for d in (0, 1)]
    return sorted(set(changes))


CHANGES = _price_changes()
NEAR = (timedelta(0), timedelta(microseconds=1), -timedelta(microseconds=1), timedelta(hours=1), -timedelta(days=1))


@st.composite
def start_times(draw: st.DrawFn) -> datetime:
    if draw(st.booleans()):
        naive = draw(st.sampled_from(CHANGES)) + draw(st.sampled_from(NEAR))
    else:
        naive = draw(st.datetimes(min_value=datetime(2017, 1, 1), max_value=datetime(2030, 12, 31)))
    zone = draw(st.sampled_from(("naive", "naive", "utc", *OFFSETS)))
    if zone == "naive":
        return naive
    if zone == "utc":
        return naive.replace(tzinfo=UTC)
    assert isinstance(zone, timezone)
    return naive.replace(tzinfo=UTC).astimezone(zone)


QUANTITIES = st.one_of(
    st.integers(min_value=0, max_value=2_000_000).map(Decimal),
    st.sampled_from([128_000, 200_000, 272_000]).flatmap(
        lambda start: st.integers(min_value=start - 2, max_value=start + 2).map(Decimal)
    ),
    st.decimals(min_value=0, max_value=10**12, places=9, allow_nan=False, allow_infinity=False),
    st.sampled_from([Decimal("-1"), Decimal("-0"), Decimal("0.5"), Decimal("1E+20"), Decimal("31415926535.897932384")]),
)


# Providers and models that belong together, so that most token keys have a price that can change.
TOKEN_SOURCES = (
    *((semconv.GenAiProviderNameValues.OPENAI.value, model) for model in ("gpt-4o-mini", "gpt-4o", "o3", "gpt-5.4")),
    *((semconv.GenAiProviderNameValues.ANTHROPIC.value, model) for model in ("claude-opus-4-6", "claude-sonnet-4-5")),
    *((semconv.GenAiProviderNameValues.GCP_GEMINI.value, model) for model in ("gemini-1.5-pro", "gemini-2.5-pro")),
    *((semconv.GenAiProviderNameValues.DEEPSEEK.value, model) for model in TIME_OF_DAY_MODELS),
    (None, "deepseek-chat"),
    (semconv.GenAiProviderNameValues.AWS_BEDROCK.value, "us.anthropic.claude-3-5-sonnet-20240620-v1:0"),
)
CLOUD_PROVIDERS = (None, "aws", "aws.sagemaker", "gcp")


@st.composite
def price_keys(draw: st.DrawFn) -> tuple[str, dict[str, str | None]]:
    """A meter and the fields its price depends on (the others are mostly left out, so that keys repeat)."""
    meter = draw(st.sampled_from(METERS))
    fields: dict[str, str | None] = {"region": draw(st.sampled_from(REGIONS))}
    if meter in TOKEN_METERS:
        fields["provider"], fields["model"] = draw(
            st.one_of(st.sampled_from(TOKEN_SOURCES), st.tuples(st.sampled_from(PROVIDERS), st.sampled_from(MODELS)))
        )
    else:
        fields["provider"] = draw(st.one_of(st.sampled_from(CLOUD_PROVIDERS), st.sampled_from(PROVIDERS)))
    relevant = {"resource_id": RESOURCES, "model": MODELS, "boundary": BOUNDARIES, "accelerator_type": ACCELERATORS}
    names = {
        Meter.ACCELERATOR_SECONDS.value: ["accelerator_type"],
        Meter.ENDPOINT_SECONDS.value: ["resource_id"],
        Meter.EGRESS_BYTES.value: ["boundary"],
        Meter.INGRESS_BYTES.value: ["boundary"],
        "something.else": list(relevant),
    }.get(meter, [])
    for name, values in relevant.items():
        if name not in fields and (name in names or not draw(st.integers(0, 4))):
            fields[name] = draw(st.sampled_from(values))
    return meter, fields


@st.composite
def fact_batches(draw: st.DrawFn) -> list[UsageFact]:
    """Facts of a few price keys, at many times and quantities."""
    keys = draw(st.lists(price_keys(), min_size=1, max_size=4))
    batch = []
    for _ in range(draw(st.integers(min_value=1, max_value=30))):
        meter, fields = draw(st.sampled_from(keys))
        when = draw(start_times())
        batch.append(UsageFact("0" * 32, "1" * 16, meter, when, when, draw(QUANTITIES), "{token}", **fields))
    return batch


@pytest.fixture(scope="module")
def catalogs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, PriceCatalog]:
    overrides = tmp_path_factory.mktemp("prices") / "negotiated.yaml"
    overrides.write_text(OVERRIDES)
    return {"bundled": load_catalog(), "overrides": load_catalog(overrides)}


def uncached(catalog: PriceCatalog) -> PriceCatalog:
    """The same prices and version with an empty rate cache: every fact takes the miss path."""
    digest = catalog.version.partition("+overrides-")[2] or None
    return PriceCatalog(catalog._cloud, digest)


def outcome(price: Callable[[UsageFact], Any], fact: UsageFact) -> str:
    """What pricing the fact gives, compared by repr: Decimal exponents and signs must match too."""
    try:
        return repr(price(fact))
    except Exception as error:
        return f"raised {type(error).__name__}: {error}"


SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(batch=fact_batches(), which=st.sampled_from(["bundled", "overrides"]))
def test_cached_rates_price_exactly_like_a_fresh_catalog(
    catalogs: dict[str, PriceCatalog], batch: list[UsageFact], which: str
) -> None:
    cached = catalogs[which]
    for fact in batch:
        reference = uncached(cached)
        assert outcome(cached.priced, fact) == outcome(reference.priced, fact), fact
        assert outcome(cached.estimate, fact) == outcome(reference.estimate, fact), fact


@SETTINGS
@given(
    meter=st.sampled_from(TOKEN_METERS),
    model=st.sampled_from((*FLAT_MODELS, *TIERED_MODELS, *TIME_OF_DAY_MODELS, "my-finetune-7b")),
    provider=st.sampled_from(PROVIDERS[:6]),
    when=start_times(),
    # genai-prices refuses a negative quantity before it looks the model up; the catalog looks it up first.
    quantities=st.lists(QUANTITIES.filter(lambda quantity: quantity >= 0), min_size=1, max_size=5),
)
def test_token_rates_equal_genai_prices(
    catalogs: dict[str, PriceCatalog],
    meter: str,
    model: str,
    provider: str | None,
    when: datetime,
    quantities: list[Decimal],
) -> None:
    catalog = catalogs["bundled"]
    token_class = _catalog._TOKEN_METERS[meter]
    aware = when if when.tzinfo else when.replace(tzinfo=UTC)
    for quantity in quantities:
        fact = UsageFact("0" * 32, "1" * 16, meter, when, when, quantity, "{token}", provider=provider, model=model)
        try:
            expected = Estimate(
                calc_genai_price(token_class, quantity, model, genai_provider_id(provider), aware).quantize(
                    Decimal("1e-12")
                ),
                "USD",
                catalog.version,
            )
        except UnknownLlmPrice as error:
            expected = Estimate(None, None, catalog.version, str(error))
        except ArithmeticError as error:
            assert outcome(catalog.estimate, fact) == f"raised {type(error).__name__}: {error}"
            continue
        assert repr(catalog.estimate(fact)) == repr(expected), fact


def test_the_cache_is_bounded_and_still_exact(catalogs: dict[str, PriceCatalog], monkeypatch: Any) -> None:
    monkeypatch.setattr(_catalog, "_MAX_RATES", 8)
    catalog = uncached(catalogs["bundled"])
    when = datetime(2026, 3, 1, 12)
    batch = [
        UsageFact("0" * 32, "1" * 16, meter, when, when, Decimal(1830 + n), "{token}", provider="openai", model=model)
        for n in range(3)
        for model in [f"gpt-4o-mini-client-{i}" for i in range(20)] + ["gpt-4o-mini", "no-such-model"]
        for meter in TOKEN_METERS[:2]
    ]
    for fact in batch:
        assert outcome(catalog.priced, fact) == outcome(uncached(catalog).priced, fact)
        assert len(catalog._rates) <= 8


def test_threads_share_one_catalog(catalogs: dict[str, PriceCatalog]) -> None:
    catalog = uncached(catalogs["overrides"])
    start = datetime(2026, 3, 1, 16, 29, 59)
    batch = [
        UsageFact("0" * 32, "1" * 16, meter, start + timedelta(seconds=n), start, Decimal(n * 1000), "s", **fields)
        for n in range(4)
        for meter, fields in [
            (Meter.LLM_INPUT_TOKENS.value, {"provider": "deepseek", "model": "deepseek-chat"}),
            (Meter.LLM_OUTPUT_TOKENS.value, {"provider": "openai", "model": "gpt-4o"}),
            (Meter.ACCELERATOR_SECONDS.value, {"accelerator_type": "NVIDIA H100", "region": "us-west-2"}),
            (Meter.EGRESS_BYTES.value, {"boundary": "internet", "region": "eu-west-1"}),
        ]
    ]
    expected = [outcome(uncached(catalog).priced, fact) for fact in batch]
    results: list[list[str]] = []

    def price_all() -> None:
        results.append([outcome(catalog.priced, fact) for _ in range(50) for fact in batch][-len(batch) :])

    threads = [threading.Thread(target=price_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 4


@pytest.mark.parametrize("which", ["bundled", "overrides"])
def test_a_start_time_with_an_offset_is_priced_on_its_own_date_as_before(
    catalogs: dict[str, PriceCatalog], which: str
) -> None:
    # p5.48xlarge's price changed on 2025-06-01 (bundled) and 2025-09-15 (overrides): 00:30 UTC that day is
    # still the day before at UTC-8, and the catalog has always used the start time's own date.
    catalog = uncached(catalogs[which])
    for day in (date(2025, 6, 1), date(2025, 9, 15)):
        for when in (datetime.combine(day, time(0, 30)), datetime.combine(day, time(0, 30), UTC)):
            local = when.replace(tzinfo=UTC).astimezone(OFFSETS[1])
            for start in (when, local, when):
                fact = UsageFact(
                    "0" * 32, "1" * 16, Meter.ACCELERATOR_SECONDS.value, start, start, Decimal(3600), "s",
                    accelerator_type="NVIDIA H100", region="us-east-1",
                )  # fmt: skip
                assert outcome(catalog.priced, fact) == outcome(uncached(catalog).priced, fact)


def failed(fact: UsageFact, error: Exception) -> UsageFact:
    return fact._replace(unpriced_reason=f"raised {type(error).__name__}: {error}")


def assert_batch_priced_like_each_fact(cached: PriceCatalog, batch: list[UsageFact]) -> None:
    # priced_all inlines the rates with a slope; priced() and a fresh catalog's miss path use Rate.priced.
    # Each batch is priced twice, so that its own keys are cached the second time.
    for _ in range(2):
        priced = cached.priced_all(batch, failed)
        assert len(priced) == len(batch)
        for fact, result in zip(batch, priced, strict=True):
            for reference in (cached, uncached(cached)):
                try:
                    expected = reference.priced(fact)
                except Exception as error:
                    expected = failed(fact, error)
                assert repr(result) == repr(expected), fact
                assert type(result) is UsageFact


@SETTINGS
@given(batch=fact_batches(), which=st.sampled_from(["bundled", "overrides"]))
def test_a_batch_is_priced_exactly_like_each_fact_alone(
    catalogs: dict[str, PriceCatalog], batch: list[UsageFact], which: str
) -> None:
    assert_batch_priced_like_each_fact(catalogs[which], batch)


def test_facts_that_fail_to_price_in_a_batch_fail_alone(catalogs: dict[str, PriceCatalog]) -> None:
    # Quantities no rate can price (NaN, a cost past DECIMAL(38, 12)) among ones it can, both ways.
    when = datetime(2026, 3, 1, 12)
    batch = [
        UsageFact("0" * 32, "1" * 16, meter, start, start, Decimal(quantity), "x", **fields)
        for meter, fields in [
            (Meter.LLM_INPUT_TOKENS.value, {"provider": "openai", "model": "gpt-4o-mini"}),
            (Meter.EGRESS_BYTES.value, {"provider": "aws", "boundary": "internet", "region": "us-east-1"}),
        ]
        for quantity in ["1E+30", "NaN", "sNaN", "-0", "0", "1E+20", "12.5", "1E-9"]
        for start in (when, when.replace(tzinfo=UTC))
    ]
    assert_batch_priced_like_each_fact(uncached(catalogs["bundled"]), batch)
    priced = catalogs["bundled"].priced_all(batch, failed)
    assert any((fact.unpriced_reason or "").startswith("raised") for fact in priced)


class OddDecimal(Decimal):
    """A quantity the compiled path leaves to Python (its methods could be Python code)."""


@st.composite
def odd_facts(draw: st.DrawFn, fact: UsageFact) -> UsageFact:
    """``fact`` made into one the compiled path must leave to Python, or one whose pricing raises."""
    odd = draw(st.sampled_from(["quantity", "aware", "not_a_time", "key", "subclass", "shape"]))
    if odd == "quantity":
        quantity = draw(st.sampled_from(["-1", "-0", "-0E-20", "NaN", "sNaN", "-Infinity", "1E+30", "1E-30"]))
        return fact._replace(quantity=Decimal(quantity))
    if odd == "aware":
        zone = draw(st.sampled_from((UTC, *OFFSETS)))
        naive = fact.start_time.replace(tzinfo=None)
        return fact._replace(start_time=naive.replace(tzinfo=UTC).astimezone(zone))
    if odd == "not_a_time":
        return fact._replace(start_time=str(fact.start_time))
    if odd == "key":  # not a str: its hash and equality could be Python code
        return fact._replace(model=draw(st.sampled_from([1234, b"gpt-4o-mini", ("gpt-4o-mini",)])))
    if odd == "subclass":
        return fact._replace(quantity=OddDecimal(fact.quantity))
    return tuple(fact)  # type: ignore[return-value]  # with_estimate refuses it: pricing it fails


# The usual facts, most of a request's: flat and negotiated token rates, cloud rates.
USUAL_KEYS = (
    (Meter.LLM_INPUT_TOKENS.value, {"provider": "openai", "model": "gpt-4o-mini"}),
    (Meter.LLM_OUTPUT_TOKENS.value, {"provider": "openai", "model": "gpt-4o"}),
    (Meter.LLM_CACHE_READ_TOKENS.value, {"provider": "openai", "model": "gpt-4o"}),
    (Meter.LLM_OUTPUT_TOKENS.value, {"provider": "anthropic", "model": "claude-3-5-haiku-20241022"}),
    (Meter.EGRESS_BYTES.value, {"provider": "aws", "boundary": "internet", "region": "us-east-1"}),
    (Meter.INGRESS_BYTES.value, {"boundary": "inter_region", "region": "eu-west-1"}),
    (Meter.ACCELERATOR_SECONDS.value, {"accelerator_type": "NVIDIA H100 80GB HBM3", "region": "us-west-2"}),
    (Meter.ENDPOINT_SECONDS.value, {"resource_id": ENDPOINT, "region": "us-east-1"}),
)


@st.composite
def mixed_batches(draw: st.DrawFn) -> list[UsageFact]:
    """fact_batches' facts (flat token rates, tiers, cloud rates, unknown keys, times across price changes)
    among usual ones at naive times, with odd ones among them all."""
    batch = draw(fact_batches())
    for _ in range(draw(st.integers(0, 30))):
        meter, fields = draw(st.sampled_from(USUAL_KEYS))
        when = draw(st.sampled_from(CHANGES[-4:])) + draw(st.sampled_from(NEAR))
        fact = UsageFact("0" * 32, "1" * 16, meter, when, when, draw(QUANTITIES), "{token}", **fields)
        batch.insert(draw(st.integers(0, len(batch))), fact)
    for index in draw(st.lists(st.integers(0, len(batch) - 1), max_size=len(batch) // 3 + 1, unique=True)):
        batch[index] = draw(odd_facts(batch[index]))
    return batch


CONTEXTS = (
    decimal.DefaultContext,
    decimal.Context(rounding=decimal.ROUND_DOWN),
    decimal.Context(prec=12, rounding=decimal.ROUND_CEILING),
    decimal.Context(prec=6),  # most costs have more digits at the cost's scale: quantize fails
    decimal.Context(Emax=12, clamp=1),  # quantize clamps, and costs of 1e12 overflow
    decimal.Context(Emin=-3),  # costs below 1e-3 are subnormal
    decimal.Context(traps=[decimal.Inexact]),
)


def priced_within(
    context: decimal.Context, price: Callable[[list[UsageFact], Any], list[UsageFact]], batch: list[UsageFact]
) -> tuple[list[str], list[str], list[str]]:
    """What ``price`` gives the batch in (a copy of) ``context``: the facts, failed's calls, the signals raised."""
    calls: list[str] = []

    def failed_noted(fact: UsageFact, error: Exception) -> Any:
        calls.append(f"{fact!r}: {type(error).__name__}: {error}")
        return f"failed {len(calls)}"

    with decimal.localcontext(context.copy()) as local:
        local.clear_flags()
        priced = [repr(fact) for fact in price(batch, failed_noted)]
        signals = sorted(signal.__name__ for signal, raised in local.flags.items() if raised)
    return priced, calls, signals


@pytest.mark.skipif(columns is None, reason="the compiled module is not built (or SPANLEDGER_NO_SPEEDUPS is set)")
@SETTINGS
@given(
    batch=mixed_batches(),
    which=st.sampled_from(["bundled", "overrides"]),
    fresh=st.booleans(),
    context=st.sampled_from(CONTEXTS),
    as_list=st.booleans(),
)
def test_the_compiled_path_prices_exactly_like_the_python_loop(
    catalogs: dict[str, PriceCatalog],
    batch: list[UsageFact],
    which: str,
    fresh: bool,
    context: decimal.Context,
    as_list: bool,
) -> None:
    # priced_all in C (the facts it can price) and Python (the others) against its Python loop alone, in the
    # thread's Decimal context: the facts and failed's calls; with an empty cache first (unknown keys).
    catalog = uncached(catalogs[which]) if fresh else catalogs[which]
    compiled = priced_within(
        context, lambda facts, noted: catalog.priced_all(facts if as_list else iter(facts), noted), batch
    )
    assert compiled[:2] == priced_within(context, catalog._priced_each, batch)[:2]
    # Then with the batch's keys cached; where no rate was resolved meanwhile (which signals on its own), the
    # signals too.
    rates = dict(catalog._rates)
    compiled = priced_within(context, catalog.priced_all, batch)
    reference = priced_within(context, catalog._priced_each, batch)
    assert compiled[:2] == reference[:2]
    if catalog._rates == rates:
        assert compiled[2] == reference[2]


@pytest.mark.skipif(columns is None, reason="the compiled module is not built (or SPANLEDGER_NO_SPEEDUPS is set)")
def test_the_compiled_path_prices_flat_and_stepped_rates_and_leaves_the_others(
    catalogs: dict[str, PriceCatalog],
) -> None:
    catalog = catalogs["overrides"]
    when = datetime(2026, 3, 1, 12)
    token, cloud = Meter.LLM_INPUT_TOKENS.value, {"provider": "aws", "region": "us-east-1"}
    priced_in_c = {
        "flat token rate": (token, {"provider": "openai", "model": "gpt-4o-mini"}, "1830"),
        "negotiated tokens": (token, {"provider": "openai", "model": "gpt-4o"}, "1830"),
        "instance seconds": (Meter.ACCELERATOR_SECONDS.value, {**cloud, "accelerator_type": "TPU v5"}, "12.5"),
        "endpoint seconds": (Meter.ENDPOINT_SECONDS.value, {**cloud, "resource_id": ENDPOINT}, "12.5"),
        "transfer": (Meter.EGRESS_BYTES.value, {**cloud, "boundary": "internet"}, "123456789"),
        "a negative transfer": (Meter.EGRESS_BYTES.value, {**cloud, "boundary": "internet"}, "-1"),
    }
    left = {
        "tiers": (token, {"provider": "google-vertex", "model": "gemini-1.5-pro"}, "1830"),
        "unpriced": (token, {"provider": "openai", "model": "no-such-model"}, "1830"),
        "a negative quantity of tokens": (token, {"provider": "openai", "model": "gpt-4o-mini"}, "-1"),
        "NaN": (token, {"provider": "openai", "model": "gpt-4o-mini"}, "NaN"),
    }

    def fact(meter: str, fields: dict[str, str], quantity: str, start: datetime = when) -> UsageFact:
        return UsageFact("0" * 32, "1" * 16, meter, start, start, Decimal(quantity), "x", **fields)

    batch = [fact(*case) for case in (*priced_in_c.values(), *left.values())]
    aware = [fact(*case, when.replace(tzinfo=UTC)) for case in priced_in_c.values()]
    catalog.priced_all(batch + aware, failed)  # their rates cached
    assert all(catalog._rates.get(_catalog._price_key(fact)) for fact in batch)
    assert _catalog._price_flat is not None
    priced = _catalog._price_flat(batch + aware, catalog._rates)
    priced_or_not = zip([*priced_in_c, *left], priced[: len(batch)], strict=True)
    assert [name for name, result in priced_or_not if result is not None] == list(priced_in_c)
    assert priced[len(batch) :] == [None] * len(aware)
    assert [repr(result) for result in priced[: len(priced_in_c)]] == [
        repr(catalog.priced(fact)) for fact in batch[: len(priced_in_c)]
    ]
    earlier = fact(*priced_in_c["transfer"], datetime(2025, 1, 1))
    assert catalog._rates[_catalog._price_key(earlier)].valid_from > earlier.start_time
    assert _catalog._price_flat([earlier], catalog._rates) == [None]  # not in the cached rate's interval
    assert _catalog._price_flat(batch, {}) == [None] * len(batch)  # unknown keys


@pytest.mark.skipif(columns is None, reason="the compiled module is not built (or SPANLEDGER_NO_SPEEDUPS is set)")
@pytest.mark.parametrize("context", CONTEXTS, ids=repr)
def test_each_rate_the_compiled_path_prices_signals_like_the_python_loop(
    catalogs: dict[str, PriceCatalog], context: decimal.Context
) -> None:
    # One kind of rate at a time, so that no other fact's signals hide a missing one (a cost's quantize that
    # C skips where it would change nothing must not have signalled either).
    catalog = catalogs["overrides"]
    when = datetime(2026, 3, 1, 12)
    cloud = {"provider": "aws", "region": "us-east-1"}
    for meter, fields in [
        (Meter.LLM_INPUT_TOKENS.value, {"provider": "openai", "model": "gpt-4o-mini"}),
        (Meter.LLM_INPUT_TOKENS.value, {"provider": "openai", "model": "gpt-4o"}),
        (Meter.ACCELERATOR_SECONDS.value, {**cloud, "accelerator_type": "TPU v5"}),
        (Meter.EGRESS_BYTES.value, {**cloud, "boundary": "internet"}),
    ]:
        for quantity in ("0", "1", "1830", "123456789", "1E+12"):
            batch = [UsageFact("0" * 32, "1" * 16, meter, when, when, Decimal(quantity), "x", **fields)]
            catalog.priced_all(batch, failed)  # its rate cached
            assert priced_within(context, catalog.priced_all, batch) == priced_within(
                context, catalog._priced_each, batch
            ), batch
