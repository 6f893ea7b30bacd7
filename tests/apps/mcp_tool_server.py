"""A real MCP server with two tools, for the MCP client instrumentation tests.

``python mcp_tool_server.py`` serves over stdio; ``python mcp_tool_server.py streamable-http PORT`` over
streamable HTTP at ``http://127.0.0.1:PORT/mcp``.
"""

from __future__ import annotations

import sys

from mcp.server.mcpserver import MCPServer

server = MCPServer("spanledger-test-tools")


@server.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@server.tool()
def fail() -> str:
    """Always fails."""
    raise ValueError("this tool always fails")


if __name__ == "__main__":
    if sys.argv[1:2] == ["streamable-http"]:
        server.run("streamable-http", port=int(sys.argv[2]))
    else:
        server.run("stdio")
