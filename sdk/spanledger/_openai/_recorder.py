"""The shared GenAI recorder plus the OpenAI-only choices (whether streams may ask for their usage chunk)."""

from __future__ import annotations

from .._genai import GenAIRecorder
from .._telemetry import Telemetry

__all__ = ["Recorder"]


class Recorder(GenAIRecorder):
    """What the OpenAI instrumentation decided once per ``instrument()``."""

    def __init__(self, telemetry: Telemetry) -> None:
        super().__init__(telemetry)
        settings = telemetry.settings
        self.stream_usage = settings.openai_stream_usage
        self.stream_usage_excluded_hosts = tuple(
            host.strip().lower() for host in settings.openai_stream_usage_excluded_hosts if host.strip()
        )
        self.stream_options_rejected: set[str] = set()
        """Base URLs of servers that answered 400 to the ``stream_options`` spanledger added."""
