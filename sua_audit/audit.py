"""The audit pipeline: dataset → perturbations → model requests → scores → abstention → results.

Items are processed in chunks so that memory stays flat on large datasets: every request of a
chunk is issued at once (the backend batches them), the chunk's scores are computed, and its
per-item results are kept for the end, where the abstention threshold (which may depend on all
scores, for ``coverage``) is applied and the outputs are written.
"""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sua_audit import tasks
from sua_audit.backends.base import Completion, CompletionRequest, GenerationParams
from sua_audit.config import AuditConfig
from sua_audit.dataset import DatasetInfo, Item, iter_items
from sua_audit.engine import Generator
from sua_audit.perturb import Variant, perturb_item
from sua_audit.scoring import (
    DEFAULT_TAU,
    ItemScores,
    abstain,
    answer_matches,
    cluster_answers,
    coverage_threshold,
    extract_answer,
    normalize_logprobs,
    score_distributions,
    score_samples,
)

CHUNK_ITEMS = 32

SCORE_FIELDS = (
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


def requests_per_item(item_task: str, config: AuditConfig) -> int:
    """Model requests one item needs (for the progress total)."""
    per_variant = 1 if item_task != "qa" else config.samples + 1
    return (config.perturbations + 1) * per_variant


def sample_seed(seed: int, sample_index: int) -> int:
    """The sampling seed of one sample: fixed by the run seed and the sample's index."""
    return (seed * 1_000_003 + sample_index) % 2**31


@dataclass
class AuditOutcome:
    """Per-item results (plan order) and what the summary needs."""

    items: list[dict[str, Any]] = field(default_factory=list)
    tau: float = DEFAULT_TAU
    wall_seconds: float = 0.0


def _chunks(items: Iterable[Item], size: int) -> Iterator[list[Item]]:
    chunk: list[Item] = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _item_requests(
    item: Item, variants: Sequence[Variant], config: AuditConfig
) -> list[CompletionRequest]:
    requests: list[CompletionRequest] = []
    if item.task == "qa":
        greedy = GenerationParams(temperature=0.0, max_tokens=config.max_tokens)
        for v in variants:
            messages = tasks.build_messages(item.task, v.fields, None)
            requests.append(CompletionRequest(messages, greedy, sample_index=0))
            for s in range(1, config.samples + 1):
                params = GenerationParams(
                    temperature=config.temperature,
                    max_tokens=config.max_tokens,
                    seed=sample_seed(config.seed, s),
                )
                requests.append(CompletionRequest(messages, params, sample_index=s))
    else:
        choices, _ = tasks.choice_table(item.labels or ())
        for v in variants:
            messages = tasks.build_messages(item.task, v.fields, item.labels)
            requests.append(CompletionRequest(messages, choices=choices))
    return requests


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def _score_item(
    item: Item,
    variants: Sequence[Variant],
    completions: Sequence[Completion],
    config: AuditConfig,
) -> dict[str, Any]:
    kinds = [v.kind for v in variants[1:]]
    variant_rows: list[dict[str, Any]] = []
    scores: ItemScores
    if item.task == "qa":
        per = config.samples + 1
        greedy = [extract_answer(completions[i * per].text or "") for i in range(len(variants))]
        sampled = [
            [extract_answer(c.text or "") for c in completions[i * per + 1 : (i + 1) * per]]
            for i in range(len(variants))
        ]
        # Greedy answers join the clustering so every prediction has a cluster id.
        groups = [[g, *s] for g, s in zip(greedy, sampled, strict=True)]
        ids, reps = cluster_answers(groups)
        scores = score_samples(
            [g[1:] for g in ids],
            len(reps),
            kinds,
            prediction_clusters=[g[0] for g in ids],
            divergence=config.divergence,
            lam=config.lam,
            smoothing=config.smoothing,
        )
        golds = list(item.answers or ())
        for v, g, s in zip(variants, greedy, sampled, strict=True):
            variant_rows.append(
                {
                    **v.to_dict(),
                    "prediction": g,
                    "correct": answer_matches(g, golds) if golds else None,
                    "samples": s,
                }
            )
        prediction = greedy[0]
        extra: dict[str, Any] = {"clusters": reps}
    else:
        labels = list(item.labels or ())
        _, owner = tasks.choice_table(labels)
        dists = []
        for c in completions:
            lps = tasks.label_logprobs(c.choice_logprobs or [], owner, len(labels))
            dists.append(normalize_logprobs(lps))
        scores = score_distributions(
            dists[0],
            dists[1:],
            kinds,
            divergence=config.divergence,
            lam=config.lam,
            smoothing=config.smoothing,
        )
        gold = set(item.gold_labels or ())
        for v, p in zip(variants, dists, strict=True):
            pred = labels[int(np.argmax(p))]
            variant_rows.append(
                {
                    **v.to_dict(),
                    "prediction": pred,
                    "correct": (pred in gold) if gold else None,
                    "distribution": {
                        lab: round(float(x), 6) for lab, x in zip(labels, p, strict=True)
                    },
                }
            )
        prediction = variant_rows[0]["prediction"]
        extra = {}
    for row, d in zip(variant_rows[1:], scores.divergences, strict=True):
        row["divergence"] = d
    score_dict = scores.to_dict()
    row: dict[str, Any] = {
        "id": item.id,
        "task": item.task,
        "input": item.input,
        "prediction": prediction,
        "correct": variant_rows[0]["correct"],
        "gold": list(item.gold_labels or ()) if item.task != "qa" else list(item.answers or ()),
        **{k: _finite(float(score_dict[k])) for k in SCORE_FIELDS},
        "sensitivity_by_kind": score_dict["sensitivity_by_kind"],
        "abstain": None,
        **extra,
        "variants": variant_rows,
    }
    if item.task != "qa":
        row["distribution"] = variant_rows[0]["distribution"]
    return row


async def run_audit(config: AuditConfig, info: DatasetInfo, generator: Generator) -> AuditOutcome:
    """Run the whole audit through ``generator``; returns results with abstention applied."""
    t0 = time.perf_counter()
    outcome = AuditOutcome()
    total = sum(requests_per_item(task, config) * n for task, n in info.tasks.items())
    generator.progress.start(total, "auditing")
    try:
        for chunk in _chunks(iter_items(info.path, limit=config.limit), CHUNK_ITEMS):
            plans = []
            requests: list[CompletionRequest] = []
            for item in chunk:
                variants = await perturb_item(
                    item, k=config.perturbations, seed=config.seed, generator=generator
                )
                item_requests = _item_requests(item, variants, config)
                plans.append((item, variants, len(requests), len(item_requests)))
                requests.extend(item_requests)
            completions = await generator.generate_many(requests)
            for item, variants, start, n in plans:
                outcome.items.append(
                    _score_item(item, variants, completions[start : start + n], config)
                )
    finally:
        generator.flush()
        generator.progress.close()
    sua = [r["sua"] if r["sua"] is not None else math.nan for r in outcome.items]
    if config.coverage is not None:
        outcome.tau = coverage_threshold(sua, config.coverage)
    elif config.tau is not None:
        outcome.tau = config.tau
    for r, s in zip(outcome.items, sua, strict=True):
        r["abstain"] = abstain(s, outcome.tau)
    outcome.wall_seconds = time.perf_counter() - t0
    return outcome


def summarize(outcome: AuditOutcome) -> dict[str, Any]:
    """Item counts, accuracy, abstention and mean scores over the results."""
    rows = outcome.items
    n = len(rows)
    graded = [r for r in rows if r["correct"] is not None]
    answered = [r for r in rows if not r["abstain"]]
    answered_graded = [r for r in answered if r["correct"] is not None]
    robust = [r for r in graded if all(v["correct"] for v in r["variants"])]

    def mean(key: str) -> float | None:
        vals = [r[key] for r in rows if r[key] is not None]
        return float(np.mean(vals)) if vals else None

    kinds: dict[str, list[float]] = {}
    for r in rows:
        for kind, value in r["sensitivity_by_kind"].items():
            kinds.setdefault(kind, []).append(value)
    return {
        "items": n,
        "tasks": dict(Counter(r["task"] for r in rows)),
        "items_with_gold": len(graded),
        "accuracy": len([r for r in graded if r["correct"]]) / len(graded) if graded else None,
        "robust_accuracy": len(robust) / len(graded) if graded else None,
        "abstained": n - len(answered),
        "abstention_rate": (n - len(answered)) / n if n else None,
        "tau": outcome.tau,
        "selective_accuracy": (
            len([r for r in answered_graded if r["correct"]]) / len(answered_graded)
            if answered_graded
            else None
        ),
        "mean_scores": {k: mean(k) for k in SCORE_FIELDS},
        "mean_sensitivity_by_kind": {k: float(np.mean(v)) for k, v in sorted(kinds.items())},
    }
