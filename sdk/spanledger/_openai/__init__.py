"""OpenAI instrumentation: one GenAI CLIENT span and the GenAI metrics per chat, Responses or embeddings call.

Importing this package does not import ``openai``; ``OpenAIInstrumentation.instrument`` does.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from .._instrumentation import Instrumentation
from .._telemetry import Telemetry
from ._clients import disable_openai_stream_usage

__all__ = ["OpenAIInstrumentation", "disable_openai_stream_usage"]


class OpenAIInstrumentation(Instrumentation):
    name: ClassVar[str] = "openai"
    modules: ClassVar[tuple[str, ...]] = ("openai",)

    def instrument(self, telemetry: Telemetry) -> None:
        from . import _patch
        from ._recorder import Recorder

        _patch.install(Recorder(telemetry))

    def uninstrument(self) -> None:
        patch = sys.modules.get(f"{__name__}._patch")
        if patch is not None:
            patch.uninstall()
