"""Build hook: compiles the collector's C extensions into the wheel.

``spanledger_collector._decode._speedups`` decodes OTLP traces; ``spanledger_collector._store._columns`` turns rows
into Arrow buffers for the store; ``spanledger_collector._store._otel_columns`` turns OTLP requests into
``otel_traces``' Arrow buffers for the ClickHouse store; ``spanledger_collector._grouping`` groups a request's
observations per series for the usage metrics. All are optional: without a C compiler or the Python
headers the build goes on as a pure-Python wheel and the collector does that work in Python, several times slower
(it says so in its log).
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

EXTENSIONS = {
    "spanledger_collector._decode._speedups": "collector/spanledger_collector/_decode/_speedups.c",
    "spanledger_collector._store._columns": "collector/spanledger_collector/_store/_columns.c",
    "spanledger_collector._store._otel_columns": "collector/spanledger_collector/_store/_otel_columns.c",
    "spanledger_collector._grouping": "collector/spanledger_collector/_grouping.c",
}


def build_extensions(root: str, output: str | None) -> dict[str, Path]:
    """Compile the extensions with setuptools' build_ext: into ``output``, or next to their sources if None.

    Returns each built file by its path in the wheel.
    """
    from setuptools import Distribution, Extension

    extensions = [Extension(name, sources=[source], extra_compile_args=["-O2"]) for name, source in EXTENSIONS.items()]
    distribution = Distribution(
        {"ext_modules": extensions, "package_dir": {"spanledger_collector": "collector/spanledger_collector"}}
    )
    with _chdir(root):
        command: Any = distribution.get_command_obj("build_ext")
        command.inplace = output is None
        if output is not None:
            command.build_lib = output
        command.build_temp = tempfile.mkdtemp(prefix="spanledger-build-")
        command.ensure_finalized()
        command.run()
        built = {}
        for name in EXTENSIONS:
            path = Path(root, command.get_ext_fullpath(name)).resolve()
            built["/".join([*name.split(".")[:-1], path.name])] = path
        return built


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
            built = build_extensions(self.root, None if editable else tempfile.mkdtemp(prefix="spanledger-ext-"))
        except Exception as error:  # no compiler, no headers: the pure-Python decoder is used
            self.app.display_warning(
                f"spanledger: the collector's C extensions were not built ({error}); it will do their work in Python"
            )
            return
        build_data["pure_python"] = False
        build_data["infer_tag"] = True
        if not editable:
            for target, path in built.items():
                build_data["force_include"][str(path)] = target
