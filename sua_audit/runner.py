"""One audit run end to end: validate, load the model, run, write outputs, record the run.

``audit()`` is the library entry point the CLI calls; it owns the order that keeps the
promises of the command line: the dataset is validated before any model loads (bad input costs
nothing and writes nothing), every finished request is flushed to the cache even when the run
fails or is interrupted, and outputs appear only when complete.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from sua_audit import __version__, paths
from sua_audit.config import AuditConfig
from sua_audit.engine import Generator, Progress
from sua_audit.errors import ConfigError
from sua_audit.numbers import short, usd
from sua_audit.parts import (
    build_backend,
    check_abstention_score,
    check_equivalence_extras,
    check_prompts,
    equivalence_backend,
    make_equivalence,
    recorded_config,
)
from sua_audit.parts import rewriter_backend as build_rewriter
from sua_audit.pricing import LOCAL
from sua_audit.store import Store, utc_now

__all__ = ["audit", "make_config"]


def make_config(dataset: Path | str, **options: Any) -> AuditConfig:
    """Build a validated AuditConfig; bad values become a one-line ConfigError."""
    try:
        return AuditConfig(
            dataset=str(dataset), **{k: v for k, v in options.items() if v is not None}
        )
    except ValidationError as exc:
        first = exc.errors()[0]
        msg = str(first["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in first["loc"])
        if not where:
            raise ConfigError(f"{msg}. See sua-audit run --help.") from exc
        flag = "--" + where.replace("_", "-").replace("lam", "lambda")
        raise ConfigError(f"{flag}: {msg}. See sua-audit run --help.") from exc


def audit(
    config: AuditConfig,
    *,
    cache_path: Path | None = None,
    out_dir: Path | None = None,
    progress: Progress | None = None,
    backend: Any | None = None,
    require_gold: str | None = None,
    on_notice: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run one audit and write ``results.jsonl`` and ``summary.json``; return the summary.

    Prints nothing: the cost estimates of priced (hosted) models go to ``on_notice``, one line
    each, before any model call.

    ``require_gold`` names an option that needs gold answers (``--target-risk``): a dataset
    without any is refused before any model call. The summary's ``status`` is ``complete``,
    ``partial`` or ``failed`` (see :func:`sua_audit.results.run_status`); a failed run's
    outputs are written.
    """
    from sua_audit.auditing import summarize
    from sua_audit.dataset import validate_dataset
    from sua_audit.results import check_writable_dir, new_run_id, run_status, write_outputs
    from sua_audit.schema import SCHEMA_VERSION

    if config.limit is not None and config.limit <= 0:
        raise ConfigError("--limit must be at least 1.")
    info = validate_dataset(
        config.dataset, limit=config.limit, max_line_bytes=config.max_line_bytes
    )
    if require_gold and not info.n_with_gold:
        raise ConfigError(
            f"{require_gold} needs gold answers (label / answers), and {config.dataset} has "
            "none. Add them, or drop the option: the audit itself needs no gold."
        )
    if config.batch and config.cache_mode == "off":
        raise ConfigError(
            "--batch keeps its batch ids in the cache so a rerun can resume them; it cannot "
            "run with --cache-mode off. Drop one of the two."
        )
    check_abstention_score(config, info)
    check_equivalence_extras(config)
    check_prompts(config, info)
    variant_set = None
    if config.variants:
        from sua_audit.variants import prepare_for_run

        # A bad set, or one that does not hold this dataset's items, fails before any call.
        variant_set = prepare_for_run(config, info)
    elif config.instruction_attacks:
        from sua_audit.perturbation.adversarial import load_instruction_attacks

        load_instruction_attacks(config.instruction_attacks)  # a bad file fails before any call
    cost_plan = plan_cost(info, config)
    run_id = new_run_id()
    out_dir = out_dir or Path("audits") / "runs" / run_id
    # Where the results go is checked before any model call: a bad --out or --cache must not
    # be found after the requests are paid for.
    check_writable_dir(out_dir, "--out")
    if config.cache_mode != "off":
        cache_path = Path(cache_path or paths.default_cache_path())
    started = utc_now()
    t0 = time.perf_counter()
    dataset = {
        # Absolute, so that rescore finds it from any working directory (sha256 checked).
        "path": str(info.resolved_path),
        "sha256": info.sha256,
        "items": info.n_items,
        "tasks": info.tasks,
        "items_with_gold": info.n_with_gold,
    }
    if backend is None:
        # Built before the cache opens: a bad model spec or a missing key leaves no trace.
        # Local weights load lazily, on the first request that the cache cannot answer.
        backend = build_backend(config.model, config, audited=True)
    rewriter_backend = build_rewriter(config, backend)
    judge_backend = equivalence_backend(config, backend)
    if on_notice is not None:
        for line in cost_plan.notices():
            on_notice(line)
    store = None
    if cache_path is not None and config.cache_mode != "off":
        store = Store.open(cache_path)
    try:
        if store is not None:
            store.begin_run(run_id, recorded_config(config), dataset)
        generator = Generator(
            backend,
            store,
            cache_mode=config.cache_mode,
            progress=progress,
            spend_limit=cost_plan.spend_limit(config.max_cost),
        )
        # Its own generator (own counts, no progress bar) over the shared cache; the same
        # backend object when the rewriter is the audited model, so weights load once.
        rewriter = (
            Generator(rewriter_backend, store, cache_mode=config.cache_mode)
            if rewriter_backend is not None
            else None
        )
        judge = (
            Generator(judge_backend, store, cache_mode=config.cache_mode)
            if judge_backend is not None
            else None
        )
        status = "failed"
        try:
            outcome = asyncio.run(
                _run_and_close(config, info, generator, rewriter, variant_set, judge)
            )
            status = "finished"
        except KeyboardInterrupt:
            status = "interrupted"
            raise
        finally:
            if store is not None and status != "finished":
                store.finish_run(run_id, status)
        results = summarize(outcome)
        summary: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION,
            "run_id": run_id,
            "status": run_status(results, config.max_failed_share),
            "tool_version": __version__,
            "config": recorded_config(config),
            "model": backend.describe(),
            "dataset": dataset,
            "variants": None if variant_set is None else variant_set.record(),
            "prompts": outcome.prompts,
            "results": results,
            "model_calls": generator.stats.model_calls,
            "cache_hits": generator.stats.cache_hits,
            "failed_requests": generator.stats.failed,
            "tokens": {
                "prompt": generator.stats.prompt_tokens,
                "completion": generator.stats.completion_tokens,
            },
            "cost": cost_plan.summary(
                generator.stats.prompt_tokens,
                generator.stats.completion_tokens,
                None
                if rewriter is None or rewriter is generator
                else (rewriter.stats.prompt_tokens, rewriter.stats.completion_tokens),
                None
                if judge is None
                else (judge.stats.prompt_tokens, judge.stats.completion_tokens),
            ),
            "rewriter_calls": None if rewriter is None else rewriter.stats.model_calls,
            "rewriter_cache_hits": None if rewriter is None else rewriter.stats.cache_hits,
            "cache": str(store.path) if store is not None else None,
            "out_dir": str(out_dir),
            "started_utc": started,
            "finished_utc": utc_now(),
            "wall_seconds": round(time.perf_counter() - t0, 3),
        }
        try:
            write_outputs(out_dir, outcome.rows(), summary)
        finally:
            outcome.close()
        if store is not None:
            store.finish_run(
                run_id, "finished" if summary["status"] != "failed" else "failed", summary
            )
        return summary
    finally:
        if store is not None:
            store.close()


class CostPlan:
    """The pre-run estimate and the price used for the run's actual cost."""

    def __init__(
        self,
        price: Any,
        estimate: dict[str, Any],
        rewriter_price: Any = None,
        judge_price: Any = None,
    ) -> None:
        self.price = price
        self.estimate = estimate
        self.rewriter_price = rewriter_price
        self.judge_price = judge_price

    def summary(
        self,
        prompt_tokens: int,
        completion_tokens: int,
        rewriter_tokens: tuple[int, int] | None = None,
        judge_tokens: tuple[int, int] | None = None,
    ) -> dict[str, Any]:
        """Cost of the calls made this run (cache hits are free), and the estimate; the
        rewriter's and the answer judge's apart, each at its own price."""
        usd = None if self.price is None else self.price.cost(prompt_tokens, completion_tokens)
        out: dict[str, Any] = {
            "usd": None if usd is None else round(usd, 6),
            "price_source": None if self.price is None else self.price.source,
            "estimate_usd": self.estimate["usd"],
            "worst_case_usd": self.estimate["worst_case_usd"],
        }
        helpers = (
            ("rewriter", self.rewriter_price, rewriter_tokens),
            ("judge", self.judge_price, judge_tokens),
        )
        for part, price, tokens in helpers:
            est = self.estimate.get(part)
            if est is None:
                continue
            spent = None
            if price is not None and tokens is not None:
                spent = round(price.cost(*tokens), 6)
            out[part] = {
                "usd": spent,
                "prompt_tokens": None if tokens is None else tokens[0],
                "completion_tokens": None if tokens is None else tokens[1],
                "estimate_usd": est["usd"],
                "worst_case_usd": est["worst_case_usd"],
                "price_source": est["price_source"],
            }
        return out

    def notices(self) -> list[str]:
        """The estimate as lines for a person, before the run: the audited model's (when it
        is priced, i.e. hosted) and the rewriter's and judge's (when priced)."""
        lines = []
        est = self.estimate
        if self.price is not None and self.price.source != LOCAL:
            lines.append(
                f"cost estimate: {usd(est['usd'])} for {est['requests']} requests "
                f"(~{est['prompt_tokens']} prompt + {est['completion_tokens']} completion tokens; "
                f"up to {usd(est['worst_case_usd'])} if the server needs every fallback; prices "
                f"from {est['price_source']}; cached requests are free)"
            )
        for part in ("rewriter", "judge"):
            rew = est.get(part)
            if rew is not None and rew["price_source"] not in (None, LOCAL):
                lines.append(
                    f"{part} estimate: {usd(rew['usd'])} for {rew['requests']} requests to "
                    f"{rew['model']} (up to {usd(rew['worst_case_usd'])} for "
                    f"{rew['worst_case_requests']}; prices from {rew['price_source']})"
                )
        return lines

    def spend_limit(self, max_cost: float | None) -> tuple[Any, float] | None:
        """What the generator enforces on real usage: (token pricing, --max-cost)."""
        if max_cost is None or self.price is None:
            return None
        return self.price.cost, max_cost


def plan_cost(info: Any, config: AuditConfig) -> CostPlan:
    """Price the run before any model loads; refuse it when above ``--max-cost``."""
    from sua_audit.errors import CostLimitError
    from sua_audit.pricing import estimate, judge_estimate, lookup, rewriter_estimate

    price = lookup(config.model, config)
    est = estimate(info, config, price)
    # The rewriter is priced on its own (--price-in/--price-out are the audited model's).
    rewriter_price = (
        price if config.rewriter_model == config.model else lookup(config.rewriter_model)
    )
    # A run on a variant set rewrites nothing.
    est["rewriter"] = None if config.variants else rewriter_estimate(info, config, rewriter_price)
    # So is the judge of --equivalence judge.
    judge_price = None
    if config.equivalence == "judge" and config.equivalence_model is not None:
        judge_price = (
            price if config.equivalence_model == config.model else lookup(config.equivalence_model)
        )
    est["judge"] = judge_estimate(info, config, judge_price)
    if config.max_cost is not None:
        if price is None:
            raise ConfigError(
                f"--max-cost: no price is known for {config.model}. Pass --price-in and "
                "--price-out (USD per 1M tokens), or install the litellm extra for its table."
            )
        total = est["usd"]
        for part, model in (
            ("rewriter", config.rewriter_model),
            ("judge", config.equivalence_model),
        ):
            if est[part] is None:
                continue
            if est[part]["usd"] is None:
                raise ConfigError(
                    f"--max-cost: no price is known for the {part} {model}. Choose a {part} "
                    "in LiteLLM's price table, or a local one."
                )
            total += est[part]["usd"]
        if total > config.max_cost:
            helpers = [
                f"{usd(est[part]['usd'])} for {what}"
                for part, what in (("rewriter", "rewrites"), ("judge", "the answer judge"))
                if est[part] is not None
            ]
            rewriting = f", of which {' and '.join(helpers)}" if helpers else ""
            raise CostLimitError(
                f"Estimated cost {usd(total)} ({est['requests']} requests, "
                f"{est['prompt_tokens']} prompt + {est['completion_tokens']} completion tokens"
                f"{rewriting}) is above --max-cost ${short(config.max_cost)}. Lower --limit, "
                "--perturbations or --samples, or raise --max-cost."
            )
    return CostPlan(price, est, rewriter_price, judge_price)


async def _run_and_close(
    config: AuditConfig,
    info: Any,
    generator: Generator,
    rewriter: Generator | None,
    variant_set: Any = None,
    judge: Generator | None = None,
) -> Any:
    from sua_audit.auditing import run_audit

    try:
        equivalence = make_equivalence(config, generator, judge)
        return await run_audit(config, info, generator, rewriter, variant_set, equivalence)
    finally:
        await generator.backend.aclose()
        if rewriter is not None and rewriter.backend is not generator.backend:
            await rewriter.backend.aclose()
        if judge is not None and judge.backend not in (
            generator.backend,
            None if rewriter is None else rewriter.backend,
        ):
            await judge.backend.aclose()
