"""Hooks for ``opentelemetry-instrument python app.py`` (the ``opentelemetry_distro`` and
``opentelemetry_instrumentor`` entry points).

``SpanledgerDistro`` (used when it is the only distro installed, or ``OTEL_PYTHON_DISTRO=spanledger``)
runs ``spanledger.configure()`` from the environment, and skips other packages' instrumentors for the
libraries spanledger instruments itself (``openai``, ``httpx``...), so no call is traced twice.
``SpanledgerInstrumentor`` runs ``configure()`` too; it reuses any providers a configurator set up, and
when spanledger is already configured it changes nothing.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from opentelemetry.instrumentation.distro import BaseDistro  # type: ignore[attr-defined]
from opentelemetry.instrumentation.instrumentor import BaseInstrumentor  # type: ignore[attr-defined]
from opentelemetry.util._importlib_metadata import EntryPoint

from ._configure import configure
from ._instrumentation import INSTRUMENTATIONS
from ._internal_errors import internal_errors_logged, logger
from ._manager import uninstrument
from ._state import current_telemetry

__all__ = ["SpanledgerDistro", "SpanledgerInstrumentor"]


class SpanledgerDistro(BaseDistro):  # type: ignore[misc]
    def _configure(self, **kwargs: Any) -> None:
        with internal_errors_logged("opentelemetry distro"):
            configure()

    def load_instrumentor(self, entry_point: EntryPoint, **kwargs: Any) -> None:
        name = entry_point.name
        duplicate = not entry_point.value.startswith("spanledger.") and name in INSTRUMENTATIONS
        if duplicate and name not in current_telemetry().settings.disabled_instrumentations:
            logger.debug("spanledger: %s skipped; spanledger instruments %s", entry_point.value, name)
            return
        super().load_instrumentor(entry_point, **kwargs)


class SpanledgerInstrumentor(BaseInstrumentor):  # type: ignore[misc]
    def instrumentation_dependencies(self) -> Collection[str]:
        return ()

    def _instrument(self, **kwargs: Any) -> None:
        with internal_errors_logged("opentelemetry instrumentor"):
            configure()

    def _uninstrument(self, **kwargs: Any) -> None:
        uninstrument()
