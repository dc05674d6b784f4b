"""``sua-audit evaluate RUN`` and ``sua-audit rescore RUN``: failure-detection metrics of a run,
and scores recomputed from the cache with zero model calls."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sua_audit.cli import app

LambdaOpt = Annotated[
    str | None,
    typer.Option(
        "--lambda",
        help="λ in SUA = S − λH: a number (the paper: ≥ 0; < 0 means 'unstable and "
        "uncertain'), or auto (chosen from a signed grid on a seeded validation split).",
    ),
]
NormalizeOpt = Annotated[
    str | None,
    typer.Option(
        help="How S and H are put on one scale for sua_norm = N(S) − λ·N(H): rank, z or none "
        "(default: the run's, rank)."
    ),
]
AbstainOnOpt = Annotated[
    str | None,
    typer.Option(
        help="Score the abstention rule thresholds: sua, sua_norm, combined, flip_rate, "
        "entropy, ... (default: the run's, sua)."
    ),
]
TargetRiskOpt = Annotated[
    float | None,
    typer.Option(help="Calibrate abstention so that selective risk ≤ this (with prob. ≥ 1 − δ)."),
]
DeltaOpt = Annotated[float, typer.Option(help="δ of the abstention guarantee.")]
CorrectnessOpt = Annotated[
    str,
    typer.Option(
        help="QA grading: contains (a gold answer inside the answer's first sentence, "
        "not negated; default), exact (normalised match), f1 or judge."
    ),
]
F1Opt = Annotated[float, typer.Option(help="Token-F1 threshold of --correctness f1.")]
JudgeOpt = Annotated[
    str | None, typer.Option(help="Judge model of --correctness judge (same specs as --model).")
]
SeedOpt = Annotated[int, typer.Option(help="Seed of the split and the bootstrap.")]
BootstrapOpt = Annotated[int, typer.Option(help="Bootstrap resamples per interval.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print evaluation.json to stdout.")]


def parse_lambda(value: str | None) -> float | str | None:
    """``None``, ``"auto"`` or a finite float; anything else is a usage error.

    A negative λ is accepted (SUA = S + |λ|H: high when the answer is unstable AND uncertain);
    its meaning is printed so that nobody reads it as the paper's "unstable but confident".
    """
    from sua_audit.scoring.item import check_lambda

    lam = check_lambda(value)
    if isinstance(lam, float) and lam < 0:
        from sua_audit.scoring.table import lambda_meaning
        from sua_audit.ui.console import err_console

        err_console.print(lambda_meaning(lam), highlight=False, soft_wrap=True, markup=False)
    return lam


def print_evaluation(ev: dict[str, Any]) -> None:
    """The short evaluation block, on stderr."""
    from sua_audit.evaluation.text import evaluation_lines
    from sua_audit.ui.console import err_console

    for line in evaluation_lines(ev):
        err_console.print(line, highlight=False, soft_wrap=True, markup=False)


@app.command()
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `sua-audit run`.")],
    lam: LambdaOpt = None,
    normalize: NormalizeOpt = None,
    abstain_on: AbstainOnOpt = None,
    target_risk: TargetRiskOpt = None,
    delta: DeltaOpt = 0.1,
    correctness: CorrectnessOpt = "contains",
    f1_threshold: F1Opt = 0.5,
    judge_model: JudgeOpt = None,
    seed: SeedOpt = 0,
    bootstrap: BootstrapOpt = 1000,
    as_json: JsonOpt = False,
) -> None:
    """Score how well SUA and each baseline detect failures; write RUN/evaluation.json.

    AUROC, AUPRC, PRR, AURC and selective accuracy at 80% coverage with seeded bootstrap 95%
    CIs, for clean and worst-case (any variant wrong) failures; ECE; with --target-risk, an
    abstention threshold with a finite-sample guarantee. No model calls (except a judge).
    """
    from sua_audit import api
    from sua_audit.evaluation import EvaluationOptions

    grading = EvaluationOptions(
        target_risk=target_risk,
        delta=delta,
        correctness=correctness,
        f1_threshold=f1_threshold,
        judge_model=judge_model,
        seed=seed,
        bootstrap=bootstrap,
    )
    ev = api.evaluate(
        run_dir,
        lam=parse_lambda(lam),
        normalize=normalize,
        abstain_on=abstain_on,
        evaluation_options=grading,
    )
    data = api.as_dict(ev)
    print_evaluation(data)
    if as_json:
        from sua_audit.ui.console import dumps_json

        typer.echo(dumps_json(data))


@app.command()
def rescore(
    run_dir: Annotated[Path, typer.Argument(help="A run folder written by `sua-audit run`.")],
    lam: LambdaOpt = None,
    normalize: NormalizeOpt = None,
    abstain_on: AbstainOnOpt = None,
    tau: Annotated[
        float | None, typer.Option(help="Abstain when the --abstain-on score > τ.")
    ] = None,
    coverage: Annotated[
        float | None, typer.Option(help="Answer this share of items (instead of --tau).")
    ] = None,
    divergence: Annotated[
        str | None, typer.Option(help="Divergence D in S: js, kl or tv (default: the run's).")
    ] = None,
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: RUN/rescored-<changes>).")
    ] = None,
    cache: Annotated[
        Path | None,
        typer.Option(envvar="SUA_AUDIT_CACHE", help="Request cache (default: the run's)."),
    ] = None,
    dataset: Annotated[
        Path | None,
        typer.Option(
            "--dataset",
            "-d",
            help="The run's dataset, where it is now (default: the path the run recorded). "
            "Its sha256 must match the run's.",
        ),
    ] = None,
    variants: Annotated[
        Path | None,
        typer.Option(
            "--variants",
            help="For a run made with --variants: the set, where it is now (default: the path "
            "the run recorded). Its content hash must match the run's.",
        ),
    ] = None,
    equivalence: Annotated[
        str | None,
        typer.Option(
            help="Re-cluster QA answers by meaning: exact, embedding or judge (default: the "
            "run's). The answers come from the cache; the embedding runs locally and a judge "
            "is called only for verdicts not cached yet. No effect on label tasks."
        ),
    ] = None,
    equivalence_model: Annotated[
        str | None, typer.Option(help="Judge model of --equivalence judge.")
    ] = None,
    equivalence_threshold: Annotated[
        float | None,
        typer.Option(help="Cosine (embedding) or min P(yes) (judge) that joins two answers."),
    ] = None,
    target_risk: TargetRiskOpt = None,
    delta: DeltaOpt = 0.1,
    correctness: CorrectnessOpt = "contains",
    f1_threshold: F1Opt = 0.5,
    judge_model: JudgeOpt = None,
    seed: SeedOpt = 0,
    bootstrap: BootstrapOpt = 1000,
    as_json: Annotated[bool, typer.Option("--json", help="Print the new summary.json.")] = False,
) -> None:
    """Recompute every score from the cache with another λ, normalisation, divergence,
    abstention rule or answer clustering: zero calls to the audited model.

    Writes results.jsonl, summary.json and (when gold exists) evaluation.json into --out.
    A request missing from the cache stops it with exit code 3. With --lambda auto the
    scores keep the run's λ and the evaluation picks λ on a validation split.
    """
    from sua_audit import api
    from sua_audit.cli.run import show_evaluation, show_run
    from sua_audit.evaluation import EvaluationOptions

    grading = EvaluationOptions(
        target_risk=target_risk,
        delta=delta,
        correctness=correctness,
        f1_threshold=f1_threshold,
        judge_model=judge_model,
        seed=seed,
        bootstrap=bootstrap,
    )
    result = api.rescore(
        run_dir,
        lam=parse_lambda(lam),
        normalize=normalize,
        abstain_on=abstain_on,
        tau=tau,
        coverage=coverage,
        divergence=divergence,
        out=out,
        cache=cache,
        dataset=dataset,
        variants=variants,
        equivalence=equivalence,
        equivalence_model=equivalence_model,
        equivalence_threshold=equivalence_threshold,
        evaluation_options=grading,
    )
    show_run(result)
    show_evaluation(result)
    if as_json:
        from sua_audit.ui.console import dumps_json

        typer.echo(dumps_json(api.as_dict(result.summary)))
