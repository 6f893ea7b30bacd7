"""Completion hooks: code that receives each GenAI call's content, like upstream util-genai's.

A hook is any object with ``on_completion(*, inputs, outputs, system_instruction, tool_definitions, span,
log_record)`` (util-genai's ``CompletionHook`` signature; the content comes as the conventions' JSON-ready
lists). It is called when the call ends, before its span ends and before its event is emitted, so what it
adds to either is exported with them. It runs whatever the capture mode, so ``no_content`` plus a hook keeps
content off spans and events entirely. A hook that raises is logged once and the call is unaffected.

``ContentUploadHook`` is the built-in one for large content: it writes the content to JSON files under a
directory, on a background thread, and puts their ``file://`` URIs on the span and the event as
``gen_ai.*_ref`` attributes (upstream's names).
"""

from __future__ import annotations

import functools
import importlib
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .. import semconv
from .._internal_errors import logger
from ._content import to_json

__all__ = ["CompletionHook", "ContentUploadHook", "completion_hook_for"]


@runtime_checkable
class CompletionHook(Protocol):
    def on_completion(
        self,
        *,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        system_instruction: list[dict[str, Any]],
        tool_definitions: list[dict[str, Any]] | None = None,
        span: Any = None,
        log_record: Any = None,
    ) -> None: ...


_REFS = (
    ("input", semconv.GEN_AI_INPUT_MESSAGES_REF),
    ("output", semconv.GEN_AI_OUTPUT_MESSAGES_REF),
    ("system_instructions", semconv.GEN_AI_SYSTEM_INSTRUCTIONS_REF),
    ("tool_definitions", semconv.GEN_AI_TOOL_DEFINITIONS_REF),
)


class ContentUploadHook:
    """Writes each call's content to ``<base_path>/<id>_<kind>.json`` and records the files' URIs.

    Writing happens on one background thread; at most ``max_queue`` calls wait to be written, beyond that
    a call's content is dropped (with one warning) rather than slow the application or grow memory.
    """

    def __init__(self, base_path: str | Path, *, max_queue: int = 20) -> None:
        self._directory = Path(base_path).expanduser().resolve()
        self._max_queue = max_queue
        self._queued = 0
        self._lock = threading.Lock()
        self._warned = False
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanledger-content-upload")

    def on_completion(
        self,
        *,
        inputs: list[dict[str, Any]],
        outputs: list[dict[str, Any]],
        system_instruction: list[dict[str, Any]],
        tool_definitions: list[dict[str, Any]] | None = None,
        span: Any = None,
        log_record: Any = None,
    ) -> None:
        stem = uuid.uuid4().hex
        files: list[tuple[Path, str]] = []
        refs: dict[str, str] = {}
        for (kind, ref), value in zip(_REFS, (inputs, outputs, system_instruction, tool_definitions), strict=True):
            if value:
                path = self._directory / f"{stem}_{kind}.json"
                files.append((path, to_json(value)))
                refs[ref] = path.as_uri()
        if not files:
            return
        with self._lock:
            if self._queued >= self._max_queue:
                if not self._warned:
                    self._warned = True
                    logger.warning("spanledger: content upload queue full (%d); content dropped", self._max_queue)
                return
            self._queued += 1
        self._executor.submit(self._write, files)
        if span is not None and span.is_recording():
            span.set_attributes(refs)
        if log_record is not None:
            log_record.attributes = {**(log_record.attributes or {}), **refs}

    def _write(self, files: list[tuple[Path, str]]) -> None:
        try:
            self._directory.mkdir(parents=True, exist_ok=True)
            for path, text in files:
                path.write_text(text, encoding="utf-8")
        except OSError as error:
            logger.warning("spanledger: content upload to %s failed: %s", self._directory, error)
        finally:
            with self._lock:
                self._queued -= 1

    def shutdown(self, wait: bool = True) -> None:
        """Write what is queued (``wait``) and stop the thread; safe twice."""
        self._executor.shutdown(wait=wait)


@functools.lru_cache(maxsize=8)
def completion_hook_for(setting: Any, upload_path: str | None) -> CompletionHook | None:
    """The hook a configuration names: an object, a ``module:name`` path (of a hook or a factory), or an
    upload directory. One instance per configuration, shared by every instrumentation."""
    hook = setting
    if isinstance(hook, str):
        module, _, name = hook.partition(":")
        hook = getattr(importlib.import_module(module), name)
    if isinstance(hook, type) or (hook is not None and not isinstance(hook, CompletionHook) and callable(hook)):
        hook = hook()
    if hook is None and upload_path:
        hook = ContentUploadHook(upload_path)
    if hook is not None and not isinstance(hook, CompletionHook):
        raise TypeError(f"completion hook {setting!r} has no on_completion(...)")
    return hook


