"""The console's Jinja2 environment, its formatting filters and the one way a page is rendered
(with the open-console banner and headers that keep the page to its own origin)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from sutradhar.server.console.auth import console_open
from sutradhar.store.calls import to_datetime

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=str(HERE / "templates"))

# Scripts, styles, fonts and event streams come from this server only; no framing, no referrer.
SECURITY_HEADERS = {
    "Content-Security-Policy": ("default-src 'self'; script-src 'self'; style-src 'self'; "
                                "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
                                "form-action 'self'; base-uri 'none'"),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def ms(value: Any) -> str:
    """A stored timing as printed everywhere in the console: one decimal, or a dash."""
    if value is None:
        return "—"
    return f"{float(value):.1f} ms"


def when(value: Any) -> str:
    moment: datetime | None = to_datetime(value) if value else None
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC") if moment else "—"


def duration(seconds: Any) -> str:
    if seconds is None:
        return "—"
    whole = int(round(float(seconds)))
    return f"{whole // 60}m {whole % 60:02d}s" if whole >= 60 else f"{whole}s"


def lang_tag(code: Any) -> str:
    """BCP 47 tag for the `lang` attribute (hi-IN stays hi-IN; unknown: empty, so it inherits)."""
    return str(code) if code else ""


templates.env.filters.update(ms=ms, when=when, duration=duration, lang_tag=lang_tag)


def render(request: Request, name: str, context: dict[str, Any] | None = None,
           status_code: int = 200) -> HTMLResponse:
    page = {"open_console": console_open(request), **(context or {})}
    response = templates.TemplateResponse(request, name, page, status_code=status_code)
    response.headers.update(SECURITY_HEADERS)
    return response
