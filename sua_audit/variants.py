"""Variant sets: a dataset's perturbations built once, reviewed, and audited as they are.

``sua-audit perturb`` writes every item's variants to a JSONL file (:func:`build_variant_set`);
``sua-audit run --variants FILE`` audits exactly those variants and calls no rewriter
(:func:`prepare_for_run`, then :meth:`VariantSet.iter_variants` inside the audit). The set is
made by the same function that ``run`` perturbs with (:func:`sua_audit.auditing.perturb_chunk`),
so a set built with a plan, seed and rewriter holds the variants a plain run with the same
options audits.

File format (version :data:`FORMAT_VERSION`), UTF-8 JSONL:

* line 1, the header: ``{"sua_audit_variants": 1, "plan", "slots", "budgets", "seed",
  "rewriter_model", "rewriter", "rewrite_temperature", "meaning_filter", "templates",
  "template_sha256", "rewrites", "dataset": {"path", "sha256", "items"}, "limit", "n_items",
  "n_variants", "content_sha256", "tool_version", "created_utc", ...}``. It is descriptive,
  except ``plan`` (the items' variant kinds must follow it) and ``content_sha256``.
  A header (rather than a sidecar file) keeps the set one file: it cannot be committed,
  copied or mailed without its provenance and its hash;
* one line per item, in dataset order: ``{"id", "item_sha256", "variants_sha256",
  "variants": [{"kind", "index", "text", "detail", "fields"?, "flags"?, "rewriter"?,
  "template"?, "template_sha256"?, "meaning"?}, ...]}``; variant 0 is the clean item.

Hashes (all sha256, hex, over :func:`~sua_audit.store.keys.canonical_json`, so re-indenting
the file changes nothing but any edited value does):

* ``item_sha256``: what the variants were derived from — the item's id, task, text fields
  (input, premise, hypothesis) and labels (:func:`item_sha256`). A run refuses a set whose
  items are missing from the dataset or changed since; fixing an item's gold answers does not
  invalidate its variants;
* ``variants_sha256``: the line's variants, so a hand edit is caught on its own line;
* ``content_sha256`` (the set's identity; runs record it): the item lines, in order.

A set edited on purpose (a reviewed fix of one paraphrase) is re-hashed with
``sua-audit rehash-variants FILE`` (:func:`rehash_variant_set`), which records that it was
edited; anything else is rebuilt with ``sua-audit perturb``.

Problems are reported like a dataset's: ``file:line: field: problem — fix``, every problem of
the file (at most :data:`~sua_audit.dataset.MAX_PROBLEMS`), exit code 2.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import math
import re
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sua_audit.canonical import canonical_json
from sua_audit.dataset import MAX_LINE_BYTES, MAX_PROBLEMS, iter_json_lines
from sua_audit.errors import ConfigError, DatasetError, DatasetProblem
from sua_audit.schema import MULTI_ANSWER

if TYPE_CHECKING:
    from sua_audit.config import AuditConfig
    from sua_audit.dataset import DatasetInfo, Item
    from sua_audit.perturbation import Plan, Variant

__all__ = [
    "FORMAT_VERSION",
    "HEADER_KEY",
    "VariantSet",
    "build_variant_set",
    "item_sha256",
    "open_variant_set",
    "prepare_for_run",
    "read_header",
    "rehash_variant_set",
]

#: The format version this sua-audit writes and reads.
FORMAT_VERSION = 1
#: The header's marker key; its value is the format version.
HEADER_KEY = "sua_audit_variants"

_HEADER = "(header)"
_FILE = "(file)"
_LINE = "(line)"
_SHA = re.compile(r"^[0-9a-f]{64}$")
_ITEM_KEYS = ("id", "item_sha256", "variants_sha256", "variants")
#: Variant keys: the audit's own (``Variant.to_dict``), then how a model-written one was made.
_VARIANT_TEXT_KEYS = ("kind", "index", "text", "detail", "fields", "flags")
_PROVENANCE_KEYS = ("rewriter", "template", "template_sha256", "meaning")
#: Flags a variant may carry.
KNOWN_FLAGS = frozenset({MULTI_ANSWER})
#: Options that only shape how variants are written: they have no effect with --variants.
#: (--prompts-dir is not one: the audited model's task templates may come from it too.)
REWRITE_OPTIONS = (
    ("rewriter_model", "--rewriter-model"),
    ("rewrite_temperature", "--rewrite-temperature"),
    ("meaning_filter", "--meaning-filter"),
    ("meaning_threshold", "--meaning-threshold"),
    ("instruction_attacks", "--instruction-attacks"),
)


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def item_sha256(item: Item) -> str:
    """The hash of what an item's variants are derived from: id, task, text fields, labels.

    Perturbers read nothing else of an item (see :mod:`sua_audit.perturbation`), so gold answers,
    ``ambiguous`` and extra fields may change without making its variants stale.
    """
    return _sha(
        canonical_json(
            {
                "id": item.id,
                "task": item.task,
                "fields": item.text_fields(),
                "labels": list(item.labels) if item.labels is not None else None,
            }
        )
    )


def _fields_sha256(fields: dict[str, str]) -> str:
    return _sha(canonical_json(fields))


def variants_sha256(variants: list[dict[str, Any]]) -> str:
    """The hash of one item line's ``variants`` list."""
    return _sha(canonical_json(variants))


def variant_record(variant: Variant) -> dict[str, Any]:
    """One variant as the set stores it: the audit's fields, then its provenance (if any)."""
    out = variant.to_dict()
    for key in _PROVENANCE_KEYS:
        if key in variant.provenance:
            out[key] = variant.provenance[key]
    return out


def item_record(item: Item, variants: Sequence[Variant]) -> dict[str, Any]:
    """One item line of a variant set."""
    records = [variant_record(v) for v in variants]
    return {
        "id": item.id,
        "item_sha256": item_sha256(item),
        "variants_sha256": variants_sha256(records),
        "variants": records,
    }


class _ContentHash:
    """``content_sha256``: the canonical JSON of every item line, one per line, in order."""

    def __init__(self) -> None:
        self.digest = hashlib.sha256()

    def add(self, line: dict[str, Any]) -> None:
        self.digest.update((canonical_json(line) + "\n").encode("utf-8"))

    def hexdigest(self) -> str:
        return self.digest.hexdigest()


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SetEntry:
    """One item line of a set, as much as matching it against the dataset needs."""

    line: int
    id: str
    item_sha256: str
    clean_sha256: str
    """Hash of the clean variant's fields (must equal the dataset item's text fields)."""


@dataclass
class VariantSet:
    """A checked variant set: its header, identity and item index (variants stay on disk)."""

    path: Path
    """The path as given (for messages)."""
    resolved: Path
    header: dict[str, Any]
    content_sha256: str
    entries: list[SetEntry] = field(default_factory=list)
    max_line_bytes: int = MAX_LINE_BYTES

    @property
    def plan(self) -> str:
        """The set's plan, written as ``--perturbations`` normalises it."""
        from sua_audit.perturbation import parse_plan

        return str(parse_plan(self.header["plan"]))

    @property
    def n_items(self) -> int:
        return len(self.entries)

    def record(self) -> dict[str, Any]:
        """What a run's summary records about the set it audited."""
        return {
            "path": str(self.resolved),
            "sha256": self.content_sha256,
            "n_items": self.n_items,
            "plan": self.plan,
        }

    def perturbation_summary(self) -> dict[str, Any]:
        """``results.perturbation`` of a run on this set: the header's account of how the
        variants were made (rewrite counts are the whole set's), and the set itself."""
        from sua_audit.perturbation import parse_plan

        plan = parse_plan(self.plan)
        out: dict[str, Any] = {
            "plan": self.plan,
            "slots": plan.slots,
            "budgets": plan.budgets,
            "rewrites": self.header.get("rewrites") or {},
        }
        for key in ("meaning_filter", "rewriter", "templates"):
            if self.header.get(key) is not None:
                out[key] = self.header[key]
        out["variant_set"] = {**self.record(), "seed": self.header.get("seed")}
        return out

    def iter_variants(self, limit: int | None = None) -> Iterator[tuple[SetEntry, list[Variant]]]:
        """Stream the first ``limit`` items' variants (all when None), re-checked as read.

        Raises:
            DatasetError: a line no longer reads as it did when the set was opened (the file
                changed in between).
        """
        from sua_audit.perturbation import parse_plan

        plan = parse_plan(self.plan)
        rows = iter_json_lines(self.path, max_line_bytes=self.max_line_bytes)
        seen: dict[str, int] = {}
        count = 0
        for i, row in enumerate(rows):
            if i == 0:
                continue
            if limit is not None and count >= limit:
                return
            check = _Check(str(self.path), row.line)
            check.problems.extend(row.problems)
            parsed = None if row.problems else _parse_item_line(row.value, check, plan, seen)
            expected = self.entries[count] if count < len(self.entries) else None
            if parsed is not None and expected is not None and parsed[0] != expected:
                check.add("id", "differs from when the set was opened", "do not edit it mid-run")
            if check.problems or parsed is None:
                raise DatasetError(check.problems)
            count += 1
            yield parsed


class _Check:
    """Problems of one line."""

    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line
        self.problems: list[DatasetProblem] = []

    def add(self, where: str, problem: str, fix: str) -> None:
        self.problems.append(DatasetProblem(self.path, self.line, where, problem, fix))


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "an object"


def _rebuild(path: str, dataset: str | Path | None = None) -> str:
    data = f"--dataset {dataset} " if dataset is not None else ""
    return (
        f"rebuild the set with `sua-audit perturb {data}--out {path}` (with the set's plan, "
        "seed and rewriter)"
    )


def _rehash_or_rebuild(path: str) -> str:
    return (
        f"if the edit is a reviewed fix, record it with `sua-audit rehash-variants {path}`; "
        f"otherwise {_rebuild(path)}"
    )


def _check_header(value: Any, check: _Check) -> dict[str, Any] | None:
    """Check line 1; return the header when usable."""
    path = check.path
    if not isinstance(value, dict):
        check.add(
            _HEADER,
            f"line 1 is {_kind_of(value)}, not the variant set's header object",
            f"a variant set starts with a header line written by sua-audit perturb; "
            f"{_rebuild(path)}",
        )
        return None
    if HEADER_KEY not in value:
        what = (
            "line 1 is an item line: the header is missing"
            if "variants" in value or "id" in value
            else f'line 1 has no "{HEADER_KEY}" key: this is not a variant set'
        )
        check.add(
            _HEADER,
            what,
            "pass a file written by `sua-audit perturb` (its first line is the header); "
            + _rebuild(path),
        )
        return None
    version = value[HEADER_KEY]
    if not isinstance(version, int) or isinstance(version, bool):
        check.add(
            HEADER_KEY,
            f"is {_kind_of(version)}, not a format version number",
            f"this sua-audit reads version {FORMAT_VERSION}; {_rebuild(path)}",
        )
        return None
    if version != FORMAT_VERSION:
        check.add(
            HEADER_KEY,
            f"format version {version} is not supported (this sua-audit reads version "
            f"{FORMAT_VERSION})",
            "use the sua-audit version that wrote the set, or " + _rebuild(path),
        )
        return None
    ok = True
    plan = value.get("plan")
    if not isinstance(plan, str):
        check.add("plan", f"is {_kind_of(plan)}, not a plan string", _rebuild(path))
        ok = False
    else:
        from sua_audit.perturbation import parse_plan

        try:
            parsed = parse_plan(plan)
        except ConfigError as exc:
            check.add("plan", f"cannot be read: {exc}", _rebuild(path))
            ok = False
        else:
            if parsed.k < 1:
                check.add("plan", "has no perturbed variant", _rebuild(path))
                ok = False
    for key, kinds, what in (
        ("content_sha256", str, "a sha256 (64 hex digits)"),
        ("seed", int, "an integer"),
        ("n_items", int, "an integer"),
        ("dataset", dict, "an object"),
    ):
        got = value.get(key)
        if key not in value:
            check.add(key, "is missing", _rebuild(path))
            ok = False
        elif not isinstance(got, kinds) or isinstance(got, bool):
            check.add(key, f"is {_kind_of(got)}, not {what}", _rebuild(path))
            ok = False
        elif key == "content_sha256" and not _SHA.match(str(got)):
            check.add(key, "is not a sha256 (64 lower-case hex digits)", _rehash_or_rebuild(path))
            ok = False
    for key in ("rewriter", "meaning_filter", "templates", "rewrites"):
        got = value.get(key)
        if got is not None and not isinstance(got, dict):
            check.add(key, f"is {_kind_of(got)}, not an object", _rebuild(path))
            ok = False
    return value if ok else None


def _string_field(check: _Check, obj: dict[str, Any], key: str, where: str) -> str | None:
    value = obj.get(key)
    if key not in obj:
        check.add(where, "is missing", f'add "{key}"')
        return None
    if not isinstance(value, str):
        check.add(where, f"is {_kind_of(value)}, not a string", f'make "{key}" a string')
        return None
    return value


def _parse_variant(
    check: _Check, v: Any, position: int, known: set[str], plan_kinds: set[str]
) -> dict[str, Any] | None:
    """Check one variant object; return it when valid."""
    where = f"variants[{position}]"
    if not isinstance(v, dict):
        check.add(where, f"is {_kind_of(v)}, not an object", "write each variant as an object")
        return None
    problems = len(check.problems)
    for key in v:
        if key not in _VARIANT_TEXT_KEYS and key not in _PROVENANCE_KEYS:
            allowed = ", ".join(_VARIANT_TEXT_KEYS + _PROVENANCE_KEYS)
            check.add(f"{where}.{key}", "is not a variant field", f"remove it (fields: {allowed})")
    kind = _string_field(check, v, "kind", f"{where}.kind")
    if kind is not None:
        if position == 0 and kind != "clean":
            check.add(
                f"{where}.kind",
                f'is "{kind}"; variant 0 must be the clean item ("clean")',
                "keep the clean variant first",
            )
        elif position > 0 and kind not in known:
            check.add(
                f"{where}.kind",
                f"unknown kind {json.dumps(kind)}",
                f"use one of {', '.join(sorted(known))}",
            )
        elif position > 0 and kind not in plan_kinds:
            check.add(
                f"{where}.kind",
                f"{json.dumps(kind)} is not in the set's plan ({', '.join(sorted(plan_kinds))})",
                "the header's plan must name every kind the items use; " + _rebuild(check.path),
            )
    index = v.get("index")
    if "index" not in v:
        check.add(f"{where}.index", "is missing", f'add "index": {position}')
    elif not isinstance(index, int) or isinstance(index, bool):
        check.add(f"{where}.index", f"is {_kind_of(index)}, not an integer", f'"index": {position}')
    elif index != position:
        check.add(
            f"{where}.index",
            f"is {index}, but the variant is number {position} in the list",
            f'number the variants 0, 1, 2, ... in order ("index": {position})',
        )
    text = _string_field(check, v, "text", f"{where}.text")
    if text is not None and not text.strip():
        check.add(f"{where}.text", "is empty", "put the variant's text in it")
    _string_field(check, v, "detail", f"{where}.detail")
    if "fields" in v:
        fields = v["fields"]
        if not isinstance(fields, dict) or not all(isinstance(x, str) for x in fields.values()):
            check.add(
                f"{where}.fields",
                f"is {_kind_of(fields)}, not an object of strings",
                'write it as {"input": "...", "premise": "...", "hypothesis": "..."}',
            )
        elif fields.get("input") != text:
            check.add(
                f"{where}.fields.input",
                'differs from "text"',
                'keep "text" and "fields.input" equal (text is what the model is sent)',
            )
    if "flags" in v:
        flags = v["flags"]
        if not isinstance(flags, list) or not all(isinstance(x, str) for x in flags):
            check.add(
                f"{where}.flags",
                f"is {_kind_of(flags)}, not a list of strings",
                'write it as a list, e.g. "flags": ["multi_answer"], or remove it',
            )
        else:
            for flag in flags:
                if flag not in KNOWN_FLAGS:
                    check.add(
                        f"{where}.flags",
                        f"unknown flag {json.dumps(flag)}",
                        f"use {', '.join(sorted(KNOWN_FLAGS))} or remove it",
                    )
    for key in ("rewriter", "template", "template_sha256"):
        if key in v and not isinstance(v[key], str):
            check.add(
                f"{where}.{key}",
                f"is {_kind_of(v[key])}, not a string",
                f'make "{key}" a string as perturb wrote it, or remove it',
            )
    if "meaning" in v and not (
        isinstance(v["meaning"], list) and all(isinstance(m, dict) for m in v["meaning"])
    ):
        check.add(
            f"{where}.meaning",
            f"is {_kind_of(v['meaning'])}, not a list of objects",
            'write it as [{"field": "input", "verdict": "accepted", "score": 0.9}], or remove it',
        )
    return v if len(check.problems) == problems else None


def _follows(kinds: list[str], slots: list[str]) -> bool:
    """Whether ``kinds`` is ``slots`` with some slots left out (unfilled), in order."""
    it = iter(slots)
    return all(any(kind == slot for slot in it) for kind in kinds)


def _parse_item_line(
    value: Any, check: _Check, plan: Plan, seen: dict[str, int]
) -> tuple[SetEntry, list[Variant]] | None:
    """Check one item line; return its index entry and its variants when valid."""
    from sua_audit.perturbation import Variant, available_perturbers

    if not isinstance(value, dict):
        check.add(_LINE, f"is {_kind_of(value)}, not an item object", _rebuild(check.path))
        return None
    if HEADER_KEY in value:
        check.add(
            HEADER_KEY,
            "a second header: files were concatenated?",
            "keep one header, on line 1; " + _rebuild(check.path),
        )
        return None
    for key in value:
        if key not in _ITEM_KEYS:
            check.add(
                key, "is not an item-line field", f"remove it (fields: {', '.join(_ITEM_KEYS)})"
            )
    item_id = _string_field(check, value, "id", "id")
    if item_id is not None:
        if not item_id.strip():
            check.add("id", "is empty", "use the dataset item's id")
        elif item_id in seen:
            check.add(
                "id",
                f"duplicate id {json.dumps(item_id)} (first on line {seen[item_id]})",
                "list each item once",
            )
        else:
            seen[item_id] = check.line
    shas: dict[str, str] = {}
    for key in ("item_sha256", "variants_sha256"):
        got = _string_field(check, value, key, key)
        if got is not None:
            if _SHA.match(got):
                shas[key] = got
            else:
                check.add(
                    key,
                    "is not a sha256 (64 lower-case hex digits)",
                    _rehash_or_rebuild(check.path),
                )
    raw = value.get("variants")
    if "variants" not in value:
        check.add("variants", "is missing", _rebuild(check.path))
        return None
    if not isinstance(raw, list) or not raw:
        check.add(
            "variants",
            f"is {_kind_of(raw) if raw != [] else 'an empty list'}, not a list of variants",
            "list the clean item first, then its variants",
        )
        return None
    known = set(available_perturbers())
    plan_kinds = {e.kind for e in plan.entries}
    parsed = [_parse_variant(check, v, i, known, plan_kinds) for i, v in enumerate(raw)]
    if check.problems or any(p is None for p in parsed):
        return None
    kinds = [v["kind"] for v in raw[1:]]
    if len(kinds) > plan.k or not _follows(kinds, plan.slots):
        check.add(
            "variants",
            f"kinds {', '.join(kinds) or '(none)'} do not follow the plan {plan} "
            f"(slots: {', '.join(plan.slots)})",
            "variants must fill the plan's slots in order (a slot may be left out); "
            + _rebuild(check.path),
        )
        return None
    actual = variants_sha256(raw)
    if actual != shas["variants_sha256"]:
        check.add(
            "variants",
            f"were edited after the set was built (they hash to {actual[:12]}…, the line "
            f"records {shas['variants_sha256'][:12]}…)",
            _rehash_or_rebuild(check.path),
        )
        return None
    assert item_id is not None
    variants = []
    for v in raw:
        fields = dict(v["fields"]) if "fields" in v else {"input": v["text"]}
        provenance = {k: v[k] for k in _PROVENANCE_KEYS if k in v}
        variants.append(
            Variant(
                v["kind"], v["index"], fields, v["detail"], tuple(v.get("flags", ())), provenance
            )
        )
    entry = SetEntry(check.line, item_id, shas["item_sha256"], _fields_sha256(variants[0].fields))
    return entry, variants


def read_header(path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> dict[str, Any]:
    """Read and check only the header (line 1) of a variant set.

    Raises:
        DatasetError: the file cannot be read, is empty, or its header is missing, of another
            format version or malformed (``file:1: field: problem — fix``).
    """
    shown = str(path)
    for row in iter_json_lines(path, max_line_bytes=max_line_bytes, limit=1):
        check = _Check(shown, row.line)
        check.problems.extend(row.problems)
        header = None if row.problems else _check_header(row.value, check)
        if header is None or check.problems:
            raise DatasetError(check.problems)
        return header
    raise _empty(shown)


def _empty(shown: str) -> DatasetError:
    return DatasetError(
        [DatasetProblem(shown, 0, _FILE, "is empty: no header, no items", _rebuild(shown))]
    )


def open_variant_set(path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> VariantSet:
    """Read and check a whole variant set in one streaming pass; keep only its index.

    Every problem is collected (at most :data:`~sua_audit.dataset.MAX_PROBLEMS`, then one line
    saying how many more): lines that are not JSON, missing fields and wrong types, unknown
    kinds and flags, variants that do not follow the plan, lines edited after the set was
    built, and a ``content_sha256`` or ``n_items`` that does not match the item lines.

    Raises:
        DatasetError: With every problem found.
    """
    from sua_audit.perturbation import parse_plan

    shown = str(path)
    problems: list[DatasetProblem] = []
    more = 0
    header: dict[str, Any] | None = None
    plan = None
    entries: list[SetEntry] = []
    seen: dict[str, int] = {}
    content = _ContentHash()

    def report(found: list[DatasetProblem]) -> None:
        nonlocal more
        for p in found:
            if len(problems) < MAX_PROBLEMS:
                problems.append(p)
            else:
                more += 1

    first = True
    for row in iter_json_lines(path, max_line_bytes=max_line_bytes):
        check = _Check(shown, row.line)
        check.problems.extend(row.problems)
        if first:
            first = False
            if not row.problems:
                header = _check_header(row.value, check)
            report(check.problems)
            if header is None:
                raise DatasetError(problems)  # nothing else can be checked without it
            plan = parse_plan(header["plan"])
            continue
        assert plan is not None
        parsed = None if row.problems else _parse_item_line(row.value, check, plan, seen)
        report(check.problems)
        if parsed is not None:
            entries.append(parsed[0])
            content.add(row.value)
    if header is None:
        raise _empty(shown)
    if more:
        problems.append(
            DatasetProblem(
                shown, 0, _FILE, f"{more} more problem(s), not listed", "fix the above first"
            )
        )
    if problems:
        raise DatasetError(problems)
    digest = content.hexdigest()
    check = _Check(shown, 1)
    if header["n_items"] != len(entries):
        check.add(
            "n_items",
            f"the header counts {header['n_items']} items, the file has {len(entries)}: item "
            "lines were added or removed",
            _rehash_or_rebuild(shown),
        )
    if digest != header["content_sha256"]:
        check.add(
            "content_sha256",
            f"the item lines hash to {digest[:12]}…, the header records "
            f"{header['content_sha256'][:12]}…: the file was edited after it was built "
            "(lines added, removed or reordered)",
            _rehash_or_rebuild(shown),
        )
    if check.problems:
        raise DatasetError(check.problems)
    if not entries:
        raise DatasetError(
            [DatasetProblem(shown, 0, _FILE, "has a header but no items", _rebuild(shown))]
        )
    return VariantSet(
        path=Path(path),
        resolved=Path(path).resolve(),
        header=header,
        content_sha256=digest,
        entries=entries,
        max_line_bytes=max_line_bytes,
    )


def match_dataset(
    variant_set: VariantSet,
    dataset: str | Path,
    *,
    limit: int | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> None:
    """Check that the set holds the dataset's (first ``limit``) items, in order, unchanged.

    When this passes, the set's first items are exactly the audited ones, so the audit reads
    the two files side by side.

    Raises:
        DatasetError: one line per item missing from the set, changed since the set was built
            (its ``item_sha256`` or clean text differs), listed in another order, or in the set
            but not in the dataset (for a ``limit``: not among its first items).
    """
    from sua_audit.dataset import iter_items

    shown = str(variant_set.path)
    rebuild = _rebuild(shown, dataset)
    position = {e.id: i for i, e in enumerate(variant_set.entries)}
    problems: list[DatasetProblem] = []
    matched: set[str] = set()
    last = -1
    for item in iter_items(dataset, limit=limit, max_line_bytes=max_line_bytes):
        if len(problems) >= MAX_PROBLEMS:
            break
        where = f"{dataset}:{item.line}"
        i = position.get(item.id)
        if i is None:
            problems.append(
                DatasetProblem(
                    str(dataset),
                    item.line,
                    "id",
                    f"item {json.dumps(item.id)} has no variants in {shown}",
                    rebuild,
                )
            )
            continue
        entry = variant_set.entries[i]
        matched.add(item.id)
        if entry.item_sha256 != item_sha256(item):
            problems.append(
                DatasetProblem(
                    shown,
                    entry.line,
                    "item_sha256",
                    f"item {json.dumps(item.id)} changed in the dataset ({where}) since the "
                    "set was built (its id, task, text or labels differ)",
                    rebuild,
                )
            )
        elif entry.clean_sha256 != _fields_sha256(item.text_fields()):
            problems.append(
                DatasetProblem(
                    shown,
                    entry.line,
                    "variants[0]",
                    f"the clean variant of {json.dumps(item.id)} is not the dataset's text "
                    f"({where})",
                    "variant 0 must be the item itself; " + rebuild,
                )
            )
        if i < last:
            problems.append(
                DatasetProblem(
                    shown,
                    entry.line,
                    "id",
                    f"item {json.dumps(item.id)} comes after "
                    f"{json.dumps(variant_set.entries[last].id)} in the dataset ({where}) but "
                    "before it in the set: the set lists the items in another order",
                    rebuild,
                )
            )
        last = max(last, i)
    # Set items the dataset lacks: all of them, or (with a limit) those among the audited ones.
    upto = len(variant_set.entries) if limit is None else last + 1
    extra = [e for e in variant_set.entries[:upto] if e.id not in matched]
    if extra:
        among = "" if limit is None else f" (among its first {limit} items)"
        more = f" (nor are {len(extra) - 1} more set items after it)" if len(extra) > 1 else ""
        problems.append(
            DatasetProblem(
                shown,
                extra[0].line,
                "id",
                f"item {json.dumps(extra[0].id)} is not in the dataset {dataset}{among}{more}: "
                "the set was built from another version of it",
                rebuild,
            )
        )
    if problems:
        raise DatasetError(problems)


def prepare_for_run(config: AuditConfig, info: DatasetInfo) -> VariantSet:
    """Open ``config.variants`` and check it against the run: its plan is the run's, and it
    holds the dataset's items unchanged. Everything is checked before any model loads.

    Raises:
        DatasetError: a bad set, or one that does not match the dataset (exit 2).
        ConfigError: the run's ``--perturbations`` is not the set's plan (exit 2).
    """
    assert config.variants is not None
    variant_set = open_variant_set(config.variants, max_line_bytes=config.max_line_bytes)
    if config.perturbations != variant_set.plan:
        raise ConfigError(
            f"--perturbations {config.perturbations} is not the plan of the variant set "
            f"{config.variants} ({variant_set.plan}); drop --perturbations to use the set's, or "
            f"build another set with `sua-audit perturb --perturbations {config.perturbations}`."
        )
    match_dataset(variant_set, info.path, limit=config.limit, max_line_bytes=info.max_line_bytes)
    return variant_set


def variant_options(options: dict[str, Any]) -> dict[str, Any]:
    """``run``'s options with ``--variants``: the set's plan, and no rewrite option.

    ``--perturbations`` may be given only when it is the set's plan; the options that shape
    how variants are written (``--rewriter-model``, ``--prompts-dir``, ...) are refused: the
    variants were written when the set was built.

    Raises:
        DatasetError: the set's header is unreadable (``file:1``).
        ConfigError: a conflicting option.
    """
    path = options.get("variants")
    if not path:
        return options
    from sua_audit.perturbation import parse_plan

    header = read_header(path, max_line_bytes=options.get("max_line_bytes") or MAX_LINE_BYTES)
    plan = str(parse_plan(header["plan"]))
    given = options.get("perturbations")
    if given is not None and str(parse_plan(given)) != plan:
        raise ConfigError(
            f"--perturbations {given} is not the plan of the variant set {path} ({plan}); drop "
            f"--perturbations to audit the set as it is, or build another set with "
            f"`sua-audit perturb --perturbations {given}`."
        )
    for key, flag in REWRITE_OPTIONS:
        value = options.get(key)
        if value is None or (key == "rewriter_model" and value == header.get("rewriter_model")):
            continue
        raise ConfigError(
            f"{flag} has no effect with --variants: the variants in {path} were written when "
            f"the set was built (rewriter {header.get('rewriter_model') or 'none'}). Drop {flag}"
            + (" (or unset SUA_AUDIT_REWRITER_MODEL)" if key == "rewriter_model" else "")
            + f", or build a new set with `sua-audit perturb {flag} ...`."
        )
    return {**options, "perturbations": plan}


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------


def _header(
    config: AuditConfig,
    info: DatasetInfo,
    perturbation: dict[str, Any],
    context: Any,
    *,
    content_sha256: str,
    n_items: int,
    n_variants: int,
    rewriter_stats: dict[str, Any] | None,
) -> dict[str, Any]:
    from sua_audit import __version__
    from sua_audit.perturbation import kind_traits
    from sua_audit.store import utc_now

    used = sorted({k for k in config.plan.slots if kind_traits(k).rewriter})
    templates = {k: context.prompts.get(k) for k in used} if used else {}
    return {
        HEADER_KEY: FORMAT_VERSION,
        "plan": config.perturbations,
        "slots": config.plan.slots,
        "budgets": config.plan.budgets,
        "seed": config.seed,
        "rewriter_model": config.rewriter_model if used else None,
        "rewriter": perturbation.get("rewriter"),
        "rewrite_temperature": config.rewrite_temperature if used else None,
        "meaning_filter": perturbation.get("meaning_filter"),
        "templates": {k: t.ref for k, t in templates.items()},
        "template_sha256": {k: t.sha256 for k, t in templates.items()},
        "instruction_attacks": config.instruction_attacks,
        "rewrites": perturbation.get("rewrites") or {},
        "rewriter_calls": None if rewriter_stats is None else rewriter_stats["calls"],
        "rewriter_cache_hits": None if rewriter_stats is None else rewriter_stats["hits"],
        "dataset": {
            "path": str(info.resolved_path or Path(info.path).resolve()),
            "sha256": info.sha256,
            "items": info.n_items,
        },
        "limit": config.limit,
        "n_items": n_items,
        "n_variants": n_variants,
        "content_sha256": content_sha256,
        "tool_version": __version__,
        "created_utc": utc_now(),
    }


def build_variant_set(
    config: AuditConfig,
    *,
    out: Path,
    cache_path: Path | None = None,
    rewriter_backend: Any | None = None,
) -> dict[str, Any]:
    """Perturb the dataset as ``run`` would and write the variant set to ``out``; return its
    header.

    The dataset, instruction attacks, ``out`` and the cache are checked before any model
    loads; the set is written through a temporary file and a rename, so ``out`` is either the
    old file or the complete new one. ``rewriter_backend`` replaces the one
    ``config.rewriter_model`` names (tests).
    """
    from sua_audit import paths
    from sua_audit.auditing import CHUNK_ITEMS, chunks, perturb_chunk, perturb_context
    from sua_audit.auditing import _perturbation_summary as perturbation_summary
    from sua_audit.dataset import iter_items, validate_dataset
    from sua_audit.engine import Generator
    from sua_audit.perturbation import rewriter_kinds
    from sua_audit.results import atomic_write, check_writable_file
    from sua_audit.store import Store

    if config.limit is not None and config.limit <= 0:
        raise ConfigError("--limit must be at least 1.")
    info = validate_dataset(
        config.dataset, limit=config.limit, max_line_bytes=config.max_line_bytes
    )
    if config.instruction_attacks:
        from sua_audit.perturbation.adversarial import load_instruction_attacks

        load_instruction_attacks(config.instruction_attacks)
    check_writable_file(out, "--out")
    uses_model = bool(rewriter_kinds().intersection(config.plan.slots))
    if config.cache_mode != "off":
        cache_path = Path(cache_path or paths.default_cache_path())
        if cache_path.is_dir():
            raise ConfigError(f"--cache {cache_path}: this is a folder. Pass a file path.")
    if uses_model and rewriter_backend is None:
        from sua_audit.parts import build_backend

        rewriter_backend = build_backend(config.rewriter_model, config)
    store = (
        Store.open(cache_path)
        if cache_path is not None and config.cache_mode != "off" and uses_model
        else None
    )
    spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
    try:
        rewriter = (
            Generator(rewriter_backend, store, cache_mode=config.cache_mode)
            if rewriter_backend is not None and uses_model
            else None
        )
        context = perturb_context(config, rewriter)
        content = _ContentHash()
        counts = {"items": 0, "variants": 0}

        async def perturb_all() -> None:
            per_item = config.k + 1
            size = CHUNK_ITEMS
            if rewriter is not None:
                size = max(
                    CHUNK_ITEMS, math.ceil(8 * rewriter.backend.max_concurrency() / per_item)
                )
            try:
                items = iter_items(
                    info.path, limit=config.limit, max_line_bytes=config.max_line_bytes
                )
                for chunk in chunks(items, size):
                    for item, variants in zip(
                        chunk, await perturb_chunk(chunk, config, context), strict=True
                    ):
                        line = item_record(item, variants)
                        content.add(line)
                        spool.write(json.dumps(line, ensure_ascii=False) + "\n")
                        counts["items"] += 1
                        counts["variants"] += len(variants) - 1
            finally:
                if rewriter is not None:
                    rewriter.flush()
                    await rewriter.backend.aclose()

        asyncio.run(perturb_all())
        stats = (
            None
            if rewriter is None
            else {"calls": rewriter.stats.model_calls, "hits": rewriter.stats.cache_hits}
        )
        header = _header(
            config,
            info,
            perturbation_summary(config, context),
            context,
            content_sha256=content.hexdigest(),
            n_items=counts["items"],
            n_variants=counts["variants"],
            rewriter_stats=stats,
        )

        def lines() -> Iterator[str]:
            yield json.dumps(header, ensure_ascii=False) + "\n"
            spool.flush()
            spool.seek(0)
            yield from spool

        atomic_write(out, lines())
        return header
    finally:
        spool.close()
        if store is not None:
            store.close()


def rehash_variant_set(path: str | Path, *, max_line_bytes: int = MAX_LINE_BYTES) -> dict[str, Any]:
    """Record reviewed hand edits: recompute every line's ``variants_sha256``, the header's
    ``n_items``, ``n_variants`` and ``content_sha256``, and mark the header ``edited``.

    Every other check still applies (fields, types, kinds, the plan); the old hash is kept
    as ``built_sha256`` the first time. Written through a temporary file and a rename.

    Raises:
        DatasetError: problems other than the hashes.
    """
    from sua_audit.perturbation import parse_plan
    from sua_audit.results import atomic_write
    from sua_audit.store import utc_now

    shown = str(path)
    header = read_header(path, max_line_bytes=max_line_bytes)
    plan = parse_plan(header["plan"])
    problems: list[DatasetProblem] = []
    lines: list[dict[str, Any]] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(iter_json_lines(path, max_line_bytes=max_line_bytes)):
        if i == 0:
            continue
        check = _Check(shown, row.line)
        check.problems.extend(row.problems)
        value = row.value
        if not row.problems and isinstance(value, dict) and isinstance(value.get("variants"), list):
            value = {**value, "variants_sha256": variants_sha256(value["variants"])}
        if not check.problems:
            _parse_item_line(value, check, plan, seen)
        problems.extend(check.problems)
        if not check.problems:
            lines.append(value)
    if problems:
        raise DatasetError(problems[:MAX_PROBLEMS])
    content = _ContentHash()
    for line in lines:
        content.add(line)
    digest = content.hexdigest()
    new = dict(header)
    if digest != header["content_sha256"]:
        new.setdefault("built_sha256", header["content_sha256"])
        new["edited"] = True
        new["rehashed_utc"] = utc_now()
    new["content_sha256"] = digest
    new["n_items"] = len(lines)
    new["n_variants"] = sum(len(line["variants"]) - 1 for line in lines)

    def chunks() -> Iterator[str]:
        yield json.dumps(new, ensure_ascii=False) + "\n"
        for line in lines:
            yield json.dumps(line, ensure_ascii=False) + "\n"

    atomic_write(Path(path), chunks())
    return new
