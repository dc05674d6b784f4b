"""The Jinja2 templates of the reports: autoescaping, shipping, lazy loading."""

from __future__ import annotations

import subprocess
import sys
from importlib import resources
from pathlib import Path

from sua_audit.reports import Run, render_compare, render_report

EVIL = "<script>alert('x')</script> & <b>bold</b>"
TEMPLATES = ("_macros.html.j2", "_page.html.j2", "compare.html.j2", "compare.md.j2")
TEMPLATES += ("report.css", "report.html.j2", "report.md.j2")


def _item(i: int, answer: str = "answer") -> dict:
    return {
        "id": f"it-{i}&<i>",
        "task": "qa",
        "status": "ok",
        "input": f"{EVIL} {i}",
        "prediction": f"{EVIL} {answer}",
        "correct": i % 2 == 0,
        "gold": [EVIL],
        "confidence": 0.9,
        "entropy": 0.3,
        "sensitivity": 0.5 + 0.01 * i,
        "sua": 0.2 + 0.01 * i,
        "sua_pos": 0.2 + 0.01 * i,
        "abstain": True,
        "confident_flip": True,
        "flipped_variants": ["typo"],
        "variants": [
            {"kind": "clean", "text": f"{EVIL} {i}", "prediction": "a", "correct": True},
            {
                "kind": "typo",
                "detail": EVIL,
                "text": f"{EVIL} typo",
                "prediction": f"{EVIL} other",
                "correct": False,
                "divergence": 0.4,
            },
        ],
    }


def _run(tmp_path: Path, run_id: str = "r&1", answer: str = "answer") -> Run:
    items = [_item(i, answer) for i in range(4)]
    summary = {
        "run_id": run_id,
        "config": {"model": f"fake/{EVIL}", "lam": 1.0, "system_prompt": EVIL},
        "model": {"provider": "fake", "model": f"fake/{EVIL}"},
        "dataset": {"path": f"data/{EVIL}.jsonl", "sha256": "abc", "items": 4},
        "results": {
            "items": 4,
            "items_scored": 4,
            "items_failed": 0,
            "accuracy": 0.5,
            "abstained": 4,
            "abstention_rate": 1.0,
            "tau": 0.0,
            "mean_sensitivity_by_kind": {EVIL: 0.5},
            "confident_flips": {
                "n": 4,
                "n_confident_flips": 4,
                "rate": 1.0,
                "rule": EVIL,
                "items": [{"id": row["id"]} for row in items],
            },
        },
    }
    return Run(tmp_path, summary, items, None, f"not evaluated: {EVIL}")


def test_dataset_and_model_text_is_escaped_by_the_html_templates(tmp_path: Path) -> None:
    run = _run(tmp_path)
    for html in (
        render_report(run, "html"),
        render_compare([run, _run(tmp_path, "r2", "other")], "html"),
    ):
        assert "<script" not in html and "<b>bold" not in html and "<i>" not in html
        assert (
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;" in html
        )
        assert "it-0&amp;&lt;i&gt;" in html
        assert " & " not in html.split("<body>", 1)[1]  # every ampersand of the texts is escaped
    html = render_report(run, "html")
    # The inline SVG is the one piece of markup let through, and it escapes its own labels.
    assert html.count("<svg ") == 5 and "<title>&lt;script&gt;" in html
    assert 'id="item-it-0&amp;&lt;i&gt;"' in html and "<b>original</b>\n&lt;script&gt;" in html


def test_markdown_keeps_its_cell_escaping(tmp_path: Path) -> None:
    md = render_report(_run(tmp_path), "md")
    # cell's escaping (quotes kept), not the HTML templates' autoescaping (quotes as &#39;)
    assert "<script" not in md and "&lt;script&gt;alert('x')&lt;/script&gt; &amp;" in md
    assert "it-0&amp;&lt;i&gt;" in md


def test_control_characters_still_show_as_escapes(tmp_path: Path) -> None:
    run = _run(tmp_path)
    run.items[0]["input"] = run.items[0]["variants"][0]["text"] = "reset \x1bc and \u202e here"
    for fmt in ("html", "md"):
        text = render_report(run, fmt)
        assert "\x1b" not in text and "\u202e" not in text
        assert "\\x1bc" in text and "\\u202e" in text


def test_html_is_autoescaped_and_markdown_is_not() -> None:
    from sua_audit.reports._templates import environment

    env = environment()
    assert env.autoescape("report.html.j2") is True  # type: ignore[operator]
    assert env.autoescape("_macros.html.j2") is True  # type: ignore[operator]
    assert env.autoescape("report.md.j2") is False  # type: ignore[operator]
    assert env.autoescape("anything.else") is True  # type: ignore[operator]
    assert env.from_string("{{ x }}").render(x="<a>") == "&lt;a&gt;"


def test_every_template_is_package_data() -> None:
    folder = resources.files("sua_audit.reports") / "templates"
    names = {p.name for p in folder.iterdir()}
    assert set(TEMPLATES) <= names, sorted(set(TEMPLATES) - names)
    for name in TEMPLATES:
        assert (folder / name).read_text(encoding="utf-8").strip()


def test_help_leaves_jinja2_unloaded_and_a_report_loads_it() -> None:
    code = (
        "import sys\n"
        "from sua_audit.cli import main\n"
        "sys.argv = ['sua-audit', '--help']\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('jinja2' in sys.modules, file=sys.stderr)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stderr.strip().splitlines()[-1] == "False"
