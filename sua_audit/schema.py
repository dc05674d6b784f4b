"""Typed run files: the models of a result row, ``summary.json`` and ``evaluation.json``.

A run folder's files are a contract with everything that reads them (report, compare, gate,
rescore, a user's own scripts), so their shape is written down here once, as pydantic models,
and published as JSON Schema in the repository's ``schemas/`` folder::

    python -m sua_audit.schema --write schemas/     # regenerate (a test checks they are current)

Versions. ``summary.json`` and ``evaluation.json`` carry ``schema_version`` (an int,
:data:`SCHEMA_VERSION`); the rows of ``results.jsonl`` carry none: they are bound to their
summary by its sha256 and so share its version (one more key on every row would cost bytes on
large runs and change nothing a reader can check). Reading:

* a file of this version must hold every field the models mark required;
* a file without ``schema_version`` was written by this tool before versions were recorded
  (or by hand, as tests do): it has the same shape, only some fields are missing, and it is
  migrated by defaulting them (``None``); the few fields every reader needs stay required;
* a file of a newer version is refused with a message saying to upgrade sua-audit.

Changing a field's name, type or meaning, or making a field required, raises
:data:`SCHEMA_VERSION` (and the readers learn to migrate the older version); a new field that
older files lack is added as optional and keeps the version.

Types are strict (a number is not a string, a count is not a float, a flag is not a number,
non-finite numbers are refused). Blocks whose keys grow with the run (per score, per kind, per
label) are maps; blocks that describe a component (the model, the config, the clustering
method) are open: their known fields are typed, other keys are kept. Every other block is
fixed: a writer refuses a key the models do not know there (:func:`check_written`), since it is
a field added without updating this module and the published schema (which lists no other
keys); a reader keeps such a key and goes on.

Fields are typed ``X | None`` with a default where files from before versions may lack them,
so the published schema allows ``null`` in a few places where version 1 always writes a
value; which fields a version-1 file must hold is listed in each schema's ``required``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    model_validator,
)

__all__ = [
    "SCHEMA_FILES",
    "SCHEMA_VERSION",
    "VERSION_KEY",
    "Evaluation",
    "ResultRow",
    "Summary",
    "check_written",
    "describe_error",
    "json_schemas",
]

#: The version of the run files this code writes, and the newest it reads.
SCHEMA_VERSION = 1
#: The key holding it in summary.json and evaluation.json.
VERSION_KEY = "schema_version"


def _add_v1_required(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """The published schema describes a file of this version: its required fields are those
    a version-1 file must hold, not only those a legacy file must."""
    required = getattr(cls, "v1_required", ())
    if required:
        have = list(schema.get("required", []))
        schema["required"] = have + [k for k in required if k not in have]
    if not getattr(cls, "open_ended", False):
        schema["additionalProperties"] = False


class RunRecord(BaseModel):
    """Base of every run-file block: strict types, unknown keys kept (see the module doc)."""

    model_config = ConfigDict(
        extra="allow",
        strict=True,
        allow_inf_nan=False,
        populate_by_name=True,
        protected_namespaces=(),
        json_schema_extra=_add_v1_required,
    )

    #: Keys (as written in JSON) a file of schema version 1 must hold; legacy files may lack
    #: them, and then read as ``None``.
    v1_required: ClassVar[tuple[str, ...]] = ()
    #: An open block: keys beyond the typed fields belong to it (published as such).
    open_ended: ClassVar[bool] = False

    @model_validator(mode="before")
    @classmethod
    def _complete(cls, data: Any, info: ValidationInfo) -> Any:
        """In a versioned file (or one being written) every ``v1_required`` key is present."""
        context = info.context or {}
        version = context.get("schema_version")
        if isinstance(data, dict) and version is not None and version >= 1:
            missing = [k for k in cls.v1_required if k not in data]
            if missing:
                raise ValueError(
                    f"missing field{'s' if len(missing) > 1 else ''} "
                    f"{', '.join(repr(k) for k in missing)} (required since schema version 1)"
                )
        return data


class OpenRecord(RunRecord):
    """A block that describes a component: typed known fields, other keys kept."""

    open_ended: ClassVar[bool] = True


Num = float | None
"""A number, or ``null`` where it is undefined (no items, one class only, ...)."""


# ---------------------------------------------------------------------------------------------
# results.jsonl


class RequestError(OpenRecord):
    """Why a failed item's requests failed (the first reason) and how many failed."""

    kind: str | None = None
    status: int | None = None
    attempts: int | None = None
    message: str | None = None
    failed_requests: int | None = None

    v1_required = ("kind", "message", "failed_requests")


class AmbiguityCollapse(OpenRecord):
    """Ambiguity collapse of an item with several valid readings (QA and label tasks)."""

    applicable: bool | None = None
    collapsed: bool | None = None
    uncovered: bool | None = None
    kappa: Num = None
    m: int | None = None
    entropy: Num = None
    covered: list[Any] | None = None
    n_covered: int | None = None


class VariantRow(RunRecord):
    """One variant of an item (index 0 is the clean input) and the model's answer to it.

    A failed item's variants have only the text fields. Label tasks record the label
    ``distribution``; QA records the sampled answers (``samples``).
    """

    kind: str
    index: int | None = None
    text: str | None = None
    detail: str | None = None
    fields: dict[str, str] | None = None
    flags: list[str] | None = None
    prediction: str | None = None
    correct: bool | None = None
    samples: list[str] | None = None
    distribution: dict[str, float] | None = None
    path: str | None = None
    label_mass: Num = None
    divergence: Num = None
    entropy: Num = None

    v1_required = ("kind", "index", "text", "detail")


#: Variant flag of rewrites that admit several answers (an ambiguity rewrite, see
#: sua_audit.perturbation.llm): such a variant's answer is not held to the original's.
MULTI_ANSWER = "multi_answer"

#: The per-item scores of a row (``null`` on failed items, or where undefined).
ROW_SCORES = (
    "entropy",
    "entropy_norm",
    "sensitivity",
    "sensitivity_max",
    "sua",
    "sua_pos",
    "self_consistency",
    "max_prob",
    "semantic_entropy",
    "flip_rate",
)


class ResultRow(RunRecord):
    """One line of ``results.jsonl``: an item's scores, decision and variants.

    ``status`` is ``ok`` (scored) or ``failed`` (its requests failed for good: ``error`` says
    why, every score is ``null``). Label tasks (classification, NLI) add ``distribution``; QA
    adds ``clusters`` (the answer clusters' representatives).
    """

    id: str
    task: str | None = None
    status: Literal["ok", "failed"] | None = None
    input: str | None = None
    error: RequestError | None = None
    prediction: str | None = None
    correct: bool | None = None
    gold: list[str] | None = None
    entropy: Num = None
    entropy_norm: Num = None
    sensitivity: Num = None
    sensitivity_max: Num = None
    sua: Num = None
    sua_pos: Num = None
    self_consistency: Num = None
    max_prob: Num = None
    semantic_entropy: Num = None
    flip_rate: Num = None
    sensitivity_by_kind: dict[str, float] | None = None
    sua_norm: Num = None
    abstain_score: Num = None
    confidence: Num = None
    flipped_variants: list[int] | None = None
    confident_flip: bool | None = None
    abstain: bool | None = None
    clusters: list[str] | None = None
    semantic_entropy_exact: Num = None
    ambiguity_entropy_gain: Num = None
    ambiguity: AmbiguityCollapse | None = None
    distribution: dict[str, float] | None = None
    variants: list[VariantRow] | None = None

    v1_required = (
        "id",
        "task",
        "status",
        "input",
        "prediction",
        "correct",
        *ROW_SCORES,
        "sensitivity_by_kind",
        "sua_norm",
        "confidence",
        "flipped_variants",
        "confident_flip",
        "abstain",
        "variants",
    )

    @model_validator(mode="after")
    def _by_status(self, info: ValidationInfo) -> ResultRow:
        version = (info.context or {}).get("schema_version")
        if version is not None and version >= 1:
            if self.status == "ok" and self.gold is None:
                raise ValueError("a scored row (status 'ok') records its 'gold' list")
            if self.status == "failed" and self.error is None:
                raise ValueError("a failed row (status 'failed') records its 'error'")
        return self


# ---------------------------------------------------------------------------------------------
# summary.json


class RecordedConfig(OpenRecord):
    """The run's configuration (``AuditConfig`` as recorded; every option is a key). Only the
    fields readers use are typed here; the rest are kept as written."""

    dataset: str | None = None
    model: str | None = None
    seed: int | None = None
    perturbations: str | None = None
    temperature: Num = None
    samples: int | None = None
    adaptive_samples: bool | None = None
    batch: bool | None = None
    confident_threshold: Num = None
    lam: Num = None
    normalize: str | None = None
    abstain_on: str | None = None
    tau: Num = None
    coverage: Num = None
    cache_mode: str | None = None
    max_failed_share: Num = None
    variants: str | None = None

    v1_required = ("dataset", "model", "lam", "abstain_on")


class ModelRecord(OpenRecord):
    """The audited model as its backend describes itself (provider, model, capabilities, ...)."""

    provider: str | None = None
    model: str | None = None
    dtype: str | None = None
    device: str | None = None
    capabilities: dict[str, bool | None] | None = None

    v1_required = ("provider", "model")


class DatasetRecord(RunRecord):
    """The dataset the run read: absolute path, sha256, counts."""

    path: str | None = None
    sha256: str | None = None
    items: int | None = None
    tasks: dict[str, int] | None = None
    items_with_gold: int | None = None

    v1_required = ("path", "sha256", "items", "tasks", "items_with_gold")


class VariantSetRecord(OpenRecord):
    """The variant set a run audited (``--variants``)."""

    path: str | None = None
    sha256: str | None = None
    n_items: int | None = None
    plan: str | None = None


class AbstentionDecision(RunRecord):
    """The run's abstention rule and what it decided."""

    score: str | None = None
    rule: str | None = None
    tau: Num = None
    coverage_target: Num = None
    decided: int | None = None
    abstained: int | None = None
    rate: Num = None
    note: str | None = None

    v1_required = ("score", "rule", "tau", "coverage_target", "decided", "abstained", "rate")


class ConfidentFlips(RunRecord):
    """Confident answers that change under a meaning-preserving variant."""

    rule: str | None = None
    threshold: Num = None
    n: int | None = None
    n_confident: int | None = None
    n_flipped: int | None = None
    n_confident_flips: int | None = None
    rate: Num = None

    v1_required = ("rule", "threshold", "n", "n_confident", "n_flipped", "n_confident_flips")


class Diagnostics(OpenRecord):
    """Mean S, mean H, their ratio, Spearman(SUA, −H) and a warning when SUA ranks like −H."""

    n: int | None = None
    mean_sensitivity: Num = None
    mean_entropy: Num = None
    ratio_s_to_h: Num = None
    spearman_sua_neg_entropy: Num = None
    warning: str | None = None


class PerturbationRecord(OpenRecord):
    """The perturbation plan, rewrite acceptance per kind, meaning filter and templates."""

    plan: str | None = None
    slots: list[str] | None = None
    budgets: dict[str, Any] | None = None
    rewrites: dict[str, Any] | None = None


class EquivalenceRecord(OpenRecord):
    """How QA answers were clustered (method, threshold, model)."""

    method: str | None = None
    threshold: Num = None
    model: dict[str, Any] | None = None
    applies_to: str | None = None
    note: str | None = None


class AmbiguitySummary(OpenRecord):
    """Ambiguity collapse over the items with several valid readings."""

    n_items: int | None = None
    n_applicable: int | None = None
    n_collapsed: int | None = None
    collapse_rate: Num = None


class SamplingRecord(RunRecord):
    """``results.sampling``: what adaptive QA sampling drew (absent when it was off)."""

    rule: str | None = None
    first_round: int | None = None
    k: int | None = None
    variants: int | None = None
    settled_after_first_round: int | None = None
    samples_drawn: int | None = None
    samples_full: int | None = None
    samples_saved_share: Num = None


class RunResults(RunRecord):
    """``summary.json`` ``results``: counts, accuracy, abstention, mean scores, diagnostics."""

    items: int | None = None
    tasks: dict[str, int] | None = None
    items_scored: int | None = None
    items_failed: int | None = None
    failures_by_kind: dict[str, int] | None = None
    items_with_gold: int | None = None
    accuracy: Num = None
    robust_accuracy: Num = None
    abstained: int | None = None
    abstention_rate: Num = None
    tau: Num = None
    abstention: AbstentionDecision | None = None
    selective_accuracy: Num = None
    mean_scores: dict[str, Num] | None = None
    normalize: str | None = None
    confident_flip_rate: Num = None
    confident_flips: ConfidentFlips | None = None
    diagnostics: Diagnostics | None = None
    mean_sensitivity_by_kind: dict[str, float] | None = None
    answer_paths: dict[str, int] | None = None
    perturbation: PerturbationRecord | None = None
    equivalence: EquivalenceRecord | None = None
    ambiguity: AmbiguitySummary | None = None
    sampling: SamplingRecord | None = None

    v1_required = (
        "items",
        "tasks",
        "items_scored",
        "items_failed",
        "failures_by_kind",
        "items_with_gold",
        "accuracy",
        "robust_accuracy",
        "abstained",
        "abstention_rate",
        "tau",
        "abstention",
        "selective_accuracy",
        "mean_scores",
        "normalize",
        "confident_flip_rate",
        "confident_flips",
        "diagnostics",
        "mean_sensitivity_by_kind",
        "answer_paths",
        "perturbation",
        "equivalence",
        "ambiguity",
    )


class Tokens(RunRecord):
    prompt: int | None = None
    completion: int | None = None

    v1_required = ("prompt", "completion")


class HelperCost(OpenRecord):
    """What a helper model (the rewriter, the answer judge) cost, at its own price."""

    usd: Num = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    estimate_usd: Num = None
    worst_case_usd: Num = None
    price_source: str | None = None


class Cost(OpenRecord):
    """What the run's model calls cost (cache hits are free) and the estimate made before."""

    usd: Num = None
    price_source: str | None = None
    estimate_usd: Num = None
    worst_case_usd: Num = None
    note: str | None = None
    rewriter: HelperCost | None = None
    judge: HelperCost | None = None


class RescoredFrom(RunRecord):
    """The run a rescored run was recomputed from."""

    run_id: str | None = None
    path: str | None = None


class Outputs(RunRecord):
    """Binds summary.json to its results.jsonl (readers check both)."""

    results_sha256: str | None = None
    results_rows: int | None = None

    v1_required = ("results_sha256", "results_rows")


class Summary(RunRecord):
    """``summary.json``: a finished run's record (its presence marks the run finished).

    ``status`` (``complete``, ``partial``, ``failed``) is written by ``run``; a rescored run
    has ``rescored_from`` instead.
    """

    schema_version: int | None = None
    run_id: str | None = None  # required of every file by read_summary, in any version
    status: Literal["complete", "partial", "failed"] | None = None
    rescored_from: RescoredFrom | None = None
    tool_version: str | None = None
    config: RecordedConfig | None = None
    model: ModelRecord | None = None
    dataset: DatasetRecord | None = None
    variants: VariantSetRecord | None = None
    prompts: dict[str, Any] | None = None
    results: RunResults
    model_calls: int | None = None
    cache_hits: int | None = None
    failed_requests: int | None = None
    tokens: Tokens | None = None
    cost: Cost | None = None
    rewriter_calls: int | None = None
    rewriter_cache_hits: int | None = None
    cache: str | None = None
    out_dir: str | None = None
    started_utc: str | None = None
    finished_utc: str | None = None
    wall_seconds: Num = None
    outputs: Outputs | None = None

    v1_required = (
        VERSION_KEY,
        "run_id",
        "tool_version",
        "config",
        "model",
        "dataset",
        "variants",
        "prompts",
        "results",
        "model_calls",
        "cache_hits",
        "failed_requests",
        "tokens",
        "cost",
        "rewriter_calls",
        "rewriter_cache_hits",
        "cache",
        "out_dir",
        "started_utc",
        "finished_utc",
        "wall_seconds",
        "outputs",
    )


# ---------------------------------------------------------------------------------------------
# evaluation.json

CI = Annotated[list[float], Field(min_length=2, max_length=2)]


class Estimate(OpenRecord):
    """A point estimate and its percentile bootstrap 95% interval; ``value: null`` with a
    ``reason`` where the metric is undefined."""

    value: Num = None
    ci: CI | None = None
    reason: str | None = None

    v1_required = ("value", "ci")


class RunBinding(RunRecord):
    """Which run (and which results) an evaluation was computed from."""

    run_id: str | None = None
    results_sha256: str | None = None


class Split(OpenRecord):
    seed: int | None = None
    n_validation: int | None = None
    n_calibration: int | None = None
    n_test: int | None = None
    validation_ids: list[str] | None = None
    calibration_ids: list[str] | None = None


class LambdaBlock(OpenRecord):
    """λ of sua and sua_norm: fixed (given or the run's) or chosen on validation (auto)."""

    mode: str | None = None
    value: Num = None
    value_norm: Num = None
    grid: list[float] | None = None
    criterion: Any = None
    meaning: str | None = None


class FailureLabels(OpenRecord):
    n: int | None = None
    failures: int | None = None
    minority: int | None = None
    note: str | None = None


class CalibrationBin(OpenRecord):
    lo: Num = None
    hi: Num = None
    count: int | None = None
    mean_confidence: Num = None
    accuracy: Num = None


class Calibration(OpenRecord):
    confidence: str | None = None
    ece: Estimate | None = None
    bins: list[CalibrationBin] | None = None


class Evaluation(RunRecord):
    """``evaluation.json``: how well each score detects failures, on the test split.

    ``metrics`` and ``comparison`` are keyed by failure label (``clean``, ``worst_case``), then
    by score, then by metric (an :class:`Estimate`). ``schema`` is the version key of the
    files written before ``schema_version`` (same number); it is kept for their readers.
    """

    schema_version: int | None = None
    schema_: int | None = Field(default=None, alias="schema")
    run_id: str
    run: RunBinding | None = None
    seed: int | None = None
    bootstrap: int | None = None
    correctness_rule: str | None = None
    n_items: int | None = None
    split: Split | None = None
    lambda_: LambdaBlock | None = Field(default=None, alias="lambda")
    normalize: str | None = None
    scores: list[str] | None = None
    perturbation_scores: list[str] | None = None
    baselines: list[str] | None = None
    combined: dict[str, Any] | None = None
    accuracy: Estimate | None = None
    robust_accuracy: Estimate | None = None
    failure_labels: dict[str, FailureLabels] | None = None
    metrics: dict[str, dict[str, dict[str, Estimate]]] | None = None
    comparison: dict[str, dict[str, Any]] | None = None
    calibration: Calibration | None = None
    risk_coverage: dict[str, dict[str, list[CI]]] | None = None
    abstention: dict[str, Any] | None = None
    temperature: dict[str, Any] | None = None

    v1_required = (
        VERSION_KEY,
        "schema",
        "run_id",
        "run",
        "seed",
        "bootstrap",
        "correctness_rule",
        "n_items",
        "split",
        "lambda",
        "normalize",
        "scores",
        "perturbation_scores",
        "baselines",
        "combined",
        "accuracy",
        "robust_accuracy",
        "failure_labels",
        "metrics",
        "comparison",
        "calibration",
        "risk_coverage",
        "abstention",
        "temperature",
    )


# ---------------------------------------------------------------------------------------------
# Validation helpers shared by the writers and readers (sua_audit.results).


def file_version(data: dict[str, Any], path: Path | str) -> int | None:
    """The schema version a file declares (``None``: written before versions were recorded).

    Raises:
        ValueError: the version is not an int, or it is newer than this code reads (the
            message says which release to upgrade to).
    """
    if VERSION_KEY not in data:
        return None
    version = data[VERSION_KEY]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(
            f"'{path}': {VERSION_KEY} is {json.dumps(version)[:40]}, not a version number"
        )
    if version > SCHEMA_VERSION:
        from sua_audit import __version__

        raise ValueError(
            f"'{path}' has {VERSION_KEY} {version}: it was written by a newer sua-audit than "
            f"this one ({__version__}, which reads schema versions up to {SCHEMA_VERSION}). "
            f"Upgrade sua-audit to a release that reads schema version {version}"
        )
    return version


def describe_error(exc: ValidationError) -> str:
    """The first problem of a validation error in one line: the field's path and what is
    wrong (``results.accuracy: Input should be a valid number, got 'high'``)."""
    first = exc.errors(include_url=False)[0]
    where = ".".join(str(p) for p in first["loc"])
    msg = str(first["msg"]).removeprefix("Value error, ")
    got = ""
    if first["type"] not in ("missing", "value_error") and "input" in first:
        got = f", got {json.dumps(first['input'], default=str)[:40]}"
    more = len(exc.errors()) - 1
    also = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{where + ': ' if where else ''}{msg}{got}{also}"


def _unknown_keys(model: BaseModel, loc: tuple[str | int, ...]) -> Iterator[str]:
    """Paths of keys a writer put into a fixed (not open) block the models do not know."""
    if isinstance(model, RunRecord) and not model.open_ended and model.model_extra:
        for key in model.model_extra:
            yield ".".join(str(p) for p in (*loc, key))
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        key = field.alias or name
        values: Sequence[Any] = value if isinstance(value, list) else [value]
        for i, item in enumerate(values):
            if isinstance(item, BaseModel):
                where = (*loc, key, i) if isinstance(value, list) else (*loc, key)
                yield from _unknown_keys(item, where)


def check_written(model_type: type[RunRecord], data: str | dict[str, Any]) -> RunRecord:
    """Validate what a writer is about to write (its JSON text, or a JSON-ready dict), as a
    file of :data:`SCHEMA_VERSION`.

    A row, summary or evaluation that does not fit its model is a bug in the writer, so this
    raises (``ValueError`` with the field's path) instead of writing a file readers would
    refuse.
    """
    context = {"schema_version": SCHEMA_VERSION}
    # As JSON text, as the file will hold it (a tuple built in memory is an array there).
    text = data if isinstance(data, str) else json.dumps(data, ensure_ascii=False)
    try:
        model = model_type.model_validate_json(text, context=context)
    except ValidationError as exc:
        raise ValueError(
            f"sua-audit bug: the {model_type.__name__} about to be written does not fit its "
            f"schema: {describe_error(exc)}"
        ) from exc
    unknown = list(_unknown_keys(model, ()))
    if unknown:
        raise ValueError(
            f"sua-audit bug: the {model_type.__name__} about to be written has fields its "
            f"schema does not know: {', '.join(unknown[:5])} (add them to sua_audit/schema.py "
            "and regenerate schemas/)"
        )
    return model


# ---------------------------------------------------------------------------------------------
# Published JSON Schema files.

#: File name in ``schemas/`` → model.
SCHEMA_FILES: dict[str, type[RunRecord]] = {
    "result-row.schema.json": ResultRow,
    "summary.schema.json": Summary,
    "evaluation.schema.json": Evaluation,
}


def json_schemas() -> dict[str, str]:
    """The text of every published schema file, as generated from the models now."""
    out = {}
    for name, model in SCHEMA_FILES.items():
        schema = model.model_json_schema(by_alias=True, mode="validation")
        head = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$comment": (
                f"sua-audit run files, schema version {SCHEMA_VERSION}. Generated from "
                "sua_audit/schema.py by `python -m sua_audit.schema --write schemas/`; "
                "do not edit by hand."
            ),
        }
        if VERSION_KEY in schema.get("properties", {}):
            schema["properties"][VERSION_KEY] = {
                "const": SCHEMA_VERSION,
                "title": "Schema Version",
                "type": "integer",
            }
        out[name] = json.dumps({**head, **schema}, indent=2, ensure_ascii=False) + "\n"
    return out


def main(argv: list[str] | None = None) -> int:
    """``python -m sua_audit.schema --write DIR`` writes the schema files; ``--check DIR``
    exits 1 when they differ from what the models generate."""
    parser = argparse.ArgumentParser(prog="python -m sua_audit.schema", description=main.__doc__)
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", metavar="DIR", type=Path)
    group.add_argument("--check", metavar="DIR", type=Path)
    args = parser.parse_args(argv)
    schemas = json_schemas()
    if args.write is not None:
        args.write.mkdir(parents=True, exist_ok=True)
        for name, text in schemas.items():
            (args.write / name).write_text(text, encoding="utf-8")
        return 0
    stale = [
        name
        for name, text in schemas.items()
        if not (args.check / name).is_file()
        or (args.check / name).read_text(encoding="utf-8") != text
    ]
    for name in stale:
        print(f"{args.check / name} is not current", file=sys.stderr)  # noqa: T201
    return 1 if stale else 0


if __name__ == "__main__":
    raise SystemExit(main())
