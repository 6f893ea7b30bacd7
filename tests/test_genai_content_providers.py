"""Content capture for Anthropic and Google Gen AI through the shared recorder, as for OpenAI
(``test_genai_content.py``): every capture mode, ``emit_event``, the completion hook and the upload hook,
read from real OTel spans and log records, with the real clients against the local wire server. Shapes:
the conventions' parts, system instructions from Anthropic's ``system`` / Gemini's ``system_instruction``,
tool definitions, tool-call arguments as objects (streamed ones too)."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import anthropic
import pytest
from _content_recording import CONTENT, Recorded, plain, recorded_factory, span_event
from genai_wire_server import REPLY_WORDS, TOOL_ARGUMENTS, GenAIWireServer
from google import genai
from spanledger import semconv

__all__ = ["recorded_factory"]

REPLY = "".join(REPLY_WORDS)
CLAUDE = "claude-sonnet-4-5"
GEMINI = "gemini-2.5-flash"
MODES = [
    ("no_content", False, False),
    ("span_only", True, False),
    ("event_only", False, True),
    ("span_and_event", True, True),
]
SYSTEM = [{"type": "text", "content": "Be brief."}]
INPUTS = [{"role": "user", "parts": [{"type": "text", "content": "Say hello"}]}]
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}


@pytest.fixture(scope="module")
def server() -> Iterator[GenAIWireServer]:
    with GenAIWireServer() as running:
        yield running


def claude(server: GenAIWireServer, traced: bool) -> anthropic.Anthropic:
    """``traced``: the client makes its own span (recent releases' default) and spanledger adopts it."""
    if traced:
        return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-secret", max_retries=0)
    return anthropic.Anthropic(base_url=server.url, api_key="sk-ant-secret", max_retries=0, open_telemetry=False)


def run_claude(client: anthropic.Anthropic, how: str, model: str = CLAUDE, **extra: Any) -> None:
    arguments: dict[str, Any] = {
        "model": model,
        "max_tokens": 64,
        "messages": [{"role": "user", "content": "Say hello"}],
        "system": "Be brief.",
        **extra,
    }
    if how == "create":
        client.messages.create(**arguments)
    elif how == "stream":
        for _ in client.messages.create(**arguments, stream=True):
            pass
    else:
        with client.messages.stream(**arguments) as stream:
            stream.until_done()


def assert_mode(recorded: Recorded, on_span: bool, on_event: bool, output: list[dict[str, Any]]) -> None:
    span = recorded.genai_span()
    attributes = span.attributes or {}
    for name in (semconv.GEN_AI_INPUT_MESSAGES, semconv.GEN_AI_OUTPUT_MESSAGES, semconv.GEN_AI_SYSTEM_INSTRUCTIONS):
        assert (name in attributes) is on_span, name
    if on_span:
        assert json.loads(str(attributes[semconv.GEN_AI_INPUT_MESSAGES])) == INPUTS
        assert json.loads(str(attributes[semconv.GEN_AI_SYSTEM_INSTRUCTIONS])) == SYSTEM
        assert json.loads(str(attributes[semconv.GEN_AI_OUTPUT_MESSAGES])) == output
    event = span_event(recorded, span, on_event)
    if event is not None:  # the span's: same attributes, content as structured values
        if span.instrumentation_scope is not None and span.instrumentation_scope.name == "spanledger":
            for name, value in attributes.items():
                if name not in CONTENT:
                    assert event[name] == value, name
        else:
            # The client's own span: the event goes out before the client adds its last attributes and ends it.
            for name in (
                semconv.GEN_AI_OPERATION_NAME,
                semconv.GEN_AI_REQUEST_MODEL,
                semconv.GEN_AI_USAGE_INPUT_TOKENS,
            ):
                assert event[name] == attributes[name], name
            for name, value in event.items():
                if name not in CONTENT and name in attributes:
                    assert attributes[name] == value, name
        assert plain(event[semconv.GEN_AI_INPUT_MESSAGES]) == INPUTS
        assert plain(event[semconv.GEN_AI_SYSTEM_INSTRUCTIONS]) == SYSTEM
        assert plain(event[semconv.GEN_AI_OUTPUT_MESSAGES]) == output
    text = repr([dict(e.log_record.attributes or {}) for e in recorded.events()]) + repr(dict(attributes))
    assert "sk-ant-secret" not in text and "gemini-secret-key" not in text


@pytest.mark.parametrize(("mode", "on_span", "on_event"), MODES)
@pytest.mark.parametrize("how", ["create", "stream", "helper"])
@pytest.mark.parametrize("traced", [False, True], ids=["own-span", "client-span"])
def test_anthropic_capture_modes(
    server: GenAIWireServer,
    recorded_factory: Callable[..., Recorded],
    mode: str,
    on_span: bool,
    on_event: bool,
    how: str,
    traced: bool,
) -> None:
    recorded = recorded_factory(capture_message_content=mode)
    run_claude(claude(server, traced), how)
    output = [{"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "end_turn"}]
    assert_mode(recorded, on_span, on_event, output)


@pytest.mark.parametrize("how", ["create", "stream", "helper"])
def test_anthropic_tools_and_tool_calls(
    server: GenAIWireServer, recorded_factory: Callable[..., Recorded], how: str
) -> None:
    recorded = recorded_factory(capture_message_content="span_and_event")
    tools = [{"name": "get_weather", "description": "Weather for a city", "input_schema": WEATHER_SCHEMA}]
    history = [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C"}]},
    ]
    run_claude(claude(server, False), how, model="claude-tool-call", tools=tools, messages=history)
    attributes = recorded.genai_span().attributes or {}
    definitions = [
        {"type": "function", "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_SCHEMA}
    ]
    assert json.loads(str(attributes[semconv.GEN_AI_TOOL_DEFINITIONS])) == definitions
    inputs = json.loads(str(attributes[semconv.GEN_AI_INPUT_MESSAGES]))
    assert inputs[1]["parts"] == [{"type": "tool_call", "id": "toolu_1", "name": "get_weather", "arguments": {}}]
    assert inputs[2]["parts"] == [{"type": "tool_call_response", "id": "toolu_1", "response": "18C"}]
    (output,) = json.loads(str(attributes[semconv.GEN_AI_OUTPUT_MESSAGES]))
    ((part,), reason) = output["parts"], output["finish_reason"]
    assert reason == "tool_use"
    assert part["type"] == "tool_call" and part["name"] == "get_weather"
    assert part["arguments"] == TOOL_ARGUMENTS  # an object, also when streamed as JSON pieces
    (event,) = recorded.events()
    event_attributes = event.log_record.attributes or {}
    assert plain(event_attributes[semconv.GEN_AI_TOOL_DEFINITIONS]) == definitions
    assert plain(event_attributes[semconv.GEN_AI_OUTPUT_MESSAGES])[0]["parts"][0]["arguments"] == TOOL_ARGUMENTS


# --- Google Gen AI -----------------------------------------------------------------------------------


def gemini(server: GenAIWireServer) -> genai.Client:
    return genai.Client(api_key="gemini-secret-key", http_options={"base_url": server.url})


def run_gemini(client: genai.Client, how: str, model: str = GEMINI, **config: Any) -> None:
    arguments: dict[str, Any] = {
        "model": model,
        "contents": "Say hello",
        "config": {"system_instruction": "Be brief.", **config},
    }
    if how == "create":
        client.models.generate_content(**arguments)
    else:
        for _ in client.models.generate_content_stream(**arguments):
            pass


@pytest.mark.parametrize(("mode", "on_span", "on_event"), MODES)
@pytest.mark.parametrize("how", ["create", "stream"])
def test_google_capture_modes(
    server: GenAIWireServer,
    recorded_factory: Callable[..., Recorded],
    mode: str,
    on_span: bool,
    on_event: bool,
    how: str,
) -> None:
    recorded = recorded_factory(capture_message_content=mode)
    run_gemini(gemini(server), how)
    output = [{"role": "assistant", "parts": [{"type": "text", "content": REPLY}], "finish_reason": "STOP"}]
    assert_mode(recorded, on_span, on_event, output)


@pytest.mark.parametrize("how", ["create", "stream"])
def test_google_tools_and_function_calls(
    server: GenAIWireServer, recorded_factory: Callable[..., Recorded], how: str
) -> None:
    recorded = recorded_factory(capture_message_content="span_and_event")
    tools = [
        {
            "function_declarations": [
                {"name": "get_weather", "description": "Weather for a city", "parameters_json_schema": WEATHER_SCHEMA}
            ]
        }
    ]
    run_gemini(gemini(server), how, model="gemini-tool-call", tools=tools)
    attributes = recorded.genai_span().attributes or {}
    definitions = [
        {"type": "function", "name": "get_weather", "description": "Weather for a city", "parameters": WEATHER_SCHEMA}
    ]
    assert json.loads(str(attributes[semconv.GEN_AI_TOOL_DEFINITIONS])) == definitions
    (output,) = json.loads(str(attributes[semconv.GEN_AI_OUTPUT_MESSAGES]))
    call = {"type": "tool_call", "name": "get_weather", "arguments": TOOL_ARGUMENTS}
    if how == "create":
        assert output["parts"] == [call]
    else:  # the streamed text pieces are joined, the function call follows
        assert output["parts"] == [{"type": "text", "content": REPLY}, call]
    (event,) = recorded.events()
    assert plain((event.log_record.attributes or {})[semconv.GEN_AI_TOOL_DEFINITIONS]) == definitions


def test_google_history_roles_and_function_responses(
    server: GenAIWireServer, recorded_factory: Callable[..., Recorded]
) -> None:
    recorded = recorded_factory(capture_message_content="event_only")
    contents: Any = [
        {"role": "user", "parts": [{"text": "Weather in Paris?"}]},
        {"role": "model", "parts": [{"function_call": {"name": "get_weather", "args": {"city": "Paris"}}}]},
        {"role": "user", "parts": [{"function_response": {"name": "get_weather", "response": {"temp": "18C"}}}]},
    ]
    client = gemini(server)
    client.models.generate_content(model=GEMINI, contents=contents)
    (event,) = recorded.events()
    inputs = plain((event.log_record.attributes or {})[semconv.GEN_AI_INPUT_MESSAGES])
    assert inputs[1] == {
        "role": "assistant",
        "parts": [{"type": "tool_call", "name": "get_weather", "arguments": {"city": "Paris"}}],
    }
    assert inputs[2]["parts"] == [{"type": "tool_call_response", "name": "get_weather", "response": {"temp": "18C"}}]


# --- both: emit_event, hooks ----------------------------------------------------------------------------


def run_either(server: GenAIWireServer, provider: str, how: str) -> None:
    if provider == "anthropic":
        run_claude(claude(server, False), how)
    else:
        run_gemini(gemini(server), how)


@pytest.mark.parametrize("provider", ["anthropic", "google"])
def test_no_content_and_no_event_by_default(
    server: GenAIWireServer, recorded_factory: Callable[..., Recorded], provider: str
) -> None:
    recorded = recorded_factory()
    run_either(server, provider, "stream")
    assert not set(CONTENT) & set(recorded.genai_span().attributes or {})
    assert recorded.events() == []


@pytest.mark.parametrize("provider", ["anthropic", "google"])
@pytest.mark.parametrize("how", ["create", "stream"])
def test_emit_event_without_content(
    server: GenAIWireServer, recorded_factory: Callable[..., Recorded], provider: str, how: str
) -> None:
    recorded = recorded_factory(emit_event=True)
    run_either(server, provider, how)
    (event,) = recorded.events()
    attributes = event.log_record.attributes or {}
    assert attributes[semconv.GEN_AI_USAGE_OUTPUT_TOKENS] > 0
    assert attributes[semconv.GEN_AI_REQUEST_MODEL] in (CLAUDE, GEMINI)
    assert not set(CONTENT) & set(attributes)
    assert event.log_record.span_id == recorded.genai_span().context.span_id


class _Hook:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def on_completion(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


@pytest.mark.parametrize("provider", ["anthropic", "google"])
@pytest.mark.parametrize("how", ["create", "stream"])
def test_completion_hook_gets_content_even_with_no_content(
    server: GenAIWireServer, recorded_factory: Callable[..., Recorded], provider: str, how: str
) -> None:
    hook = _Hook()
    recorded = recorded_factory(completion_hook=hook)
    run_either(server, provider, how)
    (call,) = hook.calls
    assert call["inputs"] == INPUTS
    assert call["system_instruction"] == SYSTEM
    assert call["outputs"][0]["parts"] == [{"type": "text", "content": REPLY}]
    assert call["span"] is not None and call["log_record"] is None
    assert not set(CONTENT) & set(recorded.genai_span().attributes or {})


@pytest.mark.parametrize("provider", ["anthropic", "google"])
def test_upload_hook_writes_files_and_refs(
    server: GenAIWireServer, recorded_factory: Callable[..., Recorded], tmp_path: Path, provider: str
) -> None:
    directory = str(tmp_path / "content")
    recorded = recorded_factory(content_upload_path=directory, emit_event=True)
    run_either(server, provider, "stream")
    attributes = recorded.genai_span().attributes or {}
    assert not set(CONTENT) & set(attributes)  # no_content: only the references
    (event,) = recorded.events()
    event_attributes = event.log_record.attributes or {}
    refs = (
        semconv.GEN_AI_INPUT_MESSAGES_REF,
        semconv.GEN_AI_OUTPUT_MESSAGES_REF,
        semconv.GEN_AI_SYSTEM_INSTRUCTIONS_REF,
    )
    for ref in refs:
        assert event_attributes[ref] == attributes[ref]
    from spanledger._genai._hooks import completion_hook_for

    hook = completion_hook_for(None, directory)
    assert hook is not None
    hook.shutdown()  # type: ignore[attr-defined]  # the files are written by now
    inputs = json.loads(Path(urlparse(str(attributes[semconv.GEN_AI_INPUT_MESSAGES_REF])).path).read_text())
    assert inputs == INPUTS
    outputs = json.loads(Path(urlparse(str(attributes[semconv.GEN_AI_OUTPUT_MESSAGES_REF])).path).read_text())
    assert outputs[0]["parts"] == [{"type": "text", "content": REPLY}]


@pytest.mark.parametrize("how", ["close", "with"])
def test_anthropic_client_span_stream_closed_early_keeps_its_content(
    server: GenAIWireServer, recorded_factory: Callable[..., Recorded], how: str
) -> None:
    # The client ends its own span when the stream is closed; what was seen goes onto it first.
    recorded = recorded_factory(capture_message_content="span_and_event")
    stream = claude(server, True).messages.create(
        model=CLAUDE,
        max_tokens=64,
        messages=[{"role": "user", "content": "Say hello"}],
        system="Be brief.",
        stream=True,
    )
    if how == "close":
        events = iter(stream)
        next(events)
        next(events)
        stream.close()
    else:
        with stream:
            next(iter(stream))
    attributes = recorded.genai_span().attributes or {}
    assert json.loads(str(attributes[semconv.GEN_AI_INPUT_MESSAGES])) == INPUTS
    assert json.loads(str(attributes[semconv.GEN_AI_SYSTEM_INSTRUCTIONS])) == SYSTEM
    assert semconv.GEN_AI_USAGE_INPUT_TOKENS in attributes
    (event,) = recorded.events()
    assert plain((event.log_record.attributes or {})[semconv.GEN_AI_INPUT_MESSAGES]) == INPUTS
