"""How an exception is written on a span: ``error.type``, the ERROR status and (for scopes) the exception event.

Two flavours. Scopes the application opens (workflow, accelerator, ASGI request) record the exception
itself, message included: it is the application's own error. Provider calls (OpenAI, Anthropic, Gemini)
never put the exception's text on the span, because provider error messages can quote (masked)
credentials; they get the class name and the HTTP status only.
"""

from __future__ import annotations

import sys

from opentelemetry.trace import Span, Status, StatusCode

from . import semconv

__all__ = ["error_type", "record_error", "record_provider_error", "safe_description"]

_error_types: dict[type[BaseException], str] = {}


def error_type(error: BaseException) -> str:
    """The ``error.type`` of ``error``: its fully-qualified class name, as the conventions ask.

    The public path when the class is exported from its top-level package (``openai.NotFoundError``, not
    ``openai._exceptions.NotFoundError``: what upstream and the conventions' example give, so dashboards
    do not split), else module and class; builtins unqualified (``TimeoutError``).
    """
    cls = type(error)
    found = _error_types.get(cls)
    if found is None:
        module, name = cls.__module__, cls.__qualname__
        package = module.partition(".")[0]
        if module == "builtins":
            found = name
        elif getattr(sys.modules.get(package), name, None) is cls:
            found = f"{package}.{name}"
        else:
            found = f"{module}.{name}"
        if len(_error_types) < 1024:
            _error_types[cls] = found
    return found


def record_error(span: Span, error: BaseException) -> None:
    """Mark ``span`` failed with ``error``: exception event, ``error.type`` and the ERROR status."""
    kind = error_type(error)
    span.record_exception(error)
    span.set_attribute(semconv.ERROR_TYPE, kind)
    span.set_status(StatusCode.ERROR, str(error) or kind)


def safe_description(error: BaseException, kind: str) -> str:
    """A status description without the error's message: ``kind`` and the HTTP status when there is one."""
    status = getattr(error, "status_code", None)
    return f"{kind} (HTTP {status})" if isinstance(status, int) else kind


def record_provider_error(span: Span, kind: str, description: str) -> None:
    """Mark a provider call's ``span`` failed (``kind`` is its ``error.type``, ``description`` a safe text)."""
    span.set_attribute(semconv.ERROR_TYPE, kind)
    span.set_status(Status(StatusCode.ERROR, description))
