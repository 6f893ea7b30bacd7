"""Per-client facts (provider, server, cloud placement), computed once per client and base URL.

``AnthropicBedrock`` calls are Bedrock calls (provider ``aws.bedrock``, the model's Bedrock ARN as the
resource id, so they join an AWS cost export) and ``AnthropicVertex`` calls are Vertex AI calls (provider
``gcp.vertex_ai``, the Vertex model resource name), as the GenAI conventions name the provider by who
serves and bills the call.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import semconv
from .._genai import GenAIRecorder
from .._genai._resource import inference_target_arn, vertex_model_resource

__all__ = ["ClientInfo", "client_info"]

_INFO_KEY = "_spanledger_anthropic_info"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_Provider = semconv.GenAiProviderNameValues


class ClientInfo(NamedTuple):
    base_url: object
    recorder: GenAIRecorder
    provider: str
    address: str | None
    port: int | None
    platform: str | None
    """``bedrock`` or ``vertex`` for the cloud clients."""
    region: str | None
    project: str | None


def client_info(client: Any, recorder: GenAIRecorder) -> ClientInfo:
    state = client.__dict__
    base_url = client.base_url
    info: ClientInfo | None = state.get(_INFO_KEY)
    if info is not None and info.base_url is base_url and info.recorder is recorder:
        return info
    info = _compute(client, base_url, recorder)
    state[_INFO_KEY] = info
    return info


def _compute(client: Any, base_url: Any, recorder: GenAIRecorder) -> ClientInfo:
    host = (getattr(base_url, "host", None) or "").lower() or None
    scheme = getattr(base_url, "scheme", "") or ""
    port = getattr(base_url, "port", None) or _DEFAULT_PORTS.get(scheme)
    module = type(client).__module__
    if ".bedrock" in module:
        return ClientInfo(
            base_url,
            recorder,
            _Provider.AWS_BEDROCK.value,
            host,
            port,
            "bedrock",
            getattr(client, "aws_region", None),
            None,
        )
    if ".vertex" in module:
        return ClientInfo(
            base_url,
            recorder,
            _Provider.GCP_VERTEX_AI.value,
            host,
            port,
            "vertex",
            getattr(client, "region", None),
            getattr(client, "project_id", None),
        )
    return ClientInfo(base_url, recorder, _Provider.ANTHROPIC.value, host, port, None, None, None)


def resource_id(info: ClientInfo, model: str) -> str | None:
    """The billed resource of a call to ``model`` through this client (cloud clients only)."""
    if info.platform == "bedrock":
        return inference_target_arn(model, info.region, None)
    if info.platform == "vertex" and info.project and info.region:
        return vertex_model_resource(info.project, info.region, "anthropic", model)
    return None
