"""The process around the providers spanledger creates: a bounded flush at exit, and forked children.

**Exit.** spanledger creates those exporters, so it owns their shutdown. The OTel SDK's own exit handlers
wait for every export, each bounded only by the OTLP timeout (10 s, with retries) and one signal after
the other: 12-20 s when the collector is down, which a CLI or a serverless handler must not pay. So the
providers are created with ``shutdown_on_exit=False`` and one exit handler shuts them down on a daemon
thread, waiting at most ``exit_timeout`` seconds; what is not sent by then is dropped, with one log line.

**Fork** (``os.register_at_fork``). The SDK gives a forked child fresh exporter threads and an empty
span queue. What is left is done here: the child's metrics start from zero (the
parent's points, already in the cumulative sums it inherited, would otherwise be exported again) and its
meter resource gets its ``process.pid``; and a ``multiprocessing`` worker, which ends with ``os._exit``
and so runs no exit handler, flushes when it ends (multiprocessing's own finalizers), bounded like the
exit flush. Pre-fork servers (gunicorn, uWSGI, Celery's prefork pool): see docs/sdk.md ("Exit and fork").
"""

from __future__ import annotations

import atexit
import logging
import multiprocessing.util
import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from opentelemetry.sdk.metrics import MeterProvider as SdkMeterProvider
from opentelemetry.sdk.resources import Resource

from . import semconv
from ._internal_errors import internal_errors_logged, log_internal_error, logger

if TYPE_CHECKING:
    from ._configure import SpanledgerHandle

__all__ = ["run_bounded", "track"]

# Loggers of the SDK's exporting threads, silenced once the exit flush has given up on them: a daemon
# thread writing to stderr while the interpreter finalizes can abort the process.
_EXPORTER_LOGGERS = ("opentelemetry.exporter", "opentelemetry.sdk")

_tracked: SpanledgerHandle | None = None
_registered = False
_registered_lock = threading.Lock()


def run_bounded(work: Callable[[], object], timeout_s: float, name: str) -> bool:
    """Run ``work`` on a daemon thread; True if it finished within ``timeout_s`` (else it is left behind)."""
    done = threading.Event()

    def target() -> None:
        try:
            work()
        except Exception:
            log_internal_error(name)
        finally:
            done.set()

    threading.Thread(target=target, name=f"spanledger-{name}", daemon=True).start()
    return done.wait(timeout_s)


def track(handle: SpanledgerHandle) -> None:
    """Make ``handle`` the one whose providers are flushed at exit and reset in forked children."""
    global _tracked, _registered
    _tracked = handle
    with _registered_lock:
        if not _registered:
            atexit.register(_at_exit)
            if hasattr(os, "register_at_fork"):
                os.register_at_fork(after_in_child=_after_fork_in_child)
            _registered = True
    # Called again in each multiprocessing worker, after multiprocessing has cleared the finalizers it
    # inherited; keyed weakly on the handle, so a replaced handle drops out.
    multiprocessing.util.register_after_fork(handle, _in_multiprocessing_worker)


def _owns_providers(handle: SpanledgerHandle | None) -> bool:
    if handle is None or handle.is_shut_down:
        return False
    return handle.owns_tracer_provider or handle.owns_meter_provider


def _dropped(what: str, timeout_s: float) -> None:
    for name in _EXPORTER_LOGGERS:
        logging.getLogger(name).disabled = True
    logger.warning(
        "spanledger: telemetry not exported at %s within %s s (is the collector at OTEL_EXPORTER_OTLP_ENDPOINT "
        "reachable?); what was left is dropped. SPANLEDGER_EXIT_TIMEOUT sets how long to wait.",
        what,
        timeout_s,
    )


def _at_exit() -> None:
    handle = _tracked
    if not _owns_providers(handle):
        return
    assert handle is not None
    timeout_s = handle.settings.exit_timeout
    if not run_bounded(handle.shutdown, timeout_s, "exit-flush"):
        _dropped("exit", timeout_s)


def _after_fork_in_child() -> None:
    handle = _tracked
    if not _owns_providers(handle):
        return
    assert handle is not None
    with internal_errors_logged("fork"):
        provider = handle.meter_provider
        if handle.owns_meter_provider and isinstance(provider, SdkMeterProvider):
            # Fresh aggregation storage for each reader: the SDK has no public reset, and re-adding a
            # reader to the measurement consumer is how it builds one.
            consumer = provider._measurement_consumer
            for reader in provider._metric_readers:
                consumer.add_metric_reader(reader)
            # The child's series must not be the parent's: same resource, two writers of one cumulative sum.
            provider._update_resource(Resource({semconv.PROCESS_PID: os.getpid()}))


def _in_multiprocessing_worker(handle: SpanledgerHandle) -> None:
    multiprocessing.util.Finalize(None, _worker_ends, args=(handle,), exitpriority=0)


def _worker_ends(handle: SpanledgerHandle) -> None:
    if not _owns_providers(handle):
        return
    timeout_s = handle.settings.exit_timeout
    if not run_bounded(handle.force_flush, timeout_s, "worker-flush"):
        _dropped("the end of a multiprocessing worker", timeout_s)
