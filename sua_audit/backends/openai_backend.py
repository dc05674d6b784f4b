"""OpenAI and any OpenAI-compatible server (vLLM, llama.cpp, Ollama), on the official SDK.

``--model gpt-4o`` or ``openai/gpt-4o``; ``--base-url URL`` (or ``SUA_AUDIT_BASE_URL``, or the
SDK's own ``OPENAI_BASE_URL``) points it at another server. ``--base-url`` given several times
(or a comma-separated ``SUA_AUDIT_BASE_URL``) names replicas of one model: requests are spread
over them and a replica that stops answering is left out for a while (:mod:`.endpoints`); they
must all list the audited model in ``GET /models`` before the first request is sent. The key is
read from ``OPENAI_API_KEY`` only. Against api.openai.com a missing key is an error; a custom server that
needs no key gets a placeholder. The SDK's own retries are off: :mod:`.hosted` retries, so that
it can slow the whole run down on rate limits and count every attempt.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar
from urllib.parse import urlsplit

from sua_audit.backends.direct import DirectPost
from sua_audit.backends.hosted import HostedBackend
from sua_audit.errors import BackendError, ConfigError, MissingDependencyError, RequestFailed

OPENAI_URL = "https://api.openai.com/v1"
KEY_ENV = "OPENAI_API_KEY"
BASE_URL_ENVS = ("SUA_AUDIT_BASE_URL", "OPENAI_BASE_URL")
#: Unset (or ``direct``): chat completions are posted straight over aiohttp (:mod:`.direct`)
#: and the rest goes through the SDK on its aiohttp transport. ``sdk``: everything through the
#: SDK, on aiohttp. ``httpx``: everything through the SDK on its httpx transport (behind a
#: proxy aiohttp does not handle, or to see httpx's DEBUG logs).
TRANSPORT_ENV = "SUA_AUDIT_HTTP_TRANSPORT"
#: Sent to custom servers that need no key (llama.cpp, most local vLLM setups).
NO_KEY = "no-key-needed"


def resolve_base_url(base_url: str | None) -> str:
    """``--base-url``, else the first base-URL variable set (an empty one counts as unset),
    else OpenAI's; no trailing ``/``. A URL that is not ``http(s)://host[:port][/path]`` is a
    one-line :class:`ConfigError` naming where it came from. (The first of several: see
    :func:`resolve_base_urls`.)"""
    return resolve_base_urls(base_url)[0]


def resolve_base_urls(base_url: str | Sequence[str] | None) -> list[str]:
    """Every server URL, as :func:`resolve_base_url` finds one: ``--base-url`` (given once or
    more; a value may hold several, comma-separated), else ``SUA_AUDIT_BASE_URL`` (the same),
    else ``OPENAI_BASE_URL`` (the SDK's variable: one URL), else OpenAI's. A URL given twice is
    a :class:`ConfigError`."""
    from sua_audit.backends import base_url_problem, split_base_urls

    candidates: list[tuple[str, list[str]]] = []
    if base_url is not None:
        candidates.append(("--base-url", split_base_urls(base_url)))
    for name in BASE_URL_ENVS:
        value = os.environ.get(name) or None
        if value is not None:
            urls = split_base_urls(value) if name == "SUA_AUDIT_BASE_URL" else [value]
            candidates.append((name, urls or [value]))
    for source, urls in candidates:
        if not urls:
            continue
        for url in urls:
            problem = base_url_problem(url)
            if problem is not None:
                raise ConfigError(f"{source}: {problem}.")
        found = [url.rstrip("/") for url in urls]
        twice = next((u for i, u in enumerate(found) if u in found[:i]), None)
        if twice is not None:
            raise ConfigError(f"{source}: {public_url(twice)} is given twice; name each once.")
        return found
    return [OPENAI_URL]


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


def status_failure(status: int, body: Any, fallback: str) -> RequestFailed:
    """An HTTP error answer as a failure: its kind from the status and the API's error code
    and message (``{"error": {...}}`` or the object itself); ``fallback`` is the message when
    the body says none (a body that is not JSON)."""
    found = body if isinstance(body, dict) else {}
    err = found.get("error", found)
    err = err if isinstance(err, dict) else {"message": str(err)}
    code = str(err.get("code") or err.get("type") or "")
    message = str(err.get("message") or fallback)[:300]
    kind = classify_status(status, code, message)
    return RequestFailed(kind, f"HTTP {status}: {message}", status=status)


def _refused(exc: BaseException) -> bool:
    """Whether the chain of causes of ``exc`` holds a refused or failed connect."""
    seen = 0
    link: BaseException | None = exc
    while link is not None and seen < 8:
        if isinstance(link, ConnectionRefusedError) or type(link).__name__ in (
            "ClientConnectorError",
            "ConnectError",
        ):
            return True
        link = link.__cause__ or link.__context__
        seen += 1
    return False


def classify_sdk_error(openai: Any, exc: BaseException, timeout: float) -> RequestFailed | None:
    """An ``openai`` SDK exception (LiteLLM's subclass them) as a failure kind, or ``None``."""
    if isinstance(exc, openai.APITimeoutError) and not _refused(exc):
        return RequestFailed("timeout", f"no answer within {timeout:g}s")
    if isinstance(exc, openai.APITimeoutError):
        # The aiohttp transport reports a refused connection as a connect timeout.
        return RequestFailed("connection", "connection failed (refused)")
    if isinstance(exc, openai.APIConnectionError):
        cause = type(exc.__cause__ or exc).__name__
        return RequestFailed("connection", f"connection failed ({cause})")
    if isinstance(exc, openai.APIStatusError):
        failure = status_failure(exc.status_code, exc.body, exc.message)
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
    if _transport() == "httpx":
        return None
    # The SDK ships the transport (vendored in recent versions, the httpx-aiohttp package in
    # older ones) and raises RuntimeError when aiohttp itself is missing. Probing an import by
    # name missed the vendored one, and every run fell back to httpx without a word.
    try:
        return openai.DefaultAioHttpClient(timeout=timeout)
    except (AttributeError, RuntimeError, ImportError):
        return None


def _transport() -> str:
    return os.environ.get(TRANSPORT_ENV, "").strip().lower()


@dataclass(eq=False)
class _Channel:
    """One server: the SDK client (models, files, batches) and, on the default transport, the
    direct poster its chat completions go through."""

    sdk: Any
    direct: DirectPost | None = None

    async def aclose(self) -> None:
        if self.direct is not None:
            await self.direct.aclose()
        await self.sdk.close()


def _channel(openai: Any, url: str, key: str, timeout: float) -> _Channel:
    """The SDK client for ``url``, plus a :class:`.direct.DirectPost` unless the transport is
    forced to the SDK, the URL carries credentials (httpx sends them as Basic auth), or aiohttp
    is missing."""
    http_client = _http_client(openai, url, timeout)
    sdk = openai.AsyncOpenAI(
        api_key=key, base_url=url, timeout=timeout, max_retries=0, http_client=http_client
    )
    if http_client is None or _transport() not in ("", "direct"):
        return _Channel(sdk)
    return _Channel(sdk, DirectPost(sdk, key, timeout))


class OpenAIBackend(HostedBackend):
    """Chat completions through ``openai.AsyncOpenAI``."""

    provider: ClassVar[str] = "openai"

    def __init__(
        self,
        model: str,
        *,
        base_url: str | Sequence[str] | None = None,
        **options: Any,
    ) -> None:
        try:
            import openai
        except ImportError as exc:
            raise MissingDependencyError("The OpenAI backend", "openai") from exc
        #: Every server URL (several: replicas of the model); ``base_url`` is the first.
        self.base_urls = resolve_base_urls(base_url)
        self.base_url = self.base_urls[0]
        if len(self.base_urls) > 1 and options.get("batch"):
            raise ConfigError(
                "--batch sends a run's batches to one provider endpoint; it cannot spread "
                f"them over {len(self.base_urls)} --base-url replicas. Give one --base-url, "
                "or drop --batch."
            )
        key = os.environ.get(KEY_ENV)
        if not key:
            if OPENAI_URL in self.base_urls:
                raise ConfigError(
                    f"{KEY_ENV} is not set. Export it (export {KEY_ENV}=...) to audit "
                    f"{model} on api.openai.com; keys are read only from the environment."
                )
            key = NO_KEY
        super().__init__(model, **options)
        self._openai = openai
        channels = [_channel(openai, url, key, self.timeout) for url in self.base_urls]
        self._channel = channels[0]
        self._client = self._channel.sdk
        if len(channels) > 1:
            from sua_audit.backends.endpoints import EndpointPool

            self.endpoints = EndpointPool(
                [(public_url(url), c) for url, c in zip(self.base_urls, channels, strict=True)],
                concurrency=self.concurrency,
                max_pause=self.max_retry_wait,
            )

    def _batch_client(self) -> Any:
        from sua_audit.backends.batch import OpenAIBatchClient

        return OpenAIBatchClient(self._client)

    def identity(self) -> dict[str, Any]:
        """Provider, model and server: the same model name elsewhere is another model.

        Several replicas are one model: the identity names their set (``base_urls``, the
        public URLs sorted), so it does not depend on which replica answered a request, nor on
        the order the URLs were given; another set of replicas is another cache identity. One
        URL keeps the ``base_url`` identity it always had (cache keys of existing caches)."""
        if len(self.base_urls) > 1:
            return {
                "provider": self.provider,
                "model": self.model,
                "base_urls": sorted(public_url(url) for url in self.base_urls),
            }
        return {
            "provider": self.provider,
            "model": self.model,
            "base_url": public_url(self.base_url),
        }

    async def _send(self, body: dict[str, Any]) -> dict[str, Any]:
        return await self._send_via(self._channel, body)

    async def _send_via(self, client: Any, body: dict[str, Any]) -> dict[str, Any]:
        channel: _Channel = client
        if channel.direct is not None:
            return await channel.direct.post(body)
        # The raw JSON body, not a pydantic ChatCompletion: validating and dumping a typed model
        # cost about a third of our CPU per request, which capped throughput at high concurrency.
        # The hosted parser reads plain dicts defensively either way.
        data = await channel.sdk.post("/chat/completions", body=body, cast_to=dict)
        if not isinstance(data, dict):
            raise ValueError("the response body is not a JSON object")
        return data

    async def _check_endpoints(self) -> None:
        """Every replica must list the audited model in ``GET /models``: one that lists other
        models is a :class:`ConfigError` (exit 2), one that does not answer a
        :class:`BackendError` (exit 3), each naming the replica (the first in the order given)."""
        if self.endpoints is None:
            return
        endpoints = self.endpoints.endpoints
        found = await asyncio.gather(
            *(self._listed_models(e.client.sdk) for e in endpoints), return_exceptions=True
        )
        for endpoint, listed in zip(endpoints, found, strict=True):
            if isinstance(listed, BaseException):
                if not isinstance(listed, Exception):
                    raise listed
                failure = self._classify(listed)
                if failure is None:
                    raise listed
                raise BackendError(
                    f"--base-url {endpoint.url} did not answer GET /models ({failure.kind}: "
                    f"{failure}); every replica must answer before the run starts. Start it, "
                    "or leave that --base-url out."
                )
        for endpoint, listed in zip(endpoints, found, strict=True):
            assert isinstance(listed, list)
            if self.model not in listed:
                shown = ", ".join(repr(m) for m in listed[:5]) or "none"
                more = f" and {len(listed) - 5} more" if len(listed) > 5 else ""
                raise ConfigError(
                    f"--base-url {endpoint.url} does not serve model {self.model!r} (it lists "
                    f"{shown}{more}); every replica must serve the audited model. Fix that "
                    "server, or leave that --base-url out."
                )

    async def _listed_models(self, client: Any) -> list[str]:
        """The model ids one server lists (``GET /models``); a body without a ``data`` list
        is a malformed answer."""
        data = await client.get("/models", cast_to=dict)
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ValueError("the /models answer has no 'data' list")
        return [str(e.get("id")) for e in entries if isinstance(e, dict) and e.get("id")]

    def _classify(self, exc: BaseException) -> RequestFailed | None:
        return classify_sdk_error(self._openai, exc, self.timeout)

    async def aclose(self) -> None:
        """Stop polling batches (they go on at the provider) and close the connection pool."""
        await super().aclose()
        if self.endpoints is not None:
            for endpoint in self.endpoints.endpoints:
                await endpoint.client.aclose()
        else:
            await self._channel.aclose()
