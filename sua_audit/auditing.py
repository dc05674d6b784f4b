"""The audit pipeline: dataset → perturbations → model requests → scores → abstention → results.

Items are processed in chunks so that memory stays flat on large datasets: every request of a
chunk is issued at once (the backend batches them), the chunk's scores are computed, and its
per-item result rows are spooled to a temporary file. Only a few numbers per item stay in
memory, for the summary and for the abstention threshold (which may depend on all scores, for
``coverage``); the rows are read back, given their abstention decision, and written out at the
end.

An item whose requests failed for good (after the backend's retries) gets a row with
``status: "failed"`` and the reason; it is left out of every metric and counted in the summary.
Nothing of it is cached, so rerunning the same command retries exactly those requests.
"""

from __future__ import annotations

import asyncio
import json
import math
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import numpy as np

from sua_audit import tasks
from sua_audit.backends.base import Completion, CompletionRequest, GenerationParams
from sua_audit.config import AuditConfig
from sua_audit.dataset import DatasetInfo, Item, iter_items
from sua_audit.engine import Generator
from sua_audit.equivalence import Equivalence, ExactMatch, build_equivalence, cluster_by_meaning
from sua_audit.errors import RequestFailed
from sua_audit.numbers import short, sig
from sua_audit.perturbation import (
    PerturbContext,
    Variant,
    kind_traits,
    perturb_item,
    rewriter_kinds,
)
from sua_audit.schema import MULTI_ANSWER, ROW_SCORES
from sua_audit.scoring import (
    DEFAULT_TAU,
    ItemScores,
    abstain,
    cluster_answers,
    cluster_distribution,
    coverage_threshold,
    divergence,
    entropy,
    extract_answer,
    normalize_answer,
    normalize_logprobs,
    score_distributions,
    score_samples,
)
from sua_audit.scoring.ambiguity import collapse_summary, item_collapse
from sua_audit.scoring.qa import answer_contains

if TYPE_CHECKING:
    from sua_audit.variants import SetEntry as VariantSetEntry
    from sua_audit.variants import VariantSet

CHUNK_ITEMS = 32

#: The per-item scores of a row: the run files' list (sua_audit.schema), defined once there.
SCORE_FIELDS = ROW_SCORES


def requests_per_item(item_task: str, config: AuditConfig) -> int:
    """Model requests one item needs at most (for the progress total); with adaptive
    sampling a QA variant whose first round settles skips its second request."""
    per_variant = 1 if item_task != "qa" else 1 + (config.samples > 0)
    if item_task == "qa" and first_round(config) < config.samples:
        per_variant += 1
    return (config.k + 1) * per_variant


def first_round(config: AuditConfig) -> int:
    """QA samples drawn for every variant: all ``k``, or with ``adaptive_samples`` the first
    ``ceil(k/2)`` (the rest only for variants they do not settle, see :func:`settled`).
    Below k = 3 there is nothing to save: all k."""
    k = config.samples
    if not config.adaptive_samples or k < 3:
        return k
    return math.ceil(k / 2)


def settled(greedy: str, samples: Sequence[str]) -> bool:
    """The adaptive-sampling stop rule: a variant's answers are settled when the greedy answer
    and every sample of the first round are the same answer after normalisation (exact
    match, so the same cluster under any meaning equivalence too). More samples could still
    find a rarer answer; the benchmark in docs/benchmarks.md measures what stopping costs."""
    key = normalize_answer(extract_answer(greedy))
    return all(normalize_answer(extract_answer(t)) == key for t in samples)


@dataclass
class _Totals:
    """Running sums for the summary, so that per-item rows need not stay in memory."""

    tasks: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)
    score_sums: dict[str, float] = field(default_factory=dict)
    score_counts: Counter[str] = field(default_factory=Counter)
    kind_sums: dict[str, float] = field(default_factory=dict)
    kind_counts: Counter[str] = field(default_factory=Counter)
    paths: Counter[str] = field(default_factory=Counter)
    ambiguity: list[dict[str, Any]] = field(default_factory=list)
    """Per item with several valid readings: the few fields collapse_summary needs."""

    def add(self, row: dict[str, Any]) -> None:
        self.tasks[row["task"]] += 1
        if row["status"] == "failed":
            self.failures[row["error"]["kind"]] += 1
            return
        if row.get("ambiguity"):
            amb = row["ambiguity"]
            self.ambiguity.append(
                {k: amb.get(k) for k in ("applicable", "collapsed", "uncovered", "kappa")}
            )
        for k in SCORE_FIELDS:
            if row[k] is not None:
                self.score_sums[k] = self.score_sums.get(k, 0.0) + row[k]
                self.score_counts[k] += 1
        for kind, value in row["sensitivity_by_kind"].items():
            self.kind_sums[kind] = self.kind_sums.get(kind, 0.0) + value
            self.kind_counts[kind] += 1
        for v in row["variants"]:
            if v.get("path"):
                self.paths[v["path"]] += 1


@dataclass
class _Sampling:
    """How many QA samples adaptive sampling drew, against all ``k`` for every variant."""

    variants: int = 0
    settled: int = 0
    samples_drawn: int = 0
    samples_full: int = 0

    def add(
        self,
        plans: Sequence[tuple[Item, Sequence[Variant], int, int]],
        results: Sequence[Completion | RequestFailed],
        config: AuditConfig,
    ) -> None:
        first = first_round(config)
        for item, _, start, n in plans:
            if item.task != "qa":
                continue
            for at in range(start + 1, start + n, 2):
                answer = results[at]
                if isinstance(answer, RequestFailed):
                    continue
                drawn = len(_texts(answer))
                self.variants += 1
                self.settled += drawn <= first
                self.samples_drawn += drawn
                self.samples_full += config.samples

    def record(self, config: AuditConfig) -> dict[str, Any] | None:
        """The summary block (``None`` when every variant got all k samples)."""
        if first_round(config) >= config.samples:
            return None
        return {
            "rule": "adaptive",
            "first_round": first_round(config),
            "k": config.samples,
            "variants": self.variants,
            "settled_after_first_round": self.settled,
            "samples_drawn": self.samples_drawn,
            "samples_full": self.samples_full,
            "samples_saved_share": (
                1 - self.samples_drawn / self.samples_full if self.samples_full else None
            ),
        }


@dataclass
class AuditOutcome:
    """The run's per-item rows (spooled on disk) and what the summary needs (in memory)."""

    tau: float = DEFAULT_TAU
    abstain_on: str = "sua"
    rule: str = "tau"
    """How τ was set: ``tau`` (fixed or the score's default) or ``coverage``."""
    coverage_target: float | None = None
    decision_note: str | None = None
    """Why no decision was made (a fitted score that could not be fitted), else ``None``."""
    normalize: str = "rank"
    lam: float = 1.0
    confident_threshold: float = 0.7
    wall_seconds: float = 0.0
    perturbation: dict[str, Any] = field(default_factory=dict)
    """The plan, rewrite acceptance per kind, the meaning filter and templates used."""
    prompts: dict[str, Any] = field(default_factory=dict)
    """The audited model's prompts (:meth:`sua_audit.tasks.TaskPrompts.record`)."""
    equivalence: dict[str, Any] = field(default_factory=dict)
    """How QA answers were clustered (method, threshold, model), for the summary."""
    sua: list[float] = field(default_factory=list)
    """Per item, in plan order: SUA (NaN when unscored or failed)."""
    sensitivity: list[float] = field(default_factory=list)
    entropy: list[float] = field(default_factory=list)
    label_free: list[dict[str, float]] = field(default_factory=list)
    """Per item: every score the abstention rule may use without fitting (empty when failed)."""
    confident_flip: list[bool | None] = field(default_factory=list)
    confident: list[bool | None] = field(default_factory=list)
    flipped: list[bool | None] = field(default_factory=list)
    sua_norm: list[float] = field(default_factory=list)
    """Filled by :func:`decide` once every item is scored."""
    decision: list[float] = field(default_factory=list)
    """Per item: the abstention score (filled by :func:`decide`)."""
    correct: list[bool | None] = field(default_factory=list)
    robust: list[bool | None] = field(default_factory=list)
    failed: list[bool] = field(default_factory=list)
    totals: _Totals = field(default_factory=_Totals)
    sampling: _Sampling = field(default_factory=lambda: _Sampling())
    sampling_record: dict[str, Any] | None = None
    """Adaptive sampling's counts for the summary (``None`` when it was off)."""
    _spool: IO[str] | None = None

    def add(self, row: dict[str, Any]) -> None:
        """Record one item's row (without its abstention decision)."""
        if self._spool is None:
            self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
        self._spool.write(json.dumps(row, ensure_ascii=False) + "\n")
        failed = row["status"] == "failed"
        self.failed.append(failed)
        self.sua.append(math.nan if failed or row["sua"] is None else row["sua"])
        self.sensitivity.append(_num(row["sensitivity"]))
        self.entropy.append(_num(row["entropy"]))
        scores = {} if failed else {k: _num(row[k]) for k in SCORE_FIELDS}
        if not failed:
            for kind, value in row["sensitivity_by_kind"].items():
                scores["s_" + kind] = _num(value)
        self.label_free.append(scores)
        self.confident_flip.append(row.get("confident_flip"))
        conf = row.get("confidence")
        self.confident.append(None if conf is None else conf >= self.confident_threshold)
        self.flipped.append(None if failed else bool(row.get("flipped_variants")))
        self.correct.append(None if failed else row["correct"])
        self.robust.append(
            None
            if failed or row["correct"] is None
            else all(
                v["correct"] for v in row["variants"] if MULTI_ANSWER not in v.get("flags", ())
            )
        )
        self.totals.add(row)

    def abstains(self, i: int) -> bool | None:
        """Item ``i``'s abstention decision (``None`` for a failed item, or when no decision
        could be made)."""
        if self.failed[i] or self.decision_note is not None:
            return None
        score = self.decision[i] if i < len(self.decision) else self.sua[i]
        return abstain(score, self.tau)

    def rows(self) -> Iterator[dict[str, Any]]:
        """The rows in plan order, each with its ``abstain`` decision."""
        if self._spool is None:
            return
        self._spool.flush()
        self._spool.seek(0)
        for i, line in enumerate(self._spool):
            row = json.loads(line)
            if i < len(self.sua_norm) and not self.failed[i]:
                row["sua_norm"] = _finite(self.sua_norm[i])
            if i < len(self.decision) and not self.failed[i]:
                # The value the abstention rule compared with τ (for fitted scores too).
                row["abstain_score"] = _finite(self.decision[i])
            row["abstain"] = self.abstains(i)
            yield row

    @property
    def items(self) -> list[dict[str, Any]]:
        """All rows as a list (small runs and tests; large runs should iterate :meth:`rows`)."""
        return list(self.rows())

    def close(self) -> None:
        """Delete the spool file."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None


def _num(value: Any) -> float:
    return math.nan if value is None else float(value)


def chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    """The items in lists of ``size`` (the last one shorter)."""
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _item_requests(
    item: Item,
    variants: Sequence[Variant],
    config: AuditConfig,
    prompts: tasks.TaskPrompts | None = None,
) -> list[CompletionRequest]:
    """Per variant: QA — the greedy answer, then one request for all k samples;
    classification / NLI — one choice-scoring request (``n``/``params`` drive a backend's
    sampling fallback when it cannot score choices)."""
    requests: list[CompletionRequest] = []
    sampling = GenerationParams(
        temperature=config.temperature, max_tokens=config.max_tokens, seed=config.seed
    )
    if item.task == "qa":
        greedy = GenerationParams(temperature=0.0, max_tokens=config.max_tokens)
        for v in variants:
            messages = tasks.build_messages(item.task, v.fields, None, prompts)
            requests.append(CompletionRequest(messages, greedy))
            if config.samples > 0:
                requests.append(
                    CompletionRequest(messages, sampling, sample_index=1, n=first_round(config))
                )
    else:
        choices, _ = tasks.choice_table(item.labels or ())
        for v in variants:
            messages = tasks.build_messages(item.task, v.fields, item.labels, prompts)
            requests.append(
                CompletionRequest(messages, sampling, choices=choices, n=max(config.samples, 1))
            )
    return requests


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _mean(values: list[float]) -> float | None:
    finite = [v for v in values if math.isfinite(v)]
    return math.fsum(finite) / len(finite) if finite else None


def _qa_answers(
    completions: Sequence[Completion], n_variants: int, config: AuditConfig
) -> tuple[list[str], list[list[str]], list[str | None]]:
    """Per variant of a QA item: the greedy answer, the sampled answers and the answer path."""
    per = 1 + (config.samples > 0)
    greedy = [extract_answer(completions[i * per].text or "") for i in range(n_variants)]
    sampled = [
        [extract_answer(t) for t in _texts(completions[i * per + 1])] if per == 2 else []
        for i in range(n_variants)
    ]
    paths = [completions[i * per + per - 1].path for i in range(n_variants)]
    return greedy, sampled, paths


def qa_answer_groups(
    completions: Sequence[Completion], n_variants: int, config: AuditConfig
) -> list[list[str]]:
    """Per variant: the greedy answer, then the samples (the groups clustered jointly)."""
    greedy, sampled, _ = _qa_answers(completions, n_variants, config)
    return [[g, *s] for g, s in zip(greedy, sampled, strict=True)]


def _score_item(
    item: Item,
    variants: Sequence[Variant],
    completions: Sequence[Completion],
    config: AuditConfig,
    clusters: tuple[list[list[int]], list[str]] | None = None,
) -> dict[str, Any]:
    """One item's result row. ``clusters``: the QA answers' meaning clusters (ids per group,
    representatives) as :func:`~sua_audit.equivalence.cluster_by_meaning` made them from
    :func:`qa_answer_groups`; ``None`` clusters by exact match."""
    # Variants flagged multi_answer (ambiguity rewrites) change the question on purpose: they
    # stay out of S and are scored on their own (their entropy, their divergence).
    core = [i for i, v in enumerate(variants) if i == 0 or MULTI_ANSWER not in v.flags]
    side = [i for i in range(len(variants)) if i not in core]
    kinds = [variants[i].kind for i in core[1:]]
    variant_rows: list[dict[str, Any]] = []
    scores: ItemScores
    dists_all: list[Any]
    if item.task == "qa":
        greedy, sampled, paths = _qa_answers(completions, len(variants), config)
        # Greedy answers join the clustering so every prediction has a cluster id.
        groups = [[g, *s] for g, s in zip(greedy, sampled, strict=True)]
        ids, reps = clusters if clusters is not None else cluster_answers(groups)
        exact_entropy = None
        if config.equivalence != "exact":
            # Semantic entropy over exact-match clusters too, so the evaluation shows what the
            # meaning clusters change (the clean variant's samples, as semantic_entropy).
            exact_ids, exact_reps = cluster_answers([groups[0]])
            exact_entropy = float(entropy(cluster_distribution(exact_ids[0][1:], len(exact_reps))))
        scores = score_samples(
            [ids[i][1:] for i in core],
            len(reps),
            kinds,
            prediction_clusters=[ids[i][0] for i in core],
            divergence=config.divergence,
            lam=config.lam,
            smoothing=config.smoothing,
        )
        golds = list(item.answers or ())
        for v, g, s, path in zip(variants, greedy, sampled, paths, strict=True):
            variant_rows.append(
                {
                    **v.to_dict(),
                    "prediction": g,
                    "correct": answer_contains(g, golds, question=item.input) if golds else None,
                    "samples": s,
                    "path": path,
                }
            )
        prediction = greedy[0]
        flipped = [i for i in core[1:] if ids[i][0] != ids[0][0]]
        extra: dict[str, Any] = {"clusters": reps}
        if exact_entropy is not None:
            extra["semantic_entropy_exact"] = exact_entropy
        dists_all = [cluster_distribution(g[1:], len(reps)) for g in ids]
        clean_answers = [greedy[0], *sampled[0]]
        ambiguity = item_collapse_or_none(item, answers=clean_answers, entropy=scores.entropy)
    else:
        labels = list(item.labels or ())
        _, owner = tasks.choice_table(labels)
        dists = []
        for c in completions:
            lps = tasks.label_logprobs(c.choice_logprobs or [], owner, len(labels))
            dists.append(normalize_logprobs(lps))
        scores = score_distributions(
            dists[0],
            [dists[i] for i in core[1:]],
            kinds,
            divergence=config.divergence,
            lam=config.lam,
            smoothing=config.smoothing,
        )
        gold = set(item.gold_labels or ())
        for v, p, c in zip(variants, dists, completions, strict=True):
            pred = labels[int(np.argmax(p))]
            variant_rows.append(
                {
                    **v.to_dict(),
                    "prediction": pred,
                    "correct": (pred in gold) if gold else None,
                    "distribution": {
                        lab: round(float(x), 6) for lab, x in zip(labels, p, strict=True)
                    },
                    "path": c.path,
                    **({"label_mass": c.label_mass} if c.label_mass is not None else {}),
                }
            )
        prediction = variant_rows[0]["prediction"]
        flipped = [i for i in core[1:] if variant_rows[i]["prediction"] != prediction]
        extra = {}
        dists_all = dists
        ambiguity = item_collapse_or_none(item, probs=dists[0], entropy=scores.entropy)
    for i, d in zip(core[1:], scores.divergences, strict=True):
        variant_rows[i]["divergence"] = d
    side_entropy = []
    for i in side:
        h = float(entropy(dists_all[i]))
        variant_rows[i]["divergence"] = float(
            divergence(config.divergence, dists_all[0], dists_all[i], smoothing=config.smoothing)
        )
        variant_rows[i]["entropy"] = h
        side_entropy.append(h)
    if side_entropy:
        # Does the model become less sure when the question becomes ambiguous? (> 0: yes)
        extra["ambiguity_entropy_gain"] = float(np.mean(side_entropy)) - scores.entropy
    if ambiguity is not None:
        extra["ambiguity"] = ambiguity
    score_dict = scores.to_dict()
    confidence = 1.0 - scores.max_prob
    row: dict[str, Any] = {
        "id": item.id,
        "task": item.task,
        "status": "ok",
        "input": item.input,
        "prediction": prediction,
        "correct": variant_rows[0]["correct"],
        "gold": list(item.gold_labels or ()) if item.task != "qa" else list(item.answers or ()),
        **{k: _finite(float(score_dict[k])) for k in SCORE_FIELDS},
        "sensitivity_by_kind": score_dict["sensitivity_by_kind"],
        "sua_norm": None,
        "confidence": _finite(confidence),
        "flipped_variants": flipped,
        "confident_flip": bool(flipped) and confidence >= config.confident_threshold,
        "abstain": None,
        **extra,
        "variants": variant_rows,
    }
    if item.task != "qa":
        row["distribution"] = variant_rows[0]["distribution"]
    return row


def item_collapse_or_none(item: Item, **outputs: Any) -> dict[str, Any] | None:
    """Ambiguity collapse of an item with several valid readings; ``None`` for the others."""
    row = item_collapse(item, **outputs)
    return row if row.get("applicable") else None


def _texts(completion: Completion) -> list[str]:
    return list(completion.texts) if completion.texts else [completion.text or ""]


def _failed_row(
    item: Item, variants: Sequence[Variant], results: Sequence[Completion | RequestFailed]
) -> dict[str, Any]:
    """The row of an item some of whose requests failed for good: the first reason, and how
    many of its requests failed."""
    errors = [r for r in results if isinstance(r, RequestFailed)]
    return {
        "id": item.id,
        "task": item.task,
        "status": "failed",
        "input": item.input,
        "error": {**errors[0].to_dict(), "failed_requests": len(errors)},
        "prediction": None,
        "correct": None,
        **{k: None for k in SCORE_FIELDS},
        "sensitivity_by_kind": {},
        "sua_norm": None,
        "confidence": None,
        "flipped_variants": [],
        "confident_flip": None,
        "abstain": None,
        "variants": [v.to_dict() for v in variants],
    }


def perturb_context(config: AuditConfig, rewriter: Generator | None) -> PerturbContext:
    """Budgets, rewriter, templates and meaning check for this run's perturbers."""
    from sua_audit.perturbation.meaning import build_filter
    from sua_audit.prompting import PromptLibrary

    prompts = PromptLibrary(Path(config.prompts_dir) if config.prompts_dir else None)
    uses_model = bool(rewriter_kinds().intersection(config.plan.slots))
    meaning = None
    if uses_model:
        meaning = build_filter(
            config.meaning_filter,
            rewriter,
            prompts,
            threshold=config.meaning_threshold,
            store=rewriter.store if rewriter is not None else None,
            read_cache=rewriter is None or rewriter.cache_mode == "use",
        )
    options: dict[str, Any] = {"rewrite_temperature": config.rewrite_temperature}
    if config.instruction_attacks:
        options["instruction_attacks"] = config.instruction_attacks
    return PerturbContext(
        generator=rewriter if uses_model else None,
        prompts=prompts,
        meaning=meaning,
        budgets=config.plan.budgets,
        options=options,
    )


def _perturbation_summary(config: AuditConfig, context: PerturbContext) -> dict[str, Any]:
    out: dict[str, Any] = {
        "plan": config.perturbations,
        "slots": config.plan.slots,
        "budgets": config.plan.budgets,
        "rewrites": context.stats.to_dict(),
    }
    if context.meaning is not None:
        out["meaning_filter"] = context.meaning.describe()
    if context.generator is not None and context.prompts is not None:
        out["rewriter"] = context.generator.backend.describe()
        used = sorted({k for k in config.plan.slots if kind_traits(k).rewriter})
        out["templates"] = {k: context.prompts.get(k).ref for k in used}
    return out


async def perturb_chunk(
    chunk: Sequence[Item], config: AuditConfig, context: PerturbContext
) -> list[list[Variant]]:
    """Every item's variants (clean first) for one chunk: how ``run`` perturbs, and how
    ``perturb`` builds a variant set, so that both make the same variants.

    All items of a chunk at once, so a model rewriter gets its requests in batches. Without a
    rewriter every item is pure CPU work: the items then start :data:`PERTURB_SLICE` per turn
    of the event loop, so that answers of requests in flight are read in between.
    """

    async def one(at: int, item: Item) -> list[Variant]:
        if context.generator is None:
            for _ in range(at // PERTURB_SLICE):
                await asyncio.sleep(0)
        return await perturb_item(item, seed=config.seed, slots=config.plan.slots, context=context)

    return list(await asyncio.gather(*(one(at, item) for at, item in enumerate(chunk))))


#: Rule-based items perturbed per turn of the event loop (about a millisecond each).
PERTURB_SLICE = 8
#: Seconds of scoring between two returns to the event loop while later requests are in flight.
SCORE_SLICE = 0.005


@dataclass
class _ChunkPlan:
    """One chunk's items, their variants, and the requests that answer them (in order)."""

    plans: list[tuple[Item, Sequence[Variant], int, int]]
    """Per item: the item, its variants, and where its requests start in ``requests`` and
    how many there are."""
    requests: list[CompletionRequest]

    @classmethod
    def build(
        cls,
        chunk: Sequence[Item],
        all_variants: Sequence[Sequence[Variant]],
        config: AuditConfig,
        prompts: tasks.TaskPrompts,
    ) -> _ChunkPlan:
        plans = []
        requests: list[CompletionRequest] = []
        for item, variants in zip(chunk, all_variants, strict=True):
            item_requests = _item_requests(item, variants, config, prompts)
            plans.append((item, variants, len(requests), len(item_requests)))
            requests.extend(item_requests)
        return cls(plans, requests)


async def _finish_chunk(
    plan: _ChunkPlan,
    answers: asyncio.Task[list[Completion | RequestFailed]],
    generator: Generator,
    config: AuditConfig,
    equivalence: Equivalence,
    outcome: AuditOutcome,
) -> None:
    """Wait for a chunk's answers, draw adaptive sampling's second round, and score its items
    into ``outcome`` (in dataset order). Scoring hands the event loop back after every
    :data:`SCORE_SLICE` seconds, so the next chunk's requests keep flowing meanwhile."""
    results = await answers
    if first_round(config) < config.samples:
        results = await _second_round(generator, plan.plans, plan.requests, results, config)
        outcome.sampling.add(plan.plans, results, config)
    answered = [
        (item, variants, results[start : start + n]) for item, variants, start, n in plan.plans
    ]
    clusters = await _meaning_clusters(answered, config, equivalence)
    turn = time.perf_counter()
    for (item, variants, mine), item_clusters in zip(answered, clusters, strict=True):
        if time.perf_counter() - turn > SCORE_SLICE:
            await asyncio.sleep(0)
            turn = time.perf_counter()
        if any(isinstance(r, RequestFailed) for r in mine):
            outcome.add(_failed_row(item, variants, mine))
        else:
            done = [r for r in mine if isinstance(r, Completion)]
            outcome.add(_score_item(item, variants, done, config, item_clusters))


async def run_audit(
    config: AuditConfig,
    info: DatasetInfo,
    generator: Generator,
    rewriter: Generator | None = None,
    variant_set: VariantSet | None = None,
    equivalence: Equivalence | None = None,
) -> AuditOutcome:
    """Run the whole audit through ``generator``; the outcome's rows are read back at the end.

    ``rewriter`` writes model-based perturbations (paraphrase, ambiguity, adversarial); it
    may be ``generator`` itself when the audited model is also the rewriter. With
    ``config.variants``, the variants come from that variant set instead (``variant_set``,
    opened and checked against the dataset here when not given) and nothing is rewritten.
    ``equivalence`` clusters QA answers (default: built from ``config.equivalence``, with
    ``generator``'s cache for embedding vectors; a judge must be given).
    """
    t0 = time.perf_counter()
    outcome = AuditOutcome(
        abstain_on=config.abstain_on,
        normalize=config.normalize,
        lam=config.lam,
        confident_threshold=config.confident_threshold,
    )
    if equivalence is None:
        equivalence = build_equivalence(
            config.equivalence,
            threshold=config.equivalence_threshold,
            store=generator.store,
            read_cache=generator.cache_mode == "use",
        )
    stored = None
    if config.variants is not None:
        from sua_audit.variants import prepare_for_run

        variant_set = variant_set or prepare_for_run(config, info)
        stored = variant_set.iter_variants(limit=config.limit)
        context = PerturbContext()
    else:
        context = perturb_context(config, rewriter)
    prompts = tasks.TaskPrompts.from_config(config)
    total = sum(requests_per_item(task, config) * n for task, n in info.tasks.items())
    generator.progress.start(total, "auditing")
    try:
        # A chunk's requests must fill the backend's concurrency several times over, or each
        # chunk boundary drains the pipeline (0.56 of ideal throughput at C=64 with 32 items).
        per_item = config.k + 1
        chunk_items = max(
            CHUNK_ITEMS, math.ceil(8 * generator.backend.max_concurrency() / per_item)
        )
        # Over a network the next chunk's requests are issued before this chunk is scored, so
        # the server always has work while the client perturbs and scores (one chunk ahead; a
        # local model gains nothing from it and keeps its batches as they were).
        ahead = 1 if generator.backend.overlaps_chunks else 0
        pending: list[tuple[_ChunkPlan, asyncio.Task[list[Completion | RequestFailed]]]] = []
        try:
            for chunk in chunks(
                iter_items(info.path, limit=config.limit, max_line_bytes=config.max_line_bytes),
                chunk_items,
            ):
                if stored is not None:
                    all_variants = [_stored_variants(item, stored, info.path) for item in chunk]
                else:
                    all_variants = await perturb_chunk(chunk, config, context)
                plan = _ChunkPlan.build(chunk, all_variants, config, prompts)
                pending.append((plan, asyncio.create_task(generator.generate_many(plan.requests))))
                while len(pending) > ahead:
                    await _finish_chunk(*pending.pop(0), generator, config, equivalence, outcome)
            while pending:
                await _finish_chunk(*pending.pop(0), generator, config, equivalence, outcome)
        finally:
            for _, task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*(task for _, task in pending), return_exceptions=True)
        outcome.equivalence = _equivalence_summary(equivalence, info)
        outcome.sampling_record = outcome.sampling.record(config)
        outcome.prompts = prompts.record()
        outcome.perturbation = (
            variant_set.perturbation_summary()
            if variant_set is not None and stored is not None
            else _perturbation_summary(config, context)
        )
    except BaseException:
        outcome.close()
        raise
    finally:
        generator.flush()
        if rewriter is not None:
            rewriter.flush()
        judge = getattr(equivalence, "generator", None)
        if isinstance(judge, Generator):
            judge.flush()
        generator.progress.close()
    decide(outcome, config)
    outcome.wall_seconds = time.perf_counter() - t0
    return outcome


async def _second_round(
    generator: Generator,
    plans: Sequence[tuple[Item, Sequence[Variant], int, int]],
    requests: Sequence[CompletionRequest],
    results: list[Completion | RequestFailed],
    config: AuditConfig,
) -> list[Completion | RequestFailed]:
    """Adaptive sampling's second round: the remaining ``k - first_round`` samples of every
    QA variant whose first round is not :func:`settled`, asked in one batch and appended to
    that variant's samples (answers ``first_round..k-1`` of the same seeded sequence)."""
    first = first_round(config)
    rest: list[tuple[int, CompletionRequest]] = []
    skipped = 0
    for item, _, start, n in plans:
        if item.task != "qa":
            continue
        for at in range(start, start + n, 2):
            greedy, sampled = results[at], results[at + 1]
            if isinstance(greedy, RequestFailed) or isinstance(sampled, RequestFailed):
                continue
            if settled(greedy.text or "", _texts(sampled)):
                skipped += 1
                continue
            base = requests[at + 1]
            rest.append(
                (
                    at + 1,
                    CompletionRequest(
                        base.messages,
                        base.params,
                        sample_index=1 + first,
                        n=config.samples - first,
                    ),
                )
            )
    # The progress total counted a second request for every QA variant.
    if skipped:
        generator.progress.advance(skipped)
    answers = await generator.generate_many([r for _, r in rest]) if rest else []
    merged = list(results)
    for (at, _), more in zip(rest, answers, strict=True):
        head = merged[at]
        assert isinstance(head, Completion)
        if isinstance(more, RequestFailed):
            merged[at] = more
            continue
        merged[at] = Completion(
            text=head.text,
            texts=[*_texts(head), *_texts(more)],
            prompt_tokens=head.prompt_tokens + more.prompt_tokens,
            completion_tokens=head.completion_tokens + more.completion_tokens,
            finish_reason=head.finish_reason,
            path=head.path,
        )
    return merged


async def _meaning_clusters(
    answered: Sequence[tuple[Item, Sequence[Variant], Sequence[Completion | RequestFailed]]],
    config: AuditConfig,
    equivalence: Equivalence,
) -> list[tuple[list[list[int]], list[str]] | None]:
    """The meaning clusters of each answered QA item of a chunk (``None`` for the others, and
    for every item under exact match, which :func:`_score_item` clusters itself).

    Equivalence verdicts may need model calls (a judge), so they are made here, in the async
    pipeline, before the synchronous scoring. Every answer of the chunk is prepared at once
    (the embedding method reads the cache and encodes the missing vectors in one batch), then
    the items are clustered concurrently (a judge's requests for all of them in flight).
    """
    out: list[tuple[list[list[int]], list[str]] | None] = [None] * len(answered)
    if isinstance(equivalence, ExactMatch):
        return out
    todo: list[tuple[int, Item, list[list[str]]]] = []
    for i, (item, variants, results) in enumerate(answered):
        if item.task != "qa" or any(isinstance(r, RequestFailed) for r in results):
            continue
        done = [r for r in results if isinstance(r, Completion)]
        todo.append((i, item, qa_answer_groups(done, len(variants), config)))
    if not todo:
        return out
    await equivalence.prepare([a for _, _, groups in todo for g in groups for a in g if a])
    found = await asyncio.gather(
        *(cluster_by_meaning(groups, equivalence, context=item.input) for _, item, groups in todo)
    )
    for (i, _, _), clusters in zip(todo, found, strict=True):
        out[i] = clusters
    return out


def _equivalence_summary(equivalence: Equivalence, info: DatasetInfo) -> dict[str, Any]:
    """The clustering method as the summary records it, with whether it applied at all."""
    out = equivalence.describe()
    n_qa = info.tasks.get("qa", 0)
    out["applies_to"] = "qa"
    if not n_qa:
        out["note"] = (
            "no effect: the dataset has no QA items (label tasks score the model's label "
            "distribution, which needs no clustering)"
        )
    return out


def _stored_variants(
    item: Item, stored: Iterator[tuple[VariantSetEntry, list[Variant]]], dataset: str
) -> list[Variant]:
    """The next item's variants from a variant set (checked against the dataset before the
    run; re-checked here in case either file changed since)."""
    from sua_audit.errors import DatasetError, DatasetProblem
    from sua_audit.variants import item_sha256

    entry, variants = next(stored, (None, []))
    if entry is None or entry.id != item.id or entry.item_sha256 != item_sha256(item):
        raise DatasetError(
            [
                DatasetProblem(
                    dataset,
                    item.line,
                    "id",
                    f"item {item.id!r} no longer matches the variant set (a file changed "
                    "during the run)",
                    "rerun the command",
                )
            ]
        )
    return variants


def decide(outcome: AuditOutcome, config: AuditConfig) -> None:
    """Compute ``sua_norm`` across the run, then the abstention score and τ.

    Label-free scores are read from the rows. A fitted score (``combined``, ``entropy_temp``)
    is fitted on the same seeded validation split of the graded items that the evaluation
    uses, with the default grading, and applied to every item; when it cannot be fitted the
    run records why and decides nothing.
    """
    from sua_audit.evaluation.core import FITTED_SCORES, KIND_PREFIX
    from sua_audit.scoring.abstention import DEFAULT_TAUS
    from sua_audit.scoring.table import sua_normalized

    outcome.sua_norm = [
        float(x)
        for x in sua_normalized(outcome.sensitivity, outcome.entropy, config.lam, config.normalize)
    ]
    name = config.abstain_on
    if name == "sua_norm":
        outcome.decision = list(outcome.sua_norm)
    elif name in FITTED_SCORES:
        outcome.decision = _fitted_decision(outcome, config)
    else:
        # An item without a variant of a kind shows no sensitivity to it: s_<kind> = 0.
        missing = 0.0 if name.startswith(KIND_PREFIX) else math.nan
        outcome.decision = [s.get(name, missing) if s else math.nan for s in outcome.label_free]
    scored = [d for d, f in zip(outcome.decision, outcome.failed, strict=True) if not f]
    if config.coverage is not None:
        outcome.rule = "coverage"
        outcome.coverage_target = config.coverage
        outcome.tau = coverage_threshold(scored, config.coverage) if scored else math.inf
    else:
        outcome.tau = config.tau if config.tau is not None else DEFAULT_TAUS.get(name, 0.0)


def _fitted_decision(outcome: AuditOutcome, config: AuditConfig) -> list[float]:
    from sua_audit.evaluation.core import base_scores, collect, fitted_scores
    from sua_audit.evaluation.correctness import DEFAULT_RULE, Grader
    from sua_audit.evaluation.splits import make_split

    rows = list(outcome.rows())
    items = collect(rows, Grader(DEFAULT_RULE))
    if len(items) == 0:
        outcome.decision_note = f"{config.abstain_on} needs gold answers; none were graded"
        return [math.nan] * len(rows)
    split = make_split(len(items), seed=config.seed, validation=True, calibration=False)
    scores = base_scores(items, config.lam, config.lam, config.normalize)
    _, info = fitted_scores(items, scores, split.validation, split.test, config.seed)
    if config.abstain_on not in scores:
        outcome.decision_note = f"{config.abstain_on} was {info.get('reason', 'not fitted')}"
        return [math.nan] * len(rows)
    by_id = dict(zip(items.ids, scores[config.abstain_on].tolist(), strict=True))  # floats
    return [by_id.get(str(r["id"]), math.nan) for r in rows]


def abstention_block(outcome: AuditOutcome) -> dict[str, Any]:
    """The run's decision: which score, which rule, how many abstained, and a plain note."""
    n = len(outcome.failed)
    scored = [i for i in range(n) if not outcome.failed[i]]
    decided = [i for i in scored if outcome.abstains(i) is not None]
    abstained = [i for i in decided if outcome.abstains(i)]
    rule = (
        f"abstain when {outcome.abstain_on} > τ = {sig(outcome.tau)}"
        if math.isfinite(outcome.tau)
        else f"abstain when {outcome.abstain_on} is missing"
    )
    if outcome.rule == "coverage":
        rule += f" (τ set to answer {short(outcome.coverage_target)} of the items)"
    values = [outcome.decision[i] for i in decided if i < len(outcome.decision)]
    finite = [v for v in values if math.isfinite(v)]
    note = None
    if outcome.decision_note is not None:
        note = f"No abstention was decided: {outcome.decision_note}."
    elif decided and not abstained:
        note = (
            f"The rule ({rule}) abstained on none of the {len(decided)} items: the largest "
            f"{outcome.abstain_on} is {sig(max(finite))}."
            if finite
            else f"The rule ({rule}) abstained on none of the {len(decided)} items."
        )
        if outcome.abstain_on in ("sua", "sua_pos"):
            note += (
                " S is small next to λ·H here, so S − λH never exceeds τ; choose a score "
                "that can act (--abstain-on sua_norm, flip_rate or combined) or a target "
                "(--coverage, --target-risk)."
            )
    elif decided and len(abstained) == len(decided):
        note = (
            f"The rule ({rule}) abstained on every one of the {len(decided)} items"
            + (f": the smallest {outcome.abstain_on} is {sig(min(finite))}." if finite else ".")
            + " Raise --tau or set --coverage."
        )
    return {
        "score": outcome.abstain_on,
        "rule": outcome.rule,
        "tau": outcome.tau if math.isfinite(outcome.tau) else None,
        "coverage_target": outcome.coverage_target,
        "decided": len(decided),
        "abstained": len(abstained),
        "rate": len(abstained) / len(decided) if decided else None,
        "note": note,
    }


def confident_flips(outcome: AuditOutcome) -> dict[str, Any]:
    """Confident answers that change under a meaning-preserving variant: counts and the rule."""
    scored = [i for i in range(len(outcome.failed)) if not outcome.failed[i]]
    confident = [i for i in scored if outcome.confident[i]]
    flipped = [i for i in scored if outcome.flipped[i]]
    both = [i for i in scored if outcome.confident_flip[i]]
    return {
        "rule": (
            f"the clean answer's probability is at least {short(outcome.confident_threshold)} and "
            "the answer changes under at least one meaning-preserving variant (QA: another "
            "answer cluster; ambiguity rewrites excluded)"
        ),
        "threshold": outcome.confident_threshold,
        "n": len(scored),
        "n_confident": len(confident),
        "n_flipped": len(flipped),
        "n_confident_flips": len(both),
        "rate": len(both) / len(scored) if scored else None,
    }


def summarize(outcome: AuditOutcome) -> dict[str, Any]:
    """Item counts, failures, accuracy, abstention and mean scores."""
    n = len(outcome.failed)
    t = outcome.totals
    scored = [i for i in range(n) if not outcome.failed[i]]
    graded = [i for i in scored if outcome.correct[i] is not None]
    answered = [i for i in scored if outcome.abstains(i) is False]
    answered_graded = [i for i in answered if outcome.correct[i] is not None]

    def share(hits: list[int], of: list[int]) -> float | None:
        return len(hits) / len(of) if of else None

    from sua_audit.scoring.table import diagnostics

    flips = confident_flips(outcome)

    return {
        "items": n,
        "tasks": dict(t.tasks),
        "items_scored": len(scored),
        "items_failed": n - len(scored),
        "failures_by_kind": dict(t.failures),
        "items_with_gold": len(graded),
        "accuracy": share([i for i in graded if outcome.correct[i]], graded),
        "robust_accuracy": share([i for i in graded if outcome.robust[i]], graded),
        "abstained": len([i for i in scored if outcome.abstains(i)]),
        "abstention_rate": share([i for i in scored if outcome.abstains(i)], scored),
        "tau": outcome.tau if math.isfinite(outcome.tau) else None,
        "abstention": abstention_block(outcome),
        "selective_accuracy": share(
            [i for i in answered_graded if outcome.correct[i]], answered_graded
        ),
        "mean_scores": {
            **{
                k: (t.score_sums[k] / t.score_counts[k]) if t.score_counts[k] else None
                for k in SCORE_FIELDS
            },
            "sua_norm": _mean([outcome.sua_norm[i] for i in scored if i < len(outcome.sua_norm)]),
        },
        "normalize": outcome.normalize,
        "confident_flip_rate": flips["rate"],
        "confident_flips": flips,
        "diagnostics": diagnostics(
            [outcome.sensitivity[i] for i in scored],
            [outcome.entropy[i] for i in scored],
            [outcome.sua[i] for i in scored],
            lam=outcome.lam,
        ),
        "mean_sensitivity_by_kind": {
            k: t.kind_sums[k] / t.kind_counts[k] for k in sorted(t.kind_sums)
        },
        "answer_paths": dict(t.paths),
        "perturbation": outcome.perturbation,
        "equivalence": outcome.equivalence,
        "ambiguity": collapse_summary(t.ambiguity) if t.ambiguity else None,
        "sampling": outcome.sampling_record,
    }
