"""``spanledger billing import``, ``trace``, ``top``, ``idle`` and ``allocations``."""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register"]


def register(subcommands: argparse._SubParsersAction[Any]) -> None:
    """Add the billing and answer subcommands."""
