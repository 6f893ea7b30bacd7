"""Per-client facts (provider, server, cloud placement), computed once per client and base URL, and what
every call of one endpoint and model through that client starts with (``prepared``), computed once too.

``AnthropicBedrock`` calls are Bedrock calls (provider ``aws.bedrock``, the model's Bedrock ARN as the
resource id, so they join an AWS cost export) and ``AnthropicVertex`` calls are Vertex AI calls (provider
``gcp.vertex_ai``, the Vertex model resource name), as the GenAI conventions name the provider by who
serves and bills the call.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import semconv
from .._genai import CallStart, GenAIRecorder, OperationKey, call_start, new_key
from .._genai._resource import inference_target_arn, vertex_model_resource

__all__ = ["ClientInfo", "Prepared", "client_info", "prepare", "prepared"]

_INFO_KEY = "_spanledger_anthropic_info"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_Provider = semconv.GenAiProviderNameValues
_PREPARED_LIMIT = 64
"""Models remembered per client; past it the client's cache starts over (a model name per call is not expected)."""


class Prepared(NamedTuple):
    """What every call of one endpoint and model through one client starts with."""

    key: OperationKey
    head: dict[str, Any]
    """The span attributes before the request's own: the usage owner and the billed resource. Shared: copy it."""
    start: CallStart
    """The span name and the key's attributes (``open_call`` adds them after the request's)."""


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
    prepared: dict[tuple[str, bool, str | None], Prepared]
    """By (operation, usage owner, model): see ``prepared``."""


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
            {},
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
            {},
        )
    return ClientInfo(base_url, recorder, _Provider.ANTHROPIC.value, host, port, None, None, None, {})


def resource_id(info: ClientInfo, model: str) -> str | None:
    """The billed resource of a call to ``model`` through this client (cloud clients only)."""
    if info.platform == "bedrock":
        return inference_target_arn(model, info.region, None)
    if info.platform == "vertex" and info.project and info.region:
        return vertex_model_resource(info.project, info.region, "anthropic", model)
    return None


def prepared(info: ClientInfo, operation: str, owns_usage: bool, model: str | None) -> Prepared:
    """The operation key, head attributes and span start of a call to ``model`` through this client, computed
    on the client's first such call (they depend on nothing else)."""
    cache = info.prepared
    cache_key = (operation, owns_usage, model)
    found = cache.get(cache_key)
    if found is None:
        found = prepare(info, operation, owns_usage, model)
        if len(cache) >= _PREPARED_LIMIT:
            cache.clear()
        cache[cache_key] = found
    return found


def prepare(info: ClientInfo, operation: str, owns_usage: bool, model: str | None) -> Prepared:
    """``prepared``'s value, computed (uncached)."""
    key = new_key(operation, info.provider, model, info.address, info.port)
    head: dict[str, Any] = {}
    if owns_usage:
        head[semconv.SPANLEDGER_USAGE_OWNER] = True
    if model:
        resource = resource_id(info, model)
        if resource:
            head[semconv.CLOUD_RESOURCE_ID] = resource
    return Prepared(key, head, call_start(key))
