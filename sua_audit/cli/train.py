"""``sua-audit train``: fine-tune a local model with SUA-TR (or plain cross-entropy)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from sua_audit.cli import app

Opt = typer.Option


@app.command()
def train(
    dataset: Annotated[Path, Opt("--dataset", "-d", help="JSONL training set (labelled).")],
    out: Annotated[Path, Opt(help="Checkpoint folder (audit it with --model hf/OUT).")],
    model: Annotated[
        str | None, Opt("--model", "-m", help="hf/<dir>; omit for the embedded SmolLM2-135M.")
    ] = None,
    alpha: Annotated[float, Opt(help="Weight of the mean divergence S.")] = 1.0,
    beta: Annotated[float, Opt(help="Weight of the hinge [S − λH]_+.")] = 1.0,
    lam: Annotated[float, Opt("--lambda", help="λ in SUA = S − λH.")] = 1.0,
    baseline: Annotated[
        bool, Opt(help="Plain fine-tuning (α = β = 0) on the same batches and steps.")
    ] = False,
    perturbations: Annotated[
        str, Opt("--perturbations", "-k", help="K rule perturbations per example, or a plan.")
    ] = "4",
    divergence: Annotated[str, Opt(help="D in S: js (default), kl or tv.")] = "js",
    smoothing: Annotated[float, Opt(help="Additive smoothing ε of kl.")] = 1e-3,
    clean_grad: Annotated[
        bool, Opt(help="Let D's gradient reach the clean distribution (default: stopped).")
    ] = False,
    lr: Annotated[float | None, Opt(help="Learning rate (default 2e-4 LoRA, 2e-5 full).")] = None,
    epochs: Annotated[int, Opt(help="Passes over the training set.")] = 1,
    batch_size: Annotated[int, Opt(help="Examples per step (each adds K+1 rows).")] = 4,
    max_steps: Annotated[int | None, Opt(help="Stop after this many steps.")] = None,
    limit: Annotated[int | None, Opt(help="Use only the first N items.")] = None,
    lora: Annotated[bool, Opt("--lora/--full", help="LoRA adapters (default) or all weights.")] = (
        True
    ),
    lora_rank: Annotated[int, Opt(help="LoRA rank r.")] = 8,
    lora_alpha: Annotated[float, Opt(help="LoRA scaling alpha.")] = 16.0,
    seed: Annotated[int, Opt(help="Seed for data order, LoRA init and perturbations.")] = 0,
    device: Annotated[str, Opt(help="auto, cpu or cuda.")] = "auto",
    dtype: Annotated[
        str, Opt(help="auto (bf16 on GPUs that support it, else fp32), float32, bfloat16.")
    ] = "auto",
    save_dtype: Annotated[str, Opt(help="Weights dtype of the checkpoint.")] = "float32",
    overwrite: Annotated[bool, Opt(help="Replace an existing --out folder.")] = False,
    prompts_dir: Annotated[
        Path | None,
        Opt(envvar="SUA_AUDIT_PROMPTS_DIR", help="Folder overriding the task templates (as run)."),
    ] = None,
    task_template: Annotated[
        Path | None, Opt(help="Template of the prompt for every item (as run --task-template).")
    ] = None,
    system_prompt: Annotated[
        Path | None, Opt(help="System message before every prompt (as run --system-prompt).")
    ] = None,
) -> None:
    """Fine-tune with loss = CE + α·S + β·[S − λH]_+ and save a merged checkpoint."""
    from sua_audit.train import TrainConfig
    from sua_audit.train import train as run_training

    config = TrainConfig(
        dataset=dataset,
        out=out,
        model=model,
        alpha=alpha,
        beta=beta,
        lam=lam,
        baseline=baseline,
        perturbations=perturbations,
        divergence=divergence,
        smoothing=smoothing,
        clean_grad=clean_grad,
        lr=lr,
        epochs=epochs,
        batch_size=batch_size,
        max_steps=max_steps,
        limit=limit,
        lora=lora,
        lora_rank=lora_rank,
        lora_alpha=lora_alpha,
        seed=seed,
        device=device,
        dtype=dtype,
        save_dtype=save_dtype,
        overwrite=overwrite,
        prompts_dir=prompts_dir,
        task_template=task_template,
        system_prompt=system_prompt,
    )

    def report(step: int, total: int, rec: dict[str, object]) -> None:
        terms = " ".join(
            f"{k}={v:.4f}" for k, v in rec.items() if isinstance(v, float) and k != "seconds"
        )
        typer.echo(f"step {step}/{total} {terms} ({rec['seconds']}s)", err=True)

    result = run_training(config, on_step=report)
    s = result.summary
    typer.echo(
        f"{s['mode']}: {s['steps']} steps in {s['wall_seconds']}s; checkpoint {result.out} "
        f"(audit it: sua-audit run --model hf/{result.out} --dataset ...)"
    )
