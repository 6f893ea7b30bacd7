"""MCP client instrumentation: an ``execute_tool`` span around every ``ClientSession.call_tool``.

The span (``execute_tool {tool}``, with ``gen_ai.tool.name``, ``mcp.method.name`` and, over streamable
HTTP, ``mcp.session.id``) is current while the call runs, so it nests under the agent run or LLM call that
asked for the tool and over the MCP SDK's own request span. Tool arguments and results are content:
recorded only with ``capture_message_content``.

Importing this package does not import ``mcp``; ``MCPInstrumentation.instrument`` does.
"""

from __future__ import annotations

import sys
from typing import ClassVar

from .._instrumentation import Instrumentation
from .._telemetry import Telemetry

__all__ = ["MCPInstrumentation"]


class MCPInstrumentation(Instrumentation):
    name: ClassVar[str] = "mcp"
    modules: ClassVar[tuple[str, ...]] = ("mcp",)

    def instrument(self, telemetry: Telemetry) -> None:
        from . import _patch

        _patch.install(telemetry)

    def uninstrument(self) -> None:
        patch = sys.modules.get(f"{__name__}._patch")
        if patch is not None:
            patch.uninstall()
