"""sua-audit: find inputs where a model's answer is unstable under meaning-preserving rewrites
while the model stays confident (Sensitivity–Uncertainty Alignment).

The Python API mirrors the command line and never prints (see :mod:`sua_audit.api`)::

    import sua_audit

    run = sua_audit.audit("examples/mixed.jsonl", limit=5)
    report = sua_audit.report(run, "md")

Its names load on first use, so ``import sua_audit`` (and ``sua-audit --help``) stays instant.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "Report",
    "Run",
    "VariantSet",
    "__version__",
    "as_dict",
    "audit",
    "compare",
    "evaluate",
    "gate",
    "load_run",
    "perturb",
    "report",
    "rescore",
]
_API = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from sua_audit.api import (
        Comparison,
        Report,
        Run,
        VariantSet,
        as_dict,
        audit,
        compare,
        evaluate,
        gate,
        load_run,
        perturb,
        report,
        rescore,
    )


def __getattr__(name: str) -> Any:
    if name in _API:
        from sua_audit import api

        return getattr(api, name)
    raise AttributeError(f"module 'sua_audit' has no attribute {name!r}")
