"""spanledger: make every AI output accountable."""

from . import semconv
from ._accelerator import Accelerator, accelerator
from ._configure import SpanledgerHandle, configure
from ._freshness import Retrieval, record_data_read, retrieval
from ._genai import CompletionHook, ContentUploadHook
from ._manager import instrument, uninstrument
from ._openai import disable_openai_stream_usage
from ._version import __version__
from ._workflow import Workflow, workflow

__all__ = [
    "Accelerator",
    "CompletionHook",
    "ContentUploadHook",
    "Retrieval",
    "SpanledgerHandle",
    "Workflow",
    "__version__",
    "accelerator",
    "configure",
    "disable_openai_stream_usage",
    "instrument",
    "record_data_read",
    "retrieval",
    "semconv",
    "uninstrument",
    "workflow",
]
