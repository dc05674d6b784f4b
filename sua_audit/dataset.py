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

Neither ever holds the whole file in memory.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

from pydantic import BaseModel, ConfigDict

from sua_audit.errors import DatasetError, DatasetProblem

__all__ = [
    "MAX_PROBLEMS",
    "TASKS",
    "DatasetInfo",
    "Item",
    "iter_items",
    "validate_dataset",
]

#: Task names an item may have.
TASKS: tuple[str, ...] = ("qa", "classification", "nli")

#: How many problems :func:`validate_dataset` lists before summarising the rest.
MAX_PROBLEMS = 50

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

_BOM = b"\xef\xbb\xbf"
_FILE = "(file)"
_LINE = "(line)"
_CHUNK = 1 << 20


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
    """

    path: str
    sha256: str
    n_items: int
    tasks: dict[str, int] = field(default_factory=dict)
    n_with_gold: int = 0
    input_chars: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------
# Small helpers for messages
# --------------------------------------------------------------------------------------------


def _show(value: Any, width: int = 60) -> str:
    """Render a JSON value for a message, shortened to about `width` characters."""
    text = json.dumps(value, ensure_ascii=False)
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
        answers = check.string_list(obj, "answers", example='["<answer 1>", "<answer 2>"]')

    if check.problems:
        return None, check.problems
    assert item_id is not None and text is not None and task is not None
    extra = {key: value for key, value in obj.items() if key not in _SCHEMA_FIELDS}
    if task == "qa":
        # Task-specific fields of other tasks are not interpreted for QA: keep them as-is.
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
# Streaming over the file
# --------------------------------------------------------------------------------------------


@dataclass
class _Parsed:
    """One non-blank line of the file, parsed."""

    line: int
    item: Item | None
    problems: list[DatasetProblem]


def _file_error(path: str, problem: str, fix: str) -> DatasetError:
    return DatasetError([DatasetProblem(path, 0, _FILE, problem, fix)])


def _open(path: Path, shown: str) -> IO[bytes]:
    """Open the dataset for binary reading, turning OS errors into a DatasetError."""
    if path.is_dir():
        raise _file_error(
            shown, "is a directory, not a file", "pass the path of a .jsonl file inside it"
        )
    try:
        return path.open("rb")
    except FileNotFoundError:
        raise _file_error(
            shown, "does not exist", "check the path (a JSONL file, one JSON object per line)"
        ) from None
    except OSError as exc:
        raise _file_error(
            shown, f"cannot be read ({exc.strerror or exc})", "check the file's permissions"
        ) from None


def _decode_line(raw: bytes, check: _LineChecker) -> Any | None:
    """Decode one line's bytes to a JSON value; report the problem and return None if bad."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        check.add(
            _LINE,
            f"is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at byte {exc.start + 1})",
            "save the file as UTF-8 (it looks like another encoding, e.g. Latin-1)",
        )
        return None
    try:
        return json.loads(text.rstrip("\r\n"))
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


def _scan(path: str | Path, *, limit: int | None, hasher: Any | None) -> Iterator[_Parsed]:
    """Stream the non-blank lines of a dataset, parsed with the shared rules.

    Args:
        path: The dataset file.
        limit: Stop after this many items (non-blank lines); None for all.
        hasher: When given, every byte of the file is fed to it, including the bytes after
            the limit (they are drained in chunks once the limit is reached).

    Yields:
        One :class:`_Parsed` per non-blank line within the limit.

    Raises:
        DatasetError: When the file cannot be opened.
        ValueError: When ``limit`` is not positive.
    """
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of items, got {limit}")
    shown = str(path)
    seen_ids: dict[str, int] = {}
    with _open(Path(path), shown) as fh:
        line = 0
        count = 0
        while True:
            if limit is not None and count >= limit:
                if hasher is not None:
                    while chunk := fh.read(_CHUNK):
                        hasher.update(chunk)
                return
            raw = fh.readline()
            if not raw:
                return
            if hasher is not None:
                hasher.update(raw)
            line += 1
            if line == 1 and raw.startswith(_BOM):
                raw = raw[len(_BOM) :]
            if not raw.strip():
                continue
            count += 1
            check = _LineChecker(shown, line)
            value = _decode_line(raw, check)
            if check.problems:
                yield _Parsed(line, None, check.problems)
                continue
            item, problems = _parse_record(value, path=shown, line=line, seen_ids=seen_ids)
            yield _Parsed(line, item, problems)


def _no_items(path: str | Path) -> DatasetError:
    return _file_error(
        str(path),
        "has no items (the file is empty or holds only blank lines)",
        'add one JSON object per line, e.g. {"id": "q1", "input": "What is 2 + 2?"}',
    )


def validate_dataset(path: str | Path, *, limit: int | None = None) -> DatasetInfo:
    """Check a dataset in one streaming pass and summarise it.

    Every problem in the first ``limit`` items is collected. At most :data:`MAX_PROBLEMS` are
    kept; then one more problem (on the line of the first one left out, field ``(file)``) says
    how many more were found. The sha256 always covers the whole file.

    Args:
        path: The JSONL file.
        limit: Check only the first ``limit`` items (non-blank lines); None for all.

    Returns:
        The dataset summary.

    Raises:
        DatasetError: With every problem found, when there is any.
        ValueError: When ``limit`` is not positive.
    """
    hasher = hashlib.sha256()
    kept: list[DatasetProblem] = []
    more = 0
    first_left_out = 0
    tasks: dict[str, int] = {}
    n_items = 0
    n_with_gold = 0
    chars: dict[str, int] = {}
    for parsed in _scan(path, limit=limit, hasher=hasher):
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
    )


def iter_items(path: str | Path, *, limit: int | None = None) -> Iterator[Item]:
    """Stream the items of a dataset.

    Meant to run after :func:`validate_dataset` passed; a bad line still raises instead of
    yielding anything wrong.

    Args:
        path: The JSONL file.
        limit: Yield at most this many items; None for all.

    Yields:
        The items, in file order.

    Raises:
        DatasetError: On the first bad line (with all of that line's problems), when the file
            cannot be opened, or when it holds no items.
        ValueError: When ``limit`` is not positive.
    """
    if limit is not None and limit <= 0:
        raise ValueError(f"limit must be a positive number of items, got {limit}")
    return _iter_items(path, limit=limit)


def _iter_items(path: str | Path, *, limit: int | None) -> Iterator[Item]:
    """Generator behind :func:`iter_items` (kept separate so argument errors raise at once)."""
    n_items = 0
    for parsed in _scan(path, limit=limit, hasher=None):
        if parsed.problems:
            raise DatasetError(parsed.problems)
        assert parsed.item is not None
        n_items += 1
        yield parsed.item
    if n_items == 0:
        raise _no_items(path)
