"""``sua-audit run``: audit a model on a dataset and write results.jsonl and summary.json."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from sua_audit.cli import app

EQUIVALENCE_HELP = (
    "How QA answers are put in meaning clusters for S, H and semantic entropy: exact "
    "(default; equal after normalisation), embedding (MiniLM cosine, offline; the embed "
    "extra) or judge (--equivalence-model, both orders). No effect on label tasks."
)
EQUIVALENCE_MODEL_HELP = "Judge model of --equivalence judge (any --model spec)."
EQUIVALENCE_THRESHOLD_HELP = (
    "Two answers are one cluster at or above this (0-1): cosine for embedding (default "
    "0.65), min P(yes) over both orders for judge (default 0.5)."
)


@app.command()
def run(
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="JSONL dataset to audit.")],
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            "-m",
            envvar="SUA_AUDIT_MODEL",
            help="gpt-4o, openai/<model>, litellm/<provider>/<model>, hf/<dir> for a local "
            "transformers model; omit for the embedded SmolLM2-135M.",
        ),
    ] = None,
    limit: Annotated[int | None, typer.Option(help="Audit only the first N items.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for perturbations and sampling.")] = 0,
    perturbations: Annotated[
        str | None,
        typer.Option(
            "--perturbations",
            "-k",
            help="K variants per item (rule kinds typo, word, distractor in turn), or kinds "
            "and counts: paraphrase:4,typo:2@3 (@ = edits per variant). Default: 4, or the "
            "plan of --variants. See sua-audit perturbations.",
        ),
    ] = None,
    variants: Annotated[
        Path | None,
        typer.Option(
            "--variants",
            help="A variant set from `sua-audit perturb`: audit exactly its variants (no "
            "rewriter call). Its items must be the dataset's, unchanged.",
        ),
    ] = None,
    rewriter_model: Annotated[
        str | None,
        typer.Option(
            envvar="SUA_AUDIT_REWRITER_MODEL",
            help="Model writing paraphrase/ambiguity/adversarial rewrites (same specs as "
            "--model; default: the embedded SmolLM2, the same for every audited model).",
        ),
    ] = None,
    rewrite_temperature: Annotated[
        float | None, typer.Option(help="Rewriter sampling temperature (default 0.7).")
    ] = None,
    prompts_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="SUA_AUDIT_PROMPTS_DIR",
            help="Folder overriding the shipped prompt templates (rewrite, judge and task templates) file by file: "
            "DIR/<kind>/<name>.j2.",
        ),
    ] = None,
    task_template: Annotated[
        Path | None,
        typer.Option(
            help="Jinja2 template of the audited model's prompt, for every item (variables "
            "input, question, labels, label_text, premise, hypothesis, ...: see "
            "prompts/README.md). Default: prompts/task/<qa|classification|nli>.j2.",
        ),
    ] = None,
    system_prompt: Annotated[
        Path | None,
        typer.Option(
            help="Text file sent as the system message of every request to the audited model "
            "(not the rewriter's or judge's): audit the model as deployed.",
        ),
    ] = None,
    meaning_filter: Annotated[
        str | None,
        typer.Option(
            help="Meaning check for model rewrites: lexical (default), judge, both, embedding "
            "(MiniLM, offline; the embed extra) or off."
        ),
    ] = None,
    meaning_threshold: Annotated[
        float | None,
        typer.Option(
            help="Acceptance threshold (0-1) of judge/both (min P(yes), default 0.5) or "
            "embedding (cosine, default 0.83)."
        ),
    ] = None,
    instruction_attacks: Annotated[
        Path | None,
        typer.Option(help="JSONL of attacked instructions (PromptBench schema) for `instruction`."),
    ] = None,
    equivalence: Annotated[str | None, typer.Option(help=EQUIVALENCE_HELP)] = None,
    equivalence_model: Annotated[str | None, typer.Option(help=EQUIVALENCE_MODEL_HELP)] = None,
    equivalence_threshold: Annotated[
        float | None, typer.Option(help=EQUIVALENCE_THRESHOLD_HELP)
    ] = None,
    samples: Annotated[int, typer.Option(help="Sampled answers per QA variant.")] = 5,
    adaptive_samples: Annotated[
        bool,
        typer.Option(
            "--adaptive-samples",
            help="QA: draw the first ceil(k/2) samples of each variant and the rest only when "
            "they or the greedy answer disagree (fewer requests; see docs/method.md).",
        ),
    ] = False,
    temperature: Annotated[float, typer.Option(help="Sampling temperature (QA).")] = 0.7,
    max_tokens: Annotated[int, typer.Option(help="Longest QA answer, in tokens.")] = 32,
    divergence: Annotated[
        str, typer.Option(help="Divergence D in S: js (default), kl (smoothed) or tv.")
    ] = "js",
    lam: Annotated[
        str,
        typer.Option(
            "--lambda",
            help="λ in SUA = S − λH (the paper: ≥ 0; < 0 means 'unstable and uncertain'), or "
            "auto: scores use λ = 1 and the evaluation picks λ from a signed grid on a seeded "
            "validation split.",
        ),
    ] = "1.0",
    normalize: Annotated[
        str,
        typer.Option(
            help="How S and H are put on one scale for sua_norm = N(S) − λ·N(H), within the "
            "run: rank, z or none."
        ),
    ] = "rank",
    abstain_on: Annotated[
        str,
        typer.Option(
            help="Score the abstention rule thresholds: sua (default), sua_norm, combined, "
            "flip_rate, sensitivity, entropy, max_prob, s_<kind>, ..."
        ),
    ] = "sua",
    tau: Annotated[
        float | None,
        typer.Option(
            help="Abstain when the --abstain-on score > τ (default 0 for sua, sua_pos and "
            "sua_norm; other scores need --tau or --coverage)."
        ),
    ] = None,
    coverage: Annotated[
        float | None,
        typer.Option(help="Answer this share of items, abstaining on the highest scores."),
    ] = None,
    confident_threshold: Annotated[
        float,
        typer.Option(
            help="Confident flips: an answer whose probability is at least this and that "
            "changes under a variant."
        ),
    ] = 0.7,
    cache: Annotated[
        Path | None,
        typer.Option(
            envvar="SUA_AUDIT_CACHE",
            help="SQLite cache of model requests (default: $SUA_AUDIT_HOME/cache.db).",
        ),
    ] = None,
    cache_mode: Annotated[
        str, typer.Option(help="use: read and write; refresh: write only; off: no cache.")
    ] = "use",
    out: Annotated[
        str | None,
        typer.Option(
            help="Output folder (default: audits/runs/<run-id>). An older run's files in it "
            "are replaced."
        ),
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Local model batch size.")] = 16,
    device: Annotated[str, typer.Option(help="Local model device: auto, cpu, cuda.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, bfloat16, float16 or float32.")] = "auto",
    base_url: Annotated[
        list[str] | None,
        typer.Option(
            envvar="SUA_AUDIT_BASE_URL",
            help="OpenAI-compatible server (vLLM, llama.cpp, Ollama), e.g. http://host:8000/v1. "
            "Give it again for each replica of the same model (data-parallel servers; the "
            "variable takes them comma-separated): requests are spread over them, a replica "
            "that fails 3 times in a row is left out for a while, and every replica must list "
            "the model in GET /models before the run starts.",
        ),
    ] = None,
    concurrency: Annotated[
        int, typer.Option(help="Hosted requests in flight, at most (on each --base-url).")
    ] = 16,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one hosted answer.")] = 60.0,
    max_attempts: Annotated[
        int, typer.Option(help="Attempts per hosted request (429, 5xx, timeouts are retried).")
    ] = 6,
    max_retry_wait: Annotated[
        float,
        typer.Option(
            help="Longest pause (s) a server's Retry-After may impose; a request asked to wait "
            "longer fails as rate_limit for its item, and the run goes on."
        ),
    ] = 60.0,
    batch: Annotated[
        bool,
        typer.Option(
            "--batch",
            help="Send the audited model's uncached requests as provider batch jobs (OpenAI "
            "and compatible servers): about half the price, no interactive rate limits, answers "
            "within 24 hours. Rerun the same command after an interruption to resume polling.",
        ),
    ] = False,
    batch_poll: Annotated[
        float, typer.Option(help="Seconds before the first read of a batch job's state.")
    ] = 5.0,
    max_cost: Annotated[
        float | None, typer.Option(help="Refuse to start if the estimated cost (USD) is higher.")
    ] = None,
    price_in: Annotated[
        float | None, typer.Option(help="USD per 1M prompt tokens (overrides the price table).")
    ] = None,
    price_out: Annotated[
        float | None, typer.Option(help="USD per 1M completion tokens (overrides the table).")
    ] = None,
    target_risk: Annotated[
        float | None,
        typer.Option(
            help="Evaluation: calibrate an abstention threshold so that selective risk ≤ this "
            "with probability ≥ 1 − δ (needs gold answers)."
        ),
    ] = None,
    delta: Annotated[float, typer.Option(help="δ of the --target-risk guarantee.")] = 0.1,
    correctness: Annotated[
        str,
        typer.Option(
            help="Evaluation's QA grading: contains (a gold answer stated in the answer's first "
            "sentence), exact, f1 or judge."
        ),
    ] = "contains",
    f1_threshold: Annotated[
        float, typer.Option(help="Token-F1 threshold of --correctness f1.")
    ] = 0.5,
    judge_model: Annotated[
        str | None, typer.Option(help="Judge model of --correctness judge.")
    ] = None,
    max_line_bytes: Annotated[
        int,
        typer.Option(help="Longest dataset line accepted, in bytes (default 1 MiB)."),
    ] = 1 << 20,
    max_failed_share: Annotated[
        float,
        typer.Option(
            help="Exit 3 when more than this share of items could not be scored (requests "
            "that failed for good). A run where no item was scored always exits 3."
        ),
    ] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print summary.json to stdout.")] = False,
    progress: Annotated[bool, typer.Option(help="Show a progress bar on stderr.")] = True,
) -> None:
    """Audit a model: perturb every input, score S, H and SUA, decide abstention.

    Bad dataset lines are all reported (file:line: field: problem — fix) with exit code 2
    before any model loads. Every model request is cached, so a rerun makes no model calls
    and an interrupted run resumes where it stopped.
    """
    from sua_audit import api
    from sua_audit.cli.evaluate import parse_lambda
    from sua_audit.evaluation import EvaluationOptions
    from sua_audit.results import check_status
    from sua_audit.ui.console import err_console

    progress_bar = None
    if progress and err_console.is_terminal:
        from sua_audit.ui.progress import RichProgress

        progress_bar = RichProgress()
    result = api.audit(
        dataset,
        model=model,
        out=out,
        cache=cache,
        lam=parse_lambda(lam),
        evaluation_options=EvaluationOptions(
            target_risk=target_risk,
            delta=delta,
            correctness=correctness,
            f1_threshold=f1_threshold,
            judge_model=judge_model,
        ),
        progress=progress_bar,
        on_notice=lambda line: err_console.print(line, highlight=False, soft_wrap=True),
        limit=limit,
        seed=seed,
        perturbations=perturbations,
        variants=variants,
        rewriter_model=rewriter_model,
        rewrite_temperature=rewrite_temperature,
        prompts_dir=prompts_dir,
        task_template=task_template,
        system_prompt=system_prompt,
        meaning_filter=meaning_filter,
        meaning_threshold=meaning_threshold,
        instruction_attacks=instruction_attacks,
        equivalence=equivalence,
        equivalence_model=equivalence_model,
        equivalence_threshold=equivalence_threshold,
        samples=samples,
        adaptive_samples=adaptive_samples,
        temperature=temperature,
        max_tokens=max_tokens,
        divergence=divergence,
        normalize=normalize,
        abstain_on=abstain_on,
        confident_threshold=confident_threshold,
        tau=tau,
        coverage=coverage,
        cache_mode=cache_mode,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        base_url=base_url,
        concurrency=concurrency,
        timeout=timeout,
        max_attempts=max_attempts,
        max_retry_wait=max_retry_wait,
        batch=batch,
        batch_poll=batch_poll,
        max_cost=max_cost,
        price_in=price_in,
        price_out=price_out,
        max_failed_share=max_failed_share,
        max_line_bytes=max_line_bytes,
    )
    show_run(result)
    check_status(result.summary)  # exit 3 when no item (or too few) could be scored
    show_evaluation(result)
    if as_json:
        from sua_audit.ui.console import dumps_json

        typer.echo(dumps_json(api.as_dict(result.summary)))


def show_evaluation(result: Any) -> None:
    """The evaluation block after a run or rescore, or why there is none (when it had gold)."""
    from sua_audit import api
    from sua_audit.cli.evaluate import print_evaluation
    from sua_audit.ui.console import err_console

    if result.evaluation is not None:
        print_evaluation(api.as_dict(result.evaluation))
    elif result.summary.results.items_with_gold:
        err_console.print(result.evaluation_note, highlight=False, soft_wrap=True, markup=False)


def show_run(result: Any) -> None:
    """A finished run's summary table and notes, on stderr."""
    from sua_audit.ui.console import err_console, summary_notes, summary_table

    err_console.print(summary_table(result.summary))
    for note in summary_notes(result.summary):
        err_console.print(note, highlight=False, soft_wrap=True, markup=False)
