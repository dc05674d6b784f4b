"""The HTML report opened in real headless Chromium: it renders, logs nothing, shows the plots,
and keeps injected markup inert and visible as text."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.report import browser
from tests.report.conftest import XSS, RealRuns, sua

PLOTS = (
    "plot-risk-coverage",
    "plot-reliability",
    "plot-s-vs-h",
    "plot-sensitivity-by-kind",
    "plot-sua-histogram",
)


def test_harness_sees_scripts_and_console_errors(chromium: str, tmp_path: Path) -> None:
    """Control: the same harness does report a script that ran and a console error."""
    page = tmp_path / "control.html"
    page.write_text(
        "<!DOCTYPE html><html><head><title>before</title></head><body><p>x</p>"
        "<script>document.title='after';console.error('control-error');</script></body></html>",
        encoding="utf-8",
    )
    loaded = browser.load(chromium, page)
    assert "<title>after</title>" in loaded.dom
    assert any("control-error" in line for line in loaded.console), loaded.stderr[-2000:]
    blank = tmp_path / "blank.html"
    blank.write_text("<!DOCTYPE html><html><body></body></html>", encoding="utf-8")
    png = tmp_path / "blank.png"
    browser.screenshot(chromium, blank, png, size=(400, 300))
    assert browser.grey_variance(png) < 1.0


@pytest.mark.slow
def test_report_renders_in_chromium(chromium: str, real_runs: RealRuns, tmp_path: Path) -> None:
    html = tmp_path / "report.html"
    done = sua("report", str(real_runs.warm), "--format", "html", "--out", str(html))
    assert done.returncode == 0, done.stderr
    text = html.read_text(encoding="utf-8")
    # Self-contained: nothing is fetched from anywhere.
    assert "http://" not in text.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in text and "<script" not in text and "<link" not in text

    page = browser.load(chromium, html)
    assert page.console == [], page.console
    for plot_id in PLOTS:
        assert f'id="{plot_id}"' in page.dom, plot_id
    assert 'class="plot empty"' not in page.dom  # every plot has data on a labelled run
    assert page.dom.count("<polyline") >= 3  # risk–coverage curves
    assert page.dom.count('class="point ') == 6  # one point per item in S against H
    # The items are ranked by the run's abstention score (SUA by default), originals beside
    # their variants and answers.
    rows = [json.loads(x) for x in (real_runs.warm / "results.jsonl").read_text().splitlines()]
    summary = json.loads((real_runs.warm / "summary.json").read_text())
    score = summary["results"]["abstention"]["score"]
    worst = max(rows, key=lambda r: r[score])
    assert f"abstention score ({score}, highest first)" in page.dom
    assert f'id="item-{worst["id"]}"' in page.dom
    assert page.dom.count('class="variant"') >= 2
    # The confident flips (listed, or the sentence saying there are none) and the diagnostics.
    flips = summary["results"]["confident_flips"]
    assert 'id="flips-summary"' in page.dom and 'id="diagnostics"' in page.dom
    listed = {r["id"] for r in rows if r.get("confident_flip")}
    assert len(listed) == flips["n_confident_flips"]
    for item_id in listed:
        assert f'id="flip-{item_id}"' in page.dom
    if not listed:
        assert "No confident flips were found" in page.dom

    png = tmp_path / "report.png"
    shot = browser.screenshot(chromium, html, png)
    assert shot.console == []
    assert browser.grey_variance(png) > 100.0


@pytest.mark.slow
def test_injected_script_stays_inert_and_visible(
    chromium: str, real_runs: RealRuns, tmp_path: Path
) -> None:
    # The dataset input carries a <script>; add more to a copy's model answers.
    run = tmp_path / "xss-run"
    shutil.copytree(real_runs.xss, run)
    rows = [json.loads(x) for x in (run / "results.jsonl").read_text().splitlines()]
    payload = XSS + "<img src=x onerror=\"document.title='pwned-img'\">"
    for row in rows:
        row["prediction"] = f"positive {payload}"
        row["sua"] = 5.0  # keep every item among the worst shown
        for variant in row["variants"]:
            variant["prediction"] = f"answer {payload}"
        # Every item a confident flip, so the payload is in that section too.
        row.update(confident_flip=True, flipped_variants=[1], confidence=0.99)
    # Through the tool's writer: a hand edit of results.jsonl no longer matches the hash the
    # summary records, and report would refuse the folder (exit 3).
    from sua_audit.results import write_outputs

    write_outputs(run, rows, json.loads((run / "summary.json").read_text()))

    html = tmp_path / "xss.html"
    done = sua("report", str(run), "--format", "html", "--out", str(html))
    assert done.returncode == 0, done.stderr
    text = html.read_text(encoding="utf-8")
    assert "<script" not in text and "<img" not in text

    page = browser.load(chromium, html)
    assert page.console == [], page.console
    assert "pwned" not in page.dom.split("</title>")[0]  # no script changed the title
    assert "suaPwned" not in page.dom.split("<body")[0]
    assert "<script" not in page.dom and "<img" not in page.dom
    # The literal text is on the page, escaped, in inputs and in answers.
    assert page.dom.count("&lt;script&gt;document.title='pwned'") >= 4
    assert "&lt;img src=x onerror=" in page.dom
    flips = page.dom.split('id="flips"')[1].split("<h2>")[0]
    assert 'id="flip-xss-1"' in flips and "answer &lt;script&gt;document.title=" in flips

    md = sua("report", str(run), "--format", "md", "--out", "-")
    assert md.returncode == 0, md.stderr
    assert "<script" not in md.stdout and "&lt;script&gt;" in md.stdout
