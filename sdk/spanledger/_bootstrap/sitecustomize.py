"""Run at interpreter start-up by ``spanledger-run``, which puts this folder first on ``PYTHONPATH``.

It does ``import spanledger.auto`` (so child Python processes are instrumented too), then runs the
``sitecustomize`` this one shadows, if there is one.
"""

import importlib.machinery
import importlib.util
import os
import sys

import spanledger.auto  # noqa: F401


def _run_shadowed_sitecustomize() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    rest = [entry for entry in sys.path if os.path.abspath(entry or os.getcwd()) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


_run_shadowed_sitecustomize()
