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

* ``await perturber(item, n=n, seed=seed, generator=g)`` returns exactly ``n`` variants of
  kind ``perturber.kind``; their ``index`` is ignored (return 0), the caller renumbers them;
* variant ``j`` (0-based) depends only on ``(item, seed, kind, j)``, so asking for more
  variants never changes the first ones;
* rule-based perturbers ignore ``generator``; an LLM perturber uses it for cached calls.
"""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from sua_audit.errors import ConfigError

if TYPE_CHECKING:
    from sua_audit.dataset import Item

__all__ = [
    "DEFAULT_KINDS",
    "MAX_REDRAWS",
    "Perturber",
    "Variant",
    "available_perturbers",
    "get_perturber",
    "perturb_item",
    "register_perturber",
    "render_nli",
    "rng_for",
]

#: Kinds used when none are given, assigned to the K slots round-robin in this order.
DEFAULT_KINDS: tuple[str, ...] = ("typo", "word", "distractor")

#: How many times :func:`perturb_item` re-draws a variant equal to an earlier one.
MAX_REDRAWS = 5

#: Modules whose import registers the built-in perturbers (imported on first registry use).
_BUILTIN_MODULES: tuple[str, ...] = ("sua_audit.perturb.rules",)


@dataclass(frozen=True, slots=True)
class Variant:
    """One version of an item's text: the clean original (index 0) or a perturbation.

    Attributes:
        kind: ``"clean"`` for the original, else the perturber's kind.
        index: 0 for clean, ``1..K`` for perturbations in order.
        fields: The (perturbed) text fields, same keys as ``item.text_fields()``.
        detail: Short human description of the edit, e.g. ``typo: swapped "the"→"teh"``.
    """

    kind: str
    index: int
    fields: dict[str, str]
    detail: str

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
        return out


@runtime_checkable
class Perturber(Protocol):
    """Makes ``n`` variants of one kind for an item (see the module docstring's contract)."""

    kind: str

    async def __call__(
        self, item: Item, *, n: int, seed: int, generator: Any | None = None
    ) -> list[Variant]:
        """Return ``n`` variants of ``item`` (index 0; the caller renumbers them).

        Args:
            item: The item to perturb.
            n: How many variants to return.
            seed: Base seed; variant ``j`` must depend only on (item, seed, kind, j).
            generator: The engine's Generator, for perturbers that call a model; rule-based
                perturbers ignore it.

        Returns:
            Exactly ``n`` variants.
        """
        ...


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

_REGISTRY: dict[str, Callable[[], Perturber]] = {}
_builtins_loaded = False


def _load_builtins() -> None:
    """Import the built-in perturber modules once (they register themselves on import)."""
    global _builtins_loaded
    if not _builtins_loaded:
        _builtins_loaded = True
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)


def register_perturber(
    kind: str, factory: Callable[[], Perturber], *, replace: bool = False
) -> None:
    """Register a perturber factory under ``kind``.

    Args:
        kind: The kind name users select (e.g. ``"typo"``).
        factory: Zero-argument callable returning a :class:`Perturber` (a class works).
        replace: Allow replacing a different factory already registered under ``kind``.

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


async def _draw(
    perturber: Perturber, item: Item, *, n: int, seed: int, generator: Any | None
) -> list[Variant]:
    variants = await perturber(item, n=n, seed=seed, generator=generator)
    if len(variants) != n:
        raise RuntimeError(
            f"perturber {perturber.kind!r} returned {len(variants)} variants, expected {n}"
        )
    return variants


async def perturb_item(
    item: Item,
    *,
    k: int,
    seed: int,
    kinds: Sequence[str] = DEFAULT_KINDS,
    generator: Any | None = None,
) -> list[Variant]:
    """Return the clean variant followed by ``k`` perturbations of an item.

    Slot ``s`` (1-based) gets kind ``kinds[(s - 1) % len(kinds)]`` (k=4 with the defaults:
    typo, word, distractor, typo). Each kind's perturber is asked once for all its slots.
    A variant whose text equals the clean text or an earlier variant is re-drawn with a
    derived seed, at most :data:`MAX_REDRAWS` times; if it is still identical it is kept
    and its ``detail`` says so.

    Args:
        item: The item.
        k: Number of perturbations (0 gives just the clean variant).
        seed: Base seed.
        kinds: Kinds to cycle through, in order.
        generator: Passed to every perturber (for model-backed perturbers).

    Returns:
        ``[clean, v1, ..., vk]`` with indexes ``0..k``.

    Raises:
        ValueError: When ``k`` is negative, or ``k > 0`` and ``kinds`` is empty.
        ConfigError: When a kind is not registered.
    """
    if k < 0:
        raise ValueError(f"k must be >= 0, got {k}")
    clean = Variant(kind="clean", index=0, fields=item.text_fields(), detail="original input")
    if k == 0:
        return [clean]
    if not kinds:
        raise ValueError("kinds must name at least one perturbation kind when k > 0")
    slot_kinds = [kinds[i % len(kinds)] for i in range(k)]
    unique_kinds = list(dict.fromkeys(slot_kinds))
    perturbers = {kind: get_perturber(kind) for kind in unique_kinds}
    drawn = await asyncio.gather(
        *(
            _draw(
                perturbers[kind],
                item,
                n=slot_kinds.count(kind),
                seed=seed,
                generator=generator,
            )
            for kind in unique_kinds
        )
    )
    pending = {kind: list(variants) for kind, variants in zip(unique_kinds, drawn, strict=True)}

    out = [clean]
    seen = {clean.text: "the clean text"}
    for slot, kind in enumerate(slot_kinds, start=1):
        variant = pending[kind].pop(0)
        attempt = 0
        while variant.text in seen and attempt < MAX_REDRAWS:
            attempt += 1
            sub_seed = _redraw_seed(seed, item.id, kind, slot, attempt)
            (variant,) = await _draw(
                perturbers[kind], item, n=1, seed=sub_seed, generator=generator
            )
        detail = variant.detail
        if variant.text in seen:
            detail += f" (identical to {seen[variant.text]} after {MAX_REDRAWS} re-draws)"
        else:
            seen[variant.text] = f"variant {slot}"
        out.append(replace(variant, kind=kind, index=slot, detail=detail))
    return out
