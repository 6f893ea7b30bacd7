"""What is known about OpenAI-compatible hosts, as data: who serves them and whether they take ``stream_options``.

The openai client talks to many servers through ``base_url``. Where the host names the provider, the span
says so (``gen_ai.provider.name``), so cost and usage are attributed to who actually served and billed the
call. ``stream_options`` is the field spanledger adds to chat streams to get their usage; a host listed
as rejecting it never gets it (the ``openai_stream_usage_excluded_hosts`` option adds hosts to this).
Local servers (vLLM, Ollama, LM Studio, a LiteLLM proxy) have no identifying host; they stay ``openai``
and keep their ``server.address``.
"""

from __future__ import annotations

from typing import NamedTuple

from .. import semconv

__all__ = ["HostFacts", "host_facts"]

_Provider = semconv.GenAiProviderNameValues


class HostFacts(NamedTuple):
    provider: str
    accepts_stream_options: bool


_DEFAULT = HostFacts(_Provider.OPENAI.value, True)

# (host, or ".suffix" for a domain and its subdomains) -> facts. First match wins.
_KNOWN_HOSTS: tuple[tuple[str, HostFacts], ...] = (
    ("api.openai.com", _DEFAULT),
    (".openai.azure.com", HostFacts(_Provider.AZURE_AI_OPENAI.value, False)),
    (".services.ai.azure.com", HostFacts(_Provider.AZURE_AI_INFERENCE.value, True)),
    (".models.ai.azure.com", HostFacts(_Provider.AZURE_AI_INFERENCE.value, True)),
    ("api.groq.com", HostFacts(_Provider.GROQ.value, True)),
    ("api.deepseek.com", HostFacts(_Provider.DEEPSEEK.value, True)),
    ("api.mistral.ai", HostFacts(_Provider.MISTRAL_AI.value, False)),
    ("api.perplexity.ai", HostFacts(_Provider.PERPLEXITY.value, False)),
    ("api.x.ai", HostFacts(_Provider.X_AI.value, True)),
    ("generativelanguage.googleapis.com", HostFacts(_Provider.GCP_GEMINI.value, True)),
    ("aiplatform.googleapis.com", HostFacts(_Provider.GCP_VERTEX_AI.value, True)),
    ("api.cohere.ai", HostFacts(_Provider.COHERE.value, False)),
    ("api.cohere.com", HostFacts(_Provider.COHERE.value, False)),
    ("api.together.xyz", HostFacts(_Provider.TOGETHER_AI.value, True)),
    ("api.fireworks.ai", HostFacts(_Provider.FIREWORKS_AI.value, True)),
    ("openrouter.ai", HostFacts(_Provider.OPENROUTER.value, True)),
)


def _matches(host: str, pattern: str) -> bool:
    if pattern.startswith("."):
        return host.endswith(pattern) or host == pattern[1:]
    return host == pattern


def host_facts(host: str | None) -> HostFacts:
    """The facts for ``host`` (lowercase), or the OpenAI defaults for a host nobody can identify."""
    if host:
        for pattern, facts in _KNOWN_HOSTS:
            if _matches(host, pattern):
                return facts
    return _DEFAULT
