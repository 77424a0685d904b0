"""The one http(s) -> ws(s) URL rule (media streams for carriers, provider sockets, the simulator)."""

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
