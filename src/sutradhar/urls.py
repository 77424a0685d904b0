"""URL rules: http(s) -> ws(s) (media streams for carriers, provider sockets, the simulator), and
the public URL a carrier called (what its webhook signatures cover)."""

from __future__ import annotations


def websocket_url(url: str, *, secure: bool = False) -> str:
    """`wss://` for `https://`, `ws://` for `http://` (or `wss://` with `secure`); other schemes
    (already ws/wss) are kept, except that `secure` upgrades `ws://`."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    mapped = {"https": "wss", "http": "ws"}.get(scheme.lower(), scheme.lower())
    if secure and mapped == "ws":
        mapped = "wss"
    return f"{mapped}://{rest}"


def public_url_of(public_url: str, path: str, query: str, as_received: str) -> str:
    """The URL a carrier requested, as it signed it: PUBLIC_URL with the request's path and query
    (behind a proxy the server sees another host and scheme), else the URL as received."""
    if not public_url:
        return as_received
    return public_url.rstrip("/") + path + (f"?{query}" if query else "")
