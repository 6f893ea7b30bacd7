"""spanledger.instrument() / uninstrument(): lazy, import-order independent, never raising.

Driven with a small test-only Instrumentation over a throwaway library written to a temporary folder, so
the post-import hook is exercised on a real import.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import ClassVar

import pytest
import spanledger
from spanledger import _instrumentation
from spanledger._instrumentation import Instrumentation
from spanledger._manager import manager
from spanledger._telemetry import Telemetry

LIBRARY = "spanledger_test_library"


class GreetingInstrumentation(Instrumentation):
    """Wraps ``spanledger_test_library.greet`` so it says it is instrumented."""

    name: ClassVar[str] = "greeting"
    modules: ClassVar[tuple[str, ...]] = (LIBRARY,)
    instrument_calls: ClassVar[int] = 0
    fail: ClassVar[bool] = False

    def instrument(self, telemetry: Telemetry) -> None:
        type(self).instrument_calls += 1
        if self.fail:
            raise RuntimeError("instrumentation bug")
        library = sys.modules[LIBRARY]
        original = library.greet
        self._restore = lambda: setattr(library, "greet", original)
        library.greet = lambda name: original(name) + " (instrumented)"

    def uninstrument(self) -> None:
        restore = getattr(self, "_restore", None)
        if restore is not None:
            restore()
            self._restore = None


@pytest.fixture
def library_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / f"{LIBRARY}.py").write_text("def greet(name):\n    return 'hello ' + name\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(_instrumentation.INSTRUMENTATIONS, "greeting", f"{__name__}:GreetingInstrumentation")
    monkeypatch.setattr(GreetingInstrumentation, "instrument_calls", 0)
    monkeypatch.setattr(GreetingInstrumentation, "fail", False)
    sys.modules.pop(LIBRARY, None)
    yield tmp_path
    manager.uninstrument(("greeting",))
    sys.modules.pop(LIBRARY, None)


def _import_library() -> ModuleType:
    return importlib.import_module(LIBRARY)


def test_library_imported_after_instrument_is_instrumented(library_on_path: Path) -> None:
    spanledger.configure(export="none", instrument=False)
    spanledger.instrument("greeting")
    assert "greeting" not in manager.active
    library = _import_library()
    assert "greeting" in manager.active
    assert library.greet("ada") == "hello ada (instrumented)"


def test_library_imported_before_instrument_is_instrumented_now(library_on_path: Path) -> None:
    library = _import_library()
    spanledger.configure(export="none")
    assert library.greet("ada") == "hello ada (instrumented)"


def test_uninstrument_and_instrument_again_at_run_time(library_on_path: Path) -> None:
    library = _import_library()
    spanledger.configure(export="none")
    spanledger.uninstrument("greeting")
    assert library.greet("ada") == "hello ada"
    spanledger.uninstrument("greeting")  # harmless twice
    spanledger.instrument("greeting")
    assert library.greet("ada") == "hello ada (instrumented)"
    spanledger.uninstrument()
    assert library.greet("ada") == "hello ada"


def test_uninstrument_before_import_cancels_the_hook(library_on_path: Path) -> None:
    spanledger.configure(export="none")
    spanledger.uninstrument("greeting")
    assert _import_library().greet("ada") == "hello ada"
    assert GreetingInstrumentation.instrument_calls == 0


def test_configure_twice_does_not_instrument_twice(library_on_path: Path) -> None:
    library = _import_library()
    first = spanledger.configure(export="none")
    assert spanledger.configure(export="none") is first
    spanledger.instrument()
    assert GreetingInstrumentation.instrument_calls == 1
    second = spanledger.configure(export="none", capture_message_content=True)  # different options
    assert second is not first and first.is_shut_down
    assert library.greet("ada") == "hello ada (instrumented)"
    assert GreetingInstrumentation.instrument_calls == 2


def test_disabled_instrumentation_is_not_applied(library_on_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SPANLEDGER_DISABLED_INSTRUMENTATIONS", "greeting, other")
    spanledger.configure(export="none")
    assert _import_library().greet("ada") == "hello ada"


def test_failing_instrumentation_is_logged_not_raised(
    library_on_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    GreetingInstrumentation.fail = True
    library = _import_library()
    with caplog.at_level(logging.ERROR, logger="spanledger"):
        spanledger.configure(export="none")
    assert "instrument greeting" in caplog.text and "instrumentation bug" in caplog.text
    assert library.greet("ada") == "hello ada"
    assert "greeting" not in manager.active


def test_missing_library_and_missing_module_are_skipped_quietly(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(_instrumentation.INSTRUMENTATIONS, "absent-module", "spanledger._no_such_module:Nothing")

    class AbsentLibrary(GreetingInstrumentation):
        modules: ClassVar[tuple[str, ...]] = ("no_such_library_anywhere",)

    monkeypatch.setattr(sys.modules[__name__], "AbsentLibrary", AbsentLibrary, raising=False)
    monkeypatch.setitem(_instrumentation.INSTRUMENTATIONS, "absent-library", f"{__name__}:AbsentLibrary")
    with caplog.at_level(logging.WARNING, logger="spanledger"):
        spanledger.configure(export="none", instrument=False)
        spanledger.instrument("absent-module", "absent-library")
    assert caplog.text == ""
    assert not {"absent-module", "absent-library"} & manager.active


def test_unknown_name_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="spanledger"):
        spanledger.instrument("no-such-instrumentation")
    assert "unknown instrumentation 'no-such-instrumentation'" in caplog.text


class OuterInstrumentation(Instrumentation):
    """Its instrument() imports a helper that imports the inner library: the inner hook fires mid-import."""

    name: ClassVar[str] = "outer"
    modules: ClassVar[tuple[str, ...]] = ("spanledger_test_outer",)

    def instrument(self, telemetry: Telemetry) -> None:
        importlib.import_module("spanledger_test_helper")

    def uninstrument(self) -> None:
        pass


class InnerInstrumentation(Instrumentation):
    """Needs the helper module fully initialised, as ``_http`` needs upstream's httpx instrumentor module."""

    name: ClassVar[str] = "inner"
    modules: ClassVar[tuple[str, ...]] = ("spanledger_test_inner",)
    saw_ready: ClassVar[list[bool]] = []

    def instrument(self, telemetry: Telemetry) -> None:
        self.saw_ready.append(importlib.import_module("spanledger_test_helper").READY)

    def uninstrument(self) -> None:
        pass


def test_hook_firing_inside_another_instrumentation_waits_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "spanledger_test_outer.py").write_text("")
    (tmp_path / "spanledger_test_inner.py").write_text("")
    (tmp_path / "spanledger_test_helper.py").write_text("import spanledger_test_inner\nREADY = True\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(_instrumentation.INSTRUMENTATIONS, "outer", f"{__name__}:OuterInstrumentation")
    monkeypatch.setitem(_instrumentation.INSTRUMENTATIONS, "inner", f"{__name__}:InnerInstrumentation")
    monkeypatch.setattr(InnerInstrumentation, "saw_ready", [])
    spanledger.configure(export="none", instrument=False)
    spanledger.instrument("outer", "inner")
    try:
        importlib.import_module("spanledger_test_outer")
        assert InnerInstrumentation.saw_ready == [True]
        assert {"outer", "inner"} <= manager.active
    finally:
        manager.uninstrument(("outer", "inner"))
        for module in ("spanledger_test_outer", "spanledger_test_inner", "spanledger_test_helper"):
            sys.modules.pop(module, None)
