"""Content capture modes as the current GenAI conventions define them, read from real OTel spans and log
records: ``no_content``, ``span_only``, ``event_only``, ``span_and_event``; the
``gen_ai.client.inference.operation.details`` event through the Logs API; completion hooks and the upload
hook; the content shapes (system messages stay in the history, tool-call arguments are objects, tool
definitions)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import openai
import pytest
import spanledger
from _aws_servers import make_client, runtime_server
from _content_recording import CONTENT, plain, recorded_factory, span_event
from aws_runtime_server import AwsRuntimeServer
from openai_compatible_server import OpenAICompatibleServer
from spanledger import semconv

__all__ = ["recorded_factory", "runtime_server"]

MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hello"}]


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


def client_for(server: OpenAICompatibleServer) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url, api_key="sk-secret-key", max_retries=0)


@pytest.mark.parametrize(
    ("mode", "on_span", "on_event"),
    [
        ("no_content", False, False),
        ("span_only", True, False),
        ("event_only", False, True),
        ("span_and_event", True, True),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["call", "stream"])
def test_capture_modes_from_the_standard_variable(
    server: OpenAICompatibleServer,
    recorded_factory: Any,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    on_span: bool,
    on_event: bool,
    stream: bool,
) -> None:
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", mode.upper())
    recorded = recorded_factory()
    result = client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, stream=stream)
    if stream:
        list(result)
    (span,) = recorded.llm_spans()
    attributes = span.attributes or {}

    assert (semconv.GEN_AI_INPUT_MESSAGES in attributes) is on_span
    assert (semconv.GEN_AI_OUTPUT_MESSAGES in attributes) is on_span
    event = span_event(recorded, span, on_event)
    if event is not None:  # the span's: same attributes, content as structured values
        for name, value in attributes.items():
            if name not in CONTENT:
                assert event[name] == value, name
        assert plain(event[semconv.GEN_AI_INPUT_MESSAGES]) == [
            {"role": "system", "parts": [{"type": "text", "content": "Be brief."}]},
            {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]},
        ]
        (output,) = event[semconv.GEN_AI_OUTPUT_MESSAGES]
        assert output["parts"][0]["content"] == "Hello from the local server."
        assert semconv.GEN_AI_SYSTEM_INSTRUCTIONS not in event  # the system message is history, not instructions
    text = repr([dict(e.log_record.attributes or {}) for e in recorded.events()]) + repr(dict(attributes))
    assert "sk-secret-key" not in text


def test_no_content_and_no_event_by_default(server: OpenAICompatibleServer, recorded_factory: Any) -> None:
    recorded = recorded_factory()
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (span,) = recorded.llm_spans()
    assert not set(CONTENT) & set(span.attributes or {})
    assert recorded.events() == []
    assert recorded.handle.logger_provider is not None  # only because the test gave a processor


def test_no_logger_provider_unless_events_are_wanted() -> None:
    handle = spanledger.configure(export="none", capture_message_content="span_only")
    assert handle.logger_provider is None
    handle.shutdown()


def test_emit_event_without_content(server: OpenAICompatibleServer, recorded_factory: Any) -> None:
    recorded = recorded_factory(emit_event=True)
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (event,) = recorded.events()
    attributes = event.log_record.attributes or {}
    assert attributes[semconv.GEN_AI_OPERATION_NAME] == "chat"
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert not set(CONTENT) & set(attributes)


def test_tool_calls_are_objects_and_tools_are_defined(server: OpenAICompatibleServer, recorded_factory: Any) -> None:
    recorded = recorded_factory(capture_message_content="span_and_event")
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather for a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
    ]
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=history, tools=tools)  # type: ignore[arg-type]
    (span,) = recorded.llm_spans()
    attributes = span.attributes or {}
    inputs = json.loads(str(attributes[semconv.GEN_AI_INPUT_MESSAGES]))
    assert inputs[1]["parts"] == [
        {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
    ]
    assert inputs[2] == {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": "18C"}]}
    definitions = [
        {
            "type": "function",
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert json.loads(str(attributes[semconv.GEN_AI_TOOL_DEFINITIONS])) == definitions
    (event,) = recorded.events()
    event_attributes = event.log_record.attributes or {}
    assert plain(event_attributes[semconv.GEN_AI_INPUT_MESSAGES])[1]["parts"][0]["arguments"] == {"city": "Paris"}


def test_responses_instructions_are_the_system_instructions(
    server: OpenAICompatibleServer, recorded_factory: Any
) -> None:
    recorded = recorded_factory(capture_message_content="span_only")
    client_for(server).responses.create(
        model="gpt-4o-mini",
        instructions="Be brief.",
        input=[{"role": "developer", "content": "Answer in French."}, {"role": "user", "content": "Say hello"}],
    )
    (span,) = recorded.llm_spans()
    attributes = span.attributes or {}
    assert json.loads(str(attributes[semconv.GEN_AI_SYSTEM_INSTRUCTIONS])) == [{"type": "text", "content": "Be brief."}]
    assert [m["role"] for m in json.loads(str(attributes[semconv.GEN_AI_INPUT_MESSAGES]))] == ["developer", "user"]


def test_bedrock_event_only(recorded_factory: Any, runtime_server: AwsRuntimeServer) -> None:
    recorded = recorded_factory(capture_message_content="event_only")
    make_client("bedrock-runtime", runtime_server.url).converse(
        modelId="amazon.nova-pro-v1:0",
        messages=[{"role": "user", "content": [{"text": "hi"}]}],
        system=[{"text": "Be brief."}],
    )
    (span,) = recorded.llm_spans()
    assert not set(CONTENT) & set(span.attributes or {})
    (event,) = recorded.events()
    attributes = event.log_record.attributes or {}
    assert plain(attributes[semconv.GEN_AI_SYSTEM_INSTRUCTIONS]) == [{"type": "text", "content": "Be brief."}]
    assert attributes[semconv.GEN_AI_PROVIDER_NAME] == "aws.bedrock"
    assert event.log_record.span_id == span.context.span_id


class _Hook:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def on_completion(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_completion_hook_gets_content_even_with_no_content(
    server: OpenAICompatibleServer, recorded_factory: Any
) -> None:
    hook = _Hook()
    recorded = recorded_factory(completion_hook=hook)
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (call,) = hook.calls
    assert call["inputs"][1] == {"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}
    assert call["outputs"][0]["parts"][0]["content"] == "Hello from the local server."
    assert call["span"] is not None and call["log_record"] is None
    (span,) = recorded.llm_spans()
    assert not set(CONTENT) & set(span.attributes or {})


def test_a_broken_hook_never_breaks_the_call(server: OpenAICompatibleServer, recorded_factory: Any) -> None:
    class Broken:
        def on_completion(self, **kwargs: Any) -> None:
            raise RuntimeError("boom")

    recorded_factory(completion_hook=Broken())
    completion = client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    assert completion.choices[0].message.content == "Hello from the local server."


def test_upload_hook_writes_files_and_refs(
    server: OpenAICompatibleServer, recorded_factory: Any, tmp_path: Path
) -> None:
    recorded = recorded_factory(content_upload_path=str(tmp_path / "content"), emit_event=True)
    client_for(server).chat.completions.create(model="gpt-4o-mini", messages=MESSAGES)
    (span,) = recorded.llm_spans()
    attributes = span.attributes or {}
    assert not set(CONTENT) & set(attributes)  # no_content: only the references
    (event,) = recorded.events()
    event_attributes = event.log_record.attributes or {}
    for ref in (semconv.GEN_AI_INPUT_MESSAGES_REF, semconv.GEN_AI_OUTPUT_MESSAGES_REF):
        assert event_attributes[ref] == attributes[ref]
    from spanledger._genai._hooks import completion_hook_for

    hook = completion_hook_for(None, str(tmp_path / "content"))
    assert hook is not None
    hook.shutdown()  # type: ignore[attr-defined]  # the files are written by now
    inputs = json.loads(Path(urlparse(str(attributes[semconv.GEN_AI_INPUT_MESSAGES_REF])).path).read_text())
    assert inputs[1]["parts"][0]["content"] == "Say hello"
    outputs = json.loads(Path(urlparse(str(attributes[semconv.GEN_AI_OUTPUT_MESSAGES_REF])).path).read_text())
    assert outputs[0]["parts"][0]["content"] == "Hello from the local server."
