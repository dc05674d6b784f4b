"""Recompute a run's scores from the request cache, with zero model calls.

The run's recorded configuration is rebuilt (with a new λ or divergence), its perturbations
are regenerated (they are deterministic given the seed; model rewrites come from the cache
too), and every request is answered from the cache through a backend that refuses to call a
model: a request that is not cached stops the rescore with exit code 3 and says which model it
needed. S, H and the baselines do not depend on λ, so a λ-only rescore gives
SUA' = S − λ'H exactly.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sua_audit.backends.base import Backend, Completion, CompletionRequest
from sua_audit.errors import ConfigError, RequestFailed, SuaAuditError

if TYPE_CHECKING:
    from sua_audit.schema import RunRecord


class CacheMissError(SuaAuditError):
    """A request needed by a rescore is not in the cache (exit 3)."""


#: The error kind of a request a rescore found no cached answer for.
NOT_CACHED = "not_cached"


class CacheOnlyBackend(Backend):
    """Presents another backend's identity (so cache keys match) but never calls a model.

    A request the cache lacks fails as :data:`NOT_CACHED` for its item (a failed request is
    never cached, so the items that failed in the run have none); :func:`rescore_run` keeps
    such items failed with the run's own error, and refuses the rescore when an item the run
    did score is missing.
    """

    def __init__(self, inner: Backend, cache_path: Path) -> None:
        self.inner = inner
        self.provider = inner.provider  # type: ignore[misc]
        self.model = getattr(inner, "model", "?")
        self.capabilities = inner.capabilities
        self.cache_path = cache_path

    async def complete(self, request: CompletionRequest) -> Completion:
        """Fail the request: its answer was not in the cache."""
        ident = self.inner.identity()
        raise RequestFailed(
            NOT_CACHED,
            f"no cached answer for {ident.get('provider')}/{ident.get('model')} in "
            f"{self.cache_path}",
        )

    def identity(self) -> dict[str, Any]:
        """The wrapped backend's identity (the cache key's model part)."""
        return self.inner.identity()

    def key_payload(self, request: CompletionRequest) -> dict[str, Any]:
        """The wrapped backend's key payload."""
        return self.inner.key_payload(request)

    def max_concurrency(self) -> int:
        """As the wrapped backend."""
        return self.inner.max_concurrency()

    def describe(self) -> dict[str, Any]:
        """The wrapped backend's description."""
        return self.inner.describe()


def _recorded_or(record: RunRecord, key: str, default: Any) -> Any:
    """A field as the run recorded it, or ``default`` when the run did not record it."""
    return getattr(record, key) if key in record.model_fields_set else default


def _check_same_prompts(now: dict[str, Any], recorded: dict[str, Any]) -> None:
    """Refuse a rescore whose --task-template or --system-prompt file changed since the run:
    its requests would not be the cached ones (a one-line reason, not a cache miss)."""
    for key, flag in (("task_template", "--task-template"), ("system_prompt", "--system-prompt")):
        was = (recorded.get(key) or {}).get("sha256")
        if was and was != ((now.get(key) or {}).get("sha256")):
            raise CacheMissError(
                f"rescore: the run's {flag} file {now[key]['path']} changed since the run "
                f"(sha256 {now[key]['sha256'][:12]}…, the run recorded {was[:12]}…); its "
                "requests would not be the run's. Restore the file or run the audit again."
            )


def default_out(
    run_dir: Path,
    lam: float | None,
    divergence: str | None,
    normalize: str | None = None,
    abstain_on: str | None = None,
    equivalence: str | None = None,
) -> Path:
    """``RUN/rescored-lambda<λ>-<divergence>-<normalize>-on-<score>-eq-<method>``."""
    parts = []
    if lam is not None:
        parts.append(f"lambda{lam:g}")
    if divergence is not None:
        parts.append(divergence)
    if normalize is not None:
        parts.append(normalize)
    if abstain_on is not None:
        parts.append(f"on-{abstain_on}")
    if equivalence is not None:
        parts.append(f"eq-{equivalence}")
    return run_dir / ("rescored-" + ("-".join(parts) or "same"))


def rescore_run(
    run_dir: Path,
    *,
    lam: float | None = None,
    divergence: str | None = None,
    out: Path | None = None,
    cache: Path | None = None,
    normalize: str | None = None,
    abstain_on: str | None = None,
    tau: float | None = None,
    coverage: float | None = None,
    dataset: Path | None = None,
    variants: Path | None = None,
    equivalence: str | None = None,
    equivalence_model: str | None = None,
    equivalence_threshold: float | None = None,
) -> dict[str, Any]:
    """Rescore ``run_dir`` into ``out``; return the new summary (``model_calls`` is 0).

    ``equivalence`` (with its model and threshold) re-clusters the QA answers by meaning: the
    answers come from the cache, as always; the embedding model runs locally and its vectors
    are cached, and a judge is asked (and cached) for verdicts the cache does not hold yet,
    counted in ``results.equivalence``. Neither the audited model nor the rewriter is called.

    ``dataset`` is the run's dataset where it is now, when it moved or the run recorded a
    relative path; its sha256 must match the run's either way. A run made on a variant set
    re-reads the set (``variants``: where it is now, if it moved); its content hash must be
    the one the run recorded.
    """
    from pydantic import ValidationError

    from sua_audit import __version__, paths
    from sua_audit.auditing import run_audit, summarize
    from sua_audit.config import AuditConfig
    from sua_audit.dataset import validate_dataset
    from sua_audit.engine import Generator
    from sua_audit.evaluation.core import EvaluationError
    from sua_audit.parts import recorded_config
    from sua_audit.results import (
        SUMMARY_FILE,
        check_writable_dir,
        new_run_id,
        read_summary,
        typed_summary,
        write_outputs,
    )
    from sua_audit.schema import SCHEMA_VERSION
    from sua_audit.store import Store, utc_now

    if not (run_dir / SUMMARY_FILE).is_file():
        raise EvaluationError(f"{run_dir} is not a finished run (no summary.json).")
    # Read through its model; the blocks copied into the new summary (config, model,
    # dataset) are copied as written, key for key.
    written = read_summary(run_dir)
    old = typed_summary(written)
    if old.config is None or "dataset" not in old.config.model_fields_set:
        raise EvaluationError(f"{run_dir}/summary.json records no config; it cannot be rescored.")
    old_config = old.config
    recorded = dict(written["config"])
    if dataset is not None:
        recorded["dataset"] = str(Path(dataset).resolve())
    elif not Path(recorded["dataset"]).is_file():
        raise ConfigError(
            f"rescore: the run's dataset {recorded['dataset']} is not there (moved, or a "
            "relative path from another working directory). Pass --dataset PATH; its sha256 "
            "is checked against the run's."
        )
    if recorded.get("variants"):
        from sua_audit.variants import REWRITE_OPTIONS

        # A run on a variant set records no rewrite options (it rewrote nothing).
        for key, _ in REWRITE_OPTIONS:
            if recorded.get(key) is None:
                recorded.pop(key, None)
        if variants is not None:
            recorded["variants"] = str(Path(variants).resolve())
        elif not Path(recorded["variants"]).is_file():
            raise ConfigError(
                f"rescore: the run's variant set {recorded['variants']} is not there (moved?). "
                "Pass --variants PATH; its content hash is checked against the run's."
            )
    elif variants is not None:
        raise ConfigError(
            f"rescore: --variants {variants}: the run was not made on a variant set (its "
            "variants were made at run time); drop --variants."
        )
    changed = {
        "lam": lam,
        "divergence": divergence,
        "normalize": normalize,
        "abstain_on": abstain_on,
    }
    recorded.update({k: v for k, v in changed.items() if v is not None})
    if tau is not None or coverage is not None:
        recorded["tau"], recorded["coverage"] = tau, coverage
    elif abstain_on is not None and abstain_on != _recorded_or(old_config, "abstain_on", "sua"):
        # A threshold chosen for another score does not carry over.
        recorded["tau"] = None
    if equivalence is not None and equivalence != recorded.get("equivalence", "exact"):
        # A threshold or judge chosen for another method does not carry over.
        recorded["equivalence_threshold"] = None
        recorded["equivalence_model"] = None
    changed = {
        "equivalence": equivalence,
        "equivalence_model": equivalence_model,
        "equivalence_threshold": equivalence_threshold,
    }
    recorded.update({k: v for k, v in changed.items() if v is not None})
    recorded["cache_mode"] = "use"
    try:
        config = AuditConfig(**recorded)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"]))
        msg = str(first["msg"]).removeprefix("Value error, ")
        raise ConfigError(f"rescore: {where + ': ' if where else ''}{msg}") from exc
    if old_config.cache_mode == "off":
        raise CacheMissError(
            "rescore: the run was made with --cache-mode off, so its answers are not cached."
        )
    info = validate_dataset(
        config.dataset, limit=config.limit, max_line_bytes=config.max_line_bytes
    )
    from sua_audit.parts import check_abstention_score, check_prompts

    check_abstention_score(config, info)
    _check_same_prompts(check_prompts(config, info).record(), old.prompts or {})
    recorded_sha = old.dataset.sha256 if old.dataset is not None else None
    if recorded_sha and recorded_sha != info.sha256:
        raise CacheMissError(
            f"rescore: {config.dataset} changed since the run (sha256 differs); rescoring it "
            "would not reproduce the run. Restore the file or run the audit again."
        )
    variant_set = None
    if config.variants:
        from sua_audit.variants import prepare_for_run

        variant_set = prepare_for_run(config, info)
        recorded_set = old.variants.sha256 if old.variants is not None else None
        if recorded_set != variant_set.content_sha256:
            raise CacheMissError(
                f"rescore: the variant set {config.variants} is not the one the run audited "
                f"(content sha256 {variant_set.content_sha256[:12]}…, the run recorded "
                f"{str(recorded_set)[:12]}…): it was rebuilt or edited since. Restore it, or "
                "run the audit again on the new set."
            )
    cache_path = Path(cache or old.cache or paths.default_cache_path())
    if not cache_path.is_file():
        raise CacheMissError(f"rescore: the cache {cache_path} does not exist.")
    from sua_audit.parts import (
        build_backend,
        check_equivalence_extras,
        equivalence_backend,
        make_equivalence,
    )

    check_equivalence_extras(config)
    out = out or default_out(run_dir, lam, divergence, normalize, abstain_on, equivalence)
    check_writable_dir(out, "--out")
    backend = CacheOnlyBackend(build_backend(config.model, config, audited=True), cache_path)
    from sua_audit.perturbation import rewriter_kinds

    rewriter_backend = None
    if variant_set is None and rewriter_kinds().intersection(config.plan.slots):
        rewriter_backend = (
            backend
            if config.rewriter_model == config.model
            else CacheOnlyBackend(build_backend(config.rewriter_model, config), cache_path)
        )
    started = utc_now()
    t0 = time.perf_counter()
    store = Store.open(cache_path)
    try:
        generator = Generator(backend, store, cache_mode="use")
        rewriter = (
            Generator(rewriter_backend, store, cache_mode="use") if rewriter_backend else None
        )
        # The judge is a real backend: verdicts the cache lacks are asked for (and cached).
        judge_backend = equivalence_backend(config, backend.inner)
        judge = Generator(judge_backend, store, cache_mode="use") if judge_backend else None
        equivalence_method = make_equivalence(config, generator, judge)

        async def audit_then_close() -> Any:
            # A hosted judge's connections belong to this event loop: close them in it.
            try:
                return await run_audit(
                    config, info, generator, rewriter, variant_set, equivalence_method
                )
            finally:
                if judge is not None:
                    await judge.backend.aclose()

        outcome = asyncio.run(audit_then_close())
    finally:
        store.close()
    run_errors = _reconcile_failures(run_dir, written, outcome, cache_path)
    summary: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "run_id": new_run_id(),
        "rescored_from": {"run_id": old.run_id, "path": str(run_dir)},
        "tool_version": __version__,
        "config": recorded_config(config),
        "model": written.get("model"),
        "dataset": written.get("dataset"),
        "variants": None if variant_set is None else variant_set.record(),
        "prompts": outcome.prompts,
        "results": summarize(outcome),
        "model_calls": generator.stats.model_calls,
        "cache_hits": generator.stats.cache_hits,
        "failed_requests": generator.stats.failed,
        "tokens": {"prompt": 0, "completion": 0},
        "cost": {"usd": None, "price_source": None, "note": "rescore: no model calls"},
        "rewriter_calls": None if rewriter is None else rewriter.stats.model_calls,
        "rewriter_cache_hits": None if rewriter is None else rewriter.stats.cache_hits,
        "cache": str(cache_path),
        "out_dir": str(out),
        "started_utc": started,
        "finished_utc": utc_now(),
        "wall_seconds": round(time.perf_counter() - t0, 3),
    }
    try:
        write_outputs(out, _with_run_errors(outcome.rows(), run_errors), summary)
    finally:
        outcome.close()
    return summary


def _reconcile_failures(
    run_dir: Path, written: dict[str, Any], outcome: Any, cache_path: Path
) -> dict[str, dict[str, Any]]:
    """The run's own error of each item that failed in the rescore for lack of a cached
    answer; :class:`CacheMissError` when such an item was scored in the run, or when more
    rewrites failed than in the run (their answers should be cached: another cache, or one
    pruned since)."""
    from sua_audit.results import read_results

    def rewriter_errors(perturbation: Any) -> dict[str, int]:
        rewrites = (perturbation or {}).get("rewrites") or {}
        return {
            kind: int((stats.get("rejected") or {}).get("rewriter_error", 0))
            for kind, stats in rewrites.items()
        }

    was = rewriter_errors((written.get("results") or {}).get("perturbation"))
    for kind, n in rewriter_errors(outcome.perturbation).items():
        if n > was.get(kind, 0):
            raise CacheMissError(
                f"rescore: rewrites of kind {kind} the run made are not in the cache "
                f"{cache_path}; rescore makes no model calls. Rerun `sua-audit run` with the "
                "original options (same --cache) to fill it."
            )
    if not outcome.totals.failures.get(NOT_CACHED):
        return {}  # every item's answers were cached: no need to read the rows back
    missing = [
        row["id"]
        for row in outcome.rows()
        if row["status"] == "failed" and row["error"]["kind"] == NOT_CACHED
    ]
    if not missing:
        return {}
    failed_in_run = {
        row["id"]: row["error"]
        for row in read_results(run_dir, written)
        if row.get("status") == "failed" and isinstance(row.get("error"), dict)
    }
    scored = [i for i in missing if i not in failed_in_run]
    if scored:
        raise CacheMissError(
            f"rescore: answers of {len(scored)} item(s) the run scored are not in the cache "
            f"{cache_path} (first: {scored[0]!r}); rescore makes no model calls. Rerun "
            "`sua-audit run` with the original options (same --cache) to fill it."
        )
    failures = outcome.totals.failures
    for item_id in missing:
        failures[NOT_CACHED] -= 1
        failures[failed_in_run[item_id]["kind"]] += 1
    if failures[NOT_CACHED] <= 0:
        del failures[NOT_CACHED]
    return {i: failed_in_run[i] for i in missing}


def _with_run_errors(
    rows: Iterator[dict[str, Any]], run_errors: dict[str, dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """The rescored rows, each item that failed in the run carrying the run's error."""
    for row in rows:
        if row["id"] in run_errors and row["status"] == "failed":
            row["error"] = run_errors[row["id"]]
        yield row
