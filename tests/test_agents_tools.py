"""Agents and tools: the OpenAI Agents SDK (against the local OpenAI server) and MCP client tool calls (a real
MCP server over stdio) produce invoke_agent / execute_tool spans, nested over the LLM calls they make."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import spanledger
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from openai_compatible_server import OpenAICompatibleServer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from spanledger import semconv

TOOL_SERVER = Path(__file__).resolve().parent / "apps" / "mcp_tool_server.py"


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAICompatibleServer]:
    with OpenAICompatibleServer() as running:
        yield running


@pytest.fixture(scope="module")
def mcp_http_url() -> Iterator[str]:
    """The test tool server as its own process, over streamable HTTP on a free local port."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, str(TOOL_SERVER), "streamable-http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:  # wait until it accepts connections
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"the MCP tool server on port {port} did not start") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    import agents

    agents.set_trace_processors([])  # no export to OpenAI's trace backend from the tests
    spans = InMemorySpanExporter()
    handle = spanledger.configure(export="none", additional_span_processors=[SimpleSpanProcessor(spans)])
    yield spans
    handle.shutdown()


def by_operation(spans: tuple[ReadableSpan, ...], operation: str) -> list[ReadableSpan]:
    return [span for span in spans if (span.attributes or {}).get(semconv.GEN_AI_OPERATION_NAME) == operation]


def is_under(child: ReadableSpan, ancestor: ReadableSpan, spans: tuple[ReadableSpan, ...]) -> bool:
    by_id = {span.context.span_id: span for span in spans}
    parent = child.parent
    while parent is not None:
        if parent.span_id == ancestor.context.span_id:
            return True
        found = by_id.get(parent.span_id)
        parent = found.parent if found is not None else None
    return False


def test_agent_run_nests_llm_calls_and_tools(server: OpenAICompatibleServer, exporter: InMemorySpanExporter) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, Runner, ToolCallItem, function_tool
    from openai import AsyncOpenAI

    calls: list[str] = []

    @function_tool
    def lookup_weather() -> str:
        """The weather."""
        calls.append("lookup_weather")
        spanledger.record_data_read("s3://weather/today.json", bytes=42)  # the tool's own data read
        return "sunny"

    client = AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    agent = Agent(
        name="Weather Agent",
        instructions="Answer with the weather.",
        tools=[lookup_weather],
        model=OpenAIChatCompletionsModel(model="tool-caller", openai_client=client),
    )
    result = Runner.run_sync(agent, "What is the weather?")
    assert result.final_output and calls == ["lookup_weather"]
    spans = exporter.get_finished_spans()
    (run,) = by_operation(spans, "invoke_agent")
    attributes = run.attributes or {}
    assert run.name == "invoke_agent Weather Agent"
    assert attributes[semconv.GEN_AI_AGENT_NAME] == "Weather Agent"
    assert attributes[semconv.SPANLEDGER_WORKFLOW_NAME] == "Weather Agent"  # no workflow set: the agent names it
    (tool,) = by_operation(spans, "execute_tool")
    assert (tool.attributes or {})[semconv.GEN_AI_TOOL_NAME] == "lookup_weather"
    (call_id,) = [item.raw_item.call_id for item in result.new_items if isinstance(item, ToolCallItem)]
    assert (tool.attributes or {})[semconv.GEN_AI_TOOL_CALL_ID] == call_id
    assert is_under(tool, run, spans)
    assert [event.name for event in tool.events] == [semconv.EVENT_SPANLEDGER_DATA_READ]  # the tool owns its read
    chats = by_operation(spans, "chat")
    assert len(chats) == 2  # the tool call, then the answer
    for chat in chats:
        assert is_under(chat, run, spans)
        chat_attributes = chat.attributes or {}
        assert chat_attributes[semconv.GEN_AI_USAGE_INPUT_TOKENS] > 0
        assert chat_attributes[semconv.SPANLEDGER_WORKFLOW_NAME] == "Weather Agent"


def test_agent_inside_a_workflow_keeps_the_workflow(
    server: OpenAICompatibleServer, exporter: InMemorySpanExporter
) -> None:
    from agents import Agent, OpenAIChatCompletionsModel, Runner
    from openai import AsyncOpenAI

    client = AsyncOpenAI(base_url=server.base_url, api_key="sk-test", max_retries=0)
    agent = Agent(name="Helper", model=OpenAIChatCompletionsModel(model="gpt-4o-mini", openai_client=client))
    with spanledger.workflow("support", tenant="acme"):
        Runner.run_sync(agent, "Hi")
    (run,) = by_operation(exporter.get_finished_spans(), "invoke_agent")
    attributes = run.attributes or {}
    assert attributes[semconv.SPANLEDGER_WORKFLOW_NAME] == "support"
    assert attributes[semconv.SPANLEDGER_TENANT_ID] == "acme"


async def _call_tools(*calls: tuple[str, dict[str, Any]]) -> list[Any]:
    results = []
    parameters = StdioServerParameters(command=sys.executable, args=[str(TOOL_SERVER)])
    async with stdio_client(parameters) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        for name, arguments in calls:
            results.append(await session.call_tool(name, arguments))
    return results


async def test_mcp_call_tool_spans(exporter: InMemorySpanExporter) -> None:
    with spanledger.workflow("tools"):
        added, failed = await _call_tools(("add", {"a": 2, "b": 3}), ("fail", {}))
    assert added.structured_content == {"result": 5} or "5" in str(added.content)
    assert failed.is_error
    spans = exporter.get_finished_spans()
    add_span, fail_span = by_operation(spans, "execute_tool")
    attributes = add_span.attributes or {}
    assert add_span.name == "execute_tool add"
    assert attributes[semconv.GEN_AI_TOOL_NAME] == "add"
    assert attributes[semconv.MCP_METHOD_NAME] == "tools/call"
    assert attributes[semconv.SPANLEDGER_WORKFLOW_NAME] == "tools"
    assert semconv.GEN_AI_TOOL_CALL_ARGUMENTS not in attributes  # content is off by default
    assert fail_span.status.status_code is StatusCode.ERROR
    # the MCP SDK's own request span nests under the tool span
    mcp_sends = [span for span in spans if span.name.startswith("MCP send tools/call")]
    assert mcp_sends and all(span.parent is not None for span in mcp_sends)
    assert any(is_under(send, add_span, spans) for send in mcp_sends)


async def test_mcp_streamable_http_records_the_session_id(mcp_http_url: str, exporter: InMemorySpanExporter) -> None:
    session_ids = []
    for _ in range(2):  # two connections: two server sessions, each span carries its own
        async with streamable_http_client(mcp_http_url) as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            added = await session.call_tool("add", {"a": 2, "b": 3})
            assert added.structured_content == {"result": 5} or "5" in str(added.content)
            (tool_span,) = by_operation(exporter.get_finished_spans(), "execute_tool")
            exporter.clear()
            session_id = (tool_span.attributes or {}).get(semconv.MCP_SESSION_ID)
            assert isinstance(session_id, str) and session_id
            session_ids.append(session_id)
    assert session_ids[0] != session_ids[1]


async def test_mcp_stdio_records_no_session_id(exporter: InMemorySpanExporter) -> None:
    await _call_tools(("add", {"a": 1, "b": 1}))
    (tool_span,) = by_operation(exporter.get_finished_spans(), "execute_tool")
    assert semconv.MCP_SESSION_ID not in (tool_span.attributes or {})


def test_shutdown_restores_the_patched_methods() -> None:
    from agents.tool_context import ToolContext
    from mcp.client.streamable_http import StreamableHTTPTransport

    def patched() -> list[object]:
        return [
            vars(ClientSession)["call_tool"],
            vars(ClientSession)["__init__"],
            vars(StreamableHTTPTransport)["post_writer"],
            vars(ToolContext)["from_agent_context"],
        ]

    originals = patched()
    handle = spanledger.configure(export="none")
    try:
        assert all(now is not before for now, before in zip(patched(), originals, strict=True))
    finally:
        handle.shutdown()
    assert all(now is before for now, before in zip(patched(), originals, strict=True))
