"""The SUA-TR training loop and the checkpoint writer.

One optimisation step takes a batch of B examples, scores the clean prompt and its K perturbed
prompts of every example in one forward pass (B·(K+1) rows, see :mod:`sua_audit.train.forward`)
and minimises ``CE + α·S + β·[S − λH]_+`` (:mod:`sua_audit.train.losses`).

Reproducibility and the baseline: the data order is a permutation drawn from a generator seeded
with ``seed`` (one per epoch), the LoRA initialisation uses ``torch.manual_seed(seed)`` and the
perturbations the audit's seed scheme (:func:`sua_audit.train.data.epoch_seed`). None of these
depend on α or β, so ``baseline=True`` (α = β = 0) sees exactly the same batches, perturbations
and number of steps. The baseline skips the perturbed forward passes (their loss weight is 0,
so they cannot change its gradient); its loss curve records S and [S − λH]_+ as ``null``.

The checkpoint is a plain transformers directory (LoRA adapters merged into the weights) with
the tokenizer and chat template, written to ``OUT.tmp`` and renamed into place, so ``sua-audit
run --model hf/OUT`` audits it directly and an interrupted run never leaves a half-written one.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sua_audit.errors import ConfigError, MissingDependencyError, ModelLoadError
from sua_audit.train.data import (
    Example,
    epoch_seed,
    load_examples,
    training_plan,
    variant_messages,
)
from sua_audit.train.losses import DIVERGENCES, LossTerms, sua_terms

SUMMARY_FILE = "train_summary.json"


@dataclass
class TrainConfig:
    """Every setting of one training run (recorded in ``train_summary.json``)."""

    dataset: Path
    out: Path
    model: str | None = None
    """``hf/<dir>``, ``embedded/smollm2-135m-instruct`` or ``None`` for the embedded model."""
    alpha: float = 1.0
    beta: float = 1.0
    lam: float = 1.0
    perturbations: str = "4"
    divergence: str = "js"
    smoothing: float = 1e-3
    clean_grad: bool = False
    baseline: bool = False
    lr: float | None = None
    """Default: 2e-4 with LoRA, 2e-5 for full fine-tuning."""
    epochs: int = 1
    batch_size: int = 4
    max_steps: int | None = None
    limit: int | None = None
    lora: bool = True
    lora_rank: int = 8
    lora_alpha: float = 16.0
    lora_targets: str = "q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj"
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    """Compute dtype: float32, or bfloat16 (autocast; master weights stay float32)."""
    save_dtype: str = "float32"
    overwrite: bool = False
    threads: int | None = None
    prompts_dir: Path | None = None
    """Templates overriding the shipped ones (the task templates are what training reads)."""
    task_template: Path | None = None
    """The audited prompt for every item, as ``run --task-template``."""
    system_prompt: Path | None = None
    """A system message before every prompt, as ``run --system-prompt``."""

    def __post_init__(self) -> None:
        self.dataset, self.out = Path(self.dataset), Path(self.out)
        if self.baseline:
            self.alpha = self.beta = 0.0
        if self.lr is None:
            self.lr = 2e-4 if self.lora else 2e-5
        checks = [
            (self.alpha >= 0 and self.beta >= 0, "--alpha and --beta must be >= 0"),
            (math.isfinite(self.lam) and self.lam >= 0, "--lambda must be a number >= 0"),
            (self.lr > 0 and math.isfinite(self.lr), "--lr must be a positive number"),
            (self.epochs >= 1, "--epochs must be >= 1"),
            (self.batch_size >= 1, "--batch-size must be >= 1"),
            (self.max_steps is None or self.max_steps >= 1, "--max-steps must be >= 1"),
            (self.limit is None or self.limit >= 1, "--limit must be >= 1"),
            (self.lora_rank >= 1, "--lora-rank must be >= 1"),
            (self.divergence in DIVERGENCES, f"--divergence: use one of {', '.join(DIVERGENCES)}"),
            (self.smoothing > 0, "--smoothing must be > 0"),
            (self.dtype in ("auto", "float32", "bfloat16"), "--dtype: auto, float32 or bfloat16"),
            (self.save_dtype in ("float32", "bfloat16"), "--save-dtype: float32 or bfloat16"),
            (self.device in ("auto", "cpu", "cuda"), "--device: auto, cpu or cuda"),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(message + ".")
        self.plan = training_plan(self.perturbations)

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON-ready values."""
        out = asdict(self)
        for key in ("dataset", "out", "prompts_dir", "task_template", "system_prompt"):
            if out[key] is not None:
                out[key] = str(out[key])
        out["k"] = self.plan.k
        return out


@dataclass
class TrainResult:
    """What a run produced: the checkpoint folder and its summary."""

    out: Path
    summary: dict[str, Any] = field(default_factory=dict)


def resolve_model_dir(spec: str | None) -> Path:
    """The local directory a ``--model`` spec names (the embedded model is converted once)."""
    from sua_audit.backends import EMBEDDED_MODEL, EMBEDDED_NAME

    spec = spec or EMBEDDED_MODEL
    provider, _, name = spec.partition("/")
    if provider == "embedded":
        from sua_audit.backends.embedded import ensure_converted

        if name != EMBEDDED_NAME:
            raise ConfigError(f"Unknown embedded model {name!r}; it is {EMBEDDED_NAME!r}.")
        return ensure_converted()
    if provider == "hf" and name:
        path = Path(name)
        if not (path / "config.json").is_file():
            raise ModelLoadError(
                f"No transformers model at {path} (config.json not found); pass --model "
                "hf/<directory saved with save_pretrained>."
            )
        return path
    raise ConfigError(
        f"--model {spec}: training needs a local model, hf/<dir> or the embedded default."
    )


def _resolve_device(device: str, dtype: str) -> tuple[str, str]:
    import torch

    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("--device cuda: no CUDA device is available.")
    if dtype == "auto":
        bf16 = device == "cuda" and torch.cuda.is_bf16_supported()
        dtype = "bfloat16" if bf16 else "float32"
    return device, dtype


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _batch_loss(
    scorer: Any, examples: list[Example], messages: list[list[Any]], config: TrainConfig
) -> LossTerms:
    """The loss of one batch; examples with different label-set sizes are scored in groups."""
    import torch

    use_perturbed = bool(config.alpha or config.beta)
    rows = []
    for ex, variants in zip(examples, messages, strict=True):
        for m in variants if use_perturbed else variants[:1]:
            rows.append((m, ex.labels))
    logps = scorer.label_logprobs(rows)
    per = len(messages[0]) if use_perturbed else 1
    groups: dict[int, list[int]] = {}
    for i, ex in enumerate(examples):
        groups.setdefault(len(ex.labels), []).append(i)
    parts: list[tuple[int, LossTerms]] = []
    for idx in groups.values():
        clean = torch.stack([logps[i * per] for i in idx])
        pert = None
        if use_perturbed:
            pert = torch.stack([torch.stack(logps[i * per + 1 : (i + 1) * per]) for i in idx])
        gold = torch.tensor(
            [[lab in examples[i].gold for lab in examples[i].labels] for i in idx],
            device=clean.device,
        )
        terms = sua_terms(
            clean,
            pert,
            gold,
            alpha=config.alpha,
            beta=config.beta,
            lam=config.lam,
            divergence_name=config.divergence,
            smoothing=config.smoothing,
            clean_grad=config.clean_grad,
        )
        parts.append((len(idx), terms))
    if len(parts) == 1:
        return parts[0][1]
    n = sum(w for w, _ in parts)

    def mean(attr: str) -> Any:
        return sum(w * getattr(t, attr) for w, t in parts) / n

    return LossTerms(*(mean(a) for a in ("total", "ce", "sensitivity", "entropy", "sua_pos")))


def load_model(config: TrainConfig, model_dir: Path, device: str) -> tuple[Any, Any, int]:
    """Tokenizer and model (LoRA-wrapped unless full fine-tuning), and the trainable count."""
    import torch
    import transformers

    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(model_dir)
        model: Any = transformers.AutoModelForCausalLM.from_pretrained(
            model_dir, dtype=torch.float32
        )
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Could not load {model_dir}: {exc}") from exc
    model = model.to(device)
    if config.lora:
        try:
            import peft
        except ImportError as exc:
            raise MissingDependencyError("LoRA training (--lora)", "train") from exc
        names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
        targets = [t.strip() for t in config.lora_targets.split(",") if t.strip() in names]
        if not targets:
            raise ConfigError(
                f"--lora-targets {config.lora_targets}: none of these modules is in the model."
            )
        lora = peft.LoraConfig(
            r=config.lora_rank,
            lora_alpha=config.lora_alpha,  # type: ignore[arg-type]  # peft accepts floats
            lora_dropout=0.0,
            target_modules=targets,
            task_type="CAUSAL_LM",
        )
        model = peft.get_peft_model(model, lora)
    model.train()
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return tokenizer, model, trainable


def save_checkpoint(
    model: Any, tokenizer: Any, out: Path, summary: dict[str, Any], *, save_dtype: str
) -> None:
    """Merge LoRA, save model + tokenizer + summary to ``OUT.tmp``, then rename to ``OUT``.

    The SHA-256 of the weights is added to ``config.json`` (``sua_tr_weights_sha256``): the
    audit's cache key names local weights by their config and file sizes, so without it two
    checkpoints of one model trained into the same folder would share cached answers.
    """
    import torch

    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model = model.to("cpu", dtype=getattr(torch, save_dtype))
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        weights = sorted(tmp.glob("*.safetensors"))
        digest = hashlib.sha256("".join(_sha256(w) for w in weights).encode()).hexdigest()
        config_path = tmp / "config.json"
        cfg = json.loads(config_path.read_text(encoding="utf-8"))
        cfg["sua_tr_weights_sha256"] = digest
        config_path.write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        summary["weights_sha256"] = digest
        (tmp / SUMMARY_FILE).write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
        old = out.with_name(out.name + ".old")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def train(
    config: TrainConfig, *, on_step: Callable[[int, int, dict[str, Any]], None] | None = None
) -> TrainResult:
    """Fine-tune a local model with SUA-TR (or plain cross-entropy when ``baseline``).

    Args:
        config: The run's settings.
        on_step: Called after every step with (step, total steps, that step's loss terms).

    Returns:
        The checkpoint folder and the summary written to it.

    Raises:
        ConfigError: Bad settings, or ``out`` exists and ``overwrite`` is false.
        DatasetError: Bad training data.
        ModelLoadError: The model cannot be loaded.
    """
    if config.out.exists() and not config.overwrite:
        raise ConfigError(f"--out {config.out} exists; choose a new folder or pass --overwrite.")
    examples, info = load_examples(config.dataset, limit=config.limit)
    from sua_audit.perturbation import uses_instruction
    from sua_audit.tasks import TaskPrompts

    # Trained on the prompts it will be audited (and deployed) with; bad files fail here.
    prompts = TaskPrompts.from_paths(config.prompts_dir, config.task_template, config.system_prompt)
    prompts.check(list(info.tasks), instruction_attacks=uses_instruction(config.plan.slots))
    model_dir = resolve_model_dir(config.model)
    try:
        import torch
    except ImportError as exc:
        raise MissingDependencyError("Training (sua-audit train)", "train") from exc
    if config.threads:
        torch.set_num_threads(config.threads)
    device, dtype = _resolve_device(config.device, config.dtype)
    torch.manual_seed(config.seed)
    tokenizer, model, trainable = load_model(config, model_dir, device)
    from sua_audit.train.forward import LabelScorer

    scorer = LabelScorer(model, tokenizer, device)
    params = [p for p in model.parameters() if p.requires_grad]
    assert config.lr is not None  # set in __post_init__
    optimizer = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    per_epoch = math.ceil(len(examples) / config.batch_size)
    total = per_epoch * config.epochs
    if config.max_steps is not None:
        total = min(total, config.max_steps)
    order_gen = torch.Generator().manual_seed(config.seed)
    curve: list[dict[str, Any]] = []
    t0 = time.perf_counter()
    step = 0
    autocast = dtype == "bfloat16"
    for epoch in range(config.epochs):
        if step >= total:
            break
        order = torch.randperm(len(examples), generator=order_gen).tolist()
        messages = variant_messages(examples, config.plan, epoch_seed(config.seed, epoch), prompts)
        for start in range(0, len(order), config.batch_size):
            if step >= total:
                break
            idx = order[start : start + config.batch_size]
            t_step = time.perf_counter()
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=autocast):
                terms = _batch_loss(
                    scorer, [examples[i] for i in idx], [messages[i] for i in idx], config
                )
            optimizer.zero_grad(set_to_none=True)
            terms.total.backward()
            if config.grad_clip:
                torch.nn.utils.clip_grad_norm_(params, config.grad_clip)
            optimizer.step()
            step += 1
            record: dict[str, Any] = {"step": step, "epoch": epoch, **terms.floats()}
            if not (config.alpha or config.beta):
                record["sensitivity"] = record["sua_pos"] = None
            record["seconds"] = round(time.perf_counter() - t_step, 3)
            curve.append(record)
            if on_step is not None:
                on_step(step, total, record)
    wall = time.perf_counter() - t0
    import importlib.metadata

    def version(name: str) -> str | None:
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            return None

    summary = {
        "mode": "baseline" if config.baseline else "sua-tr",
        "config": config.to_dict(),
        "base_model": str(model_dir),
        "device": device,
        "dtype": dtype,
        "seed": config.seed,
        "data": {"path": str(config.dataset), "sha256": info.sha256, "n_examples": len(examples)},
        "prompts": prompts.record(),
        "steps": step,
        "trainable_parameters": trainable,
        "wall_seconds": round(wall, 2),
        "loss_curve": curve,
        "versions": {name: version(name) for name in ("torch", "transformers", "peft")},
    }
    model.eval()
    save_checkpoint(model, tokenizer, config.out, summary, save_dtype=config.save_dtype)
    return TrainResult(config.out, summary)
