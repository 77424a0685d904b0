"""Who may see the console: the admin token, as a Bearer header or as a login session cookie.

Browsers cannot send a Bearer header when they navigate, so /console/login takes the token once
and sets a cookie holding `<expiry>.<HMAC-SHA256(token, expiry)>`: never the token itself, useless
after it expires, and void for every session at once when ADMIN_TOKEN changes. With no ADMIN_TOKEN
the console is open, like the admin API (the pages say so in a banner).
"""

from __future__ import annotations

import hashlib
import hmac
import time

from fastapi import HTTPException, Request

from sutradhar.server.admin import has_admin_bearer, services_of

COOKIE = "sutradhar_console"
COOKIE_PATH = "/console"
SESSION_S = 12 * 3600  # a working day; then the operator logs in again
_PURPOSE = b"sutradhar-console-session-v1:"  # keeps these MACs apart from any other use of the token


def session_value(token: str, expires_at: int) -> str:
    """The cookie value of a session that ends at `expires_at` (epoch seconds)."""
    mac = hmac.new(token.encode(), _PURPOSE + str(expires_at).encode(), hashlib.sha256).hexdigest()
    return f"{expires_at}.{mac}"


def new_session(token: str, now: float | None = None) -> str:
    return session_value(token, int(now if now is not None else time.time()) + SESSION_S)


def session_valid(token: str, value: str | None, now: float | None = None) -> bool:
    """`value` is a session cookie this token issued and it has not expired."""
    if not token or not value:
        return False
    expires, _, _mac = value.partition(".")
    if not expires.isdigit():
        return False
    expires_at, current = int(expires), (now if now is not None else time.time())
    if not current < expires_at <= current + SESSION_S + 60:  # 60 s of clock drift between workers
        return False
    return hmac.compare_digest(session_value(token, expires_at).encode(), value.encode())


def console_open(request: Request) -> bool:
    """No ADMIN_TOKEN is configured: anyone who reaches the server sees the console."""
    return not services_of(request).settings.admin_token


def is_admin(request: Request) -> bool:
    token = services_of(request).settings.admin_token
    if not token:
        return True
    return has_admin_bearer(request, token) or session_valid(token, request.cookies.get(COOKIE))


async def require_console_page(request: Request) -> None:
    """A page: without the token, send the browser to the login form (and back here after it)."""
    if not is_admin(request):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "log in first", headers={"Location": login_url(target)})


async def require_console_api(request: Request) -> None:
    """An endpoint scripts read (the live event stream): 401 without the token."""
    if not is_admin(request):
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})


def login_url(next_path: str) -> str:
    from urllib.parse import quote

    return f"{COOKIE_PATH}/login?next={quote(safe_next(next_path), safe='/')}"


def safe_next(next_path: str | None) -> str:
    """Where to go after logging in: a console path, never another site (no open redirect)."""
    if not next_path or not next_path.startswith(COOKIE_PATH) or next_path.startswith("//") \
            or "\\" in next_path or "://" in next_path:
        return COOKIE_PATH
    return next_path
