"""OpenAI Agents SDK instrumentation: ``invoke_agent`` and ``execute_tool`` spans from the SDK's own tracing.

The Agents SDK reports its runs to tracing processors (``agents.add_trace_processor``). spanledger's
processor turns agent spans into ``invoke_agent {name}`` spans and function-tool spans into
``execute_tool {name}`` spans, and makes each current while it runs, so the LLM calls, HTTP requests and
data reads inside nest under them and roll up to the run. Model calls themselves are left to the OpenAI
instrumentation (one LLM span per call, carrying the tokens).

Importing this package does not import ``agents``; ``OpenAIAgentsInstrumentation.instrument`` does.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from .._instrumentation import Instrumentation
from .._internal_errors import logger
from .._telemetry import Telemetry

__all__ = ["OpenAIAgentsInstrumentation"]


class OpenAIAgentsInstrumentation(Instrumentation):
    name: ClassVar[str] = "openai-agents"
    modules: ClassVar[tuple[str, ...]] = ("agents",)

    def instrument(self, telemetry: Telemetry) -> None:
        import agents

        if not hasattr(agents, "add_trace_processor"):
            # ``agents`` is a common top-level name; only the OpenAI Agents SDK's is instrumented.
            logger.debug("spanledger: the installed 'agents' is not the OpenAI Agents SDK; not instrumented")
            return
        from . import _processor

        _processor.install(telemetry)

    def uninstrument(self) -> None:
        processor = sys.modules.get(f"{__name__}._processor")
        if processor is not None:
            processor.uninstall()
