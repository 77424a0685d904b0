"""The transport under every cloud client's `httpx.AsyncClient`: aiohttp's connection pool and
C HTTP parser behind httpx's API.

Why: httpcore's pool scans every connection on every request (`is_idle`, `has_expired` with a
`poll()` per connection; encode/httpcore#1000), so a busy server's provider requests cost more
the more calls it holds. On `bench/provider_path.py` (an STT upload, a streamed chat reply and TTS
per sentence, 30 turns at once) a turn took 12.0 CPU-ms on httpcore and 4.7 on aiohttp.

`httpx-aiohttp` (from httpx's maintainers; the OpenAI SDK's aiohttp client) is the bridge. This
adds what it leaves out: the proxy the environment names (read once per provider: aiohttp's
`trust_env` reads it again on every request, ~2 CPU-ms a turn) and httpx's certificate store, as a
plain httpx client has them, and every aiohttp failure as an httpx error of the right kind, so the
clients' error mapping (`engines/http.py`) sees one family: the bridge reports a dropped
connection as a connect *timeout*, and lets a few aiohttp errors through unmapped.
"""

from __future__ import annotations

import urllib.request
from collections.abc import AsyncIterator

import aiohttp
import httpx
from httpx_aiohttp.transport import AiohttpTransport


def _honest(exc: httpx.HTTPError, reading: bool) -> httpx.HTTPError:
    """A "timeout" whose cause timed nothing out (a refused, reset or dropped connection) is a
    network error: the caller's records and /health should say so."""
    cause = exc.__cause__
    if isinstance(exc, httpx.TimeoutException) and cause is not None and not isinstance(cause, TimeoutError):
        detail = str(cause) or type(cause).__name__
        return httpx.ReadError(detail) if reading else httpx.ConnectError(detail)
    return exc


class _Body(httpx.AsyncByteStream):
    def __init__(self, inner: httpx.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx.HTTPError as exc:
            raise _honest(exc, reading=True) from exc.__cause__
        except aiohttp.ClientError as exc:
            raise httpx.ReadError(str(exc) or type(exc).__name__) from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


def env_proxy(base_url: str) -> httpx.Proxy | None:
    """The proxy HTTPS_PROXY / HTTP_PROXY / ALL_PROXY name for `base_url`, unless NO_PROXY spares it."""
    url = httpx.URL(base_url)
    if not url.host or urllib.request.proxy_bypass(url.host):
        return None
    proxies = urllib.request.getproxies()
    proxy = proxies.get(url.scheme) or proxies.get("all")
    return httpx.Proxy(proxy) if proxy else None


class ProviderTransport(AiohttpTransport):
    def __init__(self, limits: httpx.Limits, base_url: str = "") -> None:
        self._pool_limits = limits
        # the session is made in the event loop, on first use
        super().__init__(limits=limits, client=self._session, proxy=env_proxy(base_url) if base_url else None)

    def _session(self) -> aiohttp.ClientSession:
        limits = self._pool_limits
        connector = aiohttp.TCPConnector(limit=limits.max_connections or 0,
                                         keepalive_timeout=limits.keepalive_expiry or 5.0,
                                         ssl=httpx.create_ssl_context())
        return aiohttp.ClientSession(connector=connector)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await super().handle_async_request(request)
        except httpx.HTTPError as exc:
            raise _honest(exc, reading=False) from exc.__cause__
        except aiohttp.ClientError as exc:
            raise httpx.ConnectError(str(exc) or type(exc).__name__) from exc
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _Body(response.stream)
        return response
