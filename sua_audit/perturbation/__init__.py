"""Perturbations: the `Variant` type, the `Perturber` protocol, the registry, `perturb_item`.

This package owns how an item's meaning-preserving variants are made and numbered. A
perturber of one *kind* (``"typo"``, ``"word"``, ``"distractor"`` here; ``"paraphrase"``,
``"ambiguity"``, … later) turns an :class:`~sua_audit.dataset.Item` into variants;
:func:`perturb_item` asks the registered perturbers for ``k`` variants in round-robin order,
re-draws duplicates, and numbers them ``1..k`` after the clean variant ``0``.

Determinism: a variant depends only on the item (its text fields, id, task and labels), the
seed, the kind and its slot. Seeds are strings fed to :class:`random.Random`, which hashes
them with SHA-512, so results agree across processes (unlike ``hash()``). No global random
state is used.

Perturber contract (what :func:`perturb_item` relies on):

* ``await perturber(item, n=n, seed=seed, context=ctx)`` returns at most ``n`` variants of
  kind ``perturber.kind``; their ``index`` is ignored (return 0), the caller renumbers them.
  Rule perturbers always return ``n``; a model-backed perturber may return fewer when its
  rewrites fail the meaning check (counted in ``ctx.stats``);
* variant ``j`` (0-based) depends only on ``(item, seed, kind, j)`` (and, for model-backed
  perturbers, the cached rewriter outputs), so asking for more never changes the first ones;
* rule perturbers read only ``ctx.budget(kind)``; model-backed perturbers use
  ``ctx.generator`` (the rewriter's cached generator), ``ctx.prompts`` and ``ctx.meaning``.

Every kind is registered with its :class:`KindTraits`: what it needs from the run (a
rewriter model, the meaning filter, task prompts with an instruction to attack). The rest of
the tool asks the registry (:func:`kind_traits`, :func:`rewriter_kinds`) instead of listing
kinds by name.

A plan (:func:`parse_plan`) says which kinds fill the K slots: ``4`` means the default kinds
in turn; ``paraphrase:4,typo:2@3`` means four paraphrases then two typo variants with at most
three edits each.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import random
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sua_audit.errors import ConfigError

if TYPE_CHECKING:
    from sua_audit.dataset import Item

__all__ = [
    "DEFAULT_KINDS",
    "KindTraits",
    "PerturbContext",
    "PerturbStats",
    "Plan",
    "PlanEntry",
    "parse_plan",
    "MAX_REDRAWS",
    "Perturber",
    "Variant",
    "available_perturbers",
    "get_perturber",
    "kind_traits",
    "perturb_item",
    "register_perturber",
    "render_nli",
    "rewriter_kinds",
    "rng_for",
    "uses_instruction",
]

#: Kinds used when none are given, assigned to the K slots round-robin in this order.
DEFAULT_KINDS: tuple[str, ...] = ("typo", "word", "distractor")

#: How many times :func:`perturb_item` re-draws a variant equal to an earlier one.
MAX_REDRAWS = 5

#: Modules whose import registers the built-in perturbers (imported on first registry use).
_BUILTIN_MODULES: tuple[str, ...] = (
    "sua_audit.perturbation.rules",
    "sua_audit.perturbation.adversarial",
    "sua_audit.perturbation.llm",
)


@dataclass(frozen=True, slots=True)
class Variant:
    """One version of an item's text: the clean original (index 0) or a perturbation.

    Attributes:
        kind: ``"clean"`` for the original, else the perturber's kind.
        index: 0 for clean, ``1..K`` for perturbations in order.
        fields: The (perturbed) text fields, same keys as ``item.text_fields()``.
        detail: Short human description of the edit, e.g. ``typo: swapped "the"→"teh"``.
        flags: Markers for evaluation, e.g. ``"multi_answer"`` on ambiguity rewrites (several
            answers are valid, so the variant is left out of S and scored on its own).
        provenance: How a model-written variant was made (``rewriter``, ``template``,
            ``template_sha256``, per-field ``meaning`` verdicts), for variant sets
            (:mod:`sua_audit.variants`). Not part of results rows nor of equality: two
            variants with the same text are the same variant to the audit.
    """

    kind: str
    index: int
    fields: dict[str, str]
    detail: str
    flags: tuple[str, ...] = ()
    provenance: dict[str, Any] = field(default_factory=dict, compare=False)

    @property
    def text(self) -> str:
        """The text sent to the model (``fields["input"]``)."""
        return self.fields["input"]

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict for results (``fields`` only when there is more than input).

        Returns:
            ``{"kind", "index", "text", "detail"}`` and, for NLI variants, ``"fields"``.
        """
        out: dict[str, Any] = {
            "kind": self.kind,
            "index": self.index,
            "text": self.text,
            "detail": self.detail,
        }
        if set(self.fields) != {"input"}:
            out["fields"] = dict(self.fields)
        if self.flags:
            out["flags"] = list(self.flags)
        return out


@runtime_checkable
class Perturber(Protocol):
    """Makes ``n`` variants of one kind for an item (see the module docstring's contract)."""

    kind: str

    async def __call__(
        self, item: Item, *, n: int, seed: int, context: PerturbContext | None = None
    ) -> list[Variant]:
        """Return up to ``n`` variants of ``item`` (index 0; the caller renumbers them).

        Args:
            item: The item to perturb.
            n: How many variants to return.
            seed: Base seed; variant ``j`` must depend only on (item, seed, kind, j).
            context: Budgets, and for model-backed perturbers the rewriter, prompts and
                meaning filter; ``None`` means defaults and no model.

        Returns:
            At most ``n`` variants (exactly ``n`` for rule perturbers).
        """
        ...


@dataclass
class PerturbStats:
    """Per kind: rewrites proposed, accepted, rejected (by reason), and slots left unfilled."""

    proposed: Counter[str] = field(default_factory=Counter)
    accepted: Counter[str] = field(default_factory=Counter)
    rejected: dict[str, Counter[str]] = field(default_factory=dict)
    unfilled: Counter[str] = field(default_factory=Counter)

    def reject(self, kind: str, reason: str, count: int = 1) -> None:
        """Count ``count`` rewrites of ``kind`` rejected for ``reason``."""
        self.rejected.setdefault(kind, Counter())[reason] += count

    def to_dict(self) -> dict[str, Any]:
        """Per kind: proposed, accepted, acceptance rate, rejections by reason, unfilled."""
        kinds = sorted(set(self.proposed) | set(self.unfilled))
        out: dict[str, Any] = {}
        for kind in kinds:
            proposed = self.proposed[kind]
            out[kind] = {
                "proposed": proposed,
                "accepted": self.accepted[kind],
                "acceptance_rate": self.accepted[kind] / proposed if proposed else None,
                "rejected": dict(self.rejected.get(kind, {})),
                "unfilled_slots": self.unfilled[kind],
            }
        return out


@dataclass
class PerturbContext:
    """What perturbers may use beyond the item: budgets, and the rewriter for model kinds."""

    generator: Any | None = None
    """The rewriter's :class:`~sua_audit.engine.Generator` (cached calls), or ``None``."""
    prompts: Any | None = None
    """The prompt library (templates for paraphrase, ambiguity, ...)."""
    meaning: Any | None = None
    """The meaning-preservation filter for rewrites, or ``None`` to accept every rewrite."""
    budgets: dict[str, int] = field(default_factory=dict)
    """Per kind, the most edits one variant may make (kinds not listed use their default)."""
    stats: PerturbStats = field(default_factory=PerturbStats)
    options: dict[str, Any] = field(default_factory=dict)
    """Kind-specific settings (for example rewriter sampling temperature)."""

    def budget(self, kind: str, default: int) -> int:
        """The edit budget for one variant of ``kind``."""
        return self.budgets.get(kind, default)


@dataclass(frozen=True)
class PlanEntry:
    """``count`` slots of one kind, each with at most ``budget`` edits (``None``: default)."""

    kind: str
    count: int
    budget: int | None = None


_PLAN_PART = re.compile(r"^\s*([a-z_]+)\s*(?::\s*(\d+))?\s*(?:@\s*(\d+))?\s*$")


@dataclass(frozen=True)
class Plan:
    """Which kinds fill the K slots, and each kind's edit budget."""

    entries: tuple[PlanEntry, ...]
    interleaved: bool = False
    """A plain count: slots take the kinds in turn (typo, word, distractor, typo, ...)."""

    @property
    def k(self) -> int:
        """Total number of perturbed variants per item."""
        return sum(e.count for e in self.entries)

    @property
    def slots(self) -> list[str]:
        """The kind of each slot, in order."""
        if self.interleaved:
            kinds = [e.kind for e in self.entries]
            return [kinds[i % len(kinds)] for i in range(self.k)] if kinds else []
        return [e.kind for e in self.entries for _ in range(e.count)]

    @property
    def budgets(self) -> dict[str, int]:
        """Budgets given explicitly, per kind."""
        return {e.kind: e.budget for e in self.entries if e.budget is not None}

    def __str__(self) -> str:
        if self.interleaved:
            return str(self.k)
        return ",".join(
            f"{e.kind}:{e.count}" + (f"@{e.budget}" if e.budget is not None else "")
            for e in self.entries
        )


def parse_plan(spec: str | int, *, default_kinds: Sequence[str] = DEFAULT_KINDS) -> Plan:
    """Parse ``--perturbations``: a count ``K`` (default kinds in turn) or ``kind:n[@budget],...``.

    Raises:
        ConfigError: On a malformed part, an unknown kind, a zero count or budget, a repeat.
    """
    text = str(spec).strip()
    if text.isdigit():
        k = int(text)
        counts = Counter(default_kinds[i % len(default_kinds)] for i in range(k))
        entries = tuple(PlanEntry(kind, counts[kind]) for kind in default_kinds if counts[kind])
        return Plan(entries, interleaved=True)
    known = available_perturbers()
    plan: list[PlanEntry] = []
    for part in text.split(","):
        m = _PLAN_PART.match(part)
        if m is None:
            raise ConfigError(
                f"--perturbations: cannot read {part.strip()!r}; write kind:count[@budget], "
                "for example paraphrase:4,typo:2@3, or a plain count such as 4."
            )
        kind, count, budget = m.group(1), int(m.group(2) or 1), m.group(3)
        if kind not in known:
            raise ConfigError(
                f"--perturbations: unknown kind {kind!r}; use one of {', '.join(known)}."
            )
        if count < 1 or (budget is not None and int(budget) < 1):
            raise ConfigError(f"--perturbations: {part.strip()!r}: counts and budgets start at 1.")
        if any(e.kind == kind for e in plan):
            raise ConfigError(f"--perturbations: kind {kind!r} is given twice.")
        plan.append(PlanEntry(kind, count, None if budget is None else int(budget)))
    return Plan(tuple(plan))


def rng_for(seed: int | str, item_id: str, kind: str, slot: int, attempt: int = 0) -> random.Random:
    """Return a private :class:`random.Random` for one variant, seeded by a string.

    Args:
        seed: Base seed.
        item_id: The item's id.
        kind: Perturbation kind.
        slot: The variant's 0-based position among the variants of this kind.
        attempt: Retry counter inside a perturber, if it retries.

    Returns:
        A ``random.Random`` that is identical across processes for the same arguments.
    """
    return random.Random(f"{seed}:{item_id}:{kind}:{slot}:{attempt}")


def render_nli(premise: str, hypothesis: str) -> str:
    """Render an NLI input the way the dataset schema writes it."""
    return f"Premise: {premise}\nHypothesis: {hypothesis}"


# --------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class KindTraits:
    """What a perturbation kind needs from the run, declared when the kind is registered."""

    rewriter: bool = False
    """Written by the rewriter model: needs ``context.generator`` (``--rewriter-model``) and
    the template ``prompts/<kind>/``; a run on a variant set needs neither."""
    meaning_checked: bool = False
    """Its rewrites go through the meaning filter (``--meaning-filter``; judge calls cost)."""
    instruction: bool = False
    """Attacks the task instruction (``fields["instruction"]``): the task prompts must take an
    instruction, and ``--instruction-attacks`` feeds it."""


#: The traits of a kind registered without any: a rule kind that needs nothing from the run.
RULE_TRAITS = KindTraits()

_REGISTRY: dict[str, Callable[[], Perturber]] = {}
_TRAITS: dict[str, KindTraits] = {}
_builtins_loaded = False


def _load_builtins() -> None:
    """Import the built-in perturber modules once (they register themselves on import)."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def register_perturber(
    kind: str,
    factory: Callable[[], Perturber],
    *,
    replace: bool = False,
    traits: KindTraits = RULE_TRAITS,
) -> None:
    """Register a perturber factory under ``kind``.

    Args:
        kind: The kind name users select (e.g. ``"typo"``).
        factory: Zero-argument callable returning a :class:`Perturber` (a class works).
        replace: Allow replacing a different factory already registered under ``kind``.
        traits: What the kind needs from the run (default: nothing, a rule kind).

    Raises:
        ValueError: When ``kind`` is empty, or already taken by another factory and
            ``replace`` is false.
    """
    if not kind or kind == "clean":
        raise ValueError(f"invalid perturbation kind {kind!r}")
    existing = _REGISTRY.get(kind)
    if existing is not None and existing is not factory and not replace:
        raise ValueError(f"perturbation kind {kind!r} is already registered")
    _REGISTRY[kind] = factory
    _TRAITS[kind] = traits


def kind_traits(kind: str) -> KindTraits:
    """What ``kind`` needs from the run (:data:`RULE_TRAITS` for an unknown kind)."""
    _load_builtins()
    return _TRAITS.get(kind, RULE_TRAITS)


def rewriter_kinds() -> frozenset[str]:
    """The registered kinds written by the rewriter model."""
    _load_builtins()
    return frozenset(kind for kind, traits in _TRAITS.items() if traits.rewriter)


def uses_instruction(slots: Sequence[str]) -> bool:
    """Whether any of ``slots`` attacks the task instruction."""
    return any(kind_traits(kind).instruction for kind in slots)


def available_perturbers() -> list[str]:
    """Return the registered kinds, sorted."""
    _load_builtins()
    return sorted(_REGISTRY)


def get_perturber(kind: str) -> Perturber:
    """Return a new perturber of the given kind.

    Args:
        kind: A registered kind.

    Returns:
        The perturber.

    Raises:
        ConfigError: When no perturber of that kind is registered.
    """
    _load_builtins()
    try:
        factory = _REGISTRY[kind]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise ConfigError(f"unknown perturbation kind {kind!r}: use one of {known}") from None
    return factory()


# --------------------------------------------------------------------------------------------
# perturb_item
# --------------------------------------------------------------------------------------------


def _redraw_seed(seed: int, item_id: str, kind: str, slot: int, attempt: int) -> int:
    """Derive a deterministic seed for re-drawing slot ``slot`` (1-based) of an item."""
    digest = hashlib.sha256(f"{seed}:{item_id}:{kind}:{slot}:redraw{attempt}".encode())
    return int.from_bytes(digest.digest()[:8], "big")


def _fields_key(variant: Variant) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(variant.fields.items()))


async def _draw(
    perturber: Perturber, item: Item, *, n: int, seed: int, context: PerturbContext | None
) -> list[Variant]:
    variants = await perturber(item, n=n, seed=seed, context=context)
    if len(variants) > n:
        raise RuntimeError(
            f"perturber {perturber.kind!r} returned {len(variants)} variants, expected {n}"
        )
    return variants


async def perturb_item(
    item: Item,
    *,
    k: int | None = None,
    seed: int,
    kinds: Sequence[str] = DEFAULT_KINDS,
    slots: Sequence[str] | None = None,
    context: PerturbContext | None = None,
) -> list[Variant]:
    """Return the clean variant followed by up to ``k`` perturbations of an item.

    ``slots`` names the kind of every slot (see :attr:`Plan.slots`); without it, slot ``s``
    (1-based) gets kind ``kinds[(s - 1) % len(kinds)]`` (k=4 with the defaults: typo, word,
    distractor, typo). Each kind's perturber is asked once for all its slots. A variant whose
    text equals the clean text or an earlier variant is re-drawn with a derived seed, at most
    :data:`MAX_REDRAWS` times; if it is still identical it is kept and its ``detail`` says so.
    A model-backed perturber may fill fewer slots than asked (its rewrites failed the meaning
    check); the missing slots are counted in ``context.stats.unfilled`` and the variants that
    remain are numbered ``1..k'`` without gaps.

    Raises:
        ValueError: When ``k`` is negative, or slots are wanted and ``kinds`` is empty.
        ConfigError: When a kind is not registered.
    """
    if slots is None:
        if k is None or k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        if k and not kinds:
            raise ValueError("kinds must name at least one perturbation kind when k > 0")
        slots = [kinds[i % len(kinds)] for i in range(k)]
    clean = Variant(kind="clean", index=0, fields=item.text_fields(), detail="original input")
    if not slots:
        return [clean]
    slot_kinds = list(slots)
    unique_kinds = list(dict.fromkeys(slot_kinds))
    perturbers = {kind: get_perturber(kind) for kind in unique_kinds}
    drawn = await asyncio.gather(
        *(
            _draw(perturbers[kind], item, n=slot_kinds.count(kind), seed=seed, context=context)
            for kind in unique_kinds
        )
    )
    pending = {kind: list(variants) for kind, variants in zip(unique_kinds, drawn, strict=True)}

    out = [clean]
    # Variants are compared on all their fields: an instruction attack keeps the text and
    # changes only fields["instruction"].
    seen = {_fields_key(clean): "the clean text"}
    for slot, kind in enumerate(slot_kinds, start=1):
        if not pending[kind]:
            if context is not None:
                context.stats.unfilled[kind] += 1
            continue
        variant = pending[kind].pop(0)
        attempt = 0
        while _fields_key(variant) in seen and attempt < MAX_REDRAWS:
            attempt += 1
            sub_seed = _redraw_seed(seed, item.id, kind, slot, attempt)
            redrawn = await _draw(perturbers[kind], item, n=1, seed=sub_seed, context=context)
            if not redrawn:
                break
            variant = redrawn[0]
        detail = variant.detail
        index = len(out)
        key = _fields_key(variant)
        if key in seen:
            detail += f" (identical to {seen[key]} after {attempt} re-draws)"
        else:
            seen[key] = f"variant {index}"
        out.append(replace(variant, kind=kind, index=index, detail=detail))
    return out
