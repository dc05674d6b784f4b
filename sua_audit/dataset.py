"""Datasets: the `Item` model and the streaming, line-numbered JSONL reader.

This module owns the dataset schema (see ``shared/data/README.md``): what a line must hold,
how a missing ``task`` is inferred, how gold labels are derived, and how every problem in a
file is reported as one :class:`~sua_audit.errors.DatasetProblem` (file, line, field, what is
wrong, what to do).

Two entry points share one private parser, so they apply exactly the same rules:

* :func:`validate_dataset` makes one streaming pass, collects every problem (at most
  :data:`MAX_PROBLEMS`, then one line saying how many more there were) and returns a
  :class:`DatasetInfo` (counts and the sha256 of the whole file);
* :func:`iter_items` streams parsed :class:`Item` objects and raises on the first bad line.

Both read through :func:`iter_json_lines`, the one reader of user JSONL in the package (the
instruction-attack file of :mod:`sua_audit.perturbation.adversarial` uses it too). It reads bytes
with a bounded ``readline``, so a line longer than ``max_line_bytes`` (default
:data:`MAX_LINE_BYTES`, 1 MiB; ``--max-line-bytes`` on the command line) is reported and
skipped without being held in memory, and it refuses what would crash or silently mislead
later: UTF-16 / UTF-32 files, invalid UTF-8, NUL bytes, duplicate keys, lone UTF-16
surrogates, integers beyond Python's 4300-digit conversion limit, and NaN / Infinity /
overflowing numbers. Standard input (``-``) and other non-regular files are refused: the path
and sha256 of a dataset are recorded and the file is read again by later commands.

Nothing ever holds the whole file in memory.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import math
import numbers
import re
import stat
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict

from sua_audit.errors import DatasetError, DatasetProblem

__all__ = [
    "MAX_LINE_BYTES",
    "MAX_PROBLEMS",
    "TASKS",
    "DatasetInfo",
    "Item",
    "JsonLine",
    "iter_items",
    "iter_json_lines",
    "validate_dataset",
]

#: Task names an item may have.
TASKS: tuple[str, ...] = ("qa", "classification", "nli")

#: How many problems :func:`validate_dataset` lists before summarising the rest.
MAX_PROBLEMS = 50

#: Longest line, in bytes without its line ending, that the JSONL reader accepts unless told
#: otherwise (``max_line_bytes=``, ``--max-line-bytes`` on the command line). 1 MiB is about
#: 100 times the longest line of the shared development sets (10.6 kB, an AmbigNQ item with
#: its interpretations) and about 250k tokens of text, more than most models' context window;
#: it also bounds what one line can cost to parse (a few tens of MB of Python objects at
#: worst), so a file that is not JSONL at all, e.g. one giant line, is rejected cheaply.
MAX_LINE_BYTES = 1 << 20

#: Most digits an integer literal may have: Python's default int-conversion limit
#: (``sys.get_int_max_str_digits()``), applied even when the interpreter's limit is lifted.
MAX_INT_DIGITS = 4300

Task = Literal["qa", "classification", "nli"]

#: Record fields this module interprets; every other field goes to ``Item.extra`` unchanged.
_SCHEMA_FIELDS = frozenset(
    {
        "id",
        "task",
        "input",
        "labels",
        "label",
        "gold_labels",
        "answers",
        "premise",
        "hypothesis",
        "ambiguous",
        "interpretations",
    }
)

_BOM = codecs.BOM_UTF8
_FILE = "(file)"
_LINE = "(line)"
_CHUNK = 1 << 20
_SURROGATE = re.compile("[\ud800-\udfff]")
#: A ``\uD800``-``\uDFFF`` escape in JSON text: the only way a surrogate gets into a value
#: (the UTF-8 decoder refuses encoded ones). A match may be a valid pair or an escaped
#: backslash; it only means the decoded value is searched.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


class Item(BaseModel):
    """One dataset item, validated and normalised.

    Attributes:
        id: Unique id within the file.
        task: ``"qa"``, ``"classification"`` or ``"nli"`` (given or inferred).
        input: The text sent to the model (for NLI: ``"Premise: ...\\nHypothesis: ..."``).
        labels: Allowed labels (classification / NLI), else None.
        gold_labels: Gold labels (classification / NLI), from ``gold_labels`` when present,
            else ``(label,)``; None when the item has no gold.
        answers: Acceptable gold answers (QA); None or empty means no gold.
        premise: NLI premise, when given separately.
        hypothesis: NLI hypothesis, when given separately.
        ambiguous: Whether the source marks the item ambiguous; None means unknown.
        interpretations: Disambiguations (``{question, answers}`` or ``{premise, hypothesis,
            label}`` objects), kept as-is.
        line: 1-based line number in the file.
        extra: Every other field of the record, kept as-is (e.g. ``source``, ``category``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    task: Task
    input: str
    labels: tuple[str, ...] | None = None
    gold_labels: tuple[str, ...] | None = None
    answers: tuple[str, ...] | None = None
    premise: str | None = None
    hypothesis: str | None = None
    ambiguous: bool | None = None
    interpretations: tuple[dict[str, Any], ...] | None = None
    line: int
    extra: dict[str, Any] = {}

    @property
    def has_gold(self) -> bool:
        """Whether the item carries gold (answers for QA, gold labels otherwise)."""
        if self.task == "qa":
            return bool(self.answers)
        return bool(self.gold_labels)

    def text_fields(self) -> dict[str, str]:
        """Return the text fields the prompt is built from.

        Returns:
            ``{"input": ...}``, plus ``"premise"`` and ``"hypothesis"`` for NLI items that
            give both separately.
        """
        fields = {"input": self.input}
        if self.task == "nli" and self.premise is not None and self.hypothesis is not None:
            fields["premise"] = self.premise
            fields["hypothesis"] = self.hypothesis
        return fields


@dataclass
class DatasetInfo:
    """Summary of a validated dataset.

    Attributes:
        path: The dataset path as given.
        sha256: Hex sha256 of the whole file's bytes (even when a limit was applied).
        n_items: Number of items read (after the limit).
        tasks: Item count per task, in order of first appearance.
        n_with_gold: Number of items that carry gold.
        input_chars: Characters of item text per task (for cost estimates).
        resolved_path: The absolute path with symlinks resolved (what to record, so the
            file can be found again from another directory); empty when not filled in.
        max_line_bytes: The line-size limit the file was validated with; pass it on to
            :func:`iter_items` so that reading applies the same limit.
    """

    path: str
    sha256: str
    n_items: int
    tasks: dict[str, int] = field(default_factory=dict)
    n_with_gold: int = 0
    input_chars: dict[str, int] = field(default_factory=dict)
    resolved_path: str = ""
    max_line_bytes: int = MAX_LINE_BYTES


# --------------------------------------------------------------------------------------------
# Small helpers for messages
# --------------------------------------------------------------------------------------------


def _escape_surrogates(text: str) -> str:
    """Write lone surrogates as ``\\udXXX`` escapes so the text can be printed as UTF-8."""
    return _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _show(value: Any, width: int = 60) -> str:
    """Render a JSON value for a message, shortened to about `width` characters."""
    text = _escape_surrogates(json.dumps(value, ensure_ascii=False))
    return text if len(text) <= width else text[: width - 1] + "…"


def _kind(value: Any) -> str:
    """Name a JSON value's type the way a JSON author would."""
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
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__  # pragma: no cover - json never produces anything else


def _not_a_string(value: Any) -> str:
    """Describe a non-string value, e.g. ``is a number (42), not a string``."""
    if value is None:
        return "is null, not a string"
    return f"is {_kind(value)} ({_show(value, 30)}), not a string"


# --------------------------------------------------------------------------------------------
# The shared parser
# --------------------------------------------------------------------------------------------


class _LineChecker:
    """Collects the problems of one record; shared by both public entry points."""

    def __init__(self, path: str, line: int) -> None:
        self.path = path
        self.line = line
        self.problems: list[DatasetProblem] = []

    def add(self, field_name: str, problem: str, fix: str) -> None:
        self.problems.append(DatasetProblem(self.path, self.line, field_name, problem, fix))

    def text(self, obj: dict[str, Any], name: str, *, required: bool, example: str) -> str | None:
        """Check a string field; return it when valid."""
        if name not in obj or (obj[name] is None and not required):
            if required:
                self.add(name, "is missing", f'add "{name}": "{example}"')
            return None
        value = obj[name]
        if not isinstance(value, str):
            if isinstance(value, int | float) and not isinstance(value, bool):
                fix = f'quote it: "{name}": "{value}"'
            else:
                fix = f'make it a string, e.g. "{name}": "{example}"'
            self.add(name, _not_a_string(value), fix)
            return None
        if not value.strip():
            self.add(name, "is empty", f'put the text in it, e.g. "{name}": "{example}"')
            return None
        return value

    def string_list(self, obj: dict[str, Any], name: str, *, example: str) -> list[str] | None:
        """Check a list-of-non-empty-strings field; return it when valid (None when absent)."""
        value = obj.get(name)
        if value is None:
            return None
        if isinstance(value, str):
            parts = [p.strip() for p in re.split(r"[|,;]", value) if p.strip()]
            if name != "answers" and len(parts) > 1:
                fix = f'write each as its own string: "{name}": {_show(parts, 60)}'
            else:
                fix = f'wrap it in a list: "{name}": [{_show(value, 40)}]'
            self.add(name, f"is a single string ({_show(value, 40)}), not a list", fix)
            return None
        if not isinstance(value, list):
            self.add(
                name,
                f"is {_kind(value)} ({_show(value, 30)}), not a list of strings",
                f'write it as a list of strings, e.g. "{name}": {example}',
            )
            return None
        ok = True
        for i, element in enumerate(value):
            if not isinstance(element, str):
                fix = (
                    f'quote it: "{element}"'
                    if isinstance(element, int | float) and not isinstance(element, bool)
                    else f'replace it with a string, e.g. "{name}": {example}'
                )
                self.add(f"{name}[{i}]", _not_a_string(element), fix)
                ok = False
            elif not element.strip():
                self.add(f"{name}[{i}]", "is an empty string", "remove it or put the text in it")
                ok = False
        return list(value) if ok else None


def _infer_task(obj: dict[str, Any]) -> str:
    """Infer the task of a record that has no ``task`` field."""
    if obj.get("labels") is not None:
        both = obj.get("premise") is not None and obj.get("hypothesis") is not None
        return "nli" if both else "classification"
    return "qa"


def _parse_record(
    obj: Any, *, path: str, line: int, seen_ids: dict[str, int]
) -> tuple[Item | None, list[DatasetProblem]]:
    """Check one decoded JSON value and build its :class:`Item`.

    Args:
        obj: The decoded JSON value of the line.
        path: Dataset path, for messages.
        line: 1-based line number.
        seen_ids: ``id -> first line`` of the ids seen so far; updated in place.

    Returns:
        ``(item, [])`` when the record is valid, else ``(None, problems)``.
    """
    check = _LineChecker(path, line)
    if not isinstance(obj, dict):
        check.add(
            _LINE,
            f"is {_kind(obj)}, not a JSON object",
            'put one object per line, e.g. {"id": "q1", "input": "..."}',
        )
        return None, check.problems

    # task first: a PromptBench line is not an item at all, so nothing else is checked.
    raw_task = obj.get("task")
    task: str | None
    if raw_task is None:
        task = _infer_task(obj)
    elif raw_task == "prompt_attack":
        check.add(
            "task",
            '"prompt_attack": this file holds attacked instructions (PromptBench prompts), '
            "not items to audit",
            "pass a dataset of qa / classification / nli items instead (e.g. sst2_dev.jsonl)",
        )
        return None, check.problems
    elif raw_task in TASKS:
        task = raw_task
    else:
        check.add(
            "task",
            f"unknown task {_show(raw_task, 30)}",
            'use one of "qa", "classification", "nli", or leave "task" out to infer it',
        )
        task = None

    # id
    item_id: str | None = None
    if "id" not in obj:
        check.add("id", "is missing", 'add "id": "<unique string>"')
    elif not isinstance(obj["id"], str):
        value = obj["id"]
        if isinstance(value, int | float) and not isinstance(value, bool):
            fix = f'quote it: "id": "{value}"'
        else:
            fix = 'use a unique string, e.g. "id": "item-1"'
        check.add("id", _not_a_string(value), fix)
    elif not obj["id"].strip():
        check.add("id", "is empty", 'use a unique non-empty string, e.g. "id": "item-1"')
    elif obj["id"] in seen_ids:
        item_id = obj["id"]
        check.add(
            "id",
            f"duplicate id {_show(item_id, 40)} (first used on line {seen_ids[item_id]})",
            f'give every item its own id, e.g. "{item_id}-{line}"',
        )
    else:
        item_id = obj["id"]
        seen_ids[item_id] = line

    text = check.text(obj, "input", required=True, example="<the question or text>")
    premise = check.text(obj, "premise", required=False, example="<the premise>")
    hypothesis = check.text(obj, "hypothesis", required=False, example="<the hypothesis>")
    if task == "nli" and (obj.get("premise") is None) != (obj.get("hypothesis") is None):
        absent = "premise" if obj.get("premise") is None else "hypothesis"
        present = "hypothesis" if absent == "premise" else "premise"
        check.add(
            absent,
            f'is missing while "{present}" is given (NLI items need both or neither)',
            f'add "{absent}": "<the {absent}>", or remove "{present}"',
        )

    ambiguous = obj.get("ambiguous")
    if ambiguous is not None and not isinstance(ambiguous, bool):
        check.add(
            "ambiguous",
            f"is {_kind(ambiguous)} ({_show(ambiguous, 30)}), not true/false",
            'write "ambiguous": true or "ambiguous": false (no quotes), or leave it out',
        )
        ambiguous = None

    interpretations = obj.get("interpretations")
    if interpretations is not None:
        if not isinstance(interpretations, list):
            check.add(
                "interpretations",
                f"is {_kind(interpretations)}, not a list of objects",
                'write it as a list, e.g. [{"question": "...", "answers": ["..."]}]',
            )
            interpretations = None
        else:
            for i, element in enumerate(interpretations):
                if not isinstance(element, dict):
                    check.add(
                        f"interpretations[{i}]",
                        f"is {_kind(element)}, not an object",
                        'write each interpretation as {"question": "...", "answers": ["..."]}',
                    )

    labels: list[str] | None = None
    gold: list[str] | None = None
    answers: list[str] | None = None
    if task in ("classification", "nli"):
        labels, gold = _check_labels(check, obj)
    elif task == "qa":
        if obj.get("labels") is not None:
            # Only an explicit "task": "qa" gets here with labels (else the task is inferred).
            check.add(
                "labels",
                'is given on a "qa" item: qa items have free-text answers, not a fixed label '
                "set, so the labels would be ignored",
                'drop "labels" (list acceptable answers in "answers"), or use "task": '
                '"classification" (or "nli") to ask the model to pick a label',
            )
        answers = check.string_list(obj, "answers", example='["<answer 1>", "<answer 2>"]')

    if check.problems:
        return None, check.problems
    assert item_id is not None and text is not None and task is not None
    extra = {key: value for key, value in obj.items() if key not in _SCHEMA_FIELDS}
    if task == "qa":
        # Task-specific fields of other tasks are not interpreted for QA: keep them as-is
        # ("labels" can only be null here; a qa item with labels is refused above).
        extra.update({k: obj[k] for k in ("labels", "label", "gold_labels") if k in obj})
    else:
        extra.update({"answers": obj["answers"]} if "answers" in obj else {})
    item = Item(
        id=item_id,
        task=task,  # type: ignore[arg-type]
        input=text,
        labels=tuple(labels) if labels is not None else None,
        gold_labels=tuple(gold) if gold else None,
        answers=tuple(answers) if answers is not None else None,
        premise=premise,
        hypothesis=hypothesis,
        ambiguous=ambiguous,
        interpretations=tuple(interpretations) if interpretations is not None else None,
        line=line,
        extra=extra,
    )
    return item, []


def _whitespace_clash(labels: list[str]) -> tuple[str, str] | None:
    """The first two distinct labels that are equal once whitespace is collapsed, if any."""
    first: dict[str, str] = {}
    for label in labels:
        key = " ".join(label.split())
        if key in first and first[key] != label:
            return first[key], label
        first.setdefault(key, label)
    return None


def _check_labels(
    check: _LineChecker, obj: dict[str, Any]
) -> tuple[list[str] | None, list[str] | None]:
    """Check ``labels``, ``label`` and ``gold_labels`` of a classification / NLI record.

    Returns:
        ``(labels, gold_labels)``; gold is ``None`` when the item has none.
    """
    example = '["<label 1>", "<label 2>"]'
    labels: list[str] | None = None
    if obj.get("labels") is None:
        check.add(
            "labels",
            "is missing (classification and NLI items need their allowed labels)",
            f'add "labels": {example} with every allowed label',
        )
    else:
        labels = check.string_list(obj, "labels", example=example)
        if labels is not None:
            repeated = sorted({x for x in labels if labels.count(x) > 1})
            if repeated:
                check.add(
                    "labels",
                    f"lists {', '.join(_show(x, 30) for x in repeated)} more than once",
                    "list each allowed label once",
                )
                labels = None
            elif clash := _whitespace_clash(labels):
                check.add(
                    "labels",
                    f"lists {_show(clash[0], 30)} and {_show(clash[1], 30)}, which differ only "
                    "by whitespace (an answer could not tell them apart)",
                    "keep one spelling of each label, without leading, trailing or doubled spaces",
                )
                labels = None
            elif len(labels) < 2:
                check.add(
                    "labels",
                    f"has {len(labels)} label(s); at least 2 distinct labels are needed",
                    f'list every allowed label, e.g. "labels": {example}',
                )
                labels = None
    allowed = f"[{', '.join(_show(x, 30) for x in labels)}]" if labels else "the labels list"

    gold: list[str] | None = None
    if obj.get("gold_labels") is not None:
        gold = check.string_list(obj, "gold_labels", example='["<gold label>"]')
        if gold is not None and not gold:
            check.add(
                "gold_labels",
                "is an empty list",
                'list at least one gold label, or leave "gold_labels" out',
            )
            gold = None
        if gold is not None and labels is not None:
            for i, value in enumerate(gold):
                if value not in labels:
                    check.add(
                        f"gold_labels[{i}]",
                        f"{_show(value, 40)} is not one of the allowed labels {allowed}",
                        'use one of the allowed labels, or add it to "labels"',
                    )
        if gold is not None:
            gold = list(dict.fromkeys(gold))

    label = obj.get("label")
    if label is not None:
        if not isinstance(label, str):
            fix = (
                f'use the label name, e.g. "label": {_show(labels[0], 30)} (one of {allowed})'
                if labels
                else 'use the label name as a string, e.g. "label": "positive"'
            )
            check.add("label", _not_a_string(label), fix)
        elif not label.strip():
            check.add("label", "is empty", f"use one of {allowed}, or leave it out")
        elif obj.get("gold_labels") is None:
            # With gold_labels present, gold_labels wins (AmbiEnt writes "entailment|neutral").
            if labels is not None and label not in labels:
                several = [part for part in label.split("|") if part]
                hint = (
                    f'; for several valid labels add "gold_labels": {_show(several, 60)}'
                    if len(several) > 1
                    else ""
                )
                check.add(
                    "label",
                    f"{_show(label, 40)} is not one of the allowed labels {allowed}",
                    f'use one of the allowed labels, or add it to "labels"{hint}',
                )
            gold = [label]
    return labels, gold


# --------------------------------------------------------------------------------------------
# Reading JSON lines: the one reader of user JSONL
# --------------------------------------------------------------------------------------------


@dataclass
class JsonLine:
    """One non-blank line of a JSONL file, as read by :func:`iter_json_lines`.

    Attributes:
        line: 1-based line number.
        value: The decoded JSON value; None when the line has problems.
        problems: What is wrong with the line (too long, not UTF-8, not JSON, a duplicate
            key, a lone surrogate, a number that is too big or not finite), else empty.
    """

    line: int
    value: Any
    problems: list[DatasetProblem]


class _Flags(threading.local):
    """Set by the decoder hooks when a line needs :func:`_value_problems` (per thread)."""

    dirty = False


_FLAGS = _Flags()


class _BadNumber:
    """Stands in for a number literal that must not be used; reported, never returned."""

    __slots__ = ("problem",)

    def __init__(self, problem: str) -> None:
        self.problem = problem
        _FLAGS.dirty = True


class _RepeatedKeys(dict):  # type: ignore[type-arg]
    """A decoded JSON object in which some keys appeared more than once."""

    __slots__ = ("repeated",)

    def __init__(self, pairs: list[tuple[str, Any]], repeated: dict[str, int]) -> None:
        super().__init__(pairs)
        self.repeated = repeated
        _FLAGS.dirty = True


def _parse_int(literal: str) -> int | _BadNumber:
    digits = len(literal) - literal.startswith("-")
    if digits > MAX_INT_DIGITS:
        return _BadNumber(
            f"is an integer with {digits} digits, more than the {MAX_INT_DIGITS} a number may have"
        )
    try:
        return int(literal)
    except ValueError:  # the interpreter's own limit is lower than ours
        return _BadNumber(f"is an integer with {digits} digits, too many to convert")


def _parse_float(literal: str) -> float | _BadNumber:
    value = float(literal)
    if math.isfinite(value):
        return value
    return _BadNumber(f"is not a finite number ({literal[:40]} overflows to infinity)")


def _parse_constant(literal: str) -> _BadNumber:
    return _BadNumber(f"is not a finite number ({literal} is not standard JSON)")


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) == len(pairs):
        return obj
    counts = Counter(key for key, _ in pairs)
    return _RepeatedKeys(pairs, {key: n for key, n in counts.items() if n > 1})


_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_int=_parse_int,
    parse_float=_parse_float,
    parse_constant=_parse_constant,
)

_SURROGATE_FIX = (
    "remove it, or write the complete pair (e.g. \\ud83d\\ude00 for 😀): text must be valid "
    "Unicode to be hashed, cached and sent to a model"
)


def _value_problems(value: Any, check: _LineChecker) -> None:
    """Report lone surrogates, repeated keys and bad numbers anywhere in a decoded value.

    Fields are named by their path in the record, e.g. ``interpretations[0].question``.
    Iterative, so a deeply nested (but decodable) value cannot overflow the stack.
    """
    stack: list[tuple[str, Any]] = [("", value)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if m := _SURROGATE.search(value):
                check.add(
                    where or _LINE,
                    f"contains a lone UTF-16 surrogate \\u{ord(m.group()):04x} "
                    f"(character {m.start() + 1})",
                    _SURROGATE_FIX,
                )
        elif isinstance(value, dict):
            if isinstance(value, _RepeatedKeys):
                for key, n in value.repeated.items():
                    name = f"{where}.{key}" if where else key
                    check.add(
                        _escape_surrogates(name),
                        f"{_show(key, 40)} appears {n} times in the same object (JSON keeps "
                        "only the last value)",
                        f"keep one {_show(key, 40)} and remove the other(s)",
                    )
            children = []
            for key, child in value.items():
                name = f"{where}.{key}" if where else key
                if m := _SURROGATE.search(key):
                    check.add(
                        _escape_surrogates(name),
                        f"the key contains a lone UTF-16 surrogate \\u{ord(m.group()):04x}",
                        _SURROGATE_FIX,
                    )
                    name = _escape_surrogates(name)
                children.append((name, child))
            stack.extend(reversed(children))
        elif isinstance(value, list):
            stack.extend(reversed([(f"{where}[{i}]", child) for i, child in enumerate(value)]))
        elif isinstance(value, _BadNumber):
            check.add(
                where or _LINE,
                value.problem,
                "use a finite number of at most "
                f"{MAX_INT_DIGITS} digits, null, or quote it as a string",
            )


def _decode_line(raw: bytes, offset: int, check: _LineChecker) -> Any | None:
    """Decode one line's bytes to a JSON value; report the problems and return None if bad.

    Args:
        raw: The line, without a UTF-8 BOM and without its line ending.
        offset: File offset of ``raw[0]``, for messages.
        check: Where problems go.
    """
    if raw.startswith(_BOM):  # line 1's BOM is already removed
        check.add(
            _LINE,
            "starts with a UTF-8 byte-order mark (BOM), which is allowed only at the start "
            "of the file (were files concatenated?)",
            "remove the three bytes EF BB BF from the start of this line",
        )
        return None
    nul = raw.find(b"\x00")
    if nul >= 0:
        check.add(
            _LINE,
            f"contains a NUL byte (0x00) at byte {nul + 1} of the line; the file may be "
            "UTF-16 / UTF-32 or binary",
            "save the file as UTF-8 text, one JSON object per line",
        )
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        check.add(
            _LINE,
            f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1} of the "
            f"line, offset {offset + exc.start} in the file)",
            "save the file as UTF-8 (convert it from its actual encoding, e.g. with "
            "iconv -f <encoding> -t UTF-8)",
        )
        return None
    _FLAGS.dirty = False
    try:
        value = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        check.add(
            _LINE,
            f"is not valid JSON: {exc.msg} (column {exc.colno})",
            "fix the JSON syntax; each line must hold one complete JSON object",
        )
        return None
    except RecursionError:
        check.add(_LINE, "is not valid JSON: nested too deeply", "flatten the record")
        return None
    if _FLAGS.dirty or _SURROGATE_ESCAPE.search(text):
        _value_problems(value, check)
    return None if check.problems else value


def _file_error(path: str, problem: str, fix: str) -> DatasetError:
    return DatasetError([DatasetProblem(path, 0, _FILE, problem, fix)])


def _open(path: Path, shown: str) -> IO[bytes]:
    """Open the dataset for binary reading, turning OS errors into a DatasetError.

    Standard input (``-``) and anything that is not a regular file (a pipe, a device) are
    refused before opening: they cannot be hashed and read again later, and opening a pipe
    with no writer would block.
    """
    if shown == "-":
        raise _file_error(
            shown,
            "means standard input, which is not supported: the dataset's path and sha256 are "
            "recorded and the file is read again by later commands",
            "save the lines to a file first (e.g. `... > data.jsonl`) and pass its path "
            "(a file really named '-' can be given as ./-)",
        )
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise _file_error(
            shown, "does not exist", "check the path (a JSONL file, one JSON object per line)"
        ) from None
    except OSError as exc:
        raise _file_error(
            shown, f"cannot be read ({exc.strerror or exc})", "check the path and permissions"
        ) from None
    if stat.S_ISDIR(mode):
        raise _file_error(
            shown, "is a directory, not a file", "pass the path of a .jsonl file inside it"
        )
    if not stat.S_ISREG(mode):
        raise _file_error(
            shown,
            "is not a regular file (a pipe, device or socket); it cannot be hashed and read "
            "again later",
            "save the lines to a file and pass its path",
        )
    try:
        return path.open("rb")
    except OSError as exc:
        raise _file_error(
            shown, f"cannot be read ({exc.strerror or exc})", "check the file's permissions"
        ) from None


_WIDE_BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32 LE"),  # before UTF-16 LE: it starts with the same 2 bytes
    (codecs.BOM_UTF32_BE, "UTF-32 BE"),
    (codecs.BOM_UTF16_LE, "UTF-16 LE"),
    (codecs.BOM_UTF16_BE, "UTF-16 BE"),
)

#: Which of the first 4 bytes are NUL -> encoding, for a file starting with ASCII text.
_NUL_PATTERNS: dict[tuple[bool, ...], str] = {
    (True, True, True, False): "UTF-32 BE",
    (False, True, True, True): "UTF-32 LE",
    (True, False, True, False): "UTF-16 BE",
    (False, True, False, True): "UTF-16 LE",
}
_NUL_PATTERNS_SHORT: dict[tuple[bool, ...], str] = {
    (True, False): "UTF-16 BE",
    (False, True): "UTF-16 LE",
}


def _wide_encoding(head: bytes) -> str | None:
    """Name the UTF-16 / UTF-32 encoding a file starting with ``head`` is in, if any."""
    for bom, encoding in _WIDE_BOMS:
        if head.startswith(bom):
            return f"{encoding} (with BOM)"
    nul = tuple(b == 0 for b in head[:4])
    name: str | None
    if len(nul) == 4:
        name = _NUL_PATTERNS.get(nul)
    else:  # a file of fewer than 4 bytes: one UTF-16 character at most
        name = _NUL_PATTERNS_SHORT.get(nul[:2])
    return f"{name} (no BOM)" if name else None


def _size(n: int) -> str:
    text = f"{n:,} bytes"
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{text} ({n // scale} {unit})"
    return text


def _positive(name: str, value: int | None) -> None:
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0
    ):
        what = "items" if name == "limit" else "bytes"
        raise ValueError(f"{name} must be a positive number of {what}, got {value!r}")


def iter_json_lines(
    path: str | Path,
    *,
    max_line_bytes: int = MAX_LINE_BYTES,
    limit: int | None = None,
    hasher: Any | None = None,
) -> Iterator[JsonLine]:
    """Stream the non-blank lines of a JSONL file, decoded, with their problems.

    This is the one reader of user JSONL: bytes are read with a bounded ``readline``, so a
    line longer than ``max_line_bytes`` is reported and skipped (drained in chunks) without
    ever being held whole. A UTF-8 BOM on line 1 is ignored; blank lines are skipped but
    counted in line numbers.

    Per line (a :class:`JsonLine` with problems, the file goes on): too long, a NUL byte,
    invalid UTF-8 (with its byte offset), invalid JSON, a key repeated in an object, a lone
    UTF-16 surrogate in a string or key, an integer of more than :data:`MAX_INT_DIGITS`
    digits, and NaN / Infinity / a number that overflows to infinity.

    Args:
        path: The JSONL file (not ``-``: standard input is refused).
        max_line_bytes: Longest accepted line in bytes, not counting its line ending (nor a
            UTF-8 BOM); ``--max-line-bytes`` on the command line.
        limit: Stop after this many non-blank lines; None for all.
        hasher: When given (e.g. ``hashlib.sha256()``), every byte of the file is fed to
            it, including over-long lines and the bytes after ``limit``.

    Yields:
        One :class:`JsonLine` per non-blank line within the limit.

    Raises:
        DatasetError: On first use, when the file is missing, a directory, standard input or
            not a regular file, cannot be read, or is UTF-16 / UTF-32 (line 0, ``(file)``).
        ValueError: At once, when ``max_line_bytes`` or ``limit`` is not positive.
    """
    _positive("max_line_bytes", max_line_bytes)
    _positive("limit", limit)
    return _iter_json_lines(path, max_line_bytes=max_line_bytes, limit=limit, hasher=hasher)


def _iter_json_lines(
    path: str | Path, *, max_line_bytes: int, limit: int | None, hasher: Any | None
) -> Iterator[JsonLine]:
    shown = str(path)
    with _open(Path(path), shown) as fh:
        wide = _wide_encoding(fh.read(4))
        if wide:
            raise _file_error(
                shown,
                f"is {wide}, not UTF-8",
                "save it as UTF-8 (e.g. iconv -f UTF-16 -t UTF-8, or your editor's "
                '"Save with encoding: UTF-8")',
            )
        fh.seek(0)
        line = 0
        count = 0
        offset = 0
        while True:
            if limit is not None and count >= limit:
                if hasher is not None:
                    while chunk := fh.read(_CHUNK):
                        hasher.update(chunk)
                return
            # Room for the limit, "\r\n", and a BOM on line 1: one byte more means too long.
            raw = fh.readline(max_line_bytes + 2 + (len(_BOM) if line == 0 else 0))
            if not raw:
                return
            if hasher is not None:
                hasher.update(raw)
            start = offset
            offset += len(raw)
            line += 1
            size = len(raw)
            tail = raw
            if not raw.endswith(b"\n"):  # cut by the bound (or the last line): skip the rest
                while more := fh.readline(_CHUNK):
                    if hasher is not None:
                        hasher.update(more)
                    offset += len(more)
                    size += len(more)
                    tail = more
                    if more.endswith(b"\n"):
                        break
            bom = len(_BOM) if line == 1 and raw.startswith(_BOM) else 0
            ending = 2 if tail.endswith(b"\r\n") else 1 if tail.endswith(b"\n") else 0
            size -= bom + ending
            if size > max_line_bytes:
                count += 1
                check = _LineChecker(shown, line)
                check.add(
                    _LINE,
                    f"is {_size(size)} long, over the limit of {_size(max_line_bytes)}",
                    "if the record really is this long, raise the limit with --max-line-bytes "
                    f"(at least {size}); otherwise check the file has one object per line",
                )
                yield JsonLine(line, None, check.problems)
                continue
            body = raw[bom : len(raw) - ending]
            if not body.strip():
                continue
            count += 1
            check = _LineChecker(shown, line)
            value = _decode_line(body, start + bom, check)
            yield JsonLine(line, value, check.problems)


# --------------------------------------------------------------------------------------------
# Items over the reader
# --------------------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """One non-blank line of the file, parsed."""

    line: int
    item: Item | None
    problems: list[DatasetProblem]


def _scan(
    path: str | Path, *, limit: int | None, hasher: Any | None, max_line_bytes: int
) -> Iterator[_Parsed]:
    """Stream the non-blank lines of a dataset, parsed with the shared rules.

    A line the reader already found problems in (see :func:`iter_json_lines`) is reported
    with those problems only; the schema is checked once it reads cleanly.

    Args:
        path: The dataset file.
        limit: Stop after this many items (non-blank lines); None for all.
        hasher: When given, every byte of the file is fed to it.
        max_line_bytes: Longest accepted line.

    Yields:
        One :class:`_Parsed` per non-blank line within the limit.

    Raises:
        DatasetError: When the file cannot be used at all.
        ValueError: When ``limit`` or ``max_line_bytes`` is not positive.
    """
    shown = str(path)
    seen_ids: dict[str, int] = {}
    rows = iter_json_lines(path, max_line_bytes=max_line_bytes, limit=limit, hasher=hasher)
    for row in rows:
        if row.problems:
            yield _Parsed(row.line, None, row.problems)
            continue
        item, problems = _parse_record(row.value, path=shown, line=row.line, seen_ids=seen_ids)
        yield _Parsed(row.line, item, problems)


def _no_items(path: str | Path) -> DatasetError:
    return _file_error(
        str(path),
        "has no items (the file is empty or holds only blank lines)",
        'add one JSON object per line, e.g. {"id": "q1", "input": "What is 2 + 2?"}',
    )


def validate_dataset(
    path: str | Path, *, limit: int | None = None, max_line_bytes: int = MAX_LINE_BYTES
) -> DatasetInfo:
    """Check a dataset in one streaming pass and summarise it.

    Every problem in the first ``limit`` items is collected. At most :data:`MAX_PROBLEMS` are
    kept; then one more problem (on the line of the first one left out, field ``(file)``) says
    how many more were found. The sha256 always covers the whole file.

    Lines are read by :func:`iter_json_lines`: a line longer than ``max_line_bytes`` (default
    :data:`MAX_LINE_BYTES` = 1 MiB, not counting its line ending) is one problem, and is
    skipped without being read into memory; ``--max-line-bytes N`` on the command line
    raises the limit. Standard input (``-``) is refused: save the lines to a file.

    Args:
        path: The JSONL file.
        limit: Check only the first ``limit`` items (non-blank lines); None for all.
        max_line_bytes: Longest accepted line in bytes (``--max-line-bytes``).

    Returns:
        The dataset summary; ``resolved_path`` is the absolute path to record, and
        ``max_line_bytes`` the limit to pass on to :func:`iter_items`.

    Raises:
        DatasetError: With every problem found, when there is any.
        ValueError: When ``limit`` or ``max_line_bytes`` is not positive.
    """
    _positive("limit", limit)
    _positive("max_line_bytes", max_line_bytes)
    hasher = hashlib.sha256()
    kept: list[DatasetProblem] = []
    more = 0
    first_left_out = 0
    tasks: dict[str, int] = {}
    n_items = 0
    n_with_gold = 0
    chars: dict[str, int] = {}
    for parsed in _scan(path, limit=limit, hasher=hasher, max_line_bytes=max_line_bytes):
        n_items += 1
        for problem in parsed.problems:
            if len(kept) < MAX_PROBLEMS:
                kept.append(problem)
            else:
                more += 1
                first_left_out = first_left_out or problem.line
        if parsed.item is not None:
            task = parsed.item.task
            tasks[task] = tasks.get(task, 0) + 1
            n_with_gold += parsed.item.has_gold
            chars[task] = chars.get(task, 0) + len(parsed.item.input)
    if more:
        kept.append(
            DatasetProblem(
                str(path),
                first_left_out,
                _FILE,
                f"{more} more problem(s) found from this line on, not listed",
                "fix the problems above and validate again to see the rest",
            )
        )
    if kept:
        raise DatasetError(kept)
    if n_items == 0:
        raise _no_items(path)
    return DatasetInfo(
        path=str(path),
        sha256=hasher.hexdigest(),
        n_items=n_items,
        tasks=tasks,
        n_with_gold=n_with_gold,
        input_chars=chars,
        resolved_path=str(Path(path).resolve()),
        max_line_bytes=max_line_bytes,
    )


def iter_items(
    path: str | Path, *, limit: int | None = None, max_line_bytes: int = MAX_LINE_BYTES
) -> Iterator[Item]:
    """Stream the items of a dataset.

    Meant to run after :func:`validate_dataset` passed (give it the same ``max_line_bytes``,
    e.g. ``info.max_line_bytes``); a bad line still raises instead of yielding anything wrong.

    Args:
        path: The JSONL file.
        limit: Yield at most this many items; None for all.
        max_line_bytes: Longest accepted line in bytes (``--max-line-bytes``).

    Yields:
        The items, in file order.

    Raises:
        DatasetError: On the first bad line (with all of that line's problems), when the file
            cannot be used, or when it holds no items.
        ValueError: When ``limit`` or ``max_line_bytes`` is not positive.
    """
    _positive("limit", limit)
    _positive("max_line_bytes", max_line_bytes)
    return _iter_items(path, limit=limit, max_line_bytes=max_line_bytes)


def _iter_items(path: str | Path, *, limit: int | None, max_line_bytes: int) -> Iterator[Item]:
    """Generator behind :func:`iter_items` (kept separate so argument errors raise at once)."""
    n_items = 0
    for parsed in _scan(path, limit=limit, hasher=None, max_line_bytes=max_line_bytes):
        if parsed.problems:
            raise DatasetError(parsed.problems)
        assert parsed.item is not None
        n_items += 1
        yield parsed.item
    if n_items == 0:
        raise _no_items(path)
