"""OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama), on the official SDK.

``--model gpt-4o`` or ``openai/gpt-4o``; ``--base-url URL`` (or ``SUA_AUDIT_BASE_URL``, or the
SDK's own ``OPENAI_BASE_URL``) points it at another server. The key is read from
``OPENAI_API_KEY`` only. Against api.openai.com a missing key is an error; a custom server that
needs no key gets a placeholder. The SDK's own retries are off: :mod:`.hosted` retries, so that
it can slow the whole run down on rate limits and count every attempt.
"""

from __future__ import annotations

import os
from typing import Any, ClassVar
from urllib.parse import urlsplit

from sua_audit.backends.hosted import HostedBackend
from sua_audit.errors import ConfigError, MissingDependencyError, RequestFailed

OPENAI_URL = "https://api.openai.com/v1"
KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENVS = ("SUA_AUDIT_BASE_URL", "OPENAI_BASE_URL")
#: Sent to custom servers that need no key (llama.cpp, most local vLLM setups).
NO_KEY = "no-key-needed"


def resolve_base_url(base_url: str | None) -> str:
    """``--base-url``, else the first base-URL variable set (an empty one counts as unset),
    else OpenAI's; no trailing ``/``. A URL that is not ``http(s)://host[:port][/path]`` is a
    one-line :class:`ConfigError` naming where it came from."""
    from sua_audit.backends import base_url_problem

    candidates: list[tuple[str, str | None]] = []
    if base_url is not None:
        candidates.append(("--base-url", base_url))
    candidates += [(name, os.environ.get(name) or None) for name in BASE_URL_ENVS]
    for source, candidate in candidates:
        if candidate is not None:
            problem = base_url_problem(candidate)
            if problem is not None:
                raise ConfigError(f"{source}: {problem}.")
            return candidate.rstrip("/")
    return OPENAI_URL


def retry_after_seconds(headers: Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        from datetime import UTC, datetime
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (when - datetime.now(UTC)).total_seconds())


def public_url(url: str) -> str:
    """The URL without any ``user:password@`` part, fit for the cache and the results."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.username or parts.password:
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
        parts = parts._replace(netloc=host)
    return urlunsplit(parts)


def classify_status(status: int, code: str, message: str) -> str:
    """The failure kind of an HTTP error status with the API's error code and message."""
    text = f"{code} {message}".lower()
    if status == 429:
        return "rate_limit"
    if status >= 500:
        return "server"
    if status in (401, 403):
        return "auth"
    if status == 404:
        return "not_found"
    if "context_length" in text or "context length" in text or "maximum context" in text:
        return "context_length"
    if "content_filter" in text or "content_policy" in text or "content management" in text:
        return "content_filter"
    return "bad_request"


def classify_sdk_error(openai: Any, exc: BaseException, timeout: float) -> RequestFailed | None:
    """An ``openai`` SDK exception (LiteLLM's subclass them) as a failure kind, or ``None``."""
    if isinstance(exc, openai.APITimeoutError):
        return RequestFailed("timeout", f"no answer within {timeout:g}s")
    if isinstance(exc, openai.APIConnectionError):
        cause = type(exc.__cause__ or exc).__name__
        return RequestFailed("connection", f"connection failed ({cause})")
    if isinstance(exc, openai.APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else {}
        err = body.get("error", body)
        err = err if isinstance(err, dict) else {"message": str(err)}
        code = str(err.get("code") or err.get("type") or "")
        message = str(err.get("message") or exc.message)[:300]
        kind = classify_status(exc.status_code, code, message)
        failure = RequestFailed(kind, f"HTTP {exc.status_code}: {message}", status=exc.status_code)
        response = getattr(exc, "response", None)
        failure.retry_after = retry_after_seconds(getattr(response, "headers", None))
        return failure
    if isinstance(exc, openai.APIResponseValidationError | ValueError):
        # A 200 whose body is not the JSON the API promises (json errors are ValueErrors).
        return RequestFailed("malformed", f"unreadable response ({type(exc).__name__})")
    return None


def _http_client(openai: Any, base_url: str, timeout: float) -> Any:
    """aiohttp under the SDK when installed (the ``openai`` extra asks for it), else httpx's own.

    At 64 requests in flight httpx's pure-Python connection pool spent about as much CPU per
    request as the rest of the client together; aiohttp's C parser and pool cut that (see
    docs/benchmarks.md). Both raise the SDK's own timeout and connection errors. A base URL with
    credentials in it (``http://user:pw@host``) stays on httpx, which sends them as Basic auth;
    aiohttp refuses URL credentials beside the SDK's bearer header.
    """
    if urlsplit(base_url).username is not None:
        return None
    try:
        import httpx_aiohttp  # noqa: F401  (only probing that the transport is installed)
    except ImportError:
        return None
    return openai.DefaultAioHttpClient(timeout=timeout)


class OpenAIBackend(HostedBackend):
    """Chat completions through ``openai.AsyncOpenAI``."""

    provider: ClassVar[str] = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | None = None,
        **options: Any,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError("The OpenAI backend", "openai") from exc
        self.base_url = resolve_base_url(base_url)
        key = os.environ.get(KEY_ENV)
        if not key:
            if self.base_url == OPENAI_URL:
                raise ConfigError(
                    f"{KEY_ENV} is not set. Export it (export {KEY_ENV}=...) to audit "
                    f"{model} on api.openai.com; keys are read only from the environment."
                )
            key = NO_KEY
        super().__init__(model, **options)
        self._openai = openai
        self._client = openai.AsyncOpenAI(
            api_key=key,
            base_url=self.base_url,
            timeout=self.timeout,
            max_retries=0,
            http_client=_http_client(openai, self.base_url, self.timeout),
        )

    def _batch_client(self) -> Any:
        from sua_audit.backends.batch import OpenAIBatchClient

        return OpenAIBatchClient(self._client)

    def identity(self) -> dict[str, Any]:
        """Provider, model and server: the same model name elsewhere is another model."""
        return {
            "provider": self.provider,
            "model": self.model,
            "base_url": public_url(self.base_url),
        }

    async def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        # The raw JSON body, not a pydantic ChatCompletion: validating and dumping a typed model
        # cost about a third of our CPU per request, which capped throughput at high concurrency.
        # The hosted parser reads plain dicts defensively either way.
        data = await self._client.post("/chat/completions", body=body, cast_to=dict)
        if not isinstance(data, dict):
            raise ValueError("the response body is not a JSON object")
        return data

    def _classify(self, exc: BaseException) -> RequestFailed | None:
        return classify_sdk_error(self._openai, exc, self.timeout)

    async def aclose(self) -> None:
        """Stop polling batches (they go on at the provider) and close the connection pool."""
        await super().aclose()
        await self._client.close()
