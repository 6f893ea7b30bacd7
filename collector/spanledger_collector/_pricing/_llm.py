"""Token prices from genai-prices' bundled data (never its network updater)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import genai_prices

__all__ = ["GENAI_PRICES_VERSION", "UnknownLlmPrice", "bedrock_model_id", "genai_price", "genai_provider_id"]

GENAI_PRICES_VERSION: str = genai_prices.__version__

# gen_ai.provider.name -> genai-prices provider id. A name missing here is not guessed at: a self-hosted
# model under an unknown provider must not be priced as if it were bought from someone else.
_PROVIDER_IDS: dict[str, str] = {
    "openai": "openai",
    "anthropic": "anthropic",
    "aws.bedrock": "aws",
    "aws": "aws",
    "azure.ai.openai": "azure",
    "azure.ai.inference": "azure",
    "gcp.gemini": "google",
    "gcp.vertex_ai": "google",
    "gcp.gen_ai": "google",
    "mistral_ai": "mistral",
    "groq": "groq",
    "cohere": "cohere",
    "deepseek": "deepseek",
    "x_ai": "x-ai",
    "perplexity": "perplexity",
    "fireworks": "fireworks",
    "together": "together",
    "openrouter": "openrouter",
    "cerebras": "cerebras",
}


class UnknownLlmPrice(Exception):
    """No token price is known; the message is the unpriced reason."""


def genai_provider_id(provider_name: str | None) -> str | None:
    """The genai-prices provider for a ``gen_ai.provider.name``; ``None`` lets genai-prices match the model."""
    if provider_name is None:
        return None
    provider_id = _PROVIDER_IDS.get(provider_name.lower())
    if provider_id is None:
        raise UnknownLlmPrice(f"unknown_provider: {provider_name}")
    return provider_id


def bedrock_model_id(model: str) -> str:
    """``arn:aws:bedrock:...:inference-profile/us.anthropic...`` -> ``us.anthropic...`` (ids pass through)."""
    if not model.startswith("arn:"):
        return model
    if ":application-inference-profile/" in model:
        raise UnknownLlmPrice(
            f"unmapped_application_inference_profile: {model} (map it to a model under resources: in the "
            "price overrides file)"
        )
    return model.rsplit("/", 1)[-1]


def genai_price(meter_class: str, quantity: Decimal, model: str, provider_id: str | None, when: datetime) -> Decimal:
    """Price ``quantity`` tokens of one class (``input``, ``cache_read``, ``cache_write``, ``output``)."""
    if meter_class == "input":
        usage = genai_prices.Usage(input_tokens=quantity)
    elif meter_class == "cache_read":
        # genai-prices counts cached tokens inside input_tokens; the fact's quantity is all cached.
        usage = genai_prices.Usage(input_tokens=quantity, cache_read_tokens=quantity)
    elif meter_class == "cache_write":
        usage = genai_prices.Usage(input_tokens=quantity, cache_write_tokens=quantity)
    else:
        usage = genai_prices.Usage(output_tokens=quantity)
    try:
        calculation = genai_prices.calc_price(usage, model, provider_id=provider_id, genai_request_timestamp=when)
    except LookupError:
        raise UnknownLlmPrice(f"unknown_model: {model} ({provider_id or 'any provider'})") from None
    except ValueError as exc:
        raise UnknownLlmPrice(f"price_error: {model}: {exc}") from None
    return calculation.total_price
