"""The parts of a run, built from its config in one place for ``run``, ``rescore`` and
``perturb``: the model backends (audited, rewriter, judge), the answer clustering, the config
as runs record it, and the checks made before any model call.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sua_audit.config import AuditConfig
from sua_audit.engine import Generator
from sua_audit.errors import ConfigError

__all__ = [
    "build_backend",
    "check_abstention_score",
    "check_equivalence_extras",
    "check_prompts",
    "equivalence_backend",
    "make_equivalence",
    "recorded_config",
    "rewriter_backend",
]


def recorded_config(config: AuditConfig) -> dict[str, Any]:
    """The config as runs record it: a ``user:password@`` in --base-url (each, with several
    replicas) is dropped, and the
    paths of files it reads (dataset, variant set, prompts) are absolute (rescore reads them
    from any working directory). A run on a variant set records no rewrite options: nothing
    was rewritten (how the set was made is in ``results.perturbation``)."""
    data = config.model_dump()
    for key in ("dataset", "prompts_dir", "task_template", "system_prompt"):
        if data.get(key):
            data[key] = str(Path(data[key]).resolve())
    if data.get("variants"):
        from sua_audit.variants import REWRITE_OPTIONS

        data["variants"] = str(Path(data["variants"]).resolve())
        for key, _ in REWRITE_OPTIONS:
            data[key] = None
    if data.get("base_url"):
        from sua_audit.backends.openai_backend import public_url

        url = data["base_url"]
        data["base_url"] = public_url(url) if isinstance(url, str) else [public_url(u) for u in url]
    return data


def check_abstention_score(config: AuditConfig, info: Any) -> None:
    """Refuse, before any model call, an --abstain-on score this run could not compute."""
    from sua_audit.evaluation.core import FITTED_SCORES

    name = config.abstain_on
    if name in FITTED_SCORES and info.n_with_gold < info.n_items:
        raise ConfigError(
            f"--abstain-on {name}: this score is fitted on gold answers (a validation split), "
            f"but only {info.n_with_gold} of {info.n_items} items have gold. Choose a label-free "
            "score (sua, sua_norm, sensitivity, flip_rate, entropy, ...) or add gold answers."
        )
    if name == "semantic_entropy_exact" and (
        config.equivalence == "exact" or not info.tasks.get("qa")
    ):
        raise ConfigError(
            "--abstain-on semantic_entropy_exact: that score is recorded only beside meaning "
            "clusters on QA items (--equivalence embedding or judge); with exact match it is "
            "semantic_entropy."
        )
    if name.startswith("s_") and name[2:] not in set(config.plan.slots):
        raise ConfigError(
            f"--abstain-on {name}: the perturbation plan has no {name[2:]!r} variants "
            f"(kinds: {', '.join(sorted(set(config.plan.slots))) or 'none'})."
        )


def check_prompts(config: AuditConfig, info: Any) -> Any:
    """The audited model's prompts (--task-template, --system-prompt, task templates in
    --prompts-dir), rendered once on stand-in text: a bad file fails before any model call."""
    from sua_audit.tasks import TaskPrompts

    prompts = TaskPrompts.from_config(config)
    prompts.check(list(info.tasks), instruction_attacks="instruction" in config.plan.slots)
    return prompts


def build_backend(spec: str, config: AuditConfig, *, audited: bool = False) -> Any:
    """The one place a run builds a model backend from its config: the audited model
    (``audited``, which gets ``--base-url``) and every model that serves the audit (rewriter,
    judge), with the run's local and hosted settings. A helper on another server reads
    ``SUA_AUDIT_BASE_URL`` / ``OPENAI_BASE_URL``, as any hosted spec; the audited model's own
    ``--base-url`` is not passed on to it."""
    from sua_audit.backends import get_backend

    return get_backend(
        spec,
        device=config.device,
        dtype=config.dtype,
        batch_size=config.batch_size,
        base_url=config.base_url if audited else None,
        concurrency=config.concurrency,
        timeout=config.timeout,
        max_attempts=config.max_attempts,
        max_retry_wait=config.max_retry_wait,
        # Batches are for the audited model's requests (its own rewrites too, when it is
        # the rewriter); a separate rewriter or judge model stays interactive.
        batch=config.batch if audited else False,
        batch_poll=config.batch_poll,
    )


def rewriter_backend(config: AuditConfig, backend: Any) -> Any | None:
    """The backend that writes model-based perturbations, when the plan has any."""
    from sua_audit.perturbation import rewriter_kinds

    if config.variants or not rewriter_kinds().intersection(config.plan.slots):
        return None  # a run on a variant set never builds (nor calls) a rewriter
    if config.rewriter_model == config.model:
        return backend
    return build_backend(config.rewriter_model, config)


def equivalence_backend(config: AuditConfig, backend: Any) -> Any | None:
    """The judge backend of ``--equivalence judge`` (the audited one when it is the same
    model), else ``None``."""
    if config.equivalence != "judge" or config.equivalence_model is None:
        return None
    if config.equivalence_model == config.model:
        return backend
    return build_backend(config.equivalence_model, config)


def check_equivalence_extras(config: AuditConfig) -> None:
    """Refuse, before any model call, an embedding method whose extra is not installed."""
    from sua_audit.equivalence import check_embedding_available
    from sua_audit.perturbation import rewriter_kinds

    if config.equivalence == "embedding":
        check_embedding_available("--equivalence embedding")
    uses_filter = not config.variants and rewriter_kinds().intersection(config.plan.slots)
    if config.meaning_filter == "embedding" and uses_filter:
        check_embedding_available("--meaning-filter embedding")


def make_equivalence(config: AuditConfig, generator: Generator, judge: Generator | None) -> Any:
    """The run's :class:`~sua_audit.equivalence.Equivalence`: vectors cached beside the
    requests, a judge through its own generator."""
    from sua_audit.equivalence import build_equivalence
    from sua_audit.prompting import PromptLibrary

    return build_equivalence(
        config.equivalence,
        threshold=config.equivalence_threshold,
        store=generator.store,
        read_cache=generator.cache_mode == "use",
        generator=judge,
        prompts=PromptLibrary(Path(config.prompts_dir)) if config.prompts_dir else None,
    )
