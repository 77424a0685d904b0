"""With PUBLIC_URL set, carrier webhooks, media sockets and the browser page answer only requests
addressed to its host: a request with another Host header did not come through our public name
(a replay at the bare IP, a forged `Host: attacker.example`), and gets 403 before any route runs.

The admin API, /health and /metrics are not carrier routes: load balancers and Prometheus reach
them by address, and they have their own token (or are deliberately open).
"""

from __future__ import annotations

from typing import Any

from loguru import logger

from sutradhar.config import Settings
from sutradhar.telephony.admission import public_host_ok

CARRIER_PREFIXES = ("/twilio/", "/exotel/", "/plivo/", "/browser/")
log = logger.bind(call_id="-", stage="security")


def guarded(path: str) -> bool:
    return path == "/" or path.startswith(CARRIER_PREFIXES)


class PublicHostOnly:
    """ASGI middleware: 403 (HTTP) or a refused handshake (WebSocket) for a foreign Host."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket") or not self.settings.public_url \
                or not guarded(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        host = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"host"), None)
        if public_host_ok(self.settings, host):
            await self.app(scope, receive, send)
            return
        client = scope.get("client") or ("?", 0)
        path = scope.get("path", "")
        log.warning("refused {} {} from {}: Host {!r:.80} is not PUBLIC_URL's", scope["type"], path, client[0], host)
        services = getattr(getattr(scope.get("app"), "state", None), "services", None)  # Starlette sets scope["app"]
        if services is not None:
            services.telemetry.stream_refused(path.strip("/").partition("/")[0] or "browser", "host")
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008, "reason": ""})  # before accept: HTTP 403
            return
        await send({"type": "http.response.start", "status": 403,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"9")]})
        await send({"type": "http.response.body", "body": b"forbidden"})
