"""Who may open a media stream: the public Host, the client's source and its open-socket count, and
the single-use stream token the answer webhook issued for the call.

The checks that need no call (Host, source) run before the socket is accepted, so a refused
handshake costs an HTTP 403 and nothing else; the token is checked at `start`, before a session
exists, so a refused stream stores nothing. Every refusal is one warning line and one
`sutradhar_streams_refused_total{carrier,reason}` count.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from sutradhar.config import Settings
from sutradhar.ops.stream_tokens import StreamTokens
from sutradhar.telephony.transport import Start

# The carriers whose answer webhook issues tokens; the browser page has BROWSER_TOKEN instead.
TOKEN_CARRIERS = ("twilio", "plivo", "exotel")
DEFAULT_PORTS = {"http": 80, "ws": 80, "https": 443, "wss": 443}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def tokens_required(settings: Settings, carrier: str) -> bool:
    """STREAM_TOKENS=auto asks Twilio for tokens once its webhooks are signed (TWILIO_AUTH_TOKEN):
    a token from an unsigned webhook would prove nothing. `required` asks every carrier."""
    if carrier not in TOKEN_CARRIERS or settings.stream_tokens == "off":
        return False
    if settings.stream_tokens == "required":
        return True
    return carrier == "twilio" and bool(settings.twilio_auth_token)


async def token_refusal(settings: Settings, tokens: StreamTokens, carrier: str, start: Start) -> str | None:
    """None when this start may open a call; else why not (a log line's words). Spends the token."""
    if not tokens_required(settings, carrier):
        return None
    if not isinstance(start.token, str) or not start.token:
        return "no stream token"
    grant = await tokens.spend(start.token)
    if grant is None:
        return "unknown, used or expired stream token"
    if grant.carrier != carrier or grant.call_id != start.carrier_call_id or start.call_id != grant.call_id:
        return f"stream token was issued for another call ({grant.carrier} {grant.call_id})"
    return None


# --- the public Host ---

def _host_port(netloc: str, scheme: str) -> tuple[str, int | None]:
    parts = urlsplit(f"//{netloc}")
    try:
        port = parts.port
    except ValueError:  # a non-numeric port: no match with anything
        return netloc.lower(), -1
    return (parts.hostname or "").lower(), port or DEFAULT_PORTS.get(scheme)


def public_host_ok(settings: Settings, host_header: str | None) -> bool:
    """With PUBLIC_URL set, True only for requests addressed to its host (and port)."""
    if not settings.public_url:
        return True
    public = urlsplit(settings.public_url)
    expected = _host_port(public.netloc, public.scheme)
    # The proxy in front (TLS) may forward the port or not; compare with the public scheme's default.
    return bool(host_header) and _host_port(host_header, public.scheme) == expected


# --- the client's source ---

class SourceLimiter:
    """Open media sockets per client address in this worker, under MAX_STREAMS_PER_SOURCE.

    The address is the socket's peer, or the last untrusted hop of X-Forwarded-For when the peer is
    one of TRUSTED_PROXIES. SOURCE_LIMIT_EXEMPT (loopback by default: benchmarks, a same-host proxy
    that is not trusted) is never limited.
    """

    def __init__(self, settings: Settings) -> None:
        self.limit = settings.max_streams_per_source
        self._trusted = _networks(settings.trusted_proxies)
        self._exempt = _networks(settings.source_limit_exempt)
        self._open: dict[str, int] = {}

    def source(self, peer: str | None, headers: Mapping[str, str]) -> str:
        """The client's address as this server should count it."""
        address = peer or "?"
        if not self._trusted or not _within(address, self._trusted):
            return address
        hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
        for hop in reversed(hops):  # the right end is what our proxies saw; the left is forgeable
            address = hop
            if not _within(hop, self._trusted):
                break
        return address

    def acquire(self, source: str) -> bool:
        """Count one more socket from `source`; False (and nothing counted) past the limit."""
        if self.limit and not _within(source, self._exempt) and self._open.get(source, 0) >= self.limit:
            return False
        self._open[source] = self._open.get(source, 0) + 1
        return True

    def release(self, source: str) -> None:
        left = self._open.get(source, 0) - 1
        if left > 0:
            self._open[source] = left
        else:
            self._open.pop(source, None)

    def open(self, source: str) -> int:
        return self._open.get(source, 0)


def _networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _within(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)
