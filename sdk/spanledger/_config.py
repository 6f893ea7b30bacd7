"""Settings: every option of ``spanledger.configure()``, its environment variable and default.

Resolution order for each option: the keyword argument, then the environment variable, then the
default. ``OTEL_*`` variables (service name, resource, exporter endpoint/protocol/headers, sampler) are
read by the OpenTelemetry SDK itself and are not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Settings"]


@dataclass(frozen=True)
class Settings:
    capture_message_content: bool = False
    """Record prompts and completions. Env: SPANLEDGER_CAPTURE_MESSAGE_CONTENT or
    OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT."""

    semconv_opt_in: str = ""
    """GenAI naming: "" (released names), "gen_ai_latest_experimental" (newest) or
    "gen_ai_latest_experimental/dup" (both). Env: OTEL_SEMCONV_STABILITY_OPT_IN."""

    openai_stream_usage: bool = True
    """Ask OpenAI streams for a usage chunk when the caller did not. Env: SPANLEDGER_OPENAI_STREAM_USAGE."""

    openai_stream_usage_excluded_hosts: tuple[str, ...] = (".openai.azure.com",)
    """Base-URL host suffixes that reject ``stream_options``. Env: SPANLEDGER_OPENAI_STREAM_USAGE_EXCLUDED_HOSTS
    (comma-separated)."""

    disabled_instrumentations: frozenset[str] = field(default_factory=frozenset)
    """Instrumentation names not to enable. Env: SPANLEDGER_DISABLED_INSTRUMENTATIONS (comma-separated)."""
