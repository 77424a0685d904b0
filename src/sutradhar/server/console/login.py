"""/console/login and /console/logout: trade the admin token for a session cookie, and back."""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from loguru import logger

from sutradhar.server.admin import services_of
from sutradhar.server.console.auth import (
    COOKIE,
    COOKIE_PATH,
    SESSION_S,
    is_admin,
    new_session,
    safe_next,
)
from sutradhar.server.console.templating import SECURITY_HEADERS, render

router = APIRouter()
log = logger.bind(call_id="-", stage="console")


def _secure(request: Request) -> bool:
    """Send the cookie over HTTPS only when the console is reached over HTTPS (directly or via
    the proxy PUBLIC_URL names)."""
    return request.url.scheme == "https" or services_of(request).settings.public_url.startswith("https://")


@router.get("/login")
async def login_form(request: Request, next: str = COOKIE_PATH) -> Response:
    if is_admin(request) and services_of(request).settings.admin_token:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "login.html", {"next": safe_next(next), "refused": False})


@router.post("/login")
async def login(request: Request, token: str = Form(""), next: str = Form(COOKIE_PATH)) -> Response:
    expected = services_of(request).settings.admin_token
    target = safe_next(next)
    if not expected:  # an open console: nothing to log in to
        return RedirectResponse(target, status_code=303)
    if not hmac.compare_digest(token.encode(), expected.encode()):
        client = request.client.host if request.client else "?"
        log.warning("console login refused from {}", client)
        # The form comes back empty: the wrong token is never echoed.
        return render(request, "login.html", {"next": target, "refused": True}, status_code=401)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE, new_session(expected), max_age=SESSION_S, path=COOKIE_PATH,
                        httponly=True, samesite="strict", secure=_secure(request))
    response.headers.update(SECURITY_HEADERS)
    log.info("console login")
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    response = RedirectResponse(f"{COOKIE_PATH}/login", status_code=303)
    response.delete_cookie(COOKIE, path=COOKIE_PATH, httponly=True, samesite="strict",
                           secure=_secure(request))
    return response
