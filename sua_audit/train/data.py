"""Training examples: dataset items with gold labels, and their rule perturbations.

Items are read with the audit's own reader (:mod:`sua_audit.dataset`), so every check and error
message is the same as for ``sua-audit run``. Perturbations come from the audit's registered rule
perturbers through :func:`sua_audit.perturbation.perturb_item` with the audit's seed scheme: in epoch 0
an item's variants are exactly those ``sua-audit run --seed SEED --perturbations PLAN`` would
make; later epochs use a seed derived from (SEED, epoch), so each epoch sees fresh rewrites.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sua_audit.backends.base import Message
from sua_audit.dataset import DatasetInfo, Item, iter_items, validate_dataset
from sua_audit.errors import ConfigError
from sua_audit.perturbation import PerturbContext, Plan, parse_plan, perturb_item

if TYPE_CHECKING:
    from sua_audit.tasks import TaskPrompts


@dataclass(frozen=True)
class Example:
    """One training item: its labels, gold labels and the messages of each variant."""

    item: Item
    labels: tuple[str, ...]
    gold: tuple[str, ...]


def load_examples(path: Path, *, limit: int | None = None) -> tuple[list[Example], DatasetInfo]:
    """Read and check a training set: classification or NLI items with gold labels.

    Raises:
        DatasetError: On bad lines (the audit reader's messages).
        ConfigError: On QA items (not supported yet) or items without gold labels.
    """
    info = validate_dataset(path, limit=limit)
    examples: list[Example] = []
    for item in iter_items(path, limit=limit):
        if item.task == "qa":
            raise ConfigError(
                f"{path}:{item.line}: task qa: SUA-TR trains classification and NLI items only; "
                "remove QA items from the training set."
            )
        if not item.gold_labels or not item.labels:
            raise ConfigError(
                f"{path}:{item.line}: item {item.id!r} has no gold label; training needs "
                '"label" or "gold_labels" on every item.'
            )
        examples.append(Example(item, tuple(item.labels), tuple(item.gold_labels)))
    return examples, info


def training_plan(spec: str | int) -> Plan:
    """Parse ``--perturbations`` as the audit does, refusing kinds that need a rewriter model."""
    from sua_audit.perturbation import rewriter_kinds

    plan = parse_plan(spec)
    model = sorted(rewriter_kinds().intersection(plan.slots))
    if model:
        raise ConfigError(
            f"--perturbations: {', '.join(model)} need a rewriter model; training uses rule "
            "kinds only (typo, word, distractor, synonym, ...)."
        )
    if plan.k < 1:
        raise ConfigError("--perturbations: training needs at least one perturbation per item.")
    return plan


def epoch_seed(seed: int, epoch: int) -> int:
    """The perturbation seed of an epoch: ``seed`` itself in epoch 0 (the audit's variants)."""
    if epoch == 0:
        return seed
    digest = hashlib.sha256(f"sua-tr:{seed}:epoch{epoch}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def variant_messages(
    examples: list[Example], plan: Plan, seed: int, prompts: TaskPrompts | None = None
) -> list[list[tuple[Message, ...]]]:
    """Per example: the clean messages, then those of its K perturbations (plan order), in
    the audit's prompts (``prompts``: a task template or system prompt, as for ``run``)."""

    async def draw() -> list[list[tuple[Message, ...]]]:
        from sua_audit import tasks

        out = []
        for ex in examples:
            context = PerturbContext(budgets=plan.budgets)
            variants = await perturb_item(ex.item, seed=seed, slots=plan.slots, context=context)
            out.append(
                [tasks.build_messages(ex.item.task, v.fields, ex.labels, prompts) for v in variants]
            )
        return out

    return asyncio.run(draw())
