"""What Sarvam's STT, TTS and chat clients share: languages, auth, WebSocket URL and error mapping.

The clients themselves live in `stt.py`, `tts.py` and `llm.py`.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus, WebSocketException

from sutradhar.engines.base import MalformedResponse, ProviderError, Stage
from sutradhar.engines.http import error_for, error_from_response, transport_error
from sutradhar.urls import websocket_url

# The 11 codes Sarvam's STT, TTS and chat serve (Odia is od-IN, not or-IN).
SARVAM_LANGUAGES = frozenset({"hi-IN", "bn-IN", "kn-IN", "ml-IN", "mr-IN", "od-IN", "pa-IN",
                              "ta-IN", "te-IN", "en-IN", "gu-IN"})
AUTH_HEADER = "api-subscription-key"


def ws_base(base_url: str, ws_url: str = "") -> str:
    """`wss://host` for `https://host` unless a WebSocket base is configured explicitly."""
    return (ws_url or websocket_url(base_url)).rstrip("/")


def ws_error(data: Any, *, provider: str, stage: Stage) -> ProviderError:
    """A `{"type": "error", "data": {...}}` message as the error class its code implies.

    The two sockets disagree (sarvamai 0.1.39): STT sends `{"error": "<text>", "code": "<str>"}`
    (ErrorData), TTS sends `{"message": "<text>", "code": <int>, "details": {...}}`
    (ErrorResponseData). An integer code is an HTTP status, a string code a provider code; both go
    through `error_for`, so a socket error fails over exactly like the same HTTP error.
    """
    data = data if isinstance(data, dict) else {"message": str(data)}
    nested = data.get("error") if isinstance(data.get("error"), dict) else None
    inner = nested or data
    text = inner.get("message") or data.get("message")
    if not text and isinstance(data.get("error"), str):
        text = data["error"]
    details = inner.get("details") if isinstance(inner.get("details"), dict) else {}
    status = inner.get("status_code") if isinstance(inner.get("status_code"), int) else None
    code: str | None = None
    for raw in (inner.get("code"), data.get("code"), details.get("code")):
        number = _status_code(raw)
        if number is not None:
            status = status or number
        elif isinstance(raw, str) and raw and code is None:
            code = raw
    return error_for(status, code, str(text or "Sarvam WebSocket error"), provider=provider,
                     stage=stage, request_id=inner.get("request_id") or data.get("request_id"))


def _status_code(raw: object) -> int | None:
    """An HTTP-status-like code (429, "429"); bool is not a code."""
    if isinstance(raw, int) and not isinstance(raw, bool):
        return raw if 100 <= raw <= 599 else None
    if isinstance(raw, str) and raw.isdigit() and 100 <= int(raw) <= 599:
        return int(raw)
    return None


@asynccontextmanager
async def open_ws(url: str, params: dict[str, str], api_key: str, *, provider: str, stage: Stage,
                  timeout_s: float) -> AsyncIterator[ClientConnection]:
    """Connect with the key header; a rejected handshake raises the mapped HTTP error."""
    uri = f"{url}?{urlencode(params)}" if params else url
    try:
        async with connect(uri, additional_headers={AUTH_HEADER: api_key}, open_timeout=timeout_s,
                           max_size=16 * 1024 * 1024, compression=None) as ws:
            yield ws
    except InvalidStatus as exc:
        response = exc.response
        raise error_from_response(response.status_code, response.body or b"", dict(response.headers),
                                  provider=provider, stage=stage) from exc
    except (WebSocketException, OSError, TimeoutError) as exc:
        raise transport_error(exc, provider=provider, stage=stage) from exc


def ws_message(raw: str | bytes, *, provider: str, stage: Stage) -> dict[str, Any]:
    try:
        message = json.loads(raw)
    except ValueError:
        raise MalformedResponse(f"invalid JSON on WebSocket: {raw[:80]!r}", provider=provider,
                                stage=stage) from None
    if not isinstance(message, dict):
        raise MalformedResponse("WebSocket message is not an object", provider=provider, stage=stage)
    if message.get("type") == "error":
        raise ws_error(message.get("data"), provider=provider, stage=stage)
    return message
