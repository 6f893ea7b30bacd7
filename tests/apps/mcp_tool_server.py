"""A real MCP server over stdio with two tools, for the MCP client instrumentation tests."""

from __future__ import annotations

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
    server.run("stdio")
