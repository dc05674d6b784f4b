"""Fuzzing the command line's promises: whatever the dataset lines or the gate checklist,
sua-audit ends with a documented exit code (0, 1, 2 or 3) and, when it refuses, one-line
``error:`` messages — never a traceback.

In-process through ``sua_audit.cli.main`` (the console script's entry point) so that each
example costs milliseconds, with the fake backend for runs that get past validation.
"""

from __future__ import annotations

import json
import shutil
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from sua_audit.reports import METRICS
from tests.conftest import EXAMPLE
from tests.support.cli import sua_in_process

FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    derandomize=True,  # CI sees the same examples every time; failures reproduce
)


def call(argv: list[str]) -> tuple[int, str, str]:
    """Run the CLI as its console script does; return (exit code, stdout, stderr)."""
    res = sua_in_process(*argv)
    return res.returncode, res.stdout, res.stderr


def assert_refusal_is_clean(code: int, err: str) -> None:
    assert "Traceback" not in err, err[-3000:]
    if code in (2, 3):
        lines = [line for line in err.splitlines() if line.strip()]
        assert lines, "a refusal must say why"
        assert all(line.startswith("error: ") for line in lines), err[-3000:]


# -- dataset lines -----------------------------------------------------------------------------

hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(
        ["a\ud800b", "\x1bc\x0e", "\u009b31m", "\u202eevil", "", " ", "\x00", "é" * 3, "x\r\ny"]
    ),
)
scalar = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**6), max_value=10**6),
    st.floats(allow_nan=False, allow_infinity=False),
    hostile_text,
)
value = st.recursive(
    scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(hostile_text, inner, max_size=3),
    max_leaves=6,
)
field = st.sampled_from(
    ["id", "task", "input", "labels", "label", "answers", "context", "meta", "premise", "x"]
)
task = st.sampled_from(["classification", "classification", "qa", "qa", "nli", "bogus", ""])


@st.composite
def item(draw: st.DrawFn) -> bytes:
    plain = st.text(string.ascii_letters + " ", min_size=1, max_size=20)
    obj: dict[str, object] = {
        "id": draw(st.one_of(plain, plain, hostile_text, st.integers())),
        "task": draw(task),
        "input": draw(st.one_of(plain, plain, hostile_text)),
    }
    if obj["task"] != "qa" and draw(st.integers(0, 3)):
        labels = draw(
            st.one_of(
                st.just(["yes", "no"]),
                st.lists(st.one_of(plain, hostile_text), min_size=0, max_size=4),
            )
        )
        obj["labels"] = labels
        obj["label"] = draw(st.one_of(st.sampled_from(labels or ["?"]), value))
    elif draw(st.booleans()):
        obj["answers"] = draw(st.one_of(st.lists(plain, min_size=1, max_size=3), value))
    if draw(st.integers(0, 3)) == 0:
        for key in draw(st.lists(field, max_size=2)):
            obj[key] = draw(value)
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()))
    mangle = draw(st.sampled_from(["none"] * 6 + ["cut", "dupkey", "bigint", "nan"]))
    if mangle == "cut":
        text = text[: max(1, len(text) // 2)]
    elif mangle == "dupkey":
        text = text[:-1] + ', "id": "again"}'
    elif mangle == "bigint":
        text = text[:-1] + ', "meta": ' + "9" * 5000 + "}"
    elif mangle == "nan":
        text = text[:-1] + ', "meta": NaN}'
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate from st.text with ensure_ascii=False
        return text.encode("utf-8", "surrogatepass")


@st.composite
def good_item(draw: st.DrawFn) -> bytes:
    words = st.text(string.ascii_letters + " ", min_size=1, max_size=30)
    n = draw(st.integers(0, 10**6))
    if draw(st.booleans()):
        obj: dict[str, object] = {"id": f"q{n}", "task": "qa", "input": draw(words) + "?"}
        if draw(st.booleans()):
            obj["answers"] = [draw(words)]
    else:
        labels = draw(st.sampled_from([["yes", "no"], ["negative", "positive"], ["a", "b", "c"]]))
        obj = {"id": f"c{n}", "task": "classification", "input": draw(words), "labels": labels}
        if draw(st.booleans()):
            obj["label"] = draw(st.sampled_from(labels))
    return json.dumps(obj).encode()


raw_line = st.one_of(
    good_item(),
    good_item(),
    good_item(),
    item(),
    st.binary(max_size=60),
    st.sampled_from([b"", b"   ", b"[]", b"null", b"\xef\xbb\xbf{}", b"\xff\xfe{\x00}\x00"]),
)


@FUZZ
@given(lines=st.lists(raw_line, min_size=1, max_size=4), newline=st.sampled_from([b"\n", b"\r\n"]))
def test_any_dataset_ends_in_a_documented_exit_code(
    lines: list[bytes], newline: bytes, tmp_path: Path
) -> None:
    work = tmp_path / "fuzz"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    data = work / "d.jsonl"
    data.write_bytes(newline.join(lines) + newline)
    code, _, err = call(
        ["run", "--model", "fake/echo", "--dataset", str(data), "-k", "1", "--cache",
         str(work / "c.db"), "--out", str(work / "o"), "--no-progress"],
    )  # fmt: skip
    event(f"exit {code}")  # --hypothesis-show-statistics: every outcome is reached
    assert code in (0, 2, 3), (code, err[-3000:])
    assert_refusal_is_clean(code, err)
    if code == 2:
        assert not (work / "o").exists()  # bad input writes nothing


# -- gate checklists ---------------------------------------------------------------------------

known_metric = st.sampled_from(sorted(METRICS))
metric_name = st.one_of(
    known_metric, known_metric, known_metric, st.text(string.ascii_lowercase + "_")
)
limit_key = st.builds(lambda p, m: f"{p}_{m}", st.sampled_from(["min", "max"]), metric_name)
baseline_key = st.builds(
    lambda p, m: f"{p}_{m}", st.sampled_from(["max_drop", "max_rise"]), metric_name
)
option_key = st.sampled_from(["missing", "baseline_test", "alpha", "resamples", "seed", "bogus"])
KEYS = {"limits": limit_key, "baseline": baseline_key, "options": option_key}
any_key = st.one_of(limit_key, baseline_key, option_key)
toml_value = st.one_of(
    st.floats(min_value=-0.5, max_value=1.5).map(repr),
    st.floats(min_value=-0.5, max_value=1.5).map(repr),
    st.floats().map(lambda x: {float("inf"): "inf", float("-inf"): "-inf"}.get(x, repr(x))),
    st.integers(min_value=-(10**20), max_value=10**20).map(str),
    st.sampled_from(['"fail"', '"skip"', '"significant"', '"upper"', '"point"', '"high"',
                     "true", "[1, 2]", "{a = 1}", "nan", "1e999", '"\\u001b[31m"']),
)  # fmt: skip
table = st.sampled_from(["limits"] * 4 + ["baseline"] * 2 + ["options", "extra", "limits.sub"])


OPTION_VALUES = {
    "missing": st.sampled_from(['"fail"', '"skip"']),
    "baseline_test": st.sampled_from(['"significant"', '"upper"', '"point"']),
    "alpha": st.sampled_from(["0.05", "0.1", "0.5"]),
    "resamples": st.sampled_from(["50", "200"]),
    "seed": st.integers(0, 9).map(str),
}


@st.composite
def well_formed_checklist(draw: st.DrawFn) -> str:
    """Valid tables, known metrics, numeric limits: reaches pass and fail verdicts."""
    parts = ["[limits]"]
    for m in draw(st.lists(known_metric, min_size=1, max_size=3, unique=True)):
        kind = draw(st.sampled_from(["min", "max"]))
        parts.append(f"{kind}_{m} = {draw(st.floats(-0.2, 1.2)):.3f}")
    if draw(st.booleans()):
        parts.append("[baseline]")
        for m in draw(st.lists(known_metric, min_size=1, max_size=2, unique=True)):
            kind = draw(st.sampled_from(["max_drop", "max_rise"]))
            parts.append(f"{kind}_{m} = {draw(st.floats(-0.2, 0.5)):.3f}")
    parts.append("[options]")
    for name in draw(st.lists(st.sampled_from(sorted(OPTION_VALUES)), max_size=3, unique=True)):
        parts.append(f"{name} = {draw(OPTION_VALUES[name])}")
    return "\n".join(parts) + "\n"


@st.composite
def hostile_checklist(draw: st.DrawFn) -> str:
    if draw(st.integers(0, 9)) == 0:
        return draw(st.text(max_size=80))  # not TOML at all, most likely
    parts = []
    for name in draw(st.lists(table, min_size=1, max_size=3, unique=True)):
        parts.append(f"[{name}]")
        own = KEYS.get(name, any_key)
        for k in draw(st.lists(st.one_of(own, own, own, any_key), max_size=4, unique=True)):
            parts.append(f"{k} = {draw(toml_value)}")
    return "\n".join(parts) + "\n"


checklist_text = st.one_of(well_formed_checklist(), hostile_checklist())


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("gate-fuzz")
    for out in ("run", "base"):
        res = sua_in_process(
            "run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--cache",
            str(base / "c.db"), "--out", str(base / out), "--no-progress",
            "--seed", "0" if out == "run" else "1",
        )  # fmt: skip
        assert not res.returncode, res.returncode
    return base


@FUZZ
@given(text=checklist_text, with_baseline=st.booleans())
def test_any_checklist_ends_in_a_documented_exit_code(
    text: str,
    with_baseline: bool,
    finished_run: Path,
    tmp_path: Path,
) -> None:
    path = tmp_path / "gate.toml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    argv = ["gate", str(finished_run / "run"), "--checklist", str(path)]
    if with_baseline:
        argv += ["--baseline", str(finished_run / "base")]
    code, out, err = call(argv)
    event(f"exit {code}")
    assert code in (0, 1, 2, 3), (code, err[-3000:])
    assert_refusal_is_clean(code, err)
    if code in (0, 1):
        verdict = [line for line in out.splitlines() if line.strip()]
        assert verdict and verdict[-1].startswith("gate "), out
        assert all(line.split(" ", 1)[0] in ("PASS", "FAIL", "SKIP", "gate") for line in verdict)
        assert ("gate passed" in out) == (code == 0)


# -- variant sets ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def variant_set(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """A valid variant set of the example dataset (fake rewriter), as bytes."""
    root = tmp_path_factory.mktemp("fuzz-variants")
    out = root / "set.jsonl"
    res = sua_in_process(
        "perturb", "--dataset", str(EXAMPLE), "--perturbations",
        "paraphrase:1,typo:1", "--rewriter-model", "fake/rewrite", "--limit", "4",
        "--cache", str(root / "c.db"), "--out", str(out),
    )  # fmt: skip
    assert not res.returncode, res.returncode
    return out.read_bytes()


def _paths(obj: object, prefix: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    """Every path to a value inside a parsed JSON line (keys and list indices)."""
    out: list[tuple[object, ...]] = [prefix] if prefix else []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            out += _paths(v, (*prefix, i))
    return out


def _replace(obj: object, path: tuple[object, ...], new: object) -> None:
    for step in path[:-1]:
        obj = obj[step]  # type: ignore[index]
    obj[path[-1]] = new  # type: ignore[index]


@FUZZ
@given(data=st.data())
def test_any_variant_set_ends_in_a_documented_exit_code(
    data: st.DataObject,
    variant_set: bytes,
    tmp_path: Path,
) -> None:
    lines = variant_set.splitlines()
    how = data.draw(
        st.sampled_from(["value", "value", "value", "drop", "swap", "dup", "cut", "bytes"])
    )
    i = data.draw(st.integers(0, len(lines) - 1))
    if how == "value":
        obj = json.loads(lines[i])
        path = data.draw(st.sampled_from(_paths(obj)))
        _replace(obj, path, data.draw(value))
        lines[i] = json.dumps(obj).encode("utf-8", "surrogatepass")
    elif how == "drop":
        del lines[i]
    elif how == "swap":
        j = data.draw(st.integers(0, len(lines) - 1))
        lines[i], lines[j] = lines[j], lines[i]
    elif how == "dup":
        lines.insert(i, lines[i])
    elif how == "cut":
        lines[i] = lines[i][: data.draw(st.integers(0, len(lines[i])))]
    else:
        lines[i] = data.draw(st.binary(max_size=60))
    event(f"mutation {how}")
    work = tmp_path / "fuzz"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    edited = work / "set.jsonl"
    edited.write_bytes(b"\n".join(lines) + b"\n")
    code, _, err = call(
        ["run", "--model", "fake/echo", "--dataset", str(EXAMPLE), "--variants", str(edited),
         "--cache", str(work / "c.db"), "--out", str(work / "o"), "--no-progress"],
    )  # fmt: skip
    event(f"exit {code}")
    assert code in (0, 2, 3), (code, err[-3000:])
    assert_refusal_is_clean(code, err)
    if code == 2:
        assert not (work / "o").exists()  # a refused set writes nothing
        assert str(edited) in err or "--variants" in err, err[-2000:]
