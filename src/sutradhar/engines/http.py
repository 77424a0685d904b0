"""HTTP plumbing shared by the cloud clients: a provider base holding one HTTP client, the
status -> error class mapping, and an SSE parser.

Sarvam and OpenAI-compatible servers answer errors as `{"error": {"message", "code"|"type",
"request_id"}}`, with the request id also in `x-request-id`. One mapping serves both so the
router sees the same error classes whichever cloud failed.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from sutradhar.engines.base import (
    AuthError,
    BadRequest,
    MalformedResponse,
    Provider,
    ProviderError,
    ProviderTimeout,
    QuotaExceeded,
    RateLimited,
    Stage,
)
from sutradhar.engines.http_transport import ProviderTransport

# Provider error codes in Sarvam's spelling (sarvamai 0.1.39 `ErrorCode`) and OpenAI's. They matter
# most where no HTTP status comes with them (WebSocket errors); with a status, 5xx stays retryable.
_QUOTA_CODES = frozenset({"insufficient_quota_error", "insufficient_quota"})
_AUTH_CODES = frozenset({"invalid_api_key_error", "invalid_api_key", "authentication_error"})
_RATE_CODES = frozenset({"rate_limit_exceeded_error", "rate_limit_exceeded"})
_BAD_REQUEST_CODES = frozenset({"invalid_request_error", "unprocessable_entity_error", "not_found_error"})
_TIMEOUT_CODES = frozenset({"gateway_timeout_error"})
_SERVER_CODES = frozenset({"internal_server_error", "model_call_error",
                           "billing_service_unavailable_error"})


def _error_fields(body: Any) -> tuple[str | None, str | None, str | None]:
    """(message, code, request_id) from an error body of either dialect; missing parts are None."""
    if not isinstance(body, dict):
        return None, None, None
    error = body.get("error", body)
    if isinstance(error, str):
        return error, None, body.get("request_id")
    if not isinstance(error, dict):
        return None, None, None
    code = error.get("code") or error.get("type")
    request_id = error.get("request_id") or body.get("request_id")
    message = error.get("message") or error.get("detail")
    return (str(message) if message else None, str(code) if code else None,
            str(request_id) if request_id else None)


def error_for(
    status: int | None,
    code: str | None,
    message: str,
    *,
    provider: str,
    stage: Stage,
    request_id: str | None = None,
) -> ProviderError:
    """The error class for a status and/or provider error code (WebSocket errors have no status)."""
    kwargs: dict[str, Any] = {"provider": provider, "stage": stage, "status": status,
                              "request_id": request_id}
    if code in _QUOTA_CODES:
        return QuotaExceeded(message, **kwargs)
    if status in (401, 403) or code in _AUTH_CODES:
        return AuthError(message, **kwargs)
    if status == 429 or code in _RATE_CODES:
        return RateLimited(message, **kwargs)
    if status == 408 or (status is None and code in _TIMEOUT_CODES):
        return ProviderTimeout(message, **kwargs)
    if (status is not None and status >= 500) or (status is None and code in _SERVER_CODES):
        return ProviderError(message, retryable=True, **kwargs)
    if (status is not None and 400 <= status < 500) or code in _BAD_REQUEST_CODES:
        return BadRequest(message, **kwargs)
    return ProviderError(message, **kwargs)


def error_from_response(
    status: int, body: bytes, headers: httpx.Headers | dict[str, str], *, provider: str, stage: Stage
) -> ProviderError:
    """Turn a non-2xx HTTP answer into the right ProviderError, keeping the provider's message."""
    try:
        parsed = json.loads(body) if body else None
    except ValueError:
        parsed = None
    message, code, request_id = _error_fields(parsed)
    request_id = request_id or headers.get("x-request-id")
    if not message:
        text = body[:200].decode("utf-8", "replace").strip()
        message = f"HTTP {status}" + (f": {text}" if text else "")
    return error_for(status, code, message, provider=provider, stage=stage, request_id=request_id)


async def raise_for_status(response: httpx.Response, *, provider: str, stage: Stage) -> None:
    """Raise the mapped error for a non-2xx response (reads the body of a streamed response)."""
    if response.is_success:
        return
    body = await response.aread()
    raise error_from_response(response.status_code, body, response.headers, provider=provider,
                              stage=stage)


def transport_error(exc: Exception, *, provider: str, stage: Stage) -> ProviderError:
    """A network failure (timeout, refused, reset, cut stream) as a retryable ProviderError."""
    if isinstance(exc, ProviderError):
        return exc
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return ProviderTimeout(f"no answer in time ({type(exc).__name__})", provider=provider,
                               stage=stage)
    detail = str(exc) or type(exc).__name__
    return ProviderError(f"connection failed: {detail}", provider=provider, stage=stage,
                         retryable=True)


def parse_json(data: bytes | str, *, provider: str, stage: Stage,
               request_id: str | None = None) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        snippet = data[:80] if isinstance(data, str) else data[:80].decode("utf-8", "replace")
        raise MalformedResponse(f"invalid JSON from provider: {snippet!r}", provider=provider,
                                stage=stage, request_id=request_id) from None


# After a stream's last event, how long and how much of the body's end is read so the connection
# can be reused; a server still talking past that loses its connection, as an unread one does.
FINISH_STREAM_S = 0.2
FINISH_STREAM_BYTES = 64 * 1024


async def finish_stream(chunks: AsyncIterator[bytes]) -> None:
    """Read the rest of a streamed body whose last event has arrived (an SSE `[DONE]` comes just
    before the chunked body's end). httpx closes a response left unread instead of returning its
    connection to the pool, so without this every chat turn paid a new TCP (and TLS) connection."""
    read = 0
    try:
        async with asyncio.timeout(FINISH_STREAM_S):
            async for chunk in chunks:
                read += len(chunk)
                if read > FINISH_STREAM_BYTES:
                    return
    except (TimeoutError, httpx.HTTPError, OSError):
        return  # the connection is dropped with the response, as before


class SSEParser:
    """Incremental Server-Sent Events parser: feed raw bytes, get the `data` of complete events.

    Network reads do not respect event boundaries: one read may hold half an event or several.
    Bytes are buffered until a blank line ends an event; multi-line `data:` fields are joined with
    newlines as the SSE spec says; comments (`:` lines) and other fields are ignored.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[str]:
        self._buffer += chunk
        events: list[str] = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                break
            raw, self._buffer = self._buffer[:newline], self._buffer[newline + 1:]
            line = raw.rstrip(b"\r").decode("utf-8", "replace")
            if not line:
                if self._data:
                    events.append("\n".join(self._data))
                    self._data = []
                continue
            if line.startswith(":"):
                continue
            field, _, value = line.partition(":")
            if field == "data":
                self._data.append(value[1:] if value.startswith(" ") else value)
        return events

    def close(self) -> list[str]:
        """Events still pending at end of stream (a server that omits the final blank line)."""
        events = self.feed(b"\n\n") if self._buffer or self._data else []
        self._buffer = b""
        return events


@dataclass
class HTTPProvider(Provider):
    """A cloud provider: one lazily created `httpx.AsyncClient` reused by every call (connection
    reuse matters: a TLS handshake costs more than a short STT request) on aiohttp's pool
    (`engines/http_transport.py`), and a cheap health check."""

    base_url: str = ""
    api_key: str = ""
    timeout_s: float = 15.0
    headers: dict[str, str] = field(default_factory=dict)
    stage: Stage = "llm"
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _urls: dict[str, httpx.URL] = field(default_factory=dict, init=False, repr=False)
    # The last call's outcome: health() reports a recent auth/quota failure without a request.
    _last_error: ProviderError | None = field(default=None, init=False, repr=False)
    _last_error_at: float = field(default=0.0, init=False, repr=False)
    _last_ok_at: float = field(default=0.0, init=False, repr=False)
    # A cheap authenticated GET for health() when no call has succeeded lately (None: none exists).
    health_path: str | None = None
    # Concurrent connections at most: httpx's default of 100 would queue a busy server's streams
    # (hundreds of calls each hold a TTS or chat stream) behind the pool. Idle connections close
    # after httpx's 5 s keep-alive.
    max_connections: int = 1000

    def url(self, path: str) -> httpx.URL:
        """`path` under `base_url`, parsed once. Given a relative path, httpx parses it and copies
        the base URL on every request (40-70 us, more than the rest of building the request)."""
        url = self._urls.get(path)
        if url is None:
            url = self._urls[path] = httpx.URL(self.base_url.rstrip("/") + "/" + path.lstrip("/"))
        return url

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}

    @property
    def client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            # A separate, shorter connect timeout makes a dead host fail fast.
            timeout = httpx.Timeout(self.timeout_s, connect=min(self.timeout_s, 5.0))
            # The transport owns the pool (aiohttp's): it reads the connection cap and keep-alive.
            limits = httpx.Limits(max_connections=self.max_connections)
            self._client = httpx.AsyncClient(
                base_url=self.base_url.rstrip("/"), timeout=timeout,
                transport=ProviderTransport(limits, self.base_url),
                headers={**self.auth_headers(), **self.headers},
            )
        return self._client

    def _record(self, error: ProviderError | None) -> None:
        self._last_error = error
        if error is None:
            self._last_ok_at = time.monotonic()
        else:
            self._last_error_at = time.monotonic()

    async def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self._request("POST", path, **kwargs)

    async def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One non-streaming request: HTTP errors become the right ProviderError, and the outcome
        is remembered for health()."""
        try:
            response = await self.client.request(method, self.url(path), **kwargs)
            await self._check(response)
        except ProviderError as exc:
            self._record(exc)
            raise
        except httpx.HTTPError as exc:
            raise self._fail(exc) from exc
        return response

    async def _check(self, response: httpx.Response) -> None:
        """Raise the mapped error of a non-2xx answer (a vendor with its own error body overrides)."""
        await raise_for_status(response, provider=self.name, stage=self.stage)

    def _fail(self, exc: Exception) -> ProviderError:
        error = transport_error(exc, provider=self.name, stage=self.stage)
        self._record(error)
        return error

    async def health(self) -> None:
        """Cheap. A recent non-retryable failure (bad key, no credits) is reported as is; a recent
        success answers healthy; otherwise one GET of `health_path` with a 3 s timeout, if any."""
        now = time.monotonic()
        if self._last_error is not None and not self._last_error.retryable \
                and now - self._last_error_at < 300:
            raise self._last_error
        if self.health_path is None or now - self._last_ok_at < 60:
            return
        await self._request("GET", self.health_path, timeout=3.0)
        self._record(None)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
