"""The project's full check: semconv freshness, ruff, mypy, then pytest. Run by the README and CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STEPS = [
    ("semconv registry and generated files", [sys.executable, "semconv/generate.py", "--check"]),
    (
        "ruff",
        [
            sys.executable,
            "-m",
            "ruff",
            "check",
            "sdk",
            "collector",
            "semconv",
            "tests",
            "benchmarks",
            "examples",
            "dashboards",
        ],
    ),
    ("mypy", [sys.executable, "-m", "mypy"]),
    ("pytest", [sys.executable, "-m", "pytest", *sys.argv[1:]]),
]


def main() -> int:
    for title, command in STEPS:
        print(f"==> {title}: {' '.join(command[1:])}", flush=True)
        result = subprocess.run(command, cwd=ROOT)
        if result.returncode != 0:
            print(f"==> {title} failed (exit {result.returncode})", flush=True)
            return result.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
