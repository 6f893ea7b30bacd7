"""What every GenAI instrumentation shares: the token-usage type and the recorder (span attributes, metrics,
and the ``OTEL_SEMCONV_STABILITY_OPT_IN`` naming decision). Each library's own subpackage holds only what
is specific to that library."""

from ._call import (
    CallStart,
    GenAICall,
    call_start,
    current_context,
    current_parent,
    instrumentation_suppressed,
    open_call,
)
from ._content import Content, arguments_object, to_json, tool_definition
from ._hooks import CompletionHook, ContentUploadHook
from ._recorder import GenAIRecorder, OperationKey, new_key
from ._usage import TokenUsage, to_int

__all__ = [
    "CallStart",
    "CompletionHook",
    "Content",
    "ContentUploadHook",
    "GenAICall",
    "GenAIRecorder",
    "OperationKey",
    "TokenUsage",
    "arguments_object",
    "call_start",
    "current_context",
    "current_parent",
    "instrumentation_suppressed",
    "new_key",
    "open_call",
    "to_int",
    "to_json",
    "tool_definition",
]
