"""``sua-audit perturb`` (build a variant set) and ``sua-audit rehash-variants`` (record edits)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from sua_audit.cli import app


@app.command()
def perturb(
    dataset: Annotated[Path, typer.Option("--dataset", "-d", help="JSONL dataset to perturb.")],
    out: Annotated[
        Path, typer.Option(help="Where to write the variant set (JSONL; replaced atomically).")
    ],
    perturbations: Annotated[
        str,
        typer.Option(
            "--perturbations",
            "-k",
            help="K variants per item, or kinds and counts: paraphrase:4,typo:2@3 (as for run).",
        ),
    ] = "4",
    rewriter_model: Annotated[
        str | None,
        typer.Option(
            envvar="SUA_AUDIT_REWRITER_MODEL",
            help="Model writing paraphrase/ambiguity/adversarial rewrites (default: the "
            "embedded SmolLM2; a strong model writes far better paraphrases).",
        ),
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for perturbations (as run's --seed).")] = 0,
    limit: Annotated[int | None, typer.Option(help="Perturb only the first N items.")] = None,
    rewrite_temperature: Annotated[
        float, typer.Option(help="Rewriter sampling temperature.")
    ] = 0.7,
    prompts_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="SUA_AUDIT_PROMPTS_DIR",
            help="Folder overriding the shipped prompt templates (rewrite and judge templates) file by file: "
            "DIR/<kind>/<name>.j2.",
        ),
    ] = None,
    meaning_filter: Annotated[
        str,
        typer.Option(
            help="Meaning check for model rewrites: lexical, judge, both, embedding or off."
        ),
    ] = "lexical",
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
    cache: Annotated[
        Path | None,
        typer.Option(
            envvar="SUA_AUDIT_CACHE",
            help="SQLite cache of rewriter requests (default: $SUA_AUDIT_HOME/cache.db).",
        ),
    ] = None,
    cache_mode: Annotated[
        str, typer.Option(help="use: read and write; refresh: write only; off: no cache.")
    ] = "use",
    batch_size: Annotated[int, typer.Option(help="Local model batch size.")] = 16,
    device: Annotated[str, typer.Option(help="Local model device: auto, cpu, cuda.")] = "auto",
    dtype: Annotated[str, typer.Option(help="auto, bfloat16, float16 or float32.")] = "auto",
    concurrency: Annotated[int, typer.Option(help="Hosted requests in flight, at most.")] = 16,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for one hosted answer.")] = 60.0,
    max_attempts: Annotated[
        int, typer.Option(help="Attempts per hosted request (429, 5xx, timeouts are retried).")
    ] = 6,
    max_retry_wait: Annotated[
        float, typer.Option(help="Longest pause (s) a server's Retry-After may impose.")
    ] = 60.0,
    max_line_bytes: Annotated[
        int, typer.Option(help="Longest dataset line accepted, in bytes (default 1 MiB).")
    ] = 1 << 20,
    as_json: Annotated[bool, typer.Option("--json", help="Print the set's header.")] = False,
) -> None:
    """Write every item's variants to a variant set, to review, commit and audit on.

    The variants are made exactly as `run` makes them (same plan, seed, rewriter, templates
    and meaning check give the same variants); `sua-audit run --variants FILE` then audits
    every model on this one set without calling a rewriter. Line 1 is a header (plan, seed,
    rewriter, templates, dataset sha256, the set's content hash); each further line is one
    item: its id, the hash of its text, and its variants with their provenance.
    """
    from sua_audit import api
    from sua_audit.ui.console import err_console

    variant_set = api.perturb(
        dataset,
        out=out,
        cache=cache,
        perturbations=perturbations,
        rewriter_model=rewriter_model,
        seed=seed,
        limit=limit,
        rewrite_temperature=rewrite_temperature,
        prompts_dir=prompts_dir,
        meaning_filter=meaning_filter,
        meaning_threshold=meaning_threshold,
        instruction_attacks=instruction_attacks,
        cache_mode=cache_mode,
        batch_size=batch_size,
        device=device,
        dtype=dtype,
        concurrency=concurrency,
        timeout=timeout,
        max_attempts=max_attempts,
        max_retry_wait=max_retry_wait,
        max_line_bytes=max_line_bytes,
    )
    header = variant_set.header
    unfilled = sum(r.get("unfilled_slots", 0) for r in header["rewrites"].values())
    rewriter = (
        f"; rewriter {header['rewriter_model']}: {header['rewriter_calls']} calls, "
        f"{header['rewriter_cache_hits']} cached"
        if header["rewriter_model"]
        else ""
    )
    err_console.print(
        f"wrote {out}: {header['n_items']} items, {header['n_variants']} variants (plan "
        f"{header['plan']}, seed {header['seed']}"
        + (f", {unfilled} slots unfilled: rewrites rejected" if unfilled else "")
        + f"{rewriter}); sha256 {header['content_sha256']}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
    if as_json:
        typer.echo(json.dumps(header, indent=2, ensure_ascii=False))


@app.command("rehash-variants")
def rehash_variants(
    path: Annotated[Path, typer.Argument(help="A variant set edited by hand after review.")],
    max_line_bytes: Annotated[
        int, typer.Option(help="Longest line accepted, in bytes (default 1 MiB).")
    ] = 1 << 20,
) -> None:
    """Record reviewed hand edits of a variant set: recompute its hashes, mark it edited.

    Every other check still applies (fields, types, kinds, the plan). The set's identity
    (content_sha256) changes: runs on the old and the edited set are not compared unless
    asked (--allow-different-variants).
    """
    from sua_audit.ui.console import err_console
    from sua_audit.variants import rehash_variant_set

    header = rehash_variant_set(path, max_line_bytes=max_line_bytes)
    what = (
        f"edited; built as {header['built_sha256'][:12]}…" if header.get("edited") else "unchanged"
    )
    err_console.print(
        f"rehashed {path}: {header['n_items']} items ({what}); sha256 {header['content_sha256']}",
        highlight=False,
        soft_wrap=True,
        markup=False,
    )
