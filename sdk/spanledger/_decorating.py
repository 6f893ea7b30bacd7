"""Turn a context-manager factory into a decorator for sync and async functions."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, TypeVar

__all__ = ["run_inside"]

F = TypeVar("F", bound=Callable[..., Any])


def run_inside(block: Callable[[], AbstractContextManager[Any]], func: F, usage: str) -> F:
    """``func`` running every call inside a fresh ``block()``.

    Generators are refused: the block would close when the generator is created, not when it finishes.
    ``usage`` names the decorator in that error (``@spanledger.workflow``).
    """
    if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
        raise TypeError(f"{usage} cannot decorate the generator {func.__qualname__}; use `with` inside it")
    if inspect.iscoroutinefunction(func):

        @functools.wraps(func)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            with block():
                return await func(*args, **kwargs)

        return run_async  # type: ignore[return-value]

    @functools.wraps(func)
    def run(*args: Any, **kwargs: Any) -> Any:
        with block():
            return func(*args, **kwargs)

    return run  # type: ignore[return-value]
