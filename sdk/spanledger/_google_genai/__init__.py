"""Google Gen AI (``google-genai``) instrumentation: one GenAI span and the GenAI metrics per
``generate_content``, ``generate_content_stream`` and ``embed_content`` request, sync and async, on the
Gemini Developer API and on Vertex AI.

Importing this package does not import ``google.genai``; ``GoogleGenAIInstrumentation.instrument`` does.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from .._instrumentation import Instrumentation
from .._telemetry import Telemetry

__all__ = ["GoogleGenAIInstrumentation"]


class GoogleGenAIInstrumentation(Instrumentation):
    name: ClassVar[str] = "google-genai"
    modules: ClassVar[tuple[str, ...]] = ("google.genai",)

    def instrument(self, telemetry: Telemetry) -> None:
        from .._genai import GenAIRecorder
        from . import _patch

        _patch.install(GenAIRecorder(telemetry))

    def uninstrument(self) -> None:
        patch = sys.modules.get(f"{__name__}._patch")
        if patch is not None:
            patch.uninstall()
