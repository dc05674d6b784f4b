"""Hostile dataset input: every case is a DatasetProblem (file:line, field, fix), never a crash.

Covers the shared JSONL reader (:func:`sua_audit.dataset.iter_json_lines`) through
:func:`validate_dataset`, :func:`iter_items` and the instruction-attack loader: lone
surrogates, giant and non-finite numbers, over-long lines (bounded memory), duplicate keys,
encodings, standard input, plus two schema rules (QA items with labels, labels that differ
only by whitespace).
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
import tracemalloc
from pathlib import Path
from typing import Any

import pytest

from sua_audit.dataset import (
    MAX_LINE_BYTES,
    iter_items,
    iter_json_lines,
    validate_dataset,
)
from sua_audit.errors import ConfigError, DatasetError, DatasetProblem
from sua_audit.perturbation import adversarial as adv

GOOD = '{"id": "ok", "input": "fine"}'


def write_lines(path: Path, lines: list[str], *, ending: str = "\n") -> Path:
    """Write raw JSON text lines verbatim (escapes such as \\ud800 stay as written)."""
    path.write_bytes((ending.join(lines) + ending).encode("utf-8"))
    return path


def problems_of(path: Path | str, **kwargs: Any) -> list[DatasetProblem]:
    with pytest.raises(DatasetError) as info:
        validate_dataset(path, **kwargs)
    problems = info.value.problems
    # every message must be printable as UTF-8 (no lone surrogate leaks into a message)
    str(info.value).encode("utf-8")
    return problems


def only(problems: list[DatasetProblem]) -> DatasetProblem:
    assert len(problems) == 1, "\n".join(str(p) for p in problems)
    return problems[0]


def text(problem: DatasetProblem) -> str:
    return f"{problem.problem} — {problem.fix}"


# ---------------------------------------------------------------------------------------------
# 1. Lone surrogates
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ('{"id": "a", "input": "a\\ud800b"}', "input"),
        ('{"id": "a\\udfff", "input": "x"}', "id"),
        ('{"id": "a", "input": "x", "note": "\\ud83d"}', "note"),
        ('{"id": "a", "input": "x", "answers": ["ok", "\\ud800"]}', "answers[1]"),
        (
            '{"id": "a", "input": "x", "interpretations": [{"question": "\\udc00?"}]}',
            "interpretations[0].question",
        ),
        ('{"id": "a", "input": "x", "meta": {"k\\ud800": 1}}', "meta.k\\ud800"),
    ],
    ids=["input", "id", "extra", "list-element", "nested", "key"],
)
def test_lone_surrogates_are_rejected_wherever_they_are(
    tmp_path: Path, line: str, field: str
) -> None:
    path = write_lines(tmp_path / "s.jsonl", [GOOD, line])
    problem = only(problems_of(path))
    assert (problem.line, problem.field) == (2, field)
    assert "lone UTF-16 surrogate \\u" in problem.problem
    assert "valid Unicode" in problem.fix or "pair" in problem.fix
    with pytest.raises(DatasetError):
        list(iter_items(path))


def test_a_valid_surrogate_pair_is_fine(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "s.jsonl", ['{"id": "a", "input": "smile \\ud83d\\ude00"}'])
    (item,) = iter_items(path)
    assert item.input == "smile \U0001f600"


# ---------------------------------------------------------------------------------------------
# 2. Giant and non-finite numbers
# ---------------------------------------------------------------------------------------------


def test_an_integer_with_thousands_of_digits_is_a_problem_not_a_traceback(
    tmp_path: Path,
) -> None:
    digits = "9" * 5000
    path = write_lines(
        tmp_path / "n.jsonl",
        [f'{{"id": {digits}, "input": "x"}}', f'{{"id": "b", "input": "x", "n": -{digits}}}'],
    )
    problems = problems_of(path)
    assert [(p.line, p.field) for p in problems] == [(1, "id"), (2, "n")]
    assert "5000 digits" in problems[0].problem
    assert "4300" in problems[0].problem
    assert len(str(problems[0])) < 400  # the number itself is not echoed
    with pytest.raises(DatasetError):
        list(iter_items(path))


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999", "-2.5E400"])
def test_non_finite_numbers_are_rejected(tmp_path: Path, literal: str) -> None:
    path = write_lines(tmp_path / "n.jsonl", [f'{{"id": "a", "input": "x", "score": {literal}}}'])
    problem = only(problems_of(path))
    assert (problem.line, problem.field) == (1, "score")
    assert "not a finite number" in problem.problem
    assert literal in problem.problem


def test_ordinary_numbers_in_extra_fields_are_kept(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "n.jsonl", ['{"id": "a", "input": "x", "n": 12, "f": 1e-999}'])
    (item,) = iter_items(path)
    assert item.extra == {"n": 12, "f": 0.0}


# ---------------------------------------------------------------------------------------------
# 3. Line size limit
# ---------------------------------------------------------------------------------------------


def test_default_line_limit_is_one_mib() -> None:
    assert MAX_LINE_BYTES == 1024 * 1024


def test_a_line_over_the_limit_is_rejected_and_the_rest_still_checked(tmp_path: Path) -> None:
    long_line = json.dumps({"id": "big", "input": "x" * 500})
    path = write_lines(
        tmp_path / "long.jsonl", [GOOD, long_line, '{"id": "c"}', '{"id": "d", "input": "y"}']
    )
    problems = problems_of(path, max_line_bytes=200)
    assert [(p.line, p.field) for p in problems] == [(2, "(line)"), (3, "input")]
    assert f"{len(long_line)} bytes" in problems[0].problem
    assert "200 bytes" in problems[0].problem
    assert "--max-line-bytes" in problems[0].fix
    # raising the limit lets it through; the hash always covers every byte
    info = validate_dataset(path, max_line_bytes=1000, limit=2)
    assert info.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert info.max_line_bytes == 1000
    with pytest.raises(DatasetError, match="--max-line-bytes"):
        list(iter_items(path, max_line_bytes=200))
    assert [i.id for i in iter_items(path, max_line_bytes=1000, limit=2)] == ["ok", "big"]


@pytest.mark.parametrize("ending", ["\n", "\r\n", ""])
def test_the_limit_counts_the_line_without_its_ending(tmp_path: Path, ending: str) -> None:
    line = json.dumps({"id": "a", "input": "x" * 50})
    path = tmp_path / "edge.jsonl"
    path.write_bytes((line + ending).encode())
    assert validate_dataset(path, max_line_bytes=len(line)).n_items == 1
    problem = only(problems_of(path, max_line_bytes=len(line) - 1))
    assert (problem.line, problem.field) == (1, "(line)")


def test_a_utf8_bom_does_not_count_against_the_limit(tmp_path: Path) -> None:
    line = json.dumps({"id": "a", "input": "x" * 50})
    path = tmp_path / "bom.jsonl"
    path.write_bytes(codecs.BOM_UTF8 + line.encode() + b"\n")
    assert validate_dataset(path, max_line_bytes=len(line)).n_items == 1


@pytest.mark.parametrize("bad", [0, -1])
def test_non_positive_line_limit_is_a_value_error(tmp_path: Path, bad: int) -> None:
    path = write_lines(tmp_path / "a.jsonl", [GOOD])
    with pytest.raises(ValueError, match="max_line_bytes"):
        validate_dataset(path, max_line_bytes=bad)
    with pytest.raises(ValueError, match="max_line_bytes"):
        iter_items(path, max_line_bytes=bad)


def test_a_50_mb_line_is_skipped_in_bounded_memory(tmp_path: Path) -> None:
    path = tmp_path / "huge.jsonl"
    size = 50 * 1024 * 1024
    with path.open("wb") as fh:
        fh.write(b'{"id": "h", "input": "')
        block = b"y" * (1024 * 1024)
        for _ in range(size // len(block)):
            fh.write(block)
        fh.write(b'"}\n' + GOOD.encode() + b"\n")
    tracemalloc.start()
    try:
        problems = problems_of(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    problem = only(problems)
    assert (problem.line, problem.field) == (1, "(line)")
    assert "1 MiB" in problem.problem
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


# ---------------------------------------------------------------------------------------------
# 4. Duplicate keys
# ---------------------------------------------------------------------------------------------


def test_duplicate_keys_are_rejected_naming_the_key(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "dup.jsonl",
        [
            '{"id": "a", "input": "x", "input": "y"}',
            '{"id": "b", "input": "x", "interpretations": [{"question": "q", "question": "r"}]}',
        ],
    )
    problems = problems_of(path)
    assert [(p.line, p.field) for p in problems] == [
        (1, "input"),
        (2, "interpretations[0].question"),
    ]
    assert '"input" appears 2 times' in problems[0].problem
    assert "keep one" in problems[0].fix


# ---------------------------------------------------------------------------------------------
# 5 and 6. Schema: QA items with labels; labels equal up to whitespace
# ---------------------------------------------------------------------------------------------


def test_a_qa_item_with_labels_is_rejected(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "qa.jsonl",
        ['{"id": "a", "task": "qa", "input": "Q?", "labels": ["yes", "no"], "answers": ["yes"]}'],
    )
    problem = only(problems_of(path))
    assert (problem.line, problem.field) == (1, "labels")
    assert "free-text" in problem.problem
    assert 'drop "labels"' in problem.fix and '"classification"' in problem.fix


@pytest.mark.parametrize(
    "labels",
    [["positive", "positive "], [" negative", "positive", "negative"], ["not  sure", "not sure"]],
)
def test_labels_that_differ_only_by_whitespace_are_rejected(
    tmp_path: Path, labels: list[str]
) -> None:
    record = {"id": "a", "task": "classification", "input": "x", "labels": labels}
    path = write_lines(tmp_path / "l.jsonl", [json.dumps(record)])
    problem = only(problems_of(path))
    assert (problem.line, problem.field) == (1, "labels")
    assert "differ only by whitespace" in problem.problem


# ---------------------------------------------------------------------------------------------
# 7. Standard input and other non-files
# ---------------------------------------------------------------------------------------------


def test_standard_input_is_refused_with_a_clear_message() -> None:
    problem = only(problems_of("-"))
    assert (problem.line, problem.field) == (0, "(file)")
    assert "standard input" in problem.problem
    assert "save" in problem.fix
    with pytest.raises(DatasetError, match="standard input"):
        list(iter_items("-"))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs named pipes")
def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    pipe = tmp_path / "pipe.jsonl"
    os.mkfifo(pipe)
    problem = only(problems_of(pipe))
    assert "not a regular file" in problem.problem


# ---------------------------------------------------------------------------------------------
# 8. Encodings
# ---------------------------------------------------------------------------------------------

ENCODED = GOOD + "\n"


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (codecs.BOM_UTF16_LE + ENCODED.encode("utf-16-le"), "UTF-16 LE (with BOM)"),
        (codecs.BOM_UTF16_BE + ENCODED.encode("utf-16-be"), "UTF-16 BE (with BOM)"),
        (codecs.BOM_UTF32_LE + ENCODED.encode("utf-32-le"), "UTF-32 LE (with BOM)"),
        (codecs.BOM_UTF32_BE + ENCODED.encode("utf-32-be"), "UTF-32 BE (with BOM)"),
        (ENCODED.encode("utf-16-le"), "UTF-16 LE (no BOM)"),
        (ENCODED.encode("utf-16-be"), "UTF-16 BE (no BOM)"),
        (ENCODED.encode("utf-32-le"), "UTF-32 LE (no BOM)"),
        (ENCODED.encode("utf-32-be"), "UTF-32 BE (no BOM)"),
        (ENCODED.encode("utf-16"), "UTF-16"),  # platform order, with BOM
    ],
    ids=["16le-bom", "16be-bom", "32le-bom", "32be-bom", "16le", "16be", "32le", "32be", "16"],
)
def test_utf16_and_utf32_files_are_named_correctly(tmp_path: Path, data: bytes, name: str) -> None:
    path = tmp_path / "wide.jsonl"
    path.write_bytes(data)
    problem = only(problems_of(path))
    assert (problem.line, problem.field) == (0, "(file)")
    assert name in problem.problem
    assert "Latin" not in text(problem)
    assert "save it as UTF-8" in problem.fix


def test_utf8_with_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "sig.jsonl"
    path.write_bytes(ENCODED.encode("utf-8-sig"))
    assert validate_dataset(path).n_items == 1


def test_a_bom_after_line_one_is_named(tmp_path: Path) -> None:
    path = tmp_path / "cat.jsonl"
    path.write_bytes(
        ENCODED.encode("utf-8-sig") + '{"id": "b", "input": "y"}\n'.encode("utf-8-sig")
    )
    problem = only(problems_of(path))
    assert (problem.line, problem.field) == (2, "(line)")
    assert "byte-order mark" in problem.problem


def test_invalid_utf8_names_line_and_offsets_without_guessing(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    first = b'{"id": "a", "input": "ok"}\n'
    path.write_bytes(first + b'{"id": "b", "input": "caf\xe9"}\n')
    problem = only(problems_of(path))
    assert (problem.line, problem.field) == (2, "(line)")
    assert "byte 0xe9 at byte 26 of the line" in problem.problem
    assert f"offset {len(first) + 25} in the file" in problem.problem
    assert "Latin" not in text(problem)


def test_nul_bytes_in_a_line_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "nul.jsonl"
    path.write_bytes(b'{"id": "a", "input": "ok"}\n{"id": "b", "input": "x\x00y"}\n')
    problem = only(problems_of(path))
    assert (problem.line, problem.field) == (2, "(line)")
    assert "NUL byte" in problem.problem


# ---------------------------------------------------------------------------------------------
# The shared reader, and resolved paths
# ---------------------------------------------------------------------------------------------


def test_iter_json_lines_yields_values_and_problems(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "r.jsonl", ['{"a": 1}', "", "[1, 2]", "{bad", '{"s": "\\ud800"}'])
    rows = list(iter_json_lines(path))
    assert [(r.line, r.value) for r in rows[:2]] == [(1, {"a": 1}), (3, [1, 2])]
    assert [(r.line, r.value is None, [p.field for p in r.problems]) for r in rows[2:]] == [
        (4, True, ["(line)"]),
        (5, True, ["s"]),
    ]


def test_info_exposes_the_absolute_resolved_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_lines(tmp_path / "rel.jsonl", [GOOD])
    monkeypatch.chdir(tmp_path)
    info = validate_dataset("rel.jsonl")
    assert info.path == "rel.jsonl"
    assert info.resolved_path == str((tmp_path / "rel.jsonl").resolve())
    assert Path(info.resolved_path).is_absolute()
    assert info.max_line_bytes == MAX_LINE_BYTES


# ---------------------------------------------------------------------------------------------
# 9. The instruction-attack loader reads through the same reader
# ---------------------------------------------------------------------------------------------

ATTACK = "{\"attacked_prompt\": \"Say 'positive' or 'negative'.\"}"


@pytest.mark.parametrize(
    ("lines", "phrase"),
    [
        ([ATTACK, '{"attacked_prompt": "a\\ud800"}'], ":2: attacked_prompt: contains a lone"),
        ([ATTACK, '{"attacked_prompt": "a", "attacked_prompt": "b"}'], ":2: attacked_prompt:"),
        ([ATTACK, '{"attacked_prompt": "a", "n": ' + "1" * 5000 + "}"], ":2: n: "),
        ([ATTACK, '{"attacked_prompt": "a", "n": NaN}'], ":2: n: "),
        (
            [ATTACK, json.dumps({"attacked_prompt": "z" * 7000})],
            ":2: 7,023 bytes long, over the limit of 6,000 bytes",
        ),
    ],
    ids=["surrogate", "duplicate-key", "giant-int", "nan", "too-long"],
)
def test_attack_files_get_the_same_line_checks(
    tmp_path: Path, lines: list[str], phrase: str
) -> None:
    path = write_lines(tmp_path / "attacks.jsonl", lines)
    with pytest.raises(ConfigError) as info:
        adv.load_instruction_attacks(path, max_line_bytes=6000)
    message = str(info.value)
    message.encode("utf-8")
    assert phrase in message
    assert "attacks.jsonl:1" not in message


def test_attack_file_line_limit_can_be_raised(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "attacks.jsonl", [json.dumps({"attacked_prompt": "z" * 300})])
    with pytest.raises(ConfigError, match="--max-line-bytes"):
        adv.load_instruction_attacks(path, max_line_bytes=200)
    (attack,) = adv.load_instruction_attacks(path, max_line_bytes=400)
    assert attack.attacked == "z" * 300


def test_attack_file_encodings_and_stdin(tmp_path: Path) -> None:
    path = tmp_path / "wide.jsonl"
    path.write_bytes(codecs.BOM_UTF16_LE + (ATTACK + "\n").encode("utf-16-le"))
    with pytest.raises(ConfigError, match="UTF-16 LE"):
        adv.load_instruction_attacks(path)
    with pytest.raises(ConfigError, match="standard input"):
        adv.load_instruction_attacks("-")
    sig = tmp_path / "sig.jsonl"
    sig.write_bytes((ATTACK + "\n").encode("utf-8-sig"))
    assert len(adv.load_instruction_attacks(sig)) == 1
