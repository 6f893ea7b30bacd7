"""Switch library instrumentations on and off at run time, whatever the import order.

For each name in ``INSTRUMENTATIONS`` the manager imports our instrumentation class lazily (our modules
must not import their library at import time), then registers a ``wrapt`` post-import hook on the
class's ``modules[0]``: wrapt calls it at once if the library is already imported, otherwise when the
application imports it. A library that is not installed, or an instrumentation module that does not
exist, is skipped with a debug log. Every failure is logged through ``_internal_errors``, never raised.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from dataclasses import dataclass
from types import ModuleType

import wrapt

from ._instrumentation import INSTRUMENTATIONS, Instrumentation
from ._internal_errors import internal_errors_logged, log_internal_error, logger
from ._state import current_telemetry
from ._telemetry import Telemetry

__all__ = ["InstrumentationManager", "instrument", "manager", "uninstrument"]


@dataclass
class _Wanted:
    cls: type[Instrumentation]
    telemetry: Telemetry


def _load_class(name: str) -> type[Instrumentation] | None:
    module_name, _, class_name = INSTRUMENTATIONS[name].partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        logger.debug("spanledger: instrumentation %r not available (%s)", name, error)
        return None
    cls: type[Instrumentation] = getattr(module, class_name)
    return cls


def _installed(module_name: str) -> bool:
    if module_name in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module_name) is not None
    except (ImportError, ValueError):
        return False


class InstrumentationManager:
    """Tracks which instrumentations are wanted and which are active; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._wanted: dict[str, _Wanted] = {}
        self._active: dict[str, Instrumentation] = {}
        self._pending_hooks: set[str] = set()  # modules with a registered hook that has not fired yet
        self._activating = False
        self._deferred: list[str] = []

    @property
    def active(self) -> frozenset[str]:
        """Names of the instrumentations currently patching their library."""
        return frozenset(self._active)

    def instrument(self, telemetry: Telemetry, names: tuple[str, ...] = ()) -> None:
        """Instrument ``names`` (default: every known one not disabled in ``telemetry.settings``)."""
        for name in names or tuple(INSTRUMENTATIONS):
            with internal_errors_logged(f"instrument {name}"):
                self._want(name, telemetry, explicit=bool(names))

    def _want(self, name: str, telemetry: Telemetry, *, explicit: bool) -> None:
        if name not in INSTRUMENTATIONS:
            logger.error("spanledger: unknown instrumentation %r (known: %s)", name, ", ".join(INSTRUMENTATIONS))
            return
        if not explicit and name in telemetry.settings.disabled_instrumentations:
            logger.debug("spanledger: instrumentation %r disabled by configuration", name)
            return
        with self._lock:
            if name in self._wanted:
                return
            cls = _load_class(name)
            if cls is None:
                return
            trigger = cls.modules[0]
            if not _installed(trigger):
                logger.debug("spanledger: %r not installed; instrumentation %r skipped", trigger, name)
                return
            self._wanted[name] = _Wanted(cls, telemetry)
            if trigger in sys.modules:
                self._activate_all([name])
            elif trigger not in self._pending_hooks:
                # wrapt runs the hook once, when the module has been imported, then forgets it.
                self._pending_hooks.add(trigger)
                wrapt.register_post_import_hook(self._on_import, trigger)

    def _on_import(self, module: ModuleType) -> None:
        try:
            with self._lock:
                self._pending_hooks.discard(module.__name__)
                imported = module.__name__
                self._activate_all([name for name, wanted in self._wanted.items() if wanted.cls.modules[0] == imported])
        except Exception:
            log_internal_error("post-import hook")

    def _activate_all(self, names: list[str]) -> None:
        if self._activating:
            # A hook fired while an instrumentation was importing its own dependencies (instrumenting
            # httpx2 imports httpx, say): finish that one first, so no module is used half-initialised.
            self._deferred.extend(names)
            return
        self._activating = True
        try:
            queue = list(names)
            while queue:
                name = queue.pop(0)
                if name in self._wanted:
                    self._activate(name)
                queue.extend(self._deferred)
                self._deferred.clear()
        finally:
            self._activating = False

    def _activate(self, name: str) -> None:
        if name in self._active:
            return
        wanted = self._wanted[name]
        instance = wanted.cls()
        try:
            instance.instrument(wanted.telemetry)
        except Exception:
            log_internal_error(f"instrument {name}")
            with internal_errors_logged(f"uninstrument {name}"):
                instance.uninstrument()
            return
        self._active[name] = instance
        logger.debug("spanledger: instrumented %s", name)

    def uninstrument(self, names: tuple[str, ...] = ()) -> None:
        """Restore ``names`` (default: all) to their uninstrumented state; harmless when not instrumented."""
        with self._lock:
            for name in names or tuple(self._wanted):
                self._wanted.pop(name, None)
                instance = self._active.pop(name, None)
                if instance is not None:
                    with internal_errors_logged(f"uninstrument {name}"):
                        instance.uninstrument()


manager = InstrumentationManager()
"""The process-wide manager that ``configure()``, ``instrument()`` and ``uninstrument()`` drive."""


def instrument(*names: str) -> None:
    """Instrument the named libraries (default: every supported one), now or when they are imported.

    Uses the telemetry set up by ``configure()``; before that, the global OpenTelemetry providers and
    settings from the environment. Never raises: failures are logged.
    """
    with internal_errors_logged("instrument"):
        manager.instrument(current_telemetry(), names)


def uninstrument(*names: str) -> None:
    """Remove the named instrumentations (default: all). Never raises: failures are logged."""
    with internal_errors_logged("uninstrument"):
        manager.uninstrument(names)
