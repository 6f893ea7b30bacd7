"""Cost estimates at ingest, with the real genai-prices data and the bundled cloud catalog."""

from __future__ import annotations

import socket
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import genai_prices
import pytest
from spanledger_collector._component import ConfigError
from spanledger_collector._pricing import Estimate, load_catalog
from spanledger_collector._store import UsageFact

WHEN = datetime(2025, 9, 1, 12, 0, tzinfo=timezone.utc)


def fact(meter: str, quantity: int | str, when: datetime = WHEN, **fields: Any) -> UsageFact:
    unit = {"accelerator.seconds": "s", "endpoint.seconds": "s"}.get(meter, "By" if "bytes" in meter else "{token}")
    return UsageFact("0" * 32, "1" * 16, meter, when, when, Decimal(quantity), unit, **fields)


@pytest.fixture(scope="module")
def catalog() -> Any:
    return load_catalog()


def genai(usage: genai_prices.Usage, model: str, provider: str, when: datetime = WHEN) -> Decimal:
    return genai_prices.calc_price(usage, model, provider_id=provider, genai_request_timestamp=when).total_price


def test_token_classes_are_priced_separately(catalog: Any) -> None:
    model = {"model": "gpt-4o-2024-08-06", "provider": "openai"}
    input_cost = catalog.estimate(fact("llm.input_tokens", 1_000_000, **model)).cost
    cached = catalog.estimate(fact("llm.cache_read_tokens", 1_000_000, **model)).cost
    output = catalog.estimate(fact("llm.output_tokens", 1_000_000, **model)).cost
    assert input_cost == genai(genai_prices.Usage(input_tokens=1_000_000), "gpt-4o-2024-08-06", "openai")
    assert output == genai(genai_prices.Usage(output_tokens=1_000_000), "gpt-4o-2024-08-06", "openai")
    assert 0 < cached < input_cost < output


def test_bedrock_ids_arns_and_inference_profiles(catalog: Any) -> None:
    base = catalog.estimate(
        fact("llm.cache_write_tokens", 2000, model="anthropic.claude-3-5-sonnet-20240620-v1:0", provider="aws.bedrock")
    )
    profile = catalog.estimate(
        fact(
            "llm.cache_write_tokens", 2000, model="us.anthropic.claude-3-5-sonnet-20240620-v1:0", provider="aws.bedrock"
        )
    )
    arn = catalog.estimate(
        fact(
            "llm.cache_write_tokens",
            2000,
            provider="aws.bedrock",
            resource_id="arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-3-5-sonnet-20240620-v1:0",
        )
    )
    expected = genai(
        genai_prices.Usage(input_tokens=2000, cache_write_tokens=2000),
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "aws",
    )
    assert base.cost == profile.cost == arn.cost == expected
    assert base.currency == "USD"


def test_effective_dates_follow_the_usage_time(catalog: Any) -> None:
    # genai-prices: claude-opus-4-6 dropped its long-context input tier on 2026-03-13.
    usage = {"model": "claude-opus-4-6", "provider": "anthropic"}
    before = datetime(2026, 3, 1, tzinfo=timezone.utc)
    after = datetime(2026, 4, 1, tzinfo=timezone.utc)
    estimates = [catalog.estimate(fact("llm.input_tokens", 1_000_000, when, **usage)).cost for when in (before, after)]
    expected = [
        genai(genai_prices.Usage(input_tokens=1_000_000), "claude-opus-4-6", "anthropic", when)
        for when in (before, after)
    ]
    assert estimates == expected
    assert estimates[0] != estimates[1]


def test_unknown_model_and_provider_are_unpriced_never_zero(catalog: Any) -> None:
    unknown_model = catalog.estimate(fact("llm.input_tokens", 10, model="my-finetune-7b", provider="openai"))
    unknown_provider = catalog.estimate(fact("llm.input_tokens", 10, model="llama-3-8b", provider="vllm"))
    no_model = catalog.estimate(fact("llm.input_tokens", 10, provider="openai"))
    app_profile = catalog.estimate(
        fact(
            "llm.input_tokens",
            10,
            provider="aws.bedrock",
            model="arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/abc123",
        )
    )
    for estimate, reason in [
        (unknown_model, "unknown_model"),
        (unknown_provider, "unknown_provider"),
        (no_model, "no_model"),
        (app_profile, "unmapped_application_inference_profile"),
    ]:
        assert estimate.cost is None and estimate.currency is None
        assert estimate.unpriced_reason.startswith(reason)
        assert estimate.catalog_version == catalog.version


def test_accelerator_seconds_at_the_per_gpu_rate_with_dated_prices(catalog: Any) -> None:
    h100 = {"accelerator_type": "NVIDIA H100 80GB HBM3", "region": "us-east-1"}
    before_cut = catalog.estimate(fact("accelerator.seconds", 3600, datetime(2025, 1, 1, tzinfo=timezone.utc), **h100))
    after_cut = catalog.estimate(fact("accelerator.seconds", 3600, **h100))
    assert before_cut == Estimate(Decimal("12.290000000000"), "USD", catalog.version)  # 98.32 / 8 GPUs
    assert after_cut.cost == Decimal("6.880000000000")  # 55.04 / 8
    l4 = catalog.estimate(fact("accelerator.seconds", 1800, accelerator_type="NVIDIA L4"))
    assert l4.cost == Decimal("0.402400000000")  # g6.xlarge 0.8048/h, default region
    unknown = catalog.estimate(fact("accelerator.seconds", 10, accelerator_type="Mystery TPU"))
    assert unknown.cost is None and unknown.unpriced_reason.startswith("unknown_accelerator")
    region = catalog.estimate(fact("accelerator.seconds", 10, accelerator_type="NVIDIA A10G", region="mars-1"))
    assert region.unpriced_reason.startswith("no_price_for_region")
    gcp = catalog.estimate(fact("accelerator.seconds", 10, accelerator_type="NVIDIA L4", provider="gcp"))
    assert gcp.unpriced_reason == "no_cloud_catalog: gcp"


def test_egress_by_boundary(catalog: Any) -> None:
    gib = 1 << 30
    internet = catalog.estimate(fact("egress.bytes", 10 * gib, boundary="internet", region="us-east-1"))
    zone = catalog.estimate(fact("egress.bytes", gib, boundary="inter_zone"))
    intra = catalog.estimate(fact("egress.bytes", gib, boundary="intra_zone"))
    ingress = catalog.estimate(fact("ingress.bytes", gib, boundary="internet"))
    unknown = catalog.estimate(fact("egress.bytes", gib, boundary="unknown"))
    assert internet.cost == Decimal("0.9")
    assert zone.cost == Decimal("0.01")
    assert intra.cost == Decimal(0) and intra.unpriced_reason is None  # a known free price, not an unknown one
    assert ingress.cost == Decimal(0)
    assert unknown.cost is None and unknown.unpriced_reason == "unknown_boundary"


def test_sagemaker_endpoint_needs_its_instance_type(tmp_path: Path, catalog: Any) -> None:
    endpoint = "arn:aws:sagemaker:us-east-1:123456789012:endpoint/summarizer"
    assert catalog.estimate(fact("endpoint.seconds", 60, resource_id=endpoint)).unpriced_reason.startswith(
        "unknown_endpoint_instance_type"
    )
    overrides = tmp_path / "prices.yaml"
    overrides.write_text(f"resources:\n  {endpoint}: {{instance_type: ml.g5.2xlarge}}\n")
    priced = load_catalog(overrides).estimate(fact("endpoint.seconds", 3600, resource_id=endpoint))
    assert priced.cost == Decimal("1.515")


def test_overrides_negotiated_rates_and_version(tmp_path: Path, catalog: Any) -> None:
    overrides = tmp_path / "negotiated.yaml"
    overrides.write_text(
        """
version: acme-2026
instances:
  p5.48xlarge:
    gpus: 8
    hourly:
      - {valid_from: 2024-01-01, us-east-1: "40.00"}
data_transfer:
  egress:
    internet:
      - {valid_from: 2024-01-01, us-east-1: "0.05"}
llm:
  - {provider: openai, model: gpt-4o, input_per_mtok: "2.00"}
"""
    )
    negotiated = load_catalog(overrides)
    assert negotiated.version.startswith("acme-2026+genai-prices-")
    assert "+overrides-" in negotiated.version and negotiated.version != catalog.version
    gpu = negotiated.estimate(fact("accelerator.seconds", 3600, accelerator_type="H100", region="us-east-1"))
    assert gpu.cost == Decimal(5)
    assert negotiated.estimate(fact("egress.bytes", 1 << 30, boundary="internet")).cost == Decimal("0.05")
    assert negotiated.estimate(fact("llm.input_tokens", 1_000_000, model="gpt-4o", provider="openai")).cost == 2
    # Classes the override does not name still come from genai-prices.
    output = negotiated.estimate(fact("llm.output_tokens", 1_000_000, model="gpt-4o", provider="openai"))
    assert output.cost == catalog.estimate(fact("llm.output_tokens", 1_000_000, model="gpt-4o", provider="openai")).cost


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("colour: red\n", "colour"),
        ("instances:\n  p5.48xlarge: {gpus: 0, hourly: []}\n", "instances.p5.48xlarge.gpus"),
        ("instances:\n  x: {hourly: [{valid_from: 2024-01-01, us-east-1: 1.5}]}\n", "instances.x.hourly[0].us-east-1"),
        ("instances:\n  x: {hourly: [{valid_from: yesterday}]}\n", "instances.x.hourly[0].valid_from"),
        ("data_transfer:\n  sideways: {}\n", "data_transfer.sideways"),
        ("llm:\n  - {model: m, input_per_token: '1'}\n", "llm[0].input_per_token"),
        ("accelerators:\n  - {pattern: '(', instance_type: x}\n", "accelerators[0].pattern"),
        ("instances: [\n", "not valid YAML"),
    ],
)
def test_bad_overrides_name_the_file_and_key(tmp_path: Path, text: str, key: str) -> None:
    overrides = tmp_path / "bad.yaml"
    overrides.write_text(text)
    with pytest.raises(ConfigError) as error:
        load_catalog(overrides)
    assert str(overrides) in str(error.value) and key in str(error.value)


def test_no_network_at_run_time(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("pricing tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    catalog = load_catalog()
    estimate = catalog.estimate(fact("llm.output_tokens", 100, model="claude-3-5-haiku-20241022", provider="anthropic"))
    assert estimate.cost is not None and estimate.cost > 0


def test_every_estimate_records_the_catalog_version(catalog: Any) -> None:
    assert catalog.version == f"aws-2026.11.1+genai-prices-{genai_prices.__version__}"
    assert catalog.estimate(fact("something.else", 1)).catalog_version == catalog.version
    assert catalog.estimate(fact("something.else", 1)).unpriced_reason == "unknown_meter: something.else"
