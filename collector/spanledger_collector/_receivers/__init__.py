"""The OTLP receiver: gRPC and HTTP (protobuf and JSON, gzip, chunked bodies), bearer auth, TLS, size cap.

Both transports hand the raw request bytes to the same :class:`OtlpSignals`, so decoding happens once,
in the collector's own fast path (see ``_otlp``), and errors map the same way:
``RetryableError`` -> UNAVAILABLE + ``RetryInfo`` / 503 + ``Retry-After``; ``PermanentError`` and bad
input -> INVALID_ARGUMENT / 400 (naming the problem); oversized -> RESOURCE_EXHAUSTED / 413;
missing or wrong token -> UNAUTHENTICATED / 401; wrong content type -> 415.
"""

from ._grpc import GrpcReceiver
from ._http import HttpReceiver
from ._signals import OtlpSignals, bound_host

__all__ = ["GrpcReceiver", "HttpReceiver", "OtlpSignals", "bound_host"]
