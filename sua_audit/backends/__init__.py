"""Model backends, chosen by a ``provider/model`` spec.

* no spec, or ``embedded/smollm2-135m-instruct`` — the embedded SmolLM2-135M (transformers);
* ``hf/<directory>`` — any local transformers model saved with ``save_pretrained``;
* ``fake/<name>`` — a deterministic stand-in for tests and dry runs (``fake/slow`` waits
  20 ms per request).
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
    spec: str | None, *, device: str = "auto", dtype: str = "auto", batch_size: int = 16
) -> Backend:
    """Build the backend a model spec names. Heavy libraries load only here."""
    from sua_audit.config import EMBEDDED_MODEL

    spec = spec or EMBEDDED_MODEL
    provider, _, name = spec.partition("/")
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
    if provider == "fake":
        from sua_audit.backends.fake import FakeBackend

        # "fake/slow" answers after 20 ms: lets tests interrupt a run part-way.
        return FakeBackend(name or "echo", delay=0.02 if name == "slow" else 0.0)
    raise ConfigError(
        f"Model {spec!r}: hosted backends (OpenAI, LiteLLM) are not available in this version. "
        "Use the embedded default (omit --model) or --model hf/<local directory>."
    )
