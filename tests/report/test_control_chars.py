"""Terminal control characters from datasets and models never reach an output raw.

Item text, gold and model answers carrying a terminal reset (ESC c), a charset switch (ESC ( 0,
SO/SI), a DCS string, the C1 CSI (U+009B) and bidi overrides are rendered as visible escapes in
Markdown, HTML, the console summary and error messages, and as ``\\uXXXX`` in JSON (which
``json.loads`` reads back to the original text).
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from rich.console import Console

from sua_audit.errors import ConfigError
from sua_audit.reports import Run, load_run, render_compare, render_report, same_dataset
from sua_audit.reports.markdown import cell
from sua_audit.ui.console import dumps_json, summary_notes, summary_table, visible

ESC_RESET = "\x1bc"
CHARSET = "\x1b(0"
SHIFT = "\x0eshifted\x0f"
DCS = "\x1bPq#0;2;0;0;0\x1b\\"
CSI_C1 = "\x9b31m"
BIDI = "\u202egnp.exe\u202c \u2066iso\u2069"
HOSTILE = f"a{ESC_RESET}b{CHARSET}c{SHIFT}d{DCS}e{CSI_C1}f{BIDI}g\x7fh\rj\x85k"

#: What may never appear raw: C0 but \n and \t, DEL, C1, bidi embeddings/overrides/isolates.
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _no_raw(text: str, where: str) -> None:
    found = RAW.search(text)
    assert found is None, f"{where}: raw {found.group(0)!r} at {found.start()}"


ESCAPES = ("\\x1bc", "\\x1b(0", "\\x0e", "\\x1bP", "\\u009b31m", "\\u202e", "\\x7f")


def _visible(text: str, where: str, escapes: tuple[str, ...] = ESCAPES) -> None:
    for escape in escapes:
        assert escape in text, f"{where}: no {escape}"


def _row(item_id: str, prediction: str, correct: bool) -> dict:
    return {
        "id": item_id,
        "task": "qa",
        "status": "ok",
        "input": f"question {item_id} {HOSTILE}\nsecond | line",
        "prediction": prediction,
        "correct": correct,
        "gold": [f"gold {HOSTILE}"],
        "entropy": 0.5,
        "sensitivity": 0.7,
        "sua": 0.2,
        "sua_pos": 0.2,
        "confidence": 0.95,
        "flipped_variants": [1],
        "confident_flip": True,
        "abstain": True,
        "variants": [
            {"kind": "clean", "index": 0, "text": f"clean {HOSTILE}", "prediction": prediction},
            {
                "kind": "typo",
                "index": 1,
                "text": f"variant {HOSTILE}",
                "detail": f"detail {HOSTILE}",
                "prediction": f"flipped {HOSTILE}",
                "correct": False,
                "divergence": 0.7,
            },
        ],
    }


def _write_run(root: Path, answer: str) -> Run:
    rows = [
        _row("it-1", f"answer {answer} {HOSTILE}", True),
        _row(f"it-2 {HOSTILE}", "plain", False),
    ]
    root.mkdir(parents=True)
    summary = {
        "run_id": root.name,
        "config": {"model": f"fake/echo{ESC_RESET}", "lam": 1.0, "confident_threshold": 0.9},
        "model": {"provider": "fake"},
        "dataset": {"path": f"d{ESC_RESET}.jsonl", "sha256": "abc", "items": 2},
        "results": {
            "items": 2,
            "items_scored": 2,
            "items_failed": 0,
            "accuracy": 0.5,
            "robust_accuracy": 0.0,
            "abstained": 2,
            "abstention_rate": 1.0,
            "tau": 0.0,
            "mean_scores": {"sua": 0.2, "sensitivity": 0.7, "entropy": 0.5},
            "confident_flips": {
                "rule": f"rule {HOSTILE}",
                "threshold": 0.9,
                "n": 2,
                "n_confident": 2,
                "n_flipped": 2,
                "n_confident_flips": 2,
                "rate": 1.0,
            },
            "abstention": {"score": "sua", "note": f"note {HOSTILE}"},
            "diagnostics": {"warning": f"warning {HOSTILE}", "lambda": 1.0},
        },
    }
    (root / "summary.json").write_text(json.dumps(summary), encoding="utf-8")
    (root / "results.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8"
    )
    return load_run(root, evaluate=False)


@pytest.fixture
def runs(tmp_path: Path) -> tuple[Run, Run]:
    return _write_run(tmp_path / "one", "yes"), _write_run(tmp_path / "two", "no")


def test_visible_escapes_every_unsafe_character() -> None:
    unsafe = [chr(c) for c in range(0x20) if chr(c) not in "\n\t"]
    unsafe += ["\x7f", *map(chr, range(0x80, 0xA0)), *map(chr, range(0x202A, 0x202F))]
    unsafe += [*map(chr, range(0x2066, 0x206A)), "\ud800"]
    for ch in unsafe:
        shown = visible(f"<{ch}>")
        assert shown.isascii() and shown.isprintable(), repr(ch)
        assert shown[1:-1] in (f"\\x{ord(ch):02x}", f"\\u{ord(ch):04x}"), repr(ch)
    assert visible("\x1bc") == "\\x1bc" and visible("\x9b") == "\\u009b"
    assert visible("\u202e") == "\\u202e"
    kept = "plain text é ü 中文 🙂 tab\tnewline\n\u00a0\u200b"
    assert visible(kept) == kept
    assert visible(visible(HOSTILE)) == visible(HOSTILE)  # escapes are plain ASCII


def test_dumps_json_escapes_c1_and_bidi_and_round_trips() -> None:
    data = {"text": HOSTILE, "ok": "é 中文 🙂", HOSTILE: [HOSTILE]}
    out = dumps_json(data)
    _no_raw(out, "json")
    assert "\\u009b" in out and "\\u202e" in out and "\\u007f" in out
    assert "é 中文 🙂" in out  # ensure_ascii stays off for ordinary text
    assert json.loads(out) == data
    assert json.loads(dumps_json("\ud800")) == "\ud800"  # a lone surrogate is written, escaped


def test_markdown_cell_shows_controls_and_keeps_the_table(runs: tuple[Run, Run]) -> None:
    out = cell(HOSTILE + "\nnext | line\r\n", limit=500)
    _no_raw(out, "cell")
    _visible(out, "cell")
    assert "\n" not in out and "\\|" in out
    assert "\\\\x1b" not in out  # the escape is not itself backslash-escaped
    assert cell("a\\*b", limit=10) == "a\\\\\\*b"  # a backslash before punctuation still is
    assert len(cell("\x1b" * 100, limit=50)) <= 50 * 4


def test_report_formats_have_no_raw_controls(runs: tuple[Run, Run]) -> None:
    run = runs[0]
    for fmt in ("md", "html", "json"):
        out = render_report(run, fmt)
        _no_raw(out, fmt)
        if fmt != "json":
            _visible(out, fmt)
    md = render_report(run, "md")
    for line in md.splitlines():
        if line.startswith("| it-"):
            assert len(re.findall(r"(?<!\\)\|", line)) == 6, line  # header has 5 columns
    data = json.loads(render_report(run, "json"))
    worst = {w["id"]: w for w in data["worst_items"]}
    assert worst["it-1"]["input"] == run.items[0]["input"]
    assert worst["it-1"]["variants"][1]["text"] == f"variant {HOSTILE}"
    assert data["confident_flips"]["rule"] == f"rule {HOSTILE}"


def test_compare_formats_have_no_raw_controls(runs: tuple[Run, Run]) -> None:
    for fmt in ("md", "html", "json"):
        out = render_compare(list(runs), fmt)
        _no_raw(out, fmt)
        if fmt == "html":
            _visible(out, fmt)
        elif fmt == "md":  # cells are shortened: the first escapes of each text are there
            _visible(out, fmt, ("\\x1bc", "\\x1b(0", "\\x0e"))
    data = json.loads(render_compare(list(runs), "json"))
    (entry,) = [e for e in data["disagreements"] if e["id"] == "it-1"]
    assert entry["input"] == runs[0].items[0]["input"]
    assert entry["answers"][0]["prediction"] == f"answer yes {HOSTILE}"
    assert data["dataset"]["path"] == f"d{ESC_RESET}.jsonl"


def test_cli_report_and_compare_on_stdout(runs: tuple[Run, Run]) -> None:
    """The commands as a terminal sees them (no evaluation: these runs have no evaluation)."""
    from typer.testing import CliRunner

    from sua_audit.cli import app

    a, b = (str(r.path) for r in runs)
    for args in (
        ["report", a, "-f", "md", "--out", "-"],
        ["report", a, "-f", "json", "--out", "-"],
        ["compare", a, b],
        ["compare", a, b, "-f", "json"],
    ):
        done = CliRunner().invoke(app, args)
        assert done.exit_code == 0, (args, done.output)
        _no_raw(done.stdout, " ".join(args[:3]))


def test_same_dataset_error_shows_controls(runs: tuple[Run, Run]) -> None:
    other = runs[1]
    other.summary["dataset"] = {**other.summary["dataset"], "sha256": "def"}
    with pytest.raises(ConfigError) as info:
        same_dataset(list(runs))
    _no_raw(str(info.value), "error")
    assert "d\\x1bc.jsonl" in str(info.value)


def test_console_summary_shows_controls() -> None:
    summary = {
        "model": {"model": f"m{ESC_RESET}[red]x[/red]"},
        "dataset": {"path": f"d{DCS}[bold].jsonl"},
        "results": {
            "items": 1,
            "accuracy": 1.0,
            "robust_accuracy": 1.0,
            "abstention_rate": 0.0,
            "selective_accuracy": 1.0,
            "tau": 0.0,
            "abstention": {"score": "sua", "note": f"note {HOSTILE}"},
            "diagnostics": {"warning": f"warn {HOSTILE}"},
            "mean_scores": dict.fromkeys(
                ("entropy", "sensitivity", "sensitivity_max", "sua", "sua_pos", "flip_rate"), 0.1
            ),
            "mean_sensitivity_by_kind": {f"k{CSI_C1}": 0.1},
        },
        "model_calls": 1,
        "cache_hits": 0,
        "wall_seconds": 1.0,
        "out_dir": f"out{BIDI}",
    }
    buf = io.StringIO()
    console = Console(file=buf, color_system=None, width=300, force_terminal=False)
    console.print(summary_table(summary))
    for note in summary_notes(summary):
        _no_raw(note, "note")
        console.print(note, highlight=False, soft_wrap=True, markup=False)
    out = buf.getvalue()
    _no_raw(out, "console")
    assert "m\\x1bc[red]x[/red]" in out and "d\\x1bPq" in out and "[bold].jsonl" in out
    assert "k\\u009b31m" in out and "\\u202e" in out and "note a\\x1bc" in out
