"""Build hook: compiles the collector's OTLP decoder (spanledger_collector._speedups) into the wheel.

The decoder is optional: without a C compiler or the Python headers the build goes on as a pure-Python
wheel and the collector decodes in Python, several times slower (the collector says so in its log).
``SPANLEDGER_NO_SPEEDUPS=1`` skips it. Editable installs build it next to its source.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

SOURCE = "collector/spanledger_collector/_speedups.c"
MODULE = "spanledger_collector._speedups"


def build_extension(root: str, output: str | None) -> Path:
    """Compile the extension with setuptools' build_ext: into ``output``, or next to its source if None."""
    from setuptools import Distribution, Extension

    extension = Extension(MODULE, sources=[SOURCE], extra_compile_args=["-O2"])
    distribution = Distribution(
        {"ext_modules": [extension], "package_dir": {"spanledger_collector": "collector/spanledger_collector"}}
    )
    with _chdir(root):
        command: Any = distribution.get_command_obj("build_ext")
        command.inplace = output is None
        if output is not None:
            command.build_lib = output
        command.build_temp = tempfile.mkdtemp(prefix="spanledger-build-")
        command.ensure_finalized()
        command.run()
        return Path(root, command.get_ext_fullpath(MODULE)).resolve()


@contextlib.contextmanager
def _chdir(path: str) -> Iterator[None]:
    previous = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


class SpeedupsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or os.environ.get("SPANLEDGER_NO_SPEEDUPS"):
            return
        editable = version == "editable"
        try:
            built = build_extension(self.root, None if editable else tempfile.mkdtemp(prefix="spanledger-ext-"))
        except Exception as error:  # no compiler, no headers: the pure-Python decoder is used
            self.app.display_warning(
                f"spanledger: the compiled OTLP decoder was not built ({error}); the collector will decode in Python"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if not editable:
            build_data["force_include"][str(built)] = f"spanledger_collector/{built.name}"
