"""The release gate: a checklist of limits applied to a finished run.

A checklist is a TOML file (see ``audits/release.toml``)::

    [limits]                      # on the run itself
    min_robust_accuracy = 0.6     # min_<metric>: value ≥ limit
    max_mean_sua_pos = 0.05       # max_<metric>: value ≤ limit

    [baseline]                    # against --baseline RUN, same dataset
    max_drop_accuracy = 0.02      # baseline − run ≤ limit
    max_rise_mean_sua_pos = 0.01  # run − baseline ≤ limit

    [options]
    missing = "fail"              # a metric the run cannot provide: "fail" or "skip"
    baseline_test = "significant" # [baseline] decision: "significant", "upper" or "point"
    alpha = 0.05                  # level of the paired test
    resamples = 2000              # paired bootstrap resamples
    seed = 0                      # bootstrap seed (the gate is deterministic)

Metric names are the keys of :data:`sua_audit.reports.METRICS`. A failed gate is a result, not
an exception: :func:`evaluate_gate` returns a :class:`GateOutcome`, the CLI turns it into exit
code 1. A bad checklist raises :class:`~sua_audit.errors.ConfigError` (exit 2).

Baseline checks on metrics with per-item values (accuracy, robust_accuracy, the mean scores,
failure_rate, abstention_rate, confident_flip_rate) pair the two runs' items by ``id`` and test
the change with a seeded paired bootstrap (:mod:`sua_audit.gate_stats`); the others compare
point values.
"""

from __future__ import annotations

import math
import re
import tomllib
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from sua_audit import gate_stats
from sua_audit.errors import ConfigError
from sua_audit.gate_stats import ITEM_METRICS, NoPairs, PairedChange, Rule
from sua_audit.numbers import sig
from sua_audit.reports import METRICS, Run, read_metric

_LIMIT_KEY = re.compile(r"^(min|max)_(\w+)$")
_BASELINE_KEY = re.compile(r"^max_(drop|rise)_(\w+)$")
_TABLES = ("limits", "baseline", "options")
_OPTIONS = ("missing", "baseline_test", "alpha", "resamples", "seed")
_MAX_RESAMPLES = 1_000_000

Status = Literal["pass", "fail", "skip"]


@dataclass(frozen=True)
class Check:
    """One line of the checklist."""

    key: str  # as written in the file, e.g. "min_robust_accuracy"
    metric: str
    kind: Literal["min", "max", "max_drop", "max_rise"]
    limit: float


@dataclass(frozen=True)
class Checklist:
    """A validated checklist file."""

    path: Path
    limits: tuple[Check, ...]
    baseline: tuple[Check, ...]
    missing: Literal["fail", "skip"] = "fail"
    baseline_test: Rule = gate_stats.DEFAULT_RULE
    alpha: float = gate_stats.DEFAULT_ALPHA
    resamples: int = gate_stats.DEFAULT_RESAMPLES
    seed: int = gate_stats.DEFAULT_SEED

    @property
    def metrics(self) -> set[str]:
        return {c.metric for c in (*self.limits, *self.baseline)}

    @property
    def needs_evaluation(self) -> bool:
        return any(METRICS[m].needs_evaluation for m in self.metrics)


@dataclass(frozen=True)
class CheckResult:
    """The outcome of one check: its status and a one-line message naming value and limit."""

    check: Check
    status: Status
    value: float | None
    message: str
    paired: PairedChange | None = None
    """Baseline checks decided by the paired test: its estimate, CI and counts."""

    @property
    def name(self) -> str:
        return self.check.key


@dataclass
class GateOutcome:
    """All checks of a gate run."""

    results: list[CheckResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.status == "fail"]


def _problem(path: Path, where: str, problem: str) -> ConfigError:
    return ConfigError(f"{path}: {where}: {problem}")


def _known(path: Path, where: str, metric: str) -> None:
    if metric not in METRICS:
        raise _problem(
            path,
            where,
            f"unknown metric '{metric}'. Known metrics: {', '.join(sorted(METRICS))}.",
        )


def _number(path: Path, where: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _problem(path, where, f"the limit must be a number, not {value!r}.")
    if not math.isfinite(value):
        # TOML allows nan and inf; a nan limit would make every comparison false.
        raise _problem(path, where, f"the limit must be a finite number, not {value!r}.")
    return float(value)


def load_checklist(path: Path | str) -> Checklist:
    """Read and validate a checklist file; every problem names the file and the field."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            f"checklist '{path}' does not exist. See audits/release.toml for an example."
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read checklist '{path}': {exc}.") from exc
    try:
        data = tomllib.loads(raw)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}.") from exc
    for table in data:
        if table not in _TABLES or not isinstance(data[table], dict):
            raise _problem(path, table, f"unknown entry. Use the tables [{'], ['.join(_TABLES)}].")
    limits = []
    for key, value in data.get("limits", {}).items():
        match = _LIMIT_KEY.match(key)
        where = f"limits.{key}"
        if not match:
            raise _problem(path, where, "a limit is named min_<metric> or max_<metric>.")
        _known(path, where, match.group(2))
        limits.append(
            Check(key, match.group(2), match.group(1), _number(path, where, value))  # type: ignore[arg-type]
        )
    baseline = []
    for key, value in data.get("baseline", {}).items():
        match = _BASELINE_KEY.match(key)
        where = f"baseline.{key}"
        if not match:
            raise _problem(
                path, where, "a baseline limit is named max_drop_<metric> or max_rise_<metric>."
            )
        _known(path, where, match.group(2))
        limit = _number(path, where, value)
        if limit < 0:
            raise _problem(path, where, "the allowed change must be 0 or more.")
        baseline.append(Check(key, match.group(2), f"max_{match.group(1)}", limit))  # type: ignore[arg-type]
    options = data.get("options", {})
    for key in options:
        if key not in _OPTIONS:
            raise _problem(
                path, f"options.{key}", f"unknown option. Options: {', '.join(_OPTIONS)}."
            )
    missing = options.get("missing", "fail")
    if missing not in ("fail", "skip"):
        raise _problem(path, "options.missing", f"must be 'fail' or 'skip', not {missing!r}.")
    rule = options.get("baseline_test", gate_stats.DEFAULT_RULE)
    if rule not in gate_stats.RULES:
        raise _problem(
            path,
            "options.baseline_test",
            f"must be {', '.join(repr(r) for r in gate_stats.RULES)}, not {rule!r}.",
        )
    alpha = options.get("alpha", gate_stats.DEFAULT_ALPHA)
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not 0 < alpha < 0.5:
        raise _problem(
            path, "options.alpha", f"must be a number above 0 and below 0.5, not {alpha!r}."
        )
    resamples = options.get("resamples", gate_stats.DEFAULT_RESAMPLES)
    if (
        isinstance(resamples, bool)
        or not isinstance(resamples, int)
        or not 100 <= resamples <= _MAX_RESAMPLES
    ):
        raise _problem(
            path,
            "options.resamples",
            f"must be a whole number from 100 to {_MAX_RESAMPLES}, not {resamples!r}.",
        )
    seed = options.get("seed", gate_stats.DEFAULT_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise _problem(path, "options.seed", f"must be a whole number ≥ 0, not {seed!r}.")
    if not limits and not baseline:
        raise ConfigError(f"{path}: the checklist has no checks. Add [limits] or [baseline].")
    return Checklist(
        path, tuple(limits), tuple(baseline), missing, rule, float(alpha), resamples, seed
    )


def _missing(check: Check, missing: str, note: str | None) -> CheckResult:
    status: Status = "fail" if missing == "fail" else "skip"
    return CheckResult(check, status, None, f"{check.metric}: no value ({note or 'undefined'})")


def evaluate_gate(run: Run, checklist: Checklist, baseline: Run | None = None) -> GateOutcome:
    """Apply every check of ``checklist`` to ``run`` (and ``baseline`` for [baseline] checks)."""
    outcome = GateOutcome()
    for check in checklist.limits:
        reading = read_metric(run, check.metric)
        if reading.value is None:
            outcome.results.append(_missing(check, checklist.missing, reading.note))
            continue
        ok = reading.value >= check.limit if check.kind == "min" else reading.value <= check.limit
        sign = "≥" if check.kind == "min" else "≤"
        outcome.results.append(
            CheckResult(
                check,
                "pass" if ok else "fail",
                reading.value,
                f"{check.metric}: value {sig(reading.value)}, limit {sign} {sig(check.limit)}",
            )
        )
    for check in checklist.baseline:
        if baseline is None:
            outcome.results.append(
                CheckResult(check, "skip", None, f"{check.key}: no --baseline run given")
            )
            continue
        if checklist.baseline_test != "point" and check.metric in ITEM_METRICS:
            outcome.results.append(_paired_check(run, baseline, check, checklist))
        else:
            outcome.results.append(_point_check(run, baseline, check, checklist))
    return outcome


def _point_check(run: Run, baseline: Run, check: Check, checklist: Checklist) -> CheckResult:
    """A baseline check on the two runs' point values."""
    now, before = read_metric(run, check.metric), read_metric(baseline, check.metric)
    if now.value is None or before.value is None:
        note = now.note if now.value is None else f"baseline: {before.note}"
        return _missing(check, checklist.missing, note)
    change = before.value - now.value if check.kind == "max_drop" else now.value - before.value
    word = "drop" if check.kind == "max_drop" else "rise"
    message = (
        f"{check.metric} vs baseline: {word} {sig(change)} ({sig(before.value)} → "
        f"{sig(now.value)}), limit ≤ {sig(check.limit)}"
    )
    if checklist.baseline_test != "point":
        why = (
            "no per-item values"
            if METRICS[check.metric].needs_evaluation or check.metric == "cost_usd"
            else "no paired test for this metric"
        )
        message += f" ({why}: point comparison)"
    return CheckResult(
        check, "pass" if change <= check.limit + 1e-12 else "fail", now.value, message
    )


def _paired_check(run: Run, baseline: Run, check: Check, checklist: Checklist) -> CheckResult:
    """A baseline check by the paired test on the items both runs share."""
    try:
        _, before, after = gate_stats.paired_values(baseline.rows, run.rows, check.metric)
    except NoPairs as exc:
        if exc.disjoint:
            return CheckResult(check, "fail", None, f"{check.metric} vs baseline: {exc}")
        return _missing(check, checklist.missing, str(exc))
    change = gate_stats.paired_change(
        before,
        after,
        "drop" if check.kind == "max_drop" else "rise",
        alpha=checklist.alpha,
        resamples=checklist.resamples,
        seed=checklist.seed,
        binary=ITEM_METRICS[check.metric].binary,
    )
    verdict = gate_stats.decide(change, check.limit, checklist.baseline_test)
    return CheckResult(
        check,
        "fail" if verdict.fail else "pass",
        change.after,
        gate_stats.describe(check.metric, change, check.limit, verdict),
        paired=change,
    )


def junit_xml(outcome: GateOutcome, *, suite: str = "sua-audit gate") -> str:
    """JUnit XML with one testcase per check (failures and skips marked), for CI systems."""
    root = ET.Element(
        "testsuites",
        name=suite,
        tests=str(len(outcome.results)),
        failures=str(len(outcome.failures)),
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        name=suite,
        tests=str(len(outcome.results)),
        failures=str(len(outcome.failures)),
        errors="0",
        skipped=str(sum(r.status == "skip" for r in outcome.results)),
    )
    from sua_audit.safetext import visible

    for result in outcome.results:
        case = ET.SubElement(ts, "testcase", classname="sua_audit.gating", name=result.name)
        # Control characters are not allowed in XML 1.0: written out as escape text.
        message = visible(result.message)
        if result.status == "fail":
            ET.SubElement(case, "failure", message=message, type="GateFailure").text = message
        elif result.status == "skip":
            ET.SubElement(case, "skipped", message=message)
        else:
            ET.SubElement(case, "system-out").text = message
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
