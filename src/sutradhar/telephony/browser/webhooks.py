"""The browser client: GET / serves a one-page app; WS /browser/media carries the call.

An optional BROWSER_TOKEN is required as ?token= on the page and the socket.
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, HTTPException, Query, Request, WebSocket
from fastapi.responses import HTMLResponse

from sutradhar.config import Settings
from sutradhar.telephony.browser.codec import BrowserCodec
from sutradhar.telephony.media import serve_media
from sutradhar.telephony.transport import Transport
from sutradhar.text.languages import LANGUAGES

router = APIRouter()


def _token_ok(settings: Settings, token: str | None) -> bool:
    # As bytes: compare_digest refuses str with non-ASCII characters (a TypeError, not a False).
    return not settings.browser_token or hmac.compare_digest(settings.browser_token.encode(),
                                                             (token or "").encode())


@router.get("/", response_class=HTMLResponse)
async def browser_page(request: Request,
                       token: Annotated[str | None, Query(max_length=1024)] = None) -> HTMLResponse:
    settings = request.app.state.services.settings
    if not _token_ok(settings, token):
        raise HTTPException(403, "a valid ?token= is required")
    page = resources.files("sutradhar").joinpath("static/index.html").read_text(encoding="utf-8")
    options = "".join(
        f'<option value="{code}"{" selected" if code == settings.default_language else ""}>'
        f"{LANGUAGES[code].native_name} ({LANGUAGES[code].name})</option>" for code in settings.languages)
    return HTMLResponse(page.replace("<!--LANGUAGES-->", options))


@router.websocket("/browser/media")
async def browser_media(websocket: WebSocket) -> None:
    services = websocket.app.state.services
    if not _token_ok(services.settings, websocket.query_params.get("token")):
        await websocket.close(code=1008)
        return
    await serve_media(websocket, Transport(websocket, BrowserCodec()), services)
