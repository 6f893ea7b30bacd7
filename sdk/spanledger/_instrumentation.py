"""The contract every library instrumentation implements, and the list of them.

An instrumentation patches one third-party library (openai, botocore, httpx...). The manager in
``_manager.py`` instruments those whose library is already imported and installs post-import hooks
for the rest, so ``import spanledger.auto`` works whatever the import order.

Contract (like ``opentelemetry.instrumentation.BaseInstrumentor``, minus the global singleton):

* ``instrument(telemetry)`` patches the library. It is only called once the module named in
  ``modules[0]`` has been imported. It may be called again after ``uninstrument()``.
* ``uninstrument()`` restores the library exactly as it was. Calling it twice is harmless.
* Neither ever raises into the application: failures are logged by the manager.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    from ._telemetry import Telemetry

__all__ = ["INSTRUMENTATIONS", "Instrumentation"]


class Instrumentation(ABC):
    name: ClassVar[str]
    """Short name used in configuration (``SPANLEDGER_DISABLED_INSTRUMENTATIONS=openai``)."""

    modules: ClassVar[tuple[str, ...]]
    """Import names of the library; the first one triggers instrumentation when imported."""

    @abstractmethod
    def instrument(self, telemetry: Telemetry) -> None: ...

    @abstractmethod
    def uninstrument(self) -> None: ...


INSTRUMENTATIONS: dict[str, str] = {
    "openai": "spanledger._openai:OpenAIInstrumentation",
    "anthropic": "spanledger._anthropic:AnthropicInstrumentation",
    "google-genai": "spanledger._google_genai:GoogleGenAIInstrumentation",
    "openai-agents": "spanledger._openai_agents:OpenAIAgentsInstrumentation",
    "mcp": "spanledger._mcp:MCPInstrumentation",
    "botocore": "spanledger._aws:BotocoreInstrumentation",
    "httpx": "spanledger._http:HttpxInstrumentation",
    "httpx2": "spanledger._http:Httpx2Instrumentation",
}
"""Instrumentation name -> ``module:Class``, imported lazily so a missing library costs nothing."""
