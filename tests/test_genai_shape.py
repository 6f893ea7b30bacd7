"""The shared GenAI plumbing: the token-usage type, and no import loop back into ``_configure``."""

from __future__ import annotations

import ast
from pathlib import Path

from spanledger._genai import TokenUsage

SDK = Path(__file__).resolve().parent.parent / "sdk" / "spanledger"


def test_from_uncached_adds_the_cache_counts_to_the_input() -> None:
    usage = TokenUsage.from_uncached(10, 5, cache_read=100, cache_write=20)
    assert usage == TokenUsage(input=130, output=5, cache_read=100, cache_write=20)
    assert usage.uncached_input == 10
    assert TokenUsage.from_uncached(None, "7") == TokenUsage(output=7)
    assert TokenUsage.from_uncached(True, 1.0) == TokenUsage(output=1)


def test_a_later_report_replaces_only_what_it_carries() -> None:
    start = TokenUsage.from_uncached(10, 1, cache_read=100, cache_write=20)
    # message_delta with the output only
    assert start.overlaid(TokenUsage.from_uncached(None, 42)) == TokenUsage(130, 42, 100, 20)
    # a report with the uncached input but no cache counts keeps the earlier cache counts
    assert start.overlaid(TokenUsage.from_uncached(12, 42)) == TokenUsage(132, 42, 100, 20)


def test_merged_fills_only_the_unknown_parts() -> None:
    trusted = TokenUsage.from_uncached(10, 5)
    fallback = TokenUsage.from_uncached(99, 99, cache_read=3)
    assert trusted.merged(fallback) == TokenUsage(13, 5, 3, None)
    assert TokenUsage().merged(trusted) == trusted


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.lstrip("."))
    return names


def test_nothing_configure_imports_imports_it_back() -> None:
    for module in ("_manager.py", "_workflow.py", "_freshness.py", "_accelerator.py", "_state.py", "asgi.py"):
        assert "_configure" not in _imports(SDK / module), module
