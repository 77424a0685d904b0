"""How the HTTP routes answer when something is wrong, always JSON in FastAPI's `{"detail": ...}`
form: 4xx for bad input (the routes declare typed, bounded parameters), and a JSON 500 for a bug.

A 422 names the field and the rule it broke but does not echo the input back (FastAPI's default
does): a 200 KB call id or a caller's form fields have no business in a response.
"""

from __future__ import annotations

import os
import traceback
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from loguru import logger
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PACKAGE_DIR = str(Path(__file__).resolve().parents[1])
_LOGGED_CHARS = 200  # of an exception message or a path: enough to find the bug, no payload dumps


def install(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_middleware(InternalErrorGuard)


async def _invalid_request(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")}
              for e in exc.errors()]
    return JSONResponse({"detail": errors}, status_code=422)


class InternalErrorGuard:
    """The last line of defence: an exception escaping an HTTP route becomes one log line
    (stage=http, with the method, path and the line of ours it came from) and a JSON 500, never a
    stack trace on the wire. Causes are fixed where they are; this only keeps a bug readable.

    A pure ASGI middleware rather than an `Exception` handler: Starlette re-raises after such a
    handler, and uvicorn would log the same bug a second time as a multi-line traceback."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception as exc:
            if started:  # half a response is on the wire: only the server can cut the connection
                raise
            logger.bind(call_id="-", stage="http").error(
                "{} {} failed with a 500: {}: {} (at {})", scope.get("method", "?"),
                _one_line(str(scope.get("path", ""))), type(exc).__name__, _one_line(str(exc)), origin(exc))
            await JSONResponse({"detail": "internal server error"}, status_code=500)(scope, receive, send)


def _one_line(text: str) -> str:
    return " ".join(text.split())[:_LOGGED_CHARS]


def origin(exc: BaseException) -> str:
    """file:line of the innermost frame in our own package (the bug is ours), else the innermost."""
    frames = [(frame.f_code.co_filename, line) for frame, line in traceback.walk_tb(exc.__traceback__)
              if frame.f_code.co_filename != __file__]  # the guard's own frame, where it was caught
    ours = [f for f in frames if f[0].startswith(PACKAGE_DIR)]
    if not (ours or frames):
        return "?"
    filename, line = (ours or frames)[-1]
    return f"{filename.removeprefix(PACKAGE_DIR + os.sep)}:{line}"
