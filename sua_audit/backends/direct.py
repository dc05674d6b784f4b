"""Chat completions posted straight over aiohttp: the OpenAI backend's hot path.

The audit sends one small JSON body per request and reads one JSON answer; the SDK wraps each
in request options, an httpx request (header and URL models, then converted for its aiohttp
transport) and its retry and response machinery. At 64 requests in flight that wrapping cost
more CPU than everything else in the audit (docs/benchmarks.md, "Hosted throughput"), and a
single Python process then could not keep a 200 ms server busy. This module posts the body
with the headers the SDK itself would send (its default headers: user agent, organization,
project, custom headers) plus the bearer key, and turns what comes back into the same
:class:`RequestFailed` kinds as :func:`.openai_backend.classify_sdk_error`.

Everything else (``GET /models``, files and batches) still goes through the SDK client.
``SUA_AUDIT_HTTP_TRANSPORT=sdk`` (or ``httpx``) sends chat completions through the SDK too.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from sua_audit.errors import RequestFailed


def env_proxy(url: str) -> str | None:
    """The proxy ``HTTP_PROXY`` / ``HTTPS_PROXY`` (and ``NO_PROXY``) name for ``url``, as the
    SDK's own transports would use it, or ``None``."""
    from urllib.parse import urlsplit
    from urllib.request import getproxies, proxy_bypass

    parts = urlsplit(url)
    proxy = getproxies().get(parts.scheme)
    if not proxy or proxy_bypass(parts.netloc):
        return None
    return proxy


class DirectPost:
    """POST ``{base_url}/chat/completions`` on one keep-alive aiohttp session.

    ``sdk`` is the configured ``openai.AsyncOpenAI`` client (its base URL and headers are
    copied once); ``key`` its API key. The session is opened on first use, in the running
    event loop, and opened again if a later call runs in another loop (a library caller may
    run several audits one after another, each in its own ``asyncio.run``).
    """

    def __init__(self, sdk: Any, key: str, timeout: float) -> None:
        import aiohttp

        self._aiohttp = aiohttp
        self.url = str(sdk.base_url).rstrip("/") + "/chat/completions"
        headers = {k: v for k, v in sdk.default_headers.items() if isinstance(v, str)}
        headers["Authorization"] = f"Bearer {key}"
        headers["Content-Type"] = "application/json"
        headers["Accept"] = "application/json"
        self._headers = headers
        self.timeout = timeout
        self._proxy = env_proxy(self.url)
        self._session: Any = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _open(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._session is None or self._loop is not loop or self._session.closed:
            aiohttp = self._aiohttp
            # No connection cap of its own: the backend's adaptive limit bounds the calls in
            # flight. No trust_env: aiohttp would then look the proxy up again in a thread on
            # every request (about half of this path's CPU); it was looked up once instead.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=0),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
            )
            self._loop = loop
        return self._session

    async def post(self, body: dict[str, Any]) -> dict[str, Any]:
        """The answer's JSON object; a :class:`RequestFailed` for every way a call fails."""
        aiohttp = self._aiohttp
        session = self._open()
        data = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        try:
            async with session.post(
                self.url, data=data, headers=self._headers, proxy=self._proxy
            ) as resp:
                raw = await resp.read()
                status, headers = resp.status, resp.headers
        except TimeoutError:
            # aiohttp's total timeout, or its socket timeouts (ServerTimeoutError), which
            # subclass TimeoutError too.
            raise RequestFailed("timeout", f"no answer within {self.timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise RequestFailed("connection", f"connection failed ({type(exc).__name__})") from exc
        if status >= 400:
            from sua_audit.backends.openai_backend import retry_after_seconds, status_failure

            try:
                error_body: Any = json.loads(raw)
            except ValueError:
                error_body = raw.decode("utf-8", "replace")
            failure = status_failure(status, error_body, f"Error code: {status}")
            failure.retry_after = retry_after_seconds(headers)
            raise failure
        try:
            answer = json.loads(raw)
        except ValueError:
            raise RequestFailed("malformed", "unreadable response (not JSON)") from None
        if not isinstance(answer, dict):
            raise RequestFailed("malformed", "the response body is not a JSON object")
        return answer

    async def aclose(self) -> None:
        """Close the session (its connections) if one is open in this loop."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:  # pragma: no cover - aclose is awaited
                running = None
            if running is self._loop:
                await session.close()
