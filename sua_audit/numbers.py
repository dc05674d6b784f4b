"""How numbers are written for people: every report, table, gate message and summary line.

One module, so a quantity reads the same wherever it is shown (the HTML and Markdown reports,
the end-of-run table, the evaluation block, the gate's messages). Plain functions on plain
values: no rich, no typer, no report types, so any layer may import it. The report templates
get the same functions as Jinja filters (:mod:`sua_audit.reports._templates`).

A missing value (``None``) is written ``—`` by every function.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

#: What every formatter writes for a missing value.
MISSING = "—"


def _finite(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        x = float(value)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def fixed(value: float | None, digits: int = 3) -> str:
    """``digits`` decimals (``0.812``); whole numbers as they are; ``1,234`` from 1000 up.

    A value that rounds to zero is written without a sign (never ``-0.000``).
    """
    if value is None:
        return MISSING
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if round(value, digits) == 0:
        value = 0.0
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def signed(value: float, digits: int = 3) -> str:
    """:func:`fixed` with a ``+`` before a value that stays above zero once rounded."""
    return ("+" if round(value, digits) > 0 else "") + fixed(value, digits)


def interval(ci: Sequence[float | None] | None, digits: int = 3) -> str:
    """`` [0.700, 0.900]`` (with its leading space), or ``""`` when there is no full interval."""
    if not isinstance(ci, list | tuple) or len(ci) != 2 or None in ci:
        return ""
    return f" [{fixed(float(ci[0]), digits)}, {fixed(float(ci[1]), digits)}]"  # type: ignore[arg-type]


def estimate(
    value: float | None,
    ci: Sequence[float | None] | None = None,
    digits: int = 3,
    *,
    plus: bool = False,
) -> str:
    """``0.812 [0.700, 0.900]``: a point value and its confidence interval when it has one.

    ``plus`` marks a positive difference with ``+``. A missing or non-finite value is ``—``; a
    whole number (``int``) stays whole.
    """
    x = value if isinstance(value, int) and not isinstance(value, bool) else _finite(value)
    if x is None:
        return MISSING
    return (signed(x, digits) if plus else fixed(x, digits)) + interval(ci, digits)


def estimate_node(node: Any, digits: int = 3, *, plus: bool = False) -> str:
    """:func:`estimate` of a ``{"value": ..., "ci": [lo, hi]}`` node (evaluation.json)."""
    if not isinstance(node, dict):
        return MISSING
    return estimate(_finite(node.get("value")), node.get("ci"), digits, plus=plus)


def percent(rate: float | None, digits: int = 1) -> str:
    """A share as a percentage: ``12.5%`` from 0.125 (``—%`` when missing)."""
    return fixed(rate * 100 if rate is not None else None, digits) + "%"


def usd(value: float | None) -> str:
    """A cost in dollars to a hundredth of a cent: ``$0.0012``."""
    return MISSING if value is None else f"${value:.4f}"


def seconds(value: float | None) -> str:
    """A duration: ``12.3 s`` (a missing one counts as 0)."""
    return f"{value or 0.0:.1f} s"


def sig(value: float | None, digits: int = 4) -> str:
    """``digits`` significant digits (``0.1235``, ``1.235e+04``): gate messages, diagnostics."""
    return MISSING if value is None else f"{value:.{digits}g}"


def short(value: float | None) -> str:
    """The shortest plain form of a setting (λ, a threshold, a target risk): ``0.5``, ``1``."""
    return MISSING if value is None else f"{value:g}"


def times(share: float) -> str:
    """How many times one quantity is another, in words: ``3.2 times``, ``0.44 times``,
    ``1/40 of`` under a tenth (mean S against λ·mean H)."""
    if share <= 0:
        return "0 times"
    if share < 0.1:
        return f"1/{1 / share:.0f} of" if 1 / share < 1e6 else "a vanishing share of"
    return f"{share:.2g} times"


def tick(value: float) -> str:
    """An axis label of a plot: ``0``, three significant digits, no decimals from 100 up."""
    if value == 0:
        return "0"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.3g}"


__all__ = [
    "MISSING",
    "estimate",
    "estimate_node",
    "fixed",
    "interval",
    "percent",
    "seconds",
    "short",
    "sig",
    "signed",
    "tick",
    "times",
    "usd",
]
