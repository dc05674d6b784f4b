"""``sua-audit report``, ``compare`` and ``gate``: read finished runs, never the model."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from sua_audit.cli import app

_FORMAT_HELP = "html (self-contained page), md (short, for CI job summaries) or json."


def _emit(text: str, out: Path | None) -> None:
    from sua_audit.reports import write_atomic

    if out is None or str(out) == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    write_atomic(out, text)
    typer.echo(f"wrote {out}", err=True)


_TargetRisk = Annotated[
    float | None,
    typer.Option(
        help="Evaluate afresh with an abstention rule calibrated to this risk "
        "(Learn-then-Test); default: the run's evaluation.json as it is."
    ),
]
_Delta = Annotated[
    float, typer.Option(help="With --target-risk: the guarantee holds with probability 1 − δ.")
]
_AllowVariants = Annotated[
    bool,
    typer.Option(
        "--allow-different-variants",
        help="Accept runs audited on different variant sets (another set, or one on a set "
        "and one with variants made at run time); refused by default.",
    ),
]


@app.command()
def report(
    run_dir: Annotated[Path, typer.Argument(help="A run's output folder (its --out).")],
    fmt: Annotated[str, typer.Option("--format", "-f", help=_FORMAT_HELP)] = "html",
    out: Annotated[
        Path | None,
        typer.Option(help="Output file; '-' for stdout. Default: RUN/report.<format>."),
    ] = None,
    target_risk: _TargetRisk = None,
    delta: _Delta = 0.1,
) -> None:
    """Render one run's audit report (HTML, Markdown or JSON).

    Headline numbers; the confident flips (confident answers that change under a
    meaning-preserving rewrite), each original beside its flipping variant; what SUA measures
    on this run (mean S, mean H, Spearman(SUA, −H), with a warning when SUA ranks like −H);
    the run's abstention rule and the calibrated guarantee; every score's AUROC against the
    baselines; plots; and the items ranked by the run's abstention score.

    Reads summary.json, results.jsonl and evaluation.json (computed on the fly when absent).
    The HTML page has no scripts and no external files; it opens offline.
    """
    from sua_audit import api
    from sua_audit.results import check_writable_file

    target = out if out is not None else run_dir / f"report.{fmt}"
    if str(target) != "-":
        check_writable_file(target, "--out")
    _emit(api.report(run_dir, fmt, target_risk=target_risk, delta=delta).text, target)


@app.command()
def compare(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="Two or more run folders audited on the same dataset.")
    ],
    fmt: Annotated[str, typer.Option("--format", "-f", help=_FORMAT_HELP)] = "md",
    out: Annotated[Path | None, typer.Option(help="Output file; default (or '-'): stdout.")] = None,
    target_risk: _TargetRisk = None,
    delta: _Delta = 0.1,
    allow_different_variants: _AllowVariants = False,
) -> None:
    """Compare runs side by side on one dataset, and list the items where they disagree.

    Accuracy, robust accuracy, confident flips, Spearman(SUA, −H), mean [SUA]₊, collapse
    rate, AUROCs, each run's abstention rule and abstention at the target risk, and cost.

    Runs over different datasets (dataset sha256 differs) are refused with exit code 2, and
    so are runs on different variant sets unless --allow-different-variants is given, and QA
    runs whose answers were clustered differently (--equivalence; rescore one to match).
    """
    from sua_audit import api
    from sua_audit.reports import check_format

    check_format(fmt)
    api.check_compare_args(run_dirs)  # a usage error about the runs comes before one about --out
    if out is not None and str(out) != "-":
        from sua_audit.results import check_writable_file

        check_writable_file(out, "--out")
    comparison = api.compare(
        run_dirs,
        target_risk=target_risk,
        delta=delta,
        allow_different_variants=allow_different_variants,
    )
    _emit(comparison.render(fmt), out)


@app.command()
def gate(
    run_dir: Annotated[Path, typer.Argument(help="The run folder to check.")],
    checklist: Annotated[
        Path,
        typer.Option(
            "--checklist",
            "-c",
            envvar="SUA_AUDIT_CHECKLIST",
            help="TOML checklist of limits (example and metric names: audits/release.toml).",
        ),
    ],
    baseline: Annotated[
        Path | None,
        typer.Option(
            help="A run on the same dataset for the checklist's baseline limits "
            "(items paired by id; a paired test decides, see docs/ci.md)."
        ),
    ] = None,
    junit: Annotated[
        Path | None, typer.Option(help="Also write JUnit XML here (one testcase per check).")
    ] = None,
    allow_different_variants: _AllowVariants = False,
) -> None:
    """Check a run against a release checklist; the exit code tells CI what happened.

    Baseline limits on per-item metrics (accuracy, mean scores, ...) pair the two runs'
    items and fail only when the change is significantly beyond the limit, by a paired
    bootstrap CI (option baseline_test: "significant", "upper" or "point").

    \b
    exit 0  every check passed
    exit 1  a check failed (each failure names metric, value and limit)
    exit 2  usage: bad checklist, unknown metric, missing run folder, baseline on another
            dataset or (unless --allow-different-variants) another variant set, QA
            baseline whose answers were clustered differently (rescore it to match)
    exit 3  tool error: the run's files are unreadable or corrupt
    """
    from sua_audit import api
    from sua_audit.errors import EXIT_GATE_FAILED
    from sua_audit.gating import junit_xml, load_checklist
    from sua_audit.reports import write_atomic
    from sua_audit.results import check_writable_file

    spec = load_checklist(checklist)
    if junit is not None:
        check_writable_file(junit, "--junit")  # before anything is printed as passed
    outcome = api.gate(
        run_dir, spec, baseline=baseline, allow_different_variants=allow_different_variants
    )
    from sua_audit.ui.console import visible

    for result in outcome.results:
        typer.echo(f"{result.status.upper()} {visible(result.message)}")
    n_fail = len(outcome.failures)
    n_skip = sum(r.status == "skip" for r in outcome.results)
    typer.echo(
        f"gate {'passed' if outcome.passed else 'FAILED'}: {len(outcome.results)} checks, "
        f"{n_fail} failed, {n_skip} skipped ({spec.path})"
    )
    if junit is not None:
        write_atomic(junit, junit_xml(outcome))
    if not outcome.passed:
        raise typer.Exit(EXIT_GATE_FAILED)
