"""The semconv registry: valid, generated files fresh, and the only place names are spelled."""

from __future__ import annotations

import ast
import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("semconv_generate", ROOT / "semconv" / "generate.py")
assert _spec and _spec.loader
generate = importlib.util.module_from_spec(_spec)
sys.modules["semconv_generate"] = generate
_spec.loader.exec_module(generate)

VALID_ATTRIBUTE = "  - {key: acme.thing, type: string, brief: A thing., stability: development}\n"


def _registry(tmp_path: Path, body: str) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / "registry.yaml").write_text("file_format: definition/2\n" + body)
    return model


def test_the_generated_files_are_fresh() -> None:
    assert generate.main(["--check"]) == 0, "run: python semconv/generate.py"


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("attributes:\n  - {key: acme.thing, type: strng, brief: A thing., stability: development}\n", "unknown type"),
        ("attributes:\n" + VALID_ATTRIBUTE + VALID_ATTRIBUTE, "duplicate attribute key"),
        ("attributes:\n  - {key: acme.thing, type: string, stability: development}\n", "missing brief"),
        ("attributes:\n  - {key: acme.thing, type: string, brief: A thing., stability: solid}\n", "stability"),
        (
            "metrics:\n  - {name: acme.calls, instrument: counter, unit: '1', brief: Calls., stability: development,"
            " attributes: [{ref: acme.missing}]}\n",
            "unknown attribute 'acme.missing'",
        ),
        ("metrics:\n  - {name: acme.calls, instrument: meter, unit: '1', brief: Calls., stability: development}\n",
         "instrument"),
        ("attributes:\n  - {key: acme.thing, type: string, brief: A thing., stability: development, colour: red}\n",
         "unknown field(s) colour"),
    ],
)
def test_an_invalid_registry_is_refused_naming_the_entry(tmp_path: Path, body: str, message: str) -> None:
    with pytest.raises(generate.RegistryError, match=r"model/registry\.yaml") as error:
        generate.load_registry(_registry(tmp_path, body))
    assert message in str(error.value)


def _registry_names() -> set[str]:
    """Every registry name that cannot be an ordinary word (``exporter`` is both a label and a word)."""
    registry = generate.load_registry()
    return {name for name in (*registry.attributes, *registry.metrics, *registry.events) if "." in name or "_" in name}


def _spelled_names(path: Path, names: set[str]) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in names:
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.value!r}")
    return found


def test_no_other_file_spells_a_registry_name() -> None:
    names = _registry_names()
    generated = ROOT / "sdk" / "spanledger" / "semconv.py"
    sources = [
        path
        for folder in ("sdk", "collector", "dashboards", "examples", "benchmarks")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if path != generated
    ]
    spelled = [hit for path in sources for hit in _spelled_names(path, names)]
    assert not spelled, "use the spanledger.semconv constants instead:\n" + "\n".join(spelled)
