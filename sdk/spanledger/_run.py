"""``spanledger-run python app.py [args]``: run any command with spanledger set up, no code change.

The command runs with ``spanledger/_bootstrap`` first on ``PYTHONPATH``; its ``sitecustomize`` does
``import spanledger.auto`` at interpreter start-up, so the program, and any Python child processes it
starts, are configured from the environment like ``import spanledger.auto``. ``spanledger-run app.py``
is short for ``spanledger-run python app.py`` (the current interpreter).
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

__all__ = ["main"]

USAGE = """usage: spanledger-run [--] COMMAND [ARGS...]

Run COMMAND (e.g. `python app.py`, `uvicorn app:api`) with spanledger configured from the
SPANLEDGER_* and OTEL_* environment variables and every supported library instrumented."""

BOOTSTRAP = Path(__file__).resolve().parent / "_bootstrap"


def command_environment(environ: dict[str, str]) -> dict[str, str]:
    """``environ`` with the bootstrap folder first on ``PYTHONPATH`` (once)."""
    entries = [entry for entry in environ.get("PYTHONPATH", "").split(os.pathsep) if entry and entry != str(BOOTSTRAP)]
    return {**environ, "PYTHONPATH": os.pathsep.join([str(BOOTSTRAP), *entries])}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args or args[0] in ("-h", "--help"):
        print(USAGE, file=sys.stderr if not args else sys.stdout)
        return 2 if not args else 0
    if args[0].endswith(".py"):
        args = [sys.executable, *args]
    executable = shutil.which(args[0])
    if executable is None:
        print(f"spanledger-run: command not found: {args[0]}", file=sys.stderr)
        return 127
    os.execve(executable, args, command_environment(dict(os.environ)))


if __name__ == "__main__":
    sys.exit(main())
