"""The Python API: every command of the CLI as a function that returns a typed object and
never prints.

    import sua_audit

    run = sua_audit.audit("examples/mixed.jsonl", limit=5, out="audits/runs/demo")
    print(run.status, run.summary.results.mean_scores)
    for row in run.rows():
        print(row.id, row.sua, row.abstain)
    html = sua_audit.report(run, format="html").text
    outcome = sua_audit.gate(run, "audits/release.toml")
    assert outcome.passed

A finished run is a :class:`Run`: its folder, its summary (:class:`~sua_audit.schema.Summary`),
its rows on demand (:class:`~sua_audit.schema.ResultRow`) and its evaluation
(:class:`~sua_audit.schema.Evaluation`, or ``None`` with the reason in ``evaluation_note``).
Every function that takes a run accepts a :class:`Run` or the path of a run folder.

Errors are the exceptions of :mod:`sua_audit.errors` (each carries the CLI's exit code);
messages name options as the command line spells them (``--lambda``), since the CLI is
this API's main user. Notices a person should see before a run starts (the cost estimate of a
hosted model) go to ``on_notice`` when given, and to the ``sua_audit`` logger otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sua_audit.errors import ConfigError

if TYPE_CHECKING:
    from sua_audit.engine import Progress
    from sua_audit.evaluation import EvaluationOptions
    from sua_audit.gating import Checklist, GateOutcome
    from sua_audit.reports import Run as RunFiles
    from sua_audit.schema import Evaluation, ResultRow, Summary

__all__ = [
    "Comparison",
    "Report",
    "Run",
    "VariantSet",
    "as_dict",
    "audit",
    "check_compare_args",
    "compare",
    "evaluate",
    "gate",
    "load_run",
    "perturb",
    "report",
    "rescore",
]

logger = logging.getLogger("sua_audit")


@dataclass(frozen=True)
class Run:
    """A finished run, read from its folder.

    Attributes:
        path: The run folder (results.jsonl, summary.json, evaluation.json).
        summary: summary.json as its model.
        evaluation: evaluation.json as its model; ``None`` when the run was not evaluated.
        evaluation_note: Why ``evaluation`` is ``None`` (no gold answers, too many items to
            evaluate automatically, ...).
    """

    path: Path
    summary: Summary
    evaluation: Evaluation | None = None
    evaluation_note: str | None = None

    @property
    def run_id(self) -> str:
        return str(self.summary.run_id)

    @property
    def status(self) -> str:
        """``complete``, ``partial`` (some items failed, within --max-failed-share) or
        ``failed``."""
        return str(self.summary.status or "complete")

    @property
    def model(self) -> str:
        """The audited model as configured (its spec)."""
        config = self.summary.config
        described = self.summary.model.model if self.summary.model is not None else None
        return str((config.model if config is not None else None) or described or "unknown")

    def rows(self) -> list[ResultRow]:
        """The per-item rows of results.jsonl (checked against the summary)."""
        from sua_audit.results import load_results, read_summary

        return load_results(self.path, read_summary(self.path))


@dataclass(frozen=True)
class Report:
    """A rendered report of one run."""

    run: Run
    format: str
    text: str

    def write(self, path: str | Path) -> Path:
        """Write the report to ``path`` (atomically); return the path."""
        from sua_audit.reports import write_atomic

        target = Path(path)
        write_atomic(target, self.text)
        return target


@dataclass(frozen=True)
class Comparison:
    """Runs on one dataset, side by side; :meth:`render` writes it as html, md or json."""

    runs: tuple[Run, ...]
    allow_different_variants: bool = False
    _files: tuple[Any, ...] = field(default=(), repr=False, compare=False)

    def render(self, format: str = "md") -> str:
        from sua_audit.reports import render_compare

        return render_compare(
            list(self._files), format, allow_different_variants=self.allow_different_variants
        )

    def disagreements(self) -> list[dict[str, Any]]:
        """The items on which the runs' answers differ."""
        from sua_audit.reports import disagreements

        return list(disagreements(list(self._files)))


@dataclass(frozen=True)
class VariantSet:
    """A variant set written by :func:`perturb` (its header, as line 1 of the file holds it)."""

    path: Path
    header: dict[str, Any]

    @property
    def sha256(self) -> str:
        return str(self.header["content_sha256"])

    @property
    def n_items(self) -> int:
        return int(self.header["n_items"])

    @property
    def n_variants(self) -> int:
        return int(self.header["n_variants"])


# ---------------------------------------------------------------------------------------------


def load_run(run: Run | str | Path, *, evaluate: bool = True) -> Run:
    """Read a finished run folder.

    With ``evaluate``, its evaluation.json is attached, computed (and written) when absent
    unless the run failed or has no gold answers (then ``evaluation`` is ``None`` and
    ``evaluation_note`` says why).

    Raises:
        ConfigError: the folder does not exist or holds no finished run (exit 2).
        RunReadError: the run's files are unreadable, corrupt or mixed (exit 3).
    """
    from sua_audit.reports import load_run as load_files

    return _public(load_files(_path(run), evaluate=evaluate))


def audit(
    dataset: str | Path,
    *,
    model: str | None = None,
    out: str | Path | None = None,
    cache: str | Path | None = None,
    lam: float | str | None = None,
    evaluate: bool = True,
    target_risk: float | None = None,
    delta: float = 0.1,
    correctness: str = "contains",
    f1_threshold: float = 0.5,
    judge_model: str | None = None,
    evaluation_options: EvaluationOptions | None = None,
    progress: Progress | None = None,
    on_notice: Callable[[str], None] | None = None,
    **options: Any,
) -> Run:
    """Audit ``model`` on ``dataset`` (``sua-audit run``); return the finished run.

    Args:
        dataset: A JSONL dataset (see docs/datasets.md).
        model: A model spec (``gpt-4o``, ``openai/<model>``, ``hf/<dir>``, ...); ``None``: the
            embedded SmolLM2-135M.
        out: The run folder (default ``audits/runs/<run id>``).
        cache: The request cache (default: the user cache; ``cache_mode="off"``: none).
        lam: λ in SUA = S − λH, or ``"auto"`` (λ chosen by the evaluation on a validation
            split; needs gold answers).
        evaluate: Evaluate the run (failure-detection metrics) when it has gold answers (see
            :func:`sua_audit.evaluation.auto_evaluation_skip`).
        target_risk, delta, correctness, f1_threshold, judge_model: The evaluation's options
            (as ``sua-audit evaluate``).
        evaluation_options: The same (and ``bootstrap``) as one
            :class:`~sua_audit.evaluation.EvaluationOptions`, instead of those keywords; its
            ``seed`` is the run's.
        progress: Receives request counts as they finish (:class:`sua_audit.engine.Progress`).
        on_notice: Receives lines to show before the run starts (cost estimates).
        options: Any other option of ``sua-audit run``, by its Python name: ``limit``,
            ``seed``, ``perturbations``, ``variants``, ``samples``, ``temperature``,
            ``divergence``, ``normalize``, ``abstain_on``, ``tau``, ``coverage``,
            ``equivalence``, ``base_url``, ``max_cost``, ... (see ``sua-audit run --help``).

    Returns:
        The run; its ``status`` is ``failed`` when no item (or too few) could be scored,
        and then it is not evaluated.

    Raises:
        ConfigError, DatasetError: bad options or input, found before any model call (exit 2).
        SuaAuditError: the run could not go on (model, cache; exit 3). Finished requests stay
            in the cache either way.
    """
    from dataclasses import replace

    from sua_audit.runner import audit as run_audit
    from sua_audit.runner import make_config
    from sua_audit.scoring.item import check_lambda
    from sua_audit.variants import variant_options

    grading = _evaluation_options(
        evaluation_options,
        target_risk=target_risk,
        delta=delta,
        correctness=correctness,
        f1_threshold=f1_threshold,
        judge_model=judge_model,
    )
    # Evaluation options (the grader too) are checked before any model loads.
    _check_evaluation_options(
        lam, options.get("normalize"), options.get("abstain_on"), grading, grader=True
    )
    lam_choice = check_lambda(lam)
    if out is not None and not str(out).strip():
        raise ConfigError("--out is empty. Pass a folder path, or leave it out for audits/runs/.")
    if isinstance(lam_choice, float):
        options["lam"] = lam_choice
    for key in ("variants", "prompts_dir", "task_template", "system_prompt", "instruction_attacks"):
        if options.get(key) is not None:
            options[key] = str(options[key])
    config = make_config(dataset, model=model, **variant_options(options))
    needs_gold = (
        "--lambda auto"
        if lam_choice == "auto"
        else "--target-risk"
        if grading.target_risk
        else None
    )
    summary = run_audit(
        config,
        cache_path=Path(cache) if cache is not None else None,
        out_dir=Path(out) if out is not None else None,
        progress=progress,
        require_gold=needs_gold,
        on_notice=on_notice or logger.info,
    )
    run_dir = Path(summary["out_dir"])
    return _finish(
        run_dir,
        summary,
        replace(grading, seed=config.seed),
        evaluate=evaluate,
        lam="auto" if lam_choice == "auto" else None,
        cache=str(cache) if cache is not None else None,
    )


def evaluate(
    run: Run | str | Path,
    *,
    lam: float | str | None = None,
    normalize: str | None = None,
    abstain_on: str | None = None,
    target_risk: float | None = None,
    delta: float = 0.1,
    correctness: str = "contains",
    f1_threshold: float = 0.5,
    judge_model: str | None = None,
    seed: int = 0,
    bootstrap: int = 1000,
    evaluation_options: EvaluationOptions | None = None,
    cache: str | Path | None = None,
    write: bool = True,
) -> Evaluation:
    """Failure-detection metrics of a finished run (``sua-audit evaluate``): AUROC, AUPRC,
    PRR, AURC and selective accuracy of every score with bootstrap CIs, ECE, and with
    ``target_risk`` a calibrated abstention rule. Writes RUN/evaluation.json unless
    ``write`` is false. No model calls, except those of a ``correctness="judge"`` grader.
    ``evaluation_options`` (a :class:`~sua_audit.evaluation.EvaluationOptions`) holds
    ``target_risk`` to ``bootstrap`` at once, instead of those keywords.

    Raises:
        EvaluationError: the run has no scored items with gold answers (exit 2).
    """
    from sua_audit.evaluation import evaluate_run
    from sua_audit.results import typed_evaluation

    grading = _evaluation_options(
        evaluation_options,
        target_risk=target_risk,
        delta=delta,
        correctness=correctness,
        f1_threshold=f1_threshold,
        judge_model=judge_model,
        seed=seed,
        bootstrap=bootstrap,
    )
    _check_evaluation_options(lam, normalize, abstain_on, grading)
    result = evaluate_run(
        _path(run),
        grading,
        lam=lam,
        normalize=normalize,
        abstain_on=abstain_on,
        cache=str(cache) if cache is not None else None,
        write=write,
    )
    return typed_evaluation(result)


def rescore(
    run: Run | str | Path,
    *,
    lam: float | str | None = None,
    normalize: str | None = None,
    abstain_on: str | None = None,
    tau: float | None = None,
    coverage: float | None = None,
    divergence: str | None = None,
    equivalence: str | None = None,
    equivalence_model: str | None = None,
    equivalence_threshold: float | None = None,
    out: str | Path | None = None,
    cache: str | Path | None = None,
    dataset: str | Path | None = None,
    variants: str | Path | None = None,
    evaluate: bool = True,
    target_risk: float | None = None,
    delta: float = 0.1,
    correctness: str = "contains",
    f1_threshold: float = 0.5,
    judge_model: str | None = None,
    seed: int = 0,
    bootstrap: int = 1000,
    evaluation_options: EvaluationOptions | None = None,
) -> Run:
    """Recompute every score of a run from the cache (``sua-audit rescore``): another λ,
    normalisation, divergence, abstention rule or answer clustering, with zero calls to the
    audited model. Writes a new run folder (default ``RUN/rescored-<changes>``) and returns
    it, evaluated as :func:`audit` evaluates. With ``lam="auto"`` the scores keep the run's
    λ and the evaluation picks λ on a validation split. ``evaluation_options`` (a
    :class:`~sua_audit.evaluation.EvaluationOptions`) holds ``target_risk`` to ``bootstrap``
    at once, instead of those keywords.

    Raises:
        RescoreError: a request the run needs is not in the cache (exit 3).
    """
    from sua_audit.rescoring import rescore_run
    from sua_audit.scoring.item import check_lambda

    grading = _evaluation_options(
        evaluation_options,
        target_risk=target_risk,
        delta=delta,
        correctness=correctness,
        f1_threshold=f1_threshold,
        judge_model=judge_model,
        seed=seed,
        bootstrap=bootstrap,
    )
    _check_evaluation_options(lam, normalize, abstain_on, grading)

    lam_choice = check_lambda(lam)
    summary = rescore_run(
        _path(run),
        lam=lam_choice if isinstance(lam_choice, float) else None,
        normalize=normalize,
        abstain_on=abstain_on,
        tau=tau,
        coverage=coverage,
        divergence=divergence,
        out=Path(out) if out is not None else None,
        cache=Path(cache) if cache is not None else None,
        dataset=Path(dataset) if dataset is not None else None,
        variants=Path(variants) if variants is not None else None,
        equivalence=equivalence,
        equivalence_model=equivalence_model,
        equivalence_threshold=equivalence_threshold,
    )
    return _finish(
        Path(summary["out_dir"]),
        summary,
        grading,
        evaluate=evaluate,
        lam="auto" if lam_choice == "auto" else None,
    )


def report(
    run: Run | str | Path,
    format: str = "html",
    *,
    target_risk: float | None = None,
    delta: float = 0.1,
) -> Report:
    """One run's report (``sua-audit report``) as ``html`` (a self-contained page), ``md``
    or ``json`` text. ``target_risk`` evaluates afresh (without writing) with an abstention
    rule calibrated to that risk."""
    from sua_audit.reports import check_format, render_report
    from sua_audit.reports import load_run as load_files

    check_format(format)
    files = load_files(_path(run), target_risk=target_risk, delta=delta)
    return Report(_public(files), format, render_report(files, format))


def compare(
    runs: Sequence[Run | str | Path],
    *,
    target_risk: float | None = None,
    delta: float = 0.1,
    allow_different_variants: bool = False,
) -> Comparison:
    """Runs on one dataset side by side (``sua-audit compare``).

    Raises:
        ConfigError: fewer than two runs; runs over different datasets, on different variant
            sets (unless ``allow_different_variants``), or QA runs whose answers were
            clustered differently (exit 2).
    """
    from sua_audit.reports import load_run as load_files
    from sua_audit.reports import same_clustering, same_dataset, same_variants

    check_compare_args(runs)
    paths = [_path(r) for r in runs]
    # The runs are checked before anything is evaluated: a refused comparison is instant.
    unevaluated = [load_files(p, evaluate=False) for p in paths]
    same_dataset(unevaluated)
    same_variants(unevaluated, allow=allow_different_variants)
    same_clustering(unevaluated)
    files = [load_files(p, target_risk=target_risk, delta=delta) for p in paths]
    return Comparison(tuple(_public(f) for f in files), allow_different_variants, tuple(files))


def check_compare_args(runs: Sequence[Run | str | Path]) -> None:
    """The checks :func:`compare` makes on its arguments before reading any run, for a
    caller that has its own to make after them (the CLI's ``--out``).

    Raises:
        ConfigError: fewer than two runs (exit 2).
    """
    if len(runs) < 2:
        raise ConfigError("compare needs at least two run folders.")


def gate(
    run: Run | str | Path,
    checklist: str | Path | Checklist,
    *,
    baseline: Run | str | Path | None = None,
    allow_different_variants: bool = False,
) -> GateOutcome:
    """Check a run against a release checklist (``sua-audit gate``). A failed check is a
    result (``outcome.passed`` is false), not an exception.

    Raises:
        ConfigError: a bad checklist, or a baseline on another dataset, another variant set
            (unless allowed) or clustered differently (exit 2).
        NothingScored: the run (or the baseline) scored nothing or too little: it is never
            passed (exit 3).
    """
    from sua_audit.gating import Checklist, evaluate_gate, load_checklist
    from sua_audit.reports import load_run as load_files
    from sua_audit.reports import same_clustering, same_dataset, same_variants
    from sua_audit.results import check_status

    spec = checklist if isinstance(checklist, Checklist) else load_checklist(checklist)
    files = load_files(_path(run), evaluate=spec.needs_evaluation)
    check_status(files.summary)
    base = None
    if baseline is not None:
        base = load_files(_path(baseline), evaluate=spec.needs_evaluation)
        check_status(base.summary)
        same_dataset([files, base])
        same_variants([files, base], allow=allow_different_variants)
        same_clustering([files, base])
    return evaluate_gate(files, spec, base)


def perturb(
    dataset: str | Path,
    *,
    out: str | Path,
    cache: str | Path | None = None,
    **options: Any,
) -> VariantSet:
    """Write every item's variants to a variant set (``sua-audit perturb``), to review,
    commit and audit every model on with ``audit(..., variants=PATH)``.

    ``options`` are those of ``sua-audit perturb`` by Python name: ``perturbations``,
    ``rewriter_model``, ``seed``, ``limit``, ``meaning_filter``, ``prompts_dir``, ...
    """
    from sua_audit.runner import make_config
    from sua_audit.variants import build_variant_set

    if not str(out).strip():
        raise ConfigError("--out is empty. Pass a file path for the variant set.")
    for key in ("prompts_dir", "instruction_attacks"):
        if options.get(key) is not None:
            options[key] = str(options[key])
    config = make_config(dataset, **options)
    header = build_variant_set(
        config, out=Path(out), cache_path=Path(cache) if cache is not None else None
    )
    return VariantSet(Path(out), dict(header))


# ---------------------------------------------------------------------------------------------


def _path(run: Run | str | Path) -> Path:
    return run.path if isinstance(run, Run) else Path(run)


def as_dict(record: Any) -> dict[str, Any]:
    """A run-file model (summary, row, evaluation) as the JSON object its file holds."""
    return dict(record.model_dump(mode="json", by_alias=True, exclude_unset=True))


def _public(files: RunFiles) -> Run:
    from sua_audit.results import typed_evaluation, typed_summary

    evaluation = None if files.evaluation is None else typed_evaluation(files.evaluation)
    return Run(files.path, typed_summary(files.summary), evaluation, files.evaluation_note)


def _finish(
    run_dir: Path,
    summary: dict[str, Any],
    grading: EvaluationOptions,
    *,
    evaluate: bool,
    **how: Any,
) -> Run:
    """The run as :func:`audit` and :func:`rescore` return it: evaluated when it has gold
    answers, was not a failure and is small enough (one rule, :func:`auto_evaluation`)."""
    from sua_audit.evaluation import auto_evaluation
    from sua_audit.results import typed_evaluation, typed_summary

    info = typed_summary(summary)
    if not evaluate:
        return Run(run_dir, info, None, "not evaluated: evaluate=False")
    result, note = auto_evaluation(run_dir, summary, grading, **how)
    evaluation = None if result is None else typed_evaluation(result)
    return Run(run_dir, info, evaluation, note)


def _evaluation_options(given: EvaluationOptions | None, **keywords: Any) -> EvaluationOptions:
    """``given``, or the options a function's evaluation keywords spell; never both."""
    from sua_audit.evaluation import EvaluationOptions

    spelled = EvaluationOptions(**keywords)
    if given is None:
        return spelled
    if spelled != EvaluationOptions():
        raise TypeError(
            "pass the evaluation's options either as evaluation_options or as keywords, not both"
        )
    return given


def _check_evaluation_options(
    lam: float | str | None,
    normalize: str | None,
    abstain_on: str | None,
    grading: EvaluationOptions,
    *,
    grader: bool = False,
) -> None:
    """The evaluation's options, checked before any work (each a one-line ConfigError);
    with ``grader``, the QA grader they describe is built as well."""
    from sua_audit.evaluation.core import SCORES, is_score
    from sua_audit.scoring.item import check_lambda
    from sua_audit.scoring.table import NORMALIZE_METHODS

    check_lambda(lam)
    if normalize is not None and normalize not in NORMALIZE_METHODS:
        raise ConfigError(
            f"--normalize must be one of {', '.join(NORMALIZE_METHODS)}, got {normalize!r}."
        )
    if abstain_on is not None and not is_score(abstain_on):
        raise ConfigError(
            f"--abstain-on: unknown score {abstain_on!r}. Scores: {', '.join(SCORES)}, or "
            "s_<kind> for one perturbation kind (s_typo, s_paraphrase, ...)."
        )
    if not 1 <= grading.bootstrap <= 100_000:
        raise ConfigError(f"--bootstrap must be between 1 and 100000, got {grading.bootstrap}.")
    if grader:
        from sua_audit.evaluation.correctness import Grader

        Grader(
            grading.correctness, f1_threshold=grading.f1_threshold, judge_model=grading.judge_model
        )
    if grading.target_risk is not None and not 0.0 < grading.target_risk < 1.0:
        raise ConfigError(f"--target-risk must be in (0, 1), got {grading.target_risk}.")
    if not 0.0 < grading.delta < 1.0:
        raise ConfigError(f"--delta must be in (0, 1), got {grading.delta}.")
