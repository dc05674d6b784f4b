"""Imports point one way: face → pipeline → components → engine → backends/store → bottom.

Every ``import`` and ``from ... import`` in ``sua_audit/`` is read with :mod:`ast`, those
inside functions and under ``if TYPE_CHECKING:`` too (a type is a dependency as well), and
checked against the layers below. A module may import its own layer or a lower one, never a
higher one. Known exceptions are listed in :data:`ALLOWED`, each with its reason; the list is
meant to shrink, and an entry that no longer matches an import fails the test too.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest

import sua_audit

PACKAGE = Path(sua_audit.__file__).parent

#: The layers, lowest first. A module belongs to the layer of its top-level name
#: (``sua_audit.perturbation.llm`` → ``perturb``); the package itself (``__version__``) is bottom.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "bottom",
        frozenset(
            {
                "",  # sua_audit/__init__.py: __version__
                "_locks",
                "canonical",
                "dataset",
                "errors",
                "numbers",
                "paths",
                "safetext",
                "schema",
                "scoring",
                "textfacts",
            }
        ),
    ),
    ("io", frozenset({"backends", "store", "prompting", "tasks"})),
    ("engine", frozenset({"engine"})),
    ("components", frozenset({"perturbation", "equivalence"})),
    (
        "pipeline",
        frozenset(
            {
                "auditing",
                "config",
                "evaluation",
                "gating",
                "gate_stats",
                "parts",
                "pricing",
                "reports",
                "rescoring",
                "results",
                "runner",
                "train",
                "variants",
            }
        ),
    ),
    ("face", frozenset({"__main__", "api", "cli", "ui"})),
)
RANK = {name: rank for rank, (_, names) in enumerate(LAYERS) for name in names}
LAYER_NAME = {name: layer for layer, names in LAYERS for name in names}

#: Same layer, but one must not import the other (either way): the cache does not know
#: backend classes, and backends do not know the cache.
APART: tuple[frozenset[str], ...] = (frozenset({"backends", "store"}),)

#: Third-party packages only the face may import.
FACE_ONLY_PACKAGES = frozenset({"typer", "rich"})

#: (importing module, imported module) pairs that break the rules today, with the reason.
ALLOWED: dict[tuple[str, str], str] = {
    ("sua_audit", "sua_audit.api"): (
        "the package re-exports the API's names on first use (PEP 562 __getattr__): "
        "`import sua_audit` loads nothing, and lower modules import it only for __version__"
    ),
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(name: str) -> bool:
    rel = Path(*name.split("."))
    root = PACKAGE.parent
    return (root / rel).with_suffix(".py").is_file() or (root / rel / "__init__.py").is_file()


def _imports(module: str, source: str, is_package: bool) -> Iterator[tuple[str, int]]:
    """Every module ``source`` imports, with the line, resolved to the deepest module named."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            for alias in node.names:
                sub = f"{target}.{alias.name}"
                yield (sub if _is_module(sub) else target), node.lineno


def _layer_key(name: str) -> str:
    """``sua_audit.perturbation.llm`` → ``perturb``; ``sua_audit`` → ``""``."""
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _sources() -> Iterator[tuple[str, str, bool]]:
    for path in _modules():
        yield _module_name(path), path.read_text(encoding="utf-8"), path.name == "__init__.py"


def violations(
    sources: Iterable[tuple[str, str, bool]] | None = None,
) -> dict[tuple[str, str], str]:
    """Every import that breaks a rule: (importer, imported) → what rule.

    ``sources``: (module name, source text, whether it is a package's ``__init__``); by
    default every module of ``sua_audit/``.
    """
    found: dict[tuple[str, str], str] = {}
    for importer, source, is_package in sources if sources is not None else _sources():
        here = _layer_key(importer)
        for target, line in _imports(importer, source, is_package):
            top = target.split(".")[0]
            where = f"{importer}:{line}"
            if top in FACE_ONLY_PACKAGES and LAYER_NAME.get(here) != "face":
                found[(importer, target)] = f"{where}: only cli/ and ui/ may import {top}"
                continue
            if top != "sua_audit":
                continue
            there = _layer_key(target)
            if here == there:
                continue
            if any({here, there} <= pair for pair in APART):
                found[(importer, target)] = f"{where}: {here} and {there} stay apart"
            elif RANK[there] > RANK[here]:
                found[(importer, target)] = (
                    f"{where}: {LAYER_NAME[here]} ({here}) imports {LAYER_NAME[there]} ({there})"
                )
    return found


def private_imports(sources: Iterable[tuple[str, str, bool]] | None = None) -> list[str]:
    """Every import of a private module (``_name``) from outside the package that holds it:
    a package's other modules use its public names (``sua_audit.reports``, not
    ``sua_audit.reports._text``)."""
    found = []
    for importer, source, is_package in sources if sources is not None else _sources():
        for target, line in _imports(importer, source, is_package):
            parts = target.split(".")
            if parts[0] != "sua_audit":
                continue
            for i, part in enumerate(parts[1:], start=1):
                if part.startswith("_") and not part.startswith("__"):
                    owner = ".".join(parts[:i])
                    if importer != owner and not importer.startswith(owner + "."):
                        found.append(f"{importer}:{line}: imports {target}, private to {owner}")
                    break
    return found


def test_private_modules_are_imported_only_inside_their_package() -> None:
    found = private_imports()
    assert not found, "use the package's public names:\n" + "\n".join(found)


def test_a_private_import_from_outside_is_caught() -> None:
    outside = "def f():\n    from sua_audit.reports._text import disagreements\n"
    inside = "from sua_audit.reports import _data\n"
    assert len(private_imports([("sua_audit.api", outside, False)])) == 1
    assert private_imports([("sua_audit.reports.html", inside, False)]) == []


def test_every_module_has_a_layer() -> None:
    missing = sorted({_layer_key(_module_name(p)) for p in _modules()} - set(RANK))
    assert not missing, f"put these in a layer in tests/test_layers.py: {missing}"


def test_imports_point_down() -> None:
    found = violations()
    new = {pair: why for pair, why in found.items() if pair not in ALLOWED}
    assert not new, "imports against the layers:\n" + "\n".join(sorted(new.values()))


def test_allowed_exceptions_still_exist() -> None:
    gone = sorted(set(ALLOWED) - set(violations()))
    assert not gone, f"fixed, so drop them from ALLOWED in tests/test_layers.py: {gone}"


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("backends.bad", "from sua_audit.config import AuditConfig\n", "io (backends)"),
        ("store.bad", "from sua_audit.backends.base import Message\n", "stay apart"),
        ("scoring.bad", "def f():\n    from sua_audit import runner\n", "bottom (scoring)"),
        ("engine.bad", "import typer\n", "only cli/ and ui/"),
        ("reports.bad", "from ..ui import console\n", "pipeline (reports)"),
        (
            "perturbation.bad",
            "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from sua_audit import auditing\n",
            "components (perturbation)",
        ),
    ],
)
def test_a_bad_import_is_caught(module: str, source: str, rule: str) -> None:
    found = violations([(f"sua_audit.{module}", source, False)])
    assert len(found) == 1 and rule in next(iter(found.values())), found


def test_a_good_import_passes() -> None:
    source = "from sua_audit.textfacts import tokenize\nfrom . import base\n"
    assert violations([("sua_audit.backends.fake", source, False)]) == {}
