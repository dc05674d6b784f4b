"""Failure-detection evaluation of a finished run, written to ``evaluation.json``.

Public API (used by ``sua-audit evaluate``, the end of ``run``, and the report / compare / gate
commands):

* :func:`evaluate_run` — compute the evaluation of a run directory and write evaluation.json;
* :class:`EvaluationOptions` — its options (risk, δ, grading, seed, bootstrap), as ``evaluate``,
  ``run`` and ``rescore`` take them;
* :func:`load_evaluation` — read a run's evaluation.json (``None`` when there is none);
* :func:`auto_evaluation` — the one rule for evaluating without being asked (after ``run`` and
  ``rescore``, and when a report reads a run that has no evaluation.json yet).

The modules: :mod:`.metrics` (AUROC, AUPRC, PRR, AURC, selective accuracy, ECE),
:mod:`.bootstrap` (seeded, paired CIs), :mod:`.splits`, :mod:`.temperature`
(``entropy_temp``), :mod:`.abstention` (Learn-then-Test threshold with a guarantee),
:mod:`.correctness` (exact / token-F1 / judge grading of QA answers) and :mod:`.core` (the whole
evaluation). Scores recomputed from the cache are :mod:`sua_audit.rescoring`'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sua_audit.results import EVALUATION_FILE

__all__ = [
    "EVALUATION_FILE",
    "EvaluationOptions",
    "auto_evaluation",
    "auto_evaluation_skip",
    "evaluate_run",
    "load_evaluation",
]


@dataclass(frozen=True)
class EvaluationOptions:
    """How a run is evaluated, as ``sua-audit evaluate`` takes it (``run`` and ``rescore``
    take the same options for the evaluation at their end).

    Attributes:
        target_risk: α for the calibrated abstention; ``None`` for no abstention block.
        delta: δ: the guarantee holds with probability ≥ 1 − δ.
        correctness: QA grading rule, ``contains`` (a gold answer stated inside the answer's
            first sentence), ``exact``, ``f1`` or ``judge``.
        f1_threshold: Token-F1 threshold of the ``f1`` rule.
        judge_model: Model spec of the ``judge`` rule.
        seed: Seeds the validation split and the bootstrap.
        bootstrap: Resamples per interval.

    The defaults are :data:`.correctness.DEFAULT_RULE`, :data:`.correctness.DEFAULT_F1_THRESHOLD`
    and :data:`.bootstrap.DEFAULT_BOOTSTRAP`, written out so that this module loads no numpy
    (a test keeps them equal).
    """

    target_risk: float | None = None
    delta: float = 0.1
    correctness: str = "contains"
    f1_threshold: float = 0.5
    judge_model: str | None = None
    seed: int = 0
    bootstrap: int = 1000


def auto_evaluation_skip(summary: dict[str, Any]) -> str | None:
    """Why a run is not evaluated without being asked (``None``: it is): it failed, or it has
    no items with gold answers. Size is no reason: a 100,000-item run evaluates in well under
    a minute and 500 MB (docs/benchmarks.md, ``bench/large_evaluation.py``)."""
    if summary.get("status") == "failed":
        return "not evaluated: the run failed (no item, or too few, could be scored)"
    results = summary.get("results") or {}
    if not results.get("items_with_gold"):
        return "not evaluated: no item has a gold answer"
    return None


def auto_evaluation(
    run_dir: Path | str,
    summary: dict[str, Any],
    options: EvaluationOptions | None = None,
    **how: Any,
) -> tuple[dict[str, Any] | None, str | None]:
    """Evaluate a run that was just written (``run``, ``rescore``) unless
    :func:`auto_evaluation_skip` says not to: ``(evaluation, None)`` or ``(None, why)``.
    ``options`` and ``how`` are :func:`evaluate_run`'s; errors of a bad option propagate."""
    skip = auto_evaluation_skip(summary)
    if skip is not None:
        return None, skip
    return evaluate_run(run_dir, options, **how), None


def evaluate_run(
    run_dir: Path | str,
    options: EvaluationOptions | None = None,
    *,
    lam: float | str | None = None,
    normalize: str | None = None,
    abstain_on: str | None = None,
    cache: str | None = None,
    write: bool = True,
) -> dict[str, Any]:
    """Evaluate the run in ``run_dir`` and write ``evaluation.json`` there (atomically).

    Args:
        run_dir: A finished run's folder (results.jsonl and summary.json).
        options: Risk, δ, grading, seed and bootstrap (default: :class:`EvaluationOptions`'s).
        lam: ``None`` (the run's λ), a number, or ``"auto"`` (chosen on a validation split
            from a signed grid).
        normalize: How S and H are put on one scale for ``sua_norm`` (``rank``, ``z`` or
            ``none``); ``None``: the run's choice.
        abstain_on: The score the calibrated abstention thresholds; ``None``: the run's.
        cache: Request cache for judge calls (default: the user cache).
        write: Write evaluation.json (``False``: only return the dict).

    Returns:
        The evaluation dict (schema 1, see docs/method.md).
    """
    from sua_audit.evaluation.core import (
        EvaluationError,
        collect,
        evaluate_items,
        write_json_atomic,
    )
    from sua_audit.evaluation.correctness import DEFAULT_RULE, Grader
    from sua_audit.results import (
        RESULTS_FILE,
        SUMMARY_FILE,
        iter_results,
        read_summary,
        run_binding,
        typed_summary,
    )

    run = Path(run_dir)
    if not (run / RESULTS_FILE).is_file() or not (run / SUMMARY_FILE).is_file():
        raise EvaluationError(
            f"{run} is not a finished run (results.jsonl and summary.json are needed). "
            "Pass the folder `sua-audit run` wrote."
        )
    summary = read_summary(run)
    how = options if options is not None else EvaluationOptions()
    grader = Grader(
        how.correctness or DEFAULT_RULE,
        f1_threshold=how.f1_threshold,
        judge_model=how.judge_model,
        cache=cache,
    )
    # The rows are streamed: only the fields the evaluation needs are kept, so memory does
    # not grow with the rows' text. The judge asks about every QA answer in one batch first.
    if grader.rule == "judge":
        grader.prepare(iter_results(run, summary))
    items = collect(iter_results(run, summary), grader)
    info = typed_summary(summary)
    config = info.config
    run_lam = config.lam if config is not None and config.lam is not None else 1.0
    has_qa = any(f == "qa" for f in items.family)
    result = evaluate_items(
        items,
        run_id=str(info.run_id or run.name),
        run_lambda=run_lam,
        lam=lam,
        normalize=normalize or (config.normalize if config is not None else None),
        abstain_on=abstain_on or (config.abstain_on if config is not None else None) or "sua",
        target_risk=how.target_risk,
        delta=how.delta,
        seed=how.seed,
        bootstrap=how.bootstrap,
        correctness_rule=grader.name if has_qa else "label",
    )
    # Binds the file to these exact results: readers refuse it beside any other run's.
    result["run"] = run_binding(summary)
    if write:
        from sua_audit.schema import Evaluation, check_written

        check_written(Evaluation, result)  # a misfit is a bug: raise rather than write it
        write_json_atomic(run / EVALUATION_FILE, result)
    return result


def load_evaluation(
    run_dir: Path | str, summary: dict[str, Any] | None = None
) -> dict[str, Any] | None:
    """The run's evaluation.json, or ``None`` when it has not been evaluated.

    Raises:
        RunReadError: the file is corrupt, or it was computed for another run or for other
            results than the folder's (run id and results sha256 are checked; exit 3), or
            it is from a newer sua-audit, or a field is missing or mistyped.
    """
    from sua_audit.results import read_evaluation, read_summary

    path = Path(run_dir) / EVALUATION_FILE
    if not path.is_file():
        return None
    return read_evaluation(path, summary if summary is not None else read_summary(Path(run_dir)))
