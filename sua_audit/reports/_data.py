"""Reading a finished run for reports, comparisons and the gate.

A run directory holds ``summary.json`` and ``results.jsonl`` (written by ``sua-audit run``)
and, once evaluated, ``evaluation.json`` (written by :mod:`sua_audit.evaluation`). Reports read
only these files, never the cache, so any run can be re-rendered offline.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from sua_audit.errors import ConfigError, RunReadError, SuaAuditError
from sua_audit.results import (
    RESULTS_FILE,
    SUMMARY_FILE,
    read_results,
    read_summary,
    typed_summary,
)
from sua_audit.schema import ResultRow, Summary

logger = logging.getLogger(__name__)

#: Scores drawn in the risk–coverage plot, in legend order (all oriented as uncertainty).
PLOT_SCORES = ("sua", "sensitivity", "entropy", "max_prob", "self_consistency", "semantic_entropy")


@dataclass
class Run:
    """One finished run: its summary, per-item rows and evaluation (``None`` when absent).

    ``summary`` is the dict as read (checked against :class:`~sua_audit.schema.Summary`);
    :attr:`info` is the same summary as its model, for typed reads.
    """

    path: Path
    summary: dict[str, Any]
    items: list[dict[str, Any]]
    evaluation: dict[str, Any] | None = None
    #: Why ``evaluation`` is ``None`` (shown in reports as "not evaluated: ...").
    evaluation_note: str | None = None

    @property
    def info(self) -> Summary:
        """The summary as its model (made afresh, so it follows any change to ``summary``)."""
        return typed_summary(self.summary)

    @property
    def run_id(self) -> str:
        return str(self.info.run_id or self.path.name)

    @property
    def model_name(self) -> str:
        info = self.info
        configured = info.config.model if info.config is not None else None
        described = info.model.model if info.model is not None else None
        return str(configured or described or "unknown model")

    @property
    def label(self) -> str:
        """A short name telling runs apart in a comparison: model, then what differs."""
        return f"{self.model_name} · {self.run_id}"

    @property
    def results(self) -> dict[str, Any]:
        return dict(self.summary.get("results") or {})

    @property
    def dataset_sha256(self) -> str | None:
        dataset = self.info.dataset
        return dataset.sha256 if dataset is not None else None

    @property
    def variants_sha256(self) -> str | None:
        """The content hash of the variant set the run audited (``None``: variants made at
        run time, or a run from before variant sets)."""
        record = self.info.variants
        return record.sha256 if record is not None else None

    @property
    def lam(self) -> float:
        config = self.info.config
        return config.lam if config is not None and config.lam is not None else 1.0

    @property
    def tau(self) -> float:
        tau = self.info.results.tau
        return tau if tau is not None else 0.0

    @cached_property
    def rows(self) -> list[ResultRow]:
        """The per-item rows as their model, for typed reads (``items`` holds them as read)."""
        from sua_audit.results import typed_rows

        return typed_rows(self.items)

    @property
    def scored(self) -> list[dict[str, Any]]:
        """Items that were scored (failed items have no scores)."""
        return [row for row in self.items if row.get("status", "ok") == "ok"]


def load_run(
    run_dir: Path | str,
    *,
    evaluate: bool = True,
    target_risk: float | None = None,
    delta: float = 0.1,
) -> Run:
    """Read a finished run.

    Args:
        run_dir: the run's output folder.
        evaluate: attach ``evaluation.json``; when it is absent, compute it with
            :func:`sua_audit.evaluation.evaluate_run` where that module is available.
        target_risk: evaluate afresh (without rewriting evaluation.json) with a calibrated
            abstention rule at this risk and ``delta``.

    Raises:
        ConfigError: the folder does not exist or holds no finished run (exit 2).
        RunReadError: the run's files are unreadable or corrupt (exit 3).
    """
    path = Path(run_dir)
    if not path.is_dir():
        raise ConfigError(f"run folder '{path}' does not exist. Pass the --out folder of a run.")
    if not (path / SUMMARY_FILE).is_file():
        raise ConfigError(
            f"'{path}' holds no finished run (no {SUMMARY_FILE}). "
            "Pass the --out folder of a finished `sua-audit run`."
        )
    summary = read_summary(path)
    if not (path / RESULTS_FILE).is_file():
        raise RunReadError(f"'{path}' has {SUMMARY_FILE} but no {RESULTS_FILE}.")
    run = Run(path=path, summary=summary, items=read_results(path, summary))
    if evaluate:
        run.evaluation, run.evaluation_note = _evaluation(path, summary, target_risk, delta)
    else:
        # Not needed, but a folder holding another run's evaluation is refused all the same.
        from sua_audit.evaluation import load_evaluation

        load_evaluation(path, summary)
    return run


def _evaluation(
    path: Path, summary: dict[str, Any], target_risk: float | None, delta: float
) -> tuple[dict[str, Any] | None, str | None]:
    """evaluation.json, computed on the fly when absent; or ``None`` and why."""
    evaluation_module: Any
    try:
        from sua_audit import evaluation as evaluation_module
    except ImportError:
        evaluation_module = None
    load = getattr(evaluation_module, "load_evaluation", None)
    evaluate_run = getattr(evaluation_module, "evaluate_run", None)
    options = getattr(evaluation_module, "EvaluationOptions", None)
    if load is None or evaluate_run is None or options is None:
        return None, "the evaluation module is not available in this install"
    if target_risk is not None:
        try:
            fresh = evaluate_run(path, options(target_risk=target_risk, delta=delta), write=False)
        except (ConfigError, RunReadError):
            raise  # a bad --target-risk / --delta (exit 2), a corrupt folder (exit 3)
        except SuaAuditError as exc:
            logger.warning("run %s not evaluated: %s", path, exc)
            return None, str(exc)
        return dict(fresh), None
    loaded = load(path, summary)  # refuses an evaluation.json of another run (exit 3)
    if loaded is not None:
        return dict(loaded), None
    try:
        return dict(evaluate_run(path)), None
    except RunReadError:
        raise
    except SuaAuditError as exc:
        # No gold labels, too few items: the report still renders, marked "not evaluated".
        logger.warning("run %s not evaluated: %s", path, exc)
        return None, str(exc)


# ---------------------------------------------------------------------------------------------
# Numbers derived from a run, shared by the HTML and Markdown renderers and the gate.


def finite(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when missing or not finite."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def estimate(node: Any) -> tuple[float | None, tuple[float, float] | None]:
    """``(value, (lo, hi))`` from an evaluation ``{"value": x, "ci": [lo, hi]}`` node."""
    if not isinstance(node, dict):
        return finite(node), None
    value = finite(node.get("value"))
    ci = node.get("ci")
    if isinstance(ci, list | tuple) and len(ci) == 2:
        lo, hi = finite(ci[0]), finite(ci[1])
        if lo is not None and hi is not None:
            return value, (lo, hi)
    return value, None


def eval_node(run: Run, *keys: str) -> Any:
    """A nested node of the evaluation, or ``None`` along any missing key."""
    node: Any = run.evaluation
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def collapse_rate(run: Run) -> float | None:
    ambiguity = run.info.results.ambiguity
    return finite(ambiguity.collapse_rate) if ambiguity is not None else None


def mean_score(run: Run, name: str) -> float | None:
    return finite((run.info.results.mean_scores or {}).get(name))


def cost_usd(run: Run) -> float | None:
    cost = run.info.cost
    return finite(cost.usd) if cost is not None else None


#: Baselines of evaluations written before evaluation.json listed them.
_BASELINES = (
    "entropy",
    "max_prob",
    "self_consistency",
    "semantic_entropy",
    "entropy_temp",
    "semantic_entropy_exact",
)
#: Variant kinds that change an item's meaning on purpose (not a flip when the answer moves).
_NOT_MEANING_PRESERVING = frozenset({"clean", "ambiguity"})


def abstention_info(run: Run) -> dict[str, Any]:
    """The run's own abstention decision: ``score``, ``rule`` ("tau" or "coverage"), ``tau``,
    ``coverage_target``, ``decided``, ``abstained``, ``rate`` and ``note``.

    From summary.json ``results.abstention``; runs written before it are read from the older
    fields (their score was SUA unless ``config.abstain_on`` says otherwise). ``recorded``
    tells which.
    """
    info = run.info
    res = info.results
    if res.abstention is not None and res.abstention.score:
        return {**run.results["abstention"], "recorded": True}  # the block as written
    config = info.config
    coverage = finite(config.coverage) if config is not None else None
    given = res.model_fields_set
    return {
        "score": str((config.abstain_on if config is not None else None) or "sua"),
        "rule": "coverage" if coverage is not None else "tau",
        "tau": finite(res.tau) if "tau" in given else 0.0,
        "coverage_target": coverage,
        "decided": res.items_scored if "items_scored" in given else len(run.scored),
        "abstained": res.abstained,
        "rate": finite(res.abstention_rate),
        "note": None,
        "recorded": False,
    }


def item_score(row: dict[str, Any], name: str) -> float | None:
    """One item's value of score ``name`` from its results.jsonl row (``None`` when absent).

    ``s_<kind>`` is read from ``sensitivity_by_kind``; an item with no variant of that kind
    shows no sensitivity to it (0), as the run's own decision treats it.
    """
    if name in row:
        return finite(row.get(name))
    if name.startswith("s_") and isinstance(row.get("sensitivity_by_kind"), dict):
        return finite(row["sensitivity_by_kind"].get(name[2:], 0.0))
    return None


def ranking(run: Run) -> tuple[str, str | None]:
    """The score the item list is ranked by, and why when it is not the abstention score.

    The run's abstention score when its rows carry it; a fitted score (``combined``,
    ``entropy_temp``) is not stored per item, so then: abstained items first, then by S.
    """
    score = str(abstention_info(run)["score"])
    if any(item_score(row, score) is not None for row in run.scored):
        return score, None
    return "sensitivity", (
        f"results.jsonl holds no per-item {score} (it is fitted at run time), so the items the "
        "run abstained on come first, then the others by sensitivity S"
    )


def worst_items(run: Run, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` scored items that the run's abstention score ranks as most suspicious.

    Ranked by :func:`ranking` (highest first, ties by id); items without the score come last.
    """
    score, fallback = ranking(run)

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        value = item_score(row, score)
        first = 0 if fallback is None or row.get("abstain") is True else 1
        return (first, value is None, -(value or 0.0), str(row["id"]))

    return sorted(run.scored, key=key)[:n]


def _same_answer(a: Any, b: Any) -> bool:
    return " ".join(str(a).split()).casefold() == " ".join(str(b).split()).casefold()


def first_flip(row: dict[str, Any]) -> dict[str, Any] | None:
    """The first variant whose answer differs from the clean one.

    From ``flipped_variants`` (indices into ``variants``; an empty list: none flipped); rows
    without it (or with only indices out of range): the first meaning-preserving variant whose
    answer text differs.
    """
    variants = [v for v in row.get("variants") or [] if isinstance(v, dict)]
    recorded = row.get("flipped_variants")
    for index in recorded if isinstance(recorded, list) else []:
        if isinstance(index, int) and not isinstance(index, bool) and 0 <= index < len(variants):
            return variants[index]
    if isinstance(recorded, list) and not recorded:
        return None  # the run says no variant flipped (QA compares answer clusters, not text)
    return next(
        (
            v
            for v in variants
            if v.get("kind") not in _NOT_MEANING_PRESERVING
            and v.get("prediction") is not None
            and not _same_answer(v.get("prediction"), row.get("prediction"))
        ),
        None,
    )


def confident_flips(run: Run) -> dict[str, Any] | None:
    """The confident-flip set: the run's counts and rule, plus ``items`` (the flagged rows,
    most confident first). ``None`` when the run recorded neither the counts nor the flags.
    """
    block = run.results.get("confident_flips")
    flagged = [row for row in run.scored if row.get("confident_flip") is True]
    if not isinstance(block, dict):
        if not any("confident_flip" in row for row in run.items):
            return None
        n = len(run.scored)
        config = run.info.config
        threshold = config.confident_threshold if config is not None else None
        block = {
            "rule": None,
            "threshold": threshold,
            "n": n,
            "n_confident_flips": len(flagged),
            "rate": len(flagged) / n if n else None,
        }
    items = sorted(flagged, key=lambda r: (-(finite(r.get("confidence")) or 0.0), str(r["id"])))
    out = {**block, "items": items}
    if block.get("n_confident_flips") != len(items):
        # The rows are the per-item record; a summary that disagrees (an edited file) yields.
        n = block.get("n") or len(run.scored)
        out.update(n=n, n_confident_flips=len(items), rate=len(items) / n if n else None)
    return out


def diagnostics(run: Run) -> dict[str, Any] | None:
    """Mean S, mean H, S/H, Spearman(SUA, −H) and the warning, as the run recorded them.

    Runs written before summary.json had ``results.diagnostics`` get them computed here from
    results.jsonl by the same function (``source`` says which). ``None``: no scored item.
    """
    block = run.results.get("diagnostics")
    if isinstance(block, dict):
        return {**block, "source": "run"}
    rows = [
        (finite(r.get("sensitivity")), finite(r.get("entropy")), finite(r.get("sua")))
        for r in run.scored
    ]
    rows = [(s, h, u) for s, h, u in rows if s is not None and h is not None]
    if not rows:
        return None
    from sua_audit.scoring.table import diagnostics as compute

    nan = float("nan")
    out = compute(
        [float(s) for s, _, _ in rows if s is not None],
        [float(h) for _, h, _ in rows if h is not None],
        [nan if u is None else u for _, _, u in rows],
        lam=run.lam,
    )
    return {**out, "source": "computed by the report from results.jsonl"}


def _estimate_node(node: Any) -> dict[str, Any]:
    value, ci = estimate(node)
    reason = node.get("reason") if isinstance(node, dict) and value is None else None
    return {"value": value, "ci": list(ci) if ci else None, "reason": reason}


def score_rows(run: Run) -> list[dict[str, Any]]:
    """One row per evaluated score: perturbation scores, then baselines.

    Each row: ``score``, ``kind`` ("perturbation" or "baseline"), ``auroc`` per failure
    label (``clean``, ``worst_case``), for perturbation scores the paired differences
    ``minus_best_baseline`` and ``minus_entropy`` per label ({value, ci, reason} each),
    ``winner`` (the labels it wins) and ``reason`` (why it is unavailable, when it is).
    Empty when the run is not evaluated.
    """
    ev = run.evaluation
    if not isinstance(ev, dict):
        return []
    metrics: dict[str, Any] = ev["metrics"] if isinstance(ev.get("metrics"), dict) else {}
    clean: dict[str, Any] = metrics["clean"] if isinstance(metrics.get("clean"), dict) else {}
    pert = [str(x) for x in ev.get("perturbation_scores") or []]
    base = [str(x) for x in ev.get("baselines") or []]
    if not pert and not base:
        known = [str(x) for x in ev.get("scores") or clean]
        base = [x for x in known if x in _BASELINES]
        pert = [x for x in known if x not in _BASELINES]
    order = list(dict.fromkeys([*pert, *base, *(str(x) for x in ev.get("scores") or [])]))
    labels = ("clean", "worst_case")
    rows = []
    for name in order:
        is_base = name in base
        row: dict[str, Any] = {
            "score": name,
            "kind": "baseline" if is_base else "perturbation",
            "auroc": {},
            "winner": [],
        }
        reasons: list[str] = []
        for label in labels:
            per: dict[str, Any] = metrics[label] if isinstance(metrics.get(label), dict) else {}
            node = (per.get(name) or {}).get("auroc") if isinstance(per.get(name), dict) else None
            if node is None and name not in per:
                node = {"value": None, "ci": None, "reason": "not evaluated for this label"}
            row["auroc"][label] = est = _estimate_node(node)
            if est["value"] is None and est["reason"] and est["reason"] not in reasons:
                reasons.append(str(est["reason"]))
            comparison = eval_node(run, "comparison", label)
            if not isinstance(comparison, dict):
                continue
            if comparison.get("winner") == name:
                row["winner"].append(label)
            if is_base:
                continue
            versus = (comparison.get("versus") or {}).get(name)
            if not isinstance(versus, dict) and name == "sua":
                # Evaluations before the paired comparisons of every score: SUA's alone.
                versus = {"minus_best_baseline": comparison.get("sua_minus_best_baseline")}
            versus = versus if isinstance(versus, dict) else {}
            for key in ("minus_best_baseline", "minus_entropy"):
                row.setdefault(key, {})[label] = _estimate_node(versus.get(key))
        row["reason"] = "; ".join(reasons) or None
        rows.append(row)
    return rows


def risk_coverage(run: Run) -> dict[str, list[tuple[float, float]]]:
    """Risk–coverage curves per score: from the evaluation, else computed from the items.

    Answering the share ``c`` of items with the lowest score, risk is the error rate among them.
    Only items with a known ``correct`` count.
    """
    from_eval = eval_node(run, "risk_coverage", "clean")
    curves: dict[str, list[tuple[float, float]]] = {}
    if isinstance(from_eval, dict) and from_eval:
        # The plot keeps to the main scores; the evaluation's table lists every score.
        chosen = [s for s in PLOT_SCORES if s in from_eval] or list(from_eval)
        for score in chosen:
            points = from_eval[score]
            pts = [
                (float(p[0]), float(p[1]))
                for p in points or []
                if isinstance(p, list | tuple)
                and len(p) == 2
                and finite(p[0]) is not None
                and finite(p[1]) is not None
            ]
            if pts:
                curves[str(score)] = pts
        return curves
    labelled = [row for row in run.scored if isinstance(row.get("correct"), bool)]
    if not labelled:
        return {}
    from sua_audit.evaluation.metrics import risk_coverage_curve

    # The evaluation's own curve (ties in the score count as their expected errors), on the
    # items that have this score.
    for score in PLOT_SCORES:
        values = [(finite(row.get(score)), row["correct"]) for row in labelled]
        known = [(v, ok) for v, ok in values if v is not None]
        if not known:
            continue
        curve = risk_coverage_curve([v for v, _ in known], [not ok for _, ok in known])
        curves[score] = [(float(c), float(r)) for c, r in curve]
    return curves


def reliability_bins(run: Run, n_bins: int = 10) -> list[dict[str, Any]]:
    """Reliability-diagram bins: from the evaluation, else from the items' ``max_prob``.

    Confidence is the max probability of the clean prediction, ``1 − max_prob`` (the score is
    stored as uncertainty).
    """
    bins = eval_node(run, "calibration", "bins")
    if isinstance(bins, list) and bins:
        return [b for b in bins if isinstance(b, dict)]
    pairs = [
        (1.0 - float(row["max_prob"]), bool(row["correct"]))
        for row in run.scored
        if isinstance(row.get("correct"), bool) and finite(row.get("max_prob")) is not None
    ]
    from sua_audit.evaluation.metrics import ece_bins

    if not pairs:
        return []
    _, table = ece_bins([c for c, _ in pairs], [float(ok) for _, ok in pairs], n_bins=n_bins)
    return [dict(b) for b in table]


def same_dataset(runs: list[Run]) -> None:
    """Refuse runs over different datasets (their dataset sha256 differ), exit 2."""
    shas = {run.dataset_sha256 for run in runs}
    if None in shas:
        missing = [str(run.path) for run in runs if run.dataset_sha256 is None]
        raise ConfigError(
            f"run(s) {', '.join(missing)} record no dataset sha256; cannot tell that the runs "
            "share a dataset. Rerun them with this sua-audit."
        )
    if len(shas) > 1:
        from sua_audit.safetext import visible

        listing = "; ".join(
            f"{run.path} → {visible(str(run.info.dataset.path if run.info.dataset else None))} "
            f"(sha256 {str(run.dataset_sha256)[:12]})"
            for run in runs
        )
        raise ConfigError(
            f"runs are over different datasets and cannot be compared: {listing}. "
            "Compare runs made on the same dataset file."
        )


def variants_line(runs: list[Run]) -> str | None:
    """One plain sentence on the variant sets of compared runs; ``None`` when every run made
    its variants at run time."""
    records = [run.info.variants for run in runs]
    if all(r is None for r in records):
        return None
    shas = {run.variants_sha256 for run in runs}
    if len(shas) == 1 and records[0] is not None:
        first = records[0]
        return (
            f"Every run audited the variant set {first.path} "
            f"(sha256 {str(first.sha256)[:12]}, plan {first.plan})."
        )
    parts = [
        f"{run.run_id}: "
        + (
            f"set {r.path} (sha256 {str(r.sha256)[:12]})"
            if r is not None
            else "variants made at run time"
        )
        for run, r in zip(runs, records, strict=True)
    ]
    return (
        "Warning: the runs were audited on different variant sets (allowed by "
        f"--allow-different-variants), so robustness numbers are not like for like: "
        f"{'; '.join(parts)}."
    )


def same_variants(runs: list[Run], *, allow: bool = False) -> None:
    """Refuse runs audited on different variant sets, exit 2: different set hashes, or one run
    on a variant set and another with variants made at run time. ``allow`` (the option
    ``--allow-different-variants``) lets them through.

    Runs that all made their variants at run time are not compared here (as before variant
    sets existed): their plans and rewriters are in their summaries.
    """
    shas = {run.variants_sha256 for run in runs}
    if allow or len(shas) <= 1:
        return
    from sua_audit.safetext import visible

    def describe(run: Run) -> str:
        info = run.info
        record = info.variants
        if record is not None:
            return (
                f"{run.path} → variant set {visible(str(record.path))} "
                f"(sha256 {str(record.sha256)[:12]})"
            )
        plan = info.config.perturbations if info.config is not None else None
        seed = info.config.seed if info.config is not None else None
        return f"{run.path} → variants made at run time (plan {plan}, seed {seed})"

    raise ConfigError(
        "runs were audited on different variant sets, so their robustness numbers are not "
        f"comparable: {'; '.join(describe(run) for run in runs)}. Audit every run on one set "
        "(`sua-audit run --variants FILE`), or pass --allow-different-variants to compare "
        "them anyway."
    )


def _clustering(run: Run) -> tuple[str, ...] | None:
    """How a run clustered QA answers (method, threshold, model), or ``None`` without QA items.

    Runs made before meaning clusters existed record nothing and clustered by exact match."""
    info = run.info
    tasks = (info.dataset.tasks if info.dataset is not None else None) or {}
    if not tasks.get("qa"):
        return None
    eq = info.results.equivalence
    if eq is None:
        return ("exact",)
    model = eq.model or {}
    ident = model.get("weights_sha256") or model.get("model")
    return tuple(str(x) for x in (eq.method, eq.threshold, ident) if x is not None)


def same_clustering(runs: list[Run]) -> None:
    """Refuse QA runs whose answers were clustered differently, exit 2: S, H and semantic
    entropy are computed over the clusters, so the numbers would not measure the same thing.
    A rescore makes them comparable without calling the audited model."""
    found = [(run, _clustering(run)) for run in runs]
    kinds = {c for _, c in found if c is not None}
    if len(kinds) <= 1:
        return
    listing = "; ".join(f"{run.path} → {' '.join(c or ('no QA',))}" for run, c in found)
    first = next(c for _, c in found if c is not None)
    raise ConfigError(
        "runs clustered their QA answers differently, so S, H and semantic entropy are not "
        f"comparable: {listing}. Rescore one to match the other, e.g. `sua-audit rescore RUN "
        f"--equivalence {first[0]}` (no call to the audited model)."
    )


def prompts_line(runs: list[Run]) -> str | None:
    """A warning when compared runs prompted the audited model differently (system prompt or
    task template); ``None`` when they all used the same wording."""

    def wording(run: Run) -> tuple[str, str]:
        rec = run.info.prompts or {}
        parts = []
        for key in ("system_prompt", "task_template"):
            item = rec.get(key)
            parts.append(str(item.get("sha256"))[:12] if isinstance(item, dict) else "none")
        return (parts[0], parts[1])

    seen = [wording(run) for run in runs]
    if len(set(seen)) <= 1:
        return None
    listing = "; ".join(
        f"{run.run_id}: system prompt {sp}, task template {tt}"
        for run, (sp, tt) in zip(runs, seen, strict=True)
    )
    return (
        "Warning: the runs prompted the audited model differently (sha256 prefixes), so each "
        f"was audited as deployed with its own wording: {listing}."
    )


# ---------------------------------------------------------------------------------------------
# Named run metrics: one registry for the gate's checklist, the comparison table and the
# headline of each report.


@dataclass(frozen=True)
class Metric:
    """A number read from a run; ``higher_is_better`` orients regressions."""

    name: str
    label: str
    higher_is_better: bool
    needs_evaluation: bool
    description: str


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("accuracy", "accuracy", True, False, "share of items answered correctly"),
        Metric(
            "robust_accuracy",
            "robust accuracy",
            True,
            False,
            "share of items right on the original and every variant",
        ),
        Metric(
            "selective_accuracy", "selective accuracy", True, False, "accuracy on answered items"
        ),
        Metric(
            "abstention_rate",
            "abstention rate",
            False,
            False,
            "share of scored items the run's abstention rule abstained on (its score and τ "
            "are in summary.json results.abstention)",
        ),
        Metric(
            "confident_flip_rate",
            "confident flips",
            False,
            False,
            "share of scored items answered confidently whose answer changes under a "
            "meaning-preserving variant (the rule is in summary.json results.confident_flips)",
        ),
        Metric("mean_sua_pos", "mean [SUA]₊", False, False, "mean of max(0, SUA)"),
        Metric("mean_sua", "mean SUA", False, False, "mean SUA = S − λH"),
        Metric(
            "mean_sua_norm",
            "mean SUA (normalised)",
            False,
            False,
            "mean sua_norm = N(S) − λN(H), S and H normalised within the run",
        ),
        Metric("mean_sensitivity", "mean S", False, False, "mean sensitivity"),
        Metric("mean_entropy", "mean H", False, False, "mean predictive entropy (nats)"),
        Metric("mean_flip_rate", "flip rate", False, False, "mean share of flipped variants"),
        Metric(
            "spearman_sua_neg_entropy",
            "Spearman(SUA, −H)",
            False,
            False,
            "rank correlation of SUA with −H; above 0.95 SUA ranks items like negative entropy",
        ),
        Metric(
            "collapse_rate",
            "collapse rate",
            False,
            False,
            "ambiguous items whose answers cover one reading only",
        ),
        Metric("failure_rate", "failed items", False, False, "share of items that failed"),
        Metric("cost_usd", "cost (USD)", False, False, "spend of the run"),
        Metric(
            "sua_auroc",
            "SUA AUROC",
            True,
            True,
            "AUROC of SUA for clean failures (evaluation)",
        ),
        Metric(
            "sua_auroc_worst_case",
            "SUA AUROC (worst case)",
            True,
            True,
            "AUROC of SUA for worst-case failures (evaluation)",
        ),
        Metric(
            "sua_norm_auroc",
            "sua_norm AUROC",
            True,
            True,
            "AUROC of the normalised SUA for clean failures (evaluation)",
        ),
        Metric(
            "combined_auroc",
            "combined AUROC",
            True,
            True,
            "AUROC of the fitted combined detector for clean failures (evaluation)",
        ),
        Metric(
            "best_baseline_auroc",
            "best baseline AUROC",
            True,
            True,
            "AUROC of the best non-SUA score for clean failures (evaluation)",
        ),
        Metric("ece", "ECE", False, True, "expected calibration error of max p (evaluation)"),
        Metric(
            "abstention_coverage",
            "coverage at target risk",
            True,
            True,
            "test coverage of the calibrated abstention rule (evaluation)",
        ),
        Metric(
            "abstention_risk",
            "risk when answering",
            False,
            True,
            "test risk of the calibrated abstention rule (evaluation)",
        ),
    )
}


#: The note of a metric that a run written before it existed does not have.
NOT_RECORDED = "not recorded by this run"


@dataclass(frozen=True)
class Reading:
    """A metric's value on one run: ``value`` ``None`` when undefined, ``note`` says why."""

    value: float | None
    ci: tuple[float, float] | None = None
    note: str | None = None


def _eval_reading(run: Run, *keys: str) -> Reading:
    if run.evaluation is None:
        return Reading(None, note=f"not evaluated: {run.evaluation_note or 'no evaluation'}")
    node = eval_node(run, *keys)
    value, ci = estimate(node)
    if value is None:
        reason = node.get("reason") if isinstance(node, dict) else None
        return Reading(None, note=str(reason or "undefined on this run"))
    return Reading(value, ci)


def read_metric(run: Run, name: str) -> Reading:
    """The value of metric ``name`` (a key of :data:`METRICS`) on ``run``."""
    res = run.info.results
    if name in ("accuracy", "robust_accuracy"):
        # The run's own value over every item; the evaluation's CI only where the evaluation
        # covers every item too (with a calibrated abstention it reports on a test split).
        split = eval_node(run, "split") or {}
        whole = not split.get("n_calibration") and not split.get("n_validation")
        if whole and run.evaluation is not None and isinstance(run.evaluation.get(name), dict):
            reading = _eval_reading(run, name)
            if reading.value is not None:
                return reading
        value = finite(getattr(res, name))
        return Reading(value, note=None if value is not None else "no items with gold")
    if name in ("selective_accuracy", "abstention_rate"):
        value = finite(getattr(res, name))
        return Reading(value, note=None if value is not None else "undefined on this run")
    if name == "confident_flip_rate":
        value = finite(res.confident_flip_rate)
        if value is None:
            flips = confident_flips(run)
            if flips is None:
                return Reading(None, note=NOT_RECORDED)
            value = finite(flips.get("rate"))
        return Reading(value, note=None if value is not None else "no scored items")
    if name == "spearman_sua_neg_entropy":
        diag = diagnostics(run)
        value = finite((diag or {}).get("spearman_sua_neg_entropy"))
        note = "no scored items" if diag is None else "undefined (under 3 items or a constant)"
        return Reading(value, note=None if value is not None else note)
    if name.startswith("mean_"):
        key = {"mean_sensitivity": "sensitivity", "mean_entropy": "entropy"}.get(
            name, name.removeprefix("mean_")
        )
        value = mean_score(run, key)
        if value is None and key not in (res.mean_scores or {}):
            return Reading(None, note=NOT_RECORDED)
        return Reading(value, note=None if value is not None else "no scored items")
    if name == "collapse_rate":
        value = collapse_rate(run)
        return Reading(value, note=None if value is not None else "no ambiguous items")
    if name == "failure_rate":
        items = res.items or len(run.items)
        failed = res.items_failed
        if failed is None:
            failed = sum(1 for row in run.items if row.get("status", "ok") != "ok")
        return Reading(float(failed) / items if items else None, note=None if items else "empty")
    if name == "cost_usd":
        return Reading(cost_usd(run), note=None if cost_usd(run) is not None else "not recorded")
    if name == "sua_auroc":
        return _eval_reading(run, "metrics", "clean", "sua", "auroc")
    if name in ("sua_norm_auroc", "combined_auroc"):
        score = name.removesuffix("_auroc")
        if run.evaluation is not None and eval_node(run, "metrics", "clean", score) is None:
            return Reading(None, note=f"{score} is not in this run's evaluation (an older one?)")
        return _eval_reading(run, "metrics", "clean", score, "auroc")
    if name == "sua_auroc_worst_case":
        return _eval_reading(run, "metrics", "worst_case", "sua", "auroc")
    if name == "best_baseline_auroc":
        best = eval_node(run, "comparison", "clean", "best_baseline")
        if run.evaluation is not None and not best:
            return Reading(None, note="no baseline compared")
        return _eval_reading(run, "metrics", "clean", str(best), "auroc")
    if name == "ece":
        return _eval_reading(run, "calibration", "ece")
    if name in ("abstention_coverage", "abstention_risk"):
        if run.evaluation is None:
            return _eval_reading(run, "abstention")
        abst = run.evaluation.get("abstention")
        if not isinstance(abst, dict):
            return Reading(None, note="no target risk was set for the abstention rule")
        key = "test_coverage" if name == "abstention_coverage" else "test_risk"
        value = finite(abst.get(key))
        return Reading(value, note=None if value is not None else "undefined (nothing answered)")
    raise KeyError(name)
