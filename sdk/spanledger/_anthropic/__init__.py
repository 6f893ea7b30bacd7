"""Anthropic instrumentation: one GenAI span (or the client's own span, enriched) and the GenAI metrics per
Messages ``create`` / ``stream`` / ``count_tokens`` call, on the Anthropic, Bedrock and Vertex clients.

Importing this package does not import ``anthropic``; ``AnthropicInstrumentation.instrument`` does.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from .._instrumentation import Instrumentation
from .._telemetry import Telemetry

__all__ = ["AnthropicInstrumentation"]


class AnthropicInstrumentation(Instrumentation):
    name: ClassVar[str] = "anthropic"
    modules: ClassVar[tuple[str, ...]] = ("anthropic",)

    def instrument(self, telemetry: Telemetry) -> None:
        from .._genai import GenAIRecorder
        from . import _patch

        _patch.install(GenAIRecorder(telemetry))

    def uninstrument(self) -> None:
        patch = sys.modules.get(f"{__name__}._patch")
        if patch is not None:
            patch.uninstall()
