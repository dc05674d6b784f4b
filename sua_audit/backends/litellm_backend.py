"""LiteLLM: 100+ vendors behind one OpenAI-shaped call, as ``litellm/<provider>/<model>``.

LiteLLM is imported only when this backend is chosen (it takes seconds to import), with
``LITELLM_LOCAL_MODEL_COST_MAP=True`` so that it never fetches its price table from the network.
Keys come from the provider's own environment variables (``OPENAI_API_KEY``,
``ANTHROPIC_API_KEY``, ...), which LiteLLM reads; ``--base-url`` becomes its ``api_base``.
LiteLLM's retries are off: :mod:`.hosted` retries and slows down on rate limits.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar

from sua_audit.backends.hosted import HostedBackend
from sua_audit.backends.openai_backend import classify_sdk_error, public_url
from sua_audit.errors import ConfigError, MissingDependencyError, RequestFailed


def import_litellm() -> Any:
    """Import LiteLLM offline-safe, or explain which extra to install."""
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    os.environ.setdefault("LITELLM_LOG", "ERROR")
    try:
        import litellm
    except ImportError as exc:
        raise MissingDependencyError("The LiteLLM backend", "litellm") from exc
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.drop_params = True  # vendors that lack seed or logprobs get the call without them
    return litellm


class LiteLLMBackend(HostedBackend):
    """Chat completions through ``litellm.acompletion``."""

    provider: ClassVar[str] = "litellm"

    def __init__(self, model: str, *, base_url: str | None = None, **options: Any) -> None:
        if base_url is not None:
            from sua_audit.backends import base_url_problem

            problem = base_url_problem(base_url)
            if problem is not None:
                raise ConfigError(f"--base-url: {problem}.")
        self._litellm = import_litellm()
        import openai

        self._openai = openai
        self.base_url = base_url.rstrip("/") if base_url else None
        super().__init__(model, **options)

    def identity(self) -> dict[str, Any]:
        """Provider, LiteLLM model string and (when given) the server."""
        ident = {"provider": self.provider, "model": self.model}
        if self.base_url:
            ident["base_url"] = public_url(self.base_url)
        return ident

    async def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        extra: dict[str, Any] = {"num_retries": 0, "timeout": self.timeout}
        if self.base_url:
            extra["api_base"] = self.base_url
            if self.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
                extra["api_key"] = "no-key-needed"  # a local server that needs none
        resp = await self._litellm.acompletion(**body, **extra)
        data: dict[str, Any] = resp.model_dump()
        return data

    def _batch_client(self) -> Any:
        from sua_audit.backends.batch import LiteLLMBatchClient

        options: dict[str, Any] = {}
        if self.base_url:
            options["api_base"] = self.base_url
            if self.model.startswith("openai/") and not os.environ.get("OPENAI_API_KEY"):
                options["api_key"] = "no-key-needed"
        return LiteLLMBatchClient(self._litellm, self.model.partition("/")[0], options)

    def _batch_model(self) -> str | None:
        # "openai/gpt-4o" to LiteLLM is "gpt-4o" to the provider reading the batch file.
        return self.model.partition("/")[2] or None

    def _classify(self, exc: BaseException) -> RequestFailed | None:
        return classify_sdk_error(self._openai, exc, self.timeout)
