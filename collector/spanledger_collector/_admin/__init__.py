"""The admin server: Prometheus ``/metrics``, ``/health`` and the answers under ``/api/``, with its own
settings (``service.telemetry.metrics``), bearer-token read and write permissions, and TLS."""

from ._server import AdminServer
from ._settings import DEFAULT_MAX_REQUEST_BODY_SIZE, AdminSettings, parse_admin_settings

__all__ = ["DEFAULT_MAX_REQUEST_BODY_SIZE", "AdminServer", "AdminSettings", "parse_admin_settings"]
