"""Per-client facts (provider, server address, whether streams may ask for usage), computed once per client.

The facts are cached on the client instance and recomputed when its ``base_url`` object or the active
configuration changes, so the per-call cost is one dict lookup and two identity checks.

Reading ``client._base_url`` on openai 3.x costs more than the rest of spanledger's per-call work in
Python: it goes through two properties, and ``base_url`` runs an ``import`` statement on every read. For
the client classes whose ``base_url`` is the library's own (it returns the ``_configured_base_url``
attribute its setter writes), the cache is therefore checked against that attribute, read from the
instance's ``__dict__``; any other class (the ``openai`` module-level client, whose ``base_url`` can
come from a module global, subclasses that override it, older releases without that attribute) reads
``_base_url`` every call.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .. import semconv
from ._hosts import host_facts
from ._recorder import Recorder

__all__ = ["ClientInfo", "client_info", "disable_openai_stream_usage"]

_INFO_KEY = "_spanledger_openai_info"
_STREAM_USAGE_OFF_KEY = "_spanledger_openai_stream_usage_off"
_DEFAULT_PORTS = {"https": 443, "http": 80}
_CONFIGURED_BASE_URL = "_configured_base_url"
_stored_base_url: dict[type, bool] = {}
"""Per client class: whether its base URL is the ``_configured_base_url`` attribute (see the module docstring)."""


class ClientInfo(NamedTuple):
    base_url: object
    server: str
    """The base URL as text: what a server that rejected ``stream_options`` is remembered by."""
    recorder: Recorder
    provider: str
    address: str | None
    port: int | None
    stream_usage: bool
    """Whether spanledger may add ``stream_options.include_usage`` to this client's chat streams."""


def disable_openai_stream_usage(client: Any) -> None:
    """Never add ``stream_options`` to this OpenAI client's requests.

    spanledger asks chat-completion streams for their token usage (and hides the extra chunk) when the
    caller did not. Some OpenAI-compatible servers reject ``stream_options``; call this on the
    ``openai.OpenAI`` / ``openai.AsyncOpenAI`` client that talks to one. Clients derived later with
    ``with_options()``/``copy()`` need their own call. To switch it off for every client use
    ``configure(openai_stream_usage=False)``, or for some hosts ``openai_stream_usage_excluded_hosts``.
    A server that answers 400 naming ``stream_options`` is retried once without it and then remembered
    (for the life of the configuration), so this call only saves that first rejected request.
    """
    client.__dict__[_STREAM_USAGE_OFF_KEY] = True
    client.__dict__.pop(_INFO_KEY, None)


def client_info(client: Any, recorder: Recorder) -> ClientInfo:
    """The cached facts about ``client`` under ``recorder``'s configuration."""
    state = client.__dict__
    cls = type(client)
    stored = _stored_base_url.get(cls)
    if stored is None:
        stored = _stored_base_url[cls] = _base_url_is_stored(cls)
    base_url = state.get(_CONFIGURED_BASE_URL) if stored else None
    if base_url is None:
        base_url = client._base_url
    info: ClientInfo | None = state.get(_INFO_KEY)
    if info is not None and info.base_url is base_url and info.recorder is recorder:
        return info
    info = _compute(client, base_url, recorder)
    state[_INFO_KEY] = info
    return info


def _base_url_is_stored(cls: type) -> bool:
    """Whether ``cls``'s ``_base_url`` and ``base_url`` are openai's own, which return ``_configured_base_url``."""
    try:
        import openai
        from openai._base_client import BaseClient

        own = {
            vars(openai.OpenAI).get("base_url"),
            vars(openai.AsyncOpenAI).get("base_url"),
            vars(BaseClient).get("base_url"),
        } - {None}
        return (
            _static(cls, "_base_url") is vars(BaseClient).get("_base_url") is not None
            and _static(cls, "base_url") in own
        )
    except Exception:
        return False


def _static(cls: type, name: str) -> object:
    for klass in cls.__mro__:
        if name in vars(klass):
            return vars(klass)[name]
    return None


def _compute(client: Any, base_url: Any, recorder: Recorder) -> ClientInfo:
    import openai

    host = (getattr(base_url, "host", None) or "").lower() or None
    scheme = getattr(base_url, "scheme", "") or ""
    port = getattr(base_url, "port", None) or _DEFAULT_PORTS.get(scheme)
    facts = host_facts(host)
    provider = facts.provider
    if isinstance(client, (openai.AzureOpenAI, openai.AsyncAzureOpenAI)):
        provider = semconv.GenAiProviderNameValues.AZURE_AI_OPENAI.value
    excluded = not facts.accepts_stream_options or (
        host is not None
        and any(
            host == suffix.lstrip(".") or host.endswith(suffix if suffix.startswith(".") else "." + suffix)
            for suffix in recorder.stream_usage_excluded_hosts
        )
    )
    stream_usage = recorder.stream_usage and not excluded and not client.__dict__.get(_STREAM_USAGE_OFF_KEY, False)
    return ClientInfo(base_url, str(base_url), recorder, provider, host, port, stream_usage)
