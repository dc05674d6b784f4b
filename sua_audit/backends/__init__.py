"""Model backends, chosen by a ``provider/model`` spec.

* no spec, or ``embedded/smollm2-135m-instruct`` — the embedded SmolLM2-135M (transformers);
* ``hf/<directory>`` — any local transformers model saved with ``save_pretrained``;
* ``fake/<name>`` — a deterministic stand-in for tests and dry runs (``fake/rewrite`` writes
  simple rewrites for rewriter tests; ``fake/slow`` waits
  100 ms per request).
"""

from __future__ import annotations

from pathlib import Path

from sua_audit.backends.base import (
    Backend,
    Capabilities,
    Completion,
    CompletionRequest,
    GenerationParams,
    Message,
)
from sua_audit.errors import ConfigError

__all__ = [
    "Backend",
    "Capabilities",
    "Completion",
    "CompletionRequest",
    "GenerationParams",
    "Message",
    "get_backend",
]


def get_backend(
    spec: str | None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 16,
    base_url: str | None = None,
    concurrency: int = 16,
    timeout: float = 60.0,
    max_attempts: int = 6,
) -> Backend:
    """Build the backend a model spec names. Heavy libraries load only here."""
    from sua_audit.config import EMBEDDED_MODEL

    spec = spec or EMBEDDED_MODEL
    provider, _, name = spec.partition("/")
    if "/" not in spec and provider not in ("embedded", "hf", "fake", "litellm", "openai"):
        provider, name = "openai", spec  # a bare model name (gpt-4o) means OpenAI
    hosted = dict(concurrency=concurrency, timeout=timeout, max_attempts=max_attempts)
    if provider == "embedded":
        from sua_audit.backends.embedded import EMBEDDED_NAME, ensure_converted

        if name != EMBEDDED_NAME:
            raise ConfigError(
                f"Unknown embedded model {name!r}. The embedded model is {EMBEDDED_NAME!r}."
            )
        from sua_audit.backends.hf import HFBackend

        return HFBackend(
            ensure_converted(), name=name, device=device, dtype=dtype, batch_size=batch_size
        )
    if provider == "hf":
        if not name:
            raise ConfigError("--model hf/ needs a directory: --model hf/path/to/model.")
        from sua_audit.backends.hf import HFBackend

        return HFBackend(Path(name), device=device, dtype=dtype, batch_size=batch_size)
    if provider == "openai":
        if not name:
            raise ConfigError("--model openai/ needs a model name: --model openai/gpt-4o.")
        from sua_audit.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(name, base_url=base_url, **hosted)  # type: ignore[arg-type]
    if provider == "litellm":
        if "/" not in name:
            raise ConfigError(
                "--model litellm/ needs a provider and a model: --model litellm/anthropic/<model>."
            )
        from sua_audit.backends.litellm_backend import LiteLLMBackend

        return LiteLLMBackend(name, base_url=base_url, **hosted)  # type: ignore[arg-type]
    if provider == "fake":
        from sua_audit.backends.fake import FakeBackend

        # "fake/slow" answers after 100 ms: lets tests interrupt a run part-way.
        return FakeBackend(name or "echo", delay=0.1 if name == "slow" else 0.0)
    raise ConfigError(
        f"Unknown model provider {provider!r} in {spec!r}. Use a bare OpenAI model name "
        "(gpt-4o), openai/<model>, litellm/<provider>/<model>, hf/<directory>, or omit "
        "--model for the embedded default."
    )
