"""Tests for sua_audit.dataset: the schema rules, problem reporting, streaming and shared data."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pydantic
import pytest

from sua_audit.dataset import MAX_PROBLEMS, Item, iter_items, validate_dataset
from sua_audit.errors import DatasetError, DatasetProblem

BAD = Path(__file__).parent / "data" / "bad"
SHARED_DATA = (Path(__file__).resolve().parents[1] / ".." / "shared" / "data").resolve()
DEV_SETS = ("sst2", "snli", "truthfulqa", "ambignq", "nq_open", "ambient", "advglue")


def write_jsonl(path: Path, records: list[Any]) -> Path:
    """Write records (dicts, or raw strings written verbatim) one per line."""
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def problems_of(path: Path, **kwargs: Any) -> list[DatasetProblem]:
    with pytest.raises(DatasetError) as info:
        validate_dataset(path, **kwargs)
    return info.value.problems


def find(problems: list[DatasetProblem], line: int, field: str) -> DatasetProblem:
    matches = [p for p in problems if p.line == line and p.field == field]
    assert matches, f"no problem at line {line}, field {field!r} in:\n" + "\n".join(
        str(p) for p in problems
    )
    return matches[0]


# ---------------------------------------------------------------------------------------------
# Bad input: exact line, field and a key phrase
# ---------------------------------------------------------------------------------------------

BAD_CASES = [
    # file, line, field, phrase expected in "problem — fix"
    ("json_errors.jsonl", 2, "(line)", "not valid JSON: Expecting property name"),
    ("json_errors.jsonl", 3, "(line)", "is a list, not a JSON object"),
    ("json_errors.jsonl", 4, "(line)", "is a string, not a JSON object"),
    ("json_errors.jsonl", 5, "(line)", "Unterminated string"),
    ("ids.jsonl", 1, "id", 'is missing — add "id": "<unique string>"'),
    ("ids.jsonl", 2, "id", 'is a number (42), not a string — quote it: "id": "42"'),
    ("ids.jsonl", 3, "id", "is empty"),
    ("ids.jsonl", 5, "id", "is a list"),
    ("ids.jsonl", 6, "id", 'duplicate id "dup" (first used on line 4)'),
    ("inputs.jsonl", 1, "input", 'is missing — add "input"'),
    ("inputs.jsonl", 2, "input", 'is a number (7), not a string — quote it: "input": "7"'),
    ("inputs.jsonl", 3, "input", "is empty"),
    ("inputs.jsonl", 4, "input", 'is null, not a string — make it a string, e.g. "input"'),
    ("tasks.jsonl", 1, "task", 'unknown task "summarise" — use one of "qa", "classification"'),
    ("tasks.jsonl", 2, "task", "holds attacked instructions"),
    ("tasks.jsonl", 3, "answers", 'wrap it in a list: "answers": ["Paris"]'),
    ("tasks.jsonl", 4, "answers[1]", 'quote it: "1889"'),
    ("labels.jsonl", 1, "labels", "is missing (classification and NLI items need"),
    ("labels.jsonl", 2, "labels", "at least 2 distinct labels"),
    ("labels.jsonl", 3, "labels", 'lists "positive" more than once'),
    ("labels.jsonl", 4, "label", '"pos" is not one of the allowed labels ["negative", "positive"]'),
    ("labels.jsonl", 5, "gold_labels[1]", '"happy" is not one of the allowed labels'),
    ("labels.jsonl", 6, "label", 'use the label name, e.g. "label": "negative"'),
    ("labels.jsonl", 7, "labels", 'own string: "labels": ["negative", "positive"]'),
    ("labels.jsonl", 8, "label", '"gold_labels": ["entailment", "neutral"]'),
    ("labels.jsonl", 9, "labels[1]", "is an empty string"),
    ("fields.jsonl", 1, "hypothesis", 'is missing while "premise" is given'),
    ("fields.jsonl", 2, "ambiguous", 'is a string ("yes"), not true/false'),
    ("fields.jsonl", 3, "interpretations", "is an object, not a list of objects"),
    ("fields.jsonl", 4, "interpretations[1]", "is a string, not an object"),
    ("fields.jsonl", 5, "premise", "is a number (3), not a string"),
]


@pytest.mark.parametrize(("name", "line", "field", "phrase"), BAD_CASES)
def test_bad_input_is_reported_with_line_field_and_fix(
    name: str, line: int, field: str, phrase: str
) -> None:
    problem = find(problems_of(BAD / name), line, field)
    assert phrase in f"{problem.problem} — {problem.fix}"
    assert str(problem).startswith(f"{BAD / name}:{line}: {field}: ")


@pytest.mark.parametrize("name", sorted({case[0] for case in BAD_CASES}))
def test_every_problem_of_a_fixture_is_expected(name: str) -> None:
    """No fixture produces a problem the table does not list (no noise, no doubles)."""
    got = sorted((p.line, p.field) for p in problems_of(BAD / name))
    expected = sorted((line, field) for n, line, field, _ in BAD_CASES if n == name)
    assert got == expected


def test_invalid_utf8_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"id": "a", "input": "ok"}\n{"id": "b", "input": "caf\xe9"}\n')
    problems = problems_of(path)
    assert len(problems) == 1
    assert (problems[0].line, problems[0].field) == (2, "(line)")
    assert "not valid UTF-8 (byte 0xe9" in problems[0].problem
    assert "UTF-8" in problems[0].fix


def test_a_file_with_several_problems_reports_all_of_them() -> None:
    problems = problems_of(BAD / "several.jsonl")
    assert [(p.line, p.field) for p in problems] == [
        (3, "id"),
        (3, "input"),
        (3, "labels"),
        (4, "id"),
    ]
    assert "first used on line 1" in problems[3].problem
    message = str(DatasetError(problems))
    assert message.count("\n") == 3


def test_problems_are_capped_at_fifty_with_a_count_of_the_rest(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "many.jsonl", [{"input": f"q{i}"} for i in range(60)])
    problems = problems_of(path)
    assert len(problems) == MAX_PROBLEMS + 1 == 51
    assert all(p.field == "id" for p in problems[:MAX_PROBLEMS])
    last = problems[-1]
    assert (last.line, last.field) == (51, "(file)")
    assert "10 more problem(s)" in last.problem


@pytest.mark.parametrize(
    ("make", "phrase"),
    [
        (lambda d: d / "missing.jsonl", "does not exist"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "empty.jsonl", b""), "has no items"),
        (lambda d: _write(d / "blank.jsonl", b"\n  \n\r\n"), "has no items"),
    ],
    ids=["missing", "directory", "empty", "only-blank-lines"],
)
def test_file_level_problems_use_line_zero(tmp_path: Path, make: Any, phrase: str) -> None:
    path = make(tmp_path)
    problems = problems_of(path)
    assert len(problems) == 1
    assert (problems[0].line, problems[0].field) == (0, "(file)")
    assert phrase in problems[0].problem
    with pytest.raises(DatasetError, match=phrase):
        list(iter_items(path))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("limit", [0, -3])
def test_non_positive_limit_is_a_value_error(tmp_path: Path, limit: int) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "input": "x"}])
    with pytest.raises(ValueError, match="positive"):
        validate_dataset(path, limit=limit)
    with pytest.raises(ValueError, match="positive"):
        iter_items(path, limit=limit)


# ---------------------------------------------------------------------------------------------
# Good input
# ---------------------------------------------------------------------------------------------

NLI_LABELS = ["entailment", "neutral", "contradiction"]


def test_task_is_inferred(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mixed.jsonl",
        [
            {"id": "q", "input": "Who wrote Hamlet?", "answers": ["Shakespeare"]},
            {"id": "c", "input": "great film", "labels": ["negative", "positive"]},
            {
                "id": "n",
                "input": "Premise: A dog runs.\nHypothesis: An animal moves.",
                "premise": "A dog runs.",
                "hypothesis": "An animal moves.",
                "labels": NLI_LABELS,
                "label": "entailment",
            },
            {"id": "c2", "input": "A dog runs.", "premise": "A dog runs.", "labels": ["a", "b"]},
        ],
    )
    items = list(iter_items(path))
    assert [i.task for i in items] == ["qa", "classification", "nli", "classification"]
    info = validate_dataset(path)
    assert info.tasks == {"qa": 1, "classification": 2, "nli": 1}
    assert info.n_items == 4
    assert info.n_with_gold == 2


def test_gold_labels_come_from_label_or_gold_labels(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "gold.jsonl",
        [
            {"id": "one", "task": "classification", "input": "fine", "labels": ["neg", "pos"],
             "label": "pos"},
            {"id": "ambient", "task": "nli", "input": "Premise: p\nHypothesis: h",
             "premise": "p", "hypothesis": "h", "labels": NLI_LABELS,
             "label": "entailment|neutral", "gold_labels": ["entailment", "neutral"]},
            {"id": "none", "task": "classification", "input": "fine", "labels": ["neg", "pos"]},
        ],
    )  # fmt: skip
    one, ambient, none = iter_items(path)
    assert one.gold_labels == ("pos",)
    assert one.has_gold
    assert ambient.gold_labels == ("entailment", "neutral")
    assert ambient.labels == tuple(NLI_LABELS)
    assert ambient.text_fields() == {
        "input": "Premise: p\nHypothesis: h",
        "premise": "p",
        "hypothesis": "h",
    }
    assert none.gold_labels is None
    assert not none.has_gold
    assert none.text_fields() == {"input": "fine"}


def test_qa_fields_and_extra_are_kept(tmp_path: Path) -> None:
    interpretations = [{"question": "Which film?", "answers": ["A"]}]
    path = write_jsonl(
        tmp_path / "qa.jsonl",
        [
            {"id": "a", "task": "qa", "input": "Q?", "answers": ["A", "B"], "ambiguous": True,
             "interpretations": interpretations, "source": "AmbigNQ", "category": "Film"},
            {"id": "b", "input": "Q2?", "answers": []},
            {"id": "c", "input": "Q3?", "answers": None},
        ],
    )  # fmt: skip
    a, b, c = iter_items(path)
    assert a.answers == ("A", "B")
    assert a.has_gold
    assert a.ambiguous is True
    assert a.interpretations == tuple(interpretations)
    assert a.extra == {"source": "AmbigNQ", "category": "Film"}
    assert a.line == 1
    assert b.answers == () and not b.has_gold
    assert c.answers is None and not c.has_gold
    assert c.ambiguous is None


def test_items_are_frozen(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "a.jsonl", [{"id": "a", "input": "x"}])
    (item,) = iter_items(path)
    assert isinstance(item, Item)
    with pytest.raises(pydantic.ValidationError):
        item.input = "changed"  # type: ignore[misc]


def test_blank_lines_are_skipped_and_line_numbers_are_real(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_bytes(
        b'\xef\xbb\xbf{"id": "a", "input": "x"}\r\n\r\n   \n{"id": "b", "input": "y"}\n\n'
        b'{"id": "c"}\n'
    )
    problems = problems_of(path)
    assert [(p.line, p.field) for p in problems] == [(6, "input")]
    with pytest.raises(DatasetError):
        list(iter_items(path))
    info = validate_dataset(path, limit=2)
    assert info.n_items == 2
    assert [(i.id, i.line) for i in iter_items(path, limit=2)] == [("a", 1), ("b", 4)]


def test_bom_only_tolerated_on_line_one(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b'{"id": "a", "input": "x"}\n\xef\xbb\xbf{"id": "b", "input": "y"}\n')
    problems = problems_of(path)
    assert [(p.line, p.field) for p in problems] == [(2, "(line)")]


def test_limit_checks_only_the_first_items_but_hashes_the_whole_file(tmp_path: Path) -> None:
    records: list[Any] = [{"id": f"i{i}", "input": f"text {i}"} for i in range(5)]
    records.append("{this line is broken")
    path = write_jsonl(tmp_path / "limited.jsonl", records)
    info = validate_dataset(path, limit=5)
    assert info.n_items == 5
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert [i.id for i in iter_items(path, limit=3)] == ["i0", "i1", "i2"]
    with pytest.raises(DatasetError) as err:
        validate_dataset(path)
    assert [(p.line, p.field) for p in err.value.problems] == [(6, "(line)")]
    with pytest.raises(DatasetError):
        validate_dataset(path, limit=6)


def test_sha256_is_the_whole_files_hash(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "h.jsonl", [{"id": str(i), "input": "x"} for i in range(3)])
    info = validate_dataset(path)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.path == str(path)


def test_iter_items_yields_good_lines_then_raises_on_a_bad_one(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "mid.jsonl",
        [{"id": "a", "input": "x"}, {"id": "a", "input": "y"}, {"id": "c", "input": "z"}],
    )
    stream = iter_items(path)
    assert next(stream).id == "a"
    with pytest.raises(DatasetError) as err:
        next(stream)
    assert [(p.line, p.field) for p in err.value.problems] == [(2, "id")]


# ---------------------------------------------------------------------------------------------
# The shared development sets
# ---------------------------------------------------------------------------------------------

needs_shared = pytest.mark.skipif(
    not SHARED_DATA.is_dir(), reason=f"shared dev data not found at {SHARED_DATA}"
)


@needs_shared
@pytest.mark.parametrize("name", DEV_SETS)
def test_shared_dev_sets_read_cleanly(name: str) -> None:
    path = SHARED_DATA / f"{name}_dev.jsonl"
    info = validate_dataset(path)
    items = list(iter_items(path))
    assert info.n_items == len(items) > 0
    assert info.n_with_gold == sum(i.has_gold for i in items)
    assert sum(info.tasks.values()) == info.n_items
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len({i.id for i in items}) == len(items)
    for item in items:
        if item.task != "qa":
            assert item.labels and item.gold_labels
            assert set(item.gold_labels) <= set(item.labels)
        assert "source" in item.extra


@needs_shared
def test_shared_ambient_keeps_multi_label_gold() -> None:
    items = list(iter_items(SHARED_DATA / "ambient_dev.jsonl"))
    multi = [i for i in items if i.gold_labels and len(i.gold_labels) > 1]
    assert multi
    assert all("premise" in i.text_fields() for i in items)


@needs_shared
def test_shared_promptbench_file_is_refused_as_prompt_attack() -> None:
    problems = problems_of(SHARED_DATA / "promptbench_adv_prompts.jsonl")
    assert problems[0].line == 1
    assert problems[0].field == "task"
    assert "attacked instructions" in problems[0].problem
    assert len(problems) == MAX_PROBLEMS + 1
    assert "more problem(s)" in problems[-1].problem
