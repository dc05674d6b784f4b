"""The resolved configuration of one audit run (recorded in summary.json and the runs table)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sua_audit.backends import EMBEDDED_MODEL

if TYPE_CHECKING:
    from sua_audit.perturbation import Plan


class AuditConfig(BaseModel):
    """Every setting that shapes an audit. Unknown keys are errors, not silent defaults."""

    # No NaN or infinity in any number: `--tau nan` would silently abstain on nothing.
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    dataset: str = Field(description="Path of the JSONL dataset.")
    model: str = Field(EMBEDDED_MODEL, description="Model spec: provider/model.")
    limit: int | None = Field(None, ge=1, description="Audit only the first N items.")
    seed: int = Field(0, description="Seed for perturbations and sampling.")
    perturbations: str = Field(
        "4",
        description="K (the rule kinds typo, word, distractor in turn) or kind:count[@budget],...",
    )
    variants: str | None = Field(
        None,
        description="A variant set written by `sua-audit perturb`: audit exactly those variants "
        "(no rewriter call); the plan is the set's.",
    )
    rewriter_model: str = Field(
        EMBEDDED_MODEL,
        description="Model that writes paraphrase / ambiguity / adversarial rewrites. Fixed by "
        "default (not the audited model), so audits of different models see the same variants.",
    )
    rewrite_temperature: float = Field(
        0.7, gt=0, le=2, description="Rewriter sampling temperature (0.9 gave SmolLM2 garbage)."
    )
    prompts_dir: str | None = Field(
        None, description="Folder overriding prompt templates (rewrite, judge and task)."
    )
    task_template: str | None = Field(
        None,
        description="Template of the audited model's prompt for every item (instead of "
        "prompts/task/<form>.j2).",
    )
    system_prompt: str | None = Field(
        None, description="File whose text is the system message of every audited request."
    )
    meaning_filter: Literal["lexical", "judge", "both", "embedding", "off"] = Field(
        "lexical", description="Meaning check for model rewrites."
    )
    meaning_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Judge or embedding acceptance threshold (default: the filter's own).",
    )
    equivalence: Literal["exact", "embedding", "judge"] = Field(
        "exact",
        description="How QA answers are put in meaning clusters (S, H, semantic entropy): exact "
        "match after normalisation, MiniLM embeddings, or a judge model. No effect on label "
        "tasks.",
    )
    equivalence_model: str | None = Field(
        None, description="The judge model of --equivalence judge (any --model spec)."
    )
    equivalence_threshold: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Cosine (embedding) or min P(yes) (judge) at which two answers are one "
        "cluster (default: the method's own).",
    )
    instruction_attacks: str | None = Field(
        None, description="JSONL of attacked instructions (PromptBench schema)."
    )
    samples: int = Field(5, ge=1, le=64, description="Sampled answers per QA variant (k).")
    adaptive_samples: bool = Field(
        False,
        description="QA: draw the first ceil(k/2) samples of each variant, and the rest only "
        "when they or the greedy answer disagree (see docs/method.md).",
    )
    temperature: float = Field(0.7, gt=0, le=2, description="Sampling temperature for QA.")
    max_tokens: int = Field(32, ge=1, le=1024, description="Longest QA answer, in tokens.")
    divergence: Literal["js", "kl", "tv"] = Field("js", description="D in S = mean D(p, p').")
    lam: float = Field(
        1.0,
        allow_inf_nan=False,
        description="λ in SUA = S − λH (the paper: λ ≥ 0; λ < 0 reads 'unstable and uncertain').",
    )
    normalize: Literal["rank", "z", "none"] = Field(
        "rank", description="How S and H are put on one scale for sua_norm = N(S) − λ·N(H)."
    )
    abstain_on: str = Field("sua", description="The score the abstention rule thresholds.")
    confident_threshold: float = Field(
        0.7,
        gt=0,
        le=1,
        description="An answer is confident when its probability is at least this "
        "(confident flips).",
    )
    smoothing: float = Field(1e-3, gt=0, lt=1, description="Additive smoothing inside KL.")
    tau: float | None = Field(
        None, allow_inf_nan=False, description="Abstain when the abstention score > τ."
    )
    coverage: float | None = Field(None, gt=0, le=1, description="Answer this share of items.")
    batch_size: int = Field(16, ge=1, le=1024, description="Local model batch size.")
    device: str = Field("auto", description="Local model device: auto, cpu, cuda, cuda:N.")
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = "auto"
    cache_mode: Literal["use", "refresh", "off"] = "use"
    base_url: str | list[str] | None = Field(
        None,
        description="OpenAI-compatible server URL; several (a list, or comma-separated) are "
        "replicas of one model that requests are spread over.",
    )
    concurrency: int = Field(
        16, ge=1, le=1024, description="Hosted requests in flight (max), on each replica."
    )
    timeout: float = Field(60.0, gt=0, le=3600, description="Seconds per hosted request.")
    max_attempts: int = Field(6, ge=1, le=50, description="Attempts per hosted request.")
    max_retry_wait: float = Field(
        60.0,
        gt=0,
        allow_inf_nan=False,
        description="Longest wait, in seconds, before a hosted request is retried, and longest "
        "pause of all requests after a 429; a server asking for longer (Retry-After) fails "
        "that request as rate_limit instead.",
    )
    batch: bool = Field(
        False,
        description="Send the audited model's requests as provider batch jobs (OpenAI and "
        "OpenAI-compatible servers with the files and batches endpoints).",
    )
    batch_poll: float = Field(
        5.0,
        gt=0,
        le=3600,
        allow_inf_nan=False,
        description="Seconds before the first read of a batch job's state (then half as long "
        "again each time, up to a minute).",
    )
    max_cost: float | None = Field(
        None, ge=0, description="Refuse runs estimated above this (USD)."
    )
    price_in: float | None = Field(None, ge=0, description="USD per 1M prompt tokens.")
    price_out: float | None = Field(None, ge=0, description="USD per 1M completion tokens.")
    max_line_bytes: int = Field(
        1 << 20,
        ge=1,
        description="Longest dataset line accepted, in bytes (lines above it are refused).",
    )
    max_failed_share: float = Field(
        1.0,
        ge=0,
        le=1,
        description="The run fails (exit 3) when more than this share of items could not be "
        "scored; it always fails when none could.",
    )

    @field_validator("perturbations", mode="before")
    @classmethod
    def _plan_text(cls, value: Any) -> str:
        from sua_audit.perturbation import parse_plan

        plan = parse_plan(value)  # ConfigError (one line, exit 2) when malformed
        if plan.k > 64:
            raise ValueError(f"at most 64 perturbed variants per item, got {plan.k}")
        if plan.k < 1:
            raise ValueError(
                "at least 1 perturbed variant per item is needed to measure sensitivity "
                f"(got {value!r}); the default is 4"
            )
        return str(plan)

    @field_validator("model", "rewriter_model", "equivalence_model")
    @classmethod
    def _model_spec(cls, value: str | None) -> str | None:
        from sua_audit.backends import model_spec_problem

        if value is None:
            return value
        problem = model_spec_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("base_url", mode="before")
    @classmethod
    def _server_url(cls, value: Any) -> str | list[str] | None:
        from sua_audit.backends import base_url_problem, split_base_urls

        if value is None:
            return None
        if not isinstance(value, str) and not (
            isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
        ):
            raise ValueError(f"{value!r} is not a server URL or a list of them")
        urls = split_base_urls(value)
        for url in urls:
            problem = base_url_problem(url)
            if problem is not None:
                raise ValueError(problem)
        seen = [url.rstrip("/") for url in urls]
        for i, url in enumerate(seen):
            if url in seen[:i]:
                from sua_audit.backends.openai_backend import public_url

                raise ValueError(f"{public_url(url)} is given twice; name each replica once")
        # One URL stays a string: a single-server run records (and keys) what it always did.
        if not urls:
            return None
        return urls[0] if len(urls) == 1 else urls

    @property
    def plan(self) -> Plan:
        """The parsed ``perturbations`` plan."""
        from sua_audit.perturbation import parse_plan

        return parse_plan(self.perturbations)

    @property
    def k(self) -> int:
        """Perturbed variants per item asked for (model rewriters may fill fewer)."""
        return self.plan.k

    @field_validator("abstain_on")
    @classmethod
    def _known_score(cls, value: str) -> str:
        from sua_audit.evaluation.core import SCORES, is_score

        if not is_score(value):
            raise ValueError(
                f"unknown score {value!r}; one of {', '.join(SCORES)}, or s_<kind> for one "
                "perturbation kind"
            )
        return value

    @model_validator(mode="after")
    def _equivalence_options(self) -> AuditConfig:
        if self.equivalence == "judge" and self.equivalence_model is None:
            raise ValueError(
                "--equivalence judge needs a judge model: pass --equivalence-model (a strong "
                "hosted model; the embedded SmolLM2 judges at chance)"
            )
        if self.equivalence != "judge" and self.equivalence_model is not None:
            raise ValueError(
                f"--equivalence-model is the judge of --equivalence judge; with --equivalence "
                f"{self.equivalence} it would not be used. Drop it, or pass --equivalence judge"
            )
        if self.equivalence == "exact" and self.equivalence_threshold is not None:
            raise ValueError(
                "--equivalence-threshold applies to --equivalence embedding or judge; exact "
                "match has none"
            )
        return self

    @model_validator(mode="after")
    def _one_batch_endpoint(self) -> AuditConfig:
        if self.batch and isinstance(self.base_url, list):
            raise ValueError(
                "--batch sends a run's batches to one provider endpoint; it cannot spread them "
                f"over {len(self.base_url)} --base-url replicas. Give one --base-url, or drop "
                "--batch"
            )
        return self

    @model_validator(mode="after")
    def _one_abstention_rule(self) -> AuditConfig:
        from sua_audit.scoring.abstention import DEFAULT_TAUS

        if self.tau is not None and self.coverage is not None:
            raise ValueError("give either tau or coverage, not both")
        if self.tau is None and self.coverage is None and self.abstain_on not in DEFAULT_TAUS:
            raise ValueError(
                f"{self.abstain_on} has no natural threshold: give --tau or --coverage with "
                f"--abstain-on {self.abstain_on} (only {', '.join(DEFAULT_TAUS)} default to "
                "τ = 0)"
            )
        return self
