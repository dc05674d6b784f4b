"""sua_audit.numbers: the one place numbers are written for people."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from sua_audit import numbers as n


@pytest.mark.parametrize(
    ("value", "digits", "text"),
    [
        (None, 3, "—"),
        (0.8123, 3, "0.812"),
        (0.8125, 2, "0.81"),
        (7, 3, "7"),  # whole numbers stay whole
        (-0.0001, 3, "0.000"),  # never "-0.000"
        (-0.00001, 4, "0.0000"),
        (-0.0006, 3, "-0.001"),
        (999.9994, 3, "999.999"),
        (1234.5678, 3, "1,235"),
        (-25000.0, 1, "-25,000"),
        (float("nan"), 3, "nan"),
    ],
)
def test_fixed(value: float | None, digits: int, text: str) -> None:
    assert n.fixed(value, digits) == text


def test_signed_marks_only_what_stays_positive_once_rounded() -> None:
    assert n.signed(0.12) == "+0.120"
    assert n.signed(0.0004) == "0.000"
    assert n.signed(-0.0004) == "0.000"
    assert n.signed(-0.2) == "-0.200"


def test_estimate_and_its_interval() -> None:
    assert n.estimate(0.8123, (0.7, 0.9)) == "0.812 [0.700, 0.900]"
    assert n.estimate(0.8123, [0.7, None]) == "0.812"
    assert n.estimate(0.8123) == "0.812"
    assert n.estimate(0.05, (0.01, 0.09), plus=True) == "+0.050 [0.010, 0.090]"
    assert n.estimate(-0.0001, (-0.2, 0.1), plus=True) == "0.000 [-0.200, 0.100]"
    assert n.estimate(3) == "3"
    assert n.estimate(None) == n.estimate(math.inf) == n.estimate(math.nan) == "—"
    assert n.estimate(True) == "—"


def test_estimate_node_reads_evaluation_nodes() -> None:
    assert n.estimate_node({"value": 0.71, "ci": [0.52, 0.88]}) == "0.710 [0.520, 0.880]"
    assert n.estimate_node({"value": 1, "ci": None}) == "1.000"  # a JSON 1 is an AUROC of 1.0
    assert n.estimate_node({"value": None, "ci": [0.1, 0.2]}) == "—"
    assert n.estimate_node({"value": "nan"}) == "—"
    assert n.estimate_node(None) == "—"
    assert n.estimate_node({"value": 0.2, "ci": [0.1, 0.3]}, 2, plus=True) == "+0.20 [0.10, 0.30]"


@pytest.mark.parametrize(
    ("func", "value", "text"),
    [
        (n.percent, 0.125, "12.5%"),
        (n.percent, None, "—%"),
        (n.usd, 0.00123, "$0.0012"),
        (n.usd, None, "—"),
        (n.seconds, 12.345, "12.3 s"),
        (n.seconds, None, "0.0 s"),
        (n.sig, 0.123456, "0.1235"),
        (n.sig, 12345.6, "1.235e+04"),
        (n.sig, None, "—"),
        (n.short, 0.5, "0.5"),
        (n.short, 1.0, "1"),
        (n.tick, 0.0, "0"),
        (n.tick, 0.25, "0.25"),
        (n.tick, 150.4, "150"),
        (n.tick, 1 / 3, "0.333"),
    ],
)
def test_the_other_forms(func, value, text: str) -> None:
    assert func(value) == text


@pytest.mark.parametrize(
    ("share", "text"),
    [(0.0, "0 times"), (-1.0, "0 times"), (0.005, "1/200 of"), (1e-9, "a vanishing share of")]
    + [(0.44, "0.44 times"), (0.1, "0.1 times"), (3.21, "3.2 times")],
)
def test_times(share: float, text: str) -> None:
    assert n.times(share) == text


def test_numbers_imports_no_terminal_or_template_library() -> None:
    code = (
        "import sys, sua_audit.numbers; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'rich', 'typer', 'jinja2'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
