"""The outbound contract every carrier's dialer meets (telephony/CARRIER/dialer.py), apart from
`telephony/outbound.py`, which picks one and places calls with it."""

from __future__ import annotations

from typing import Any, Protocol


class OutboundError(Exception):
    """The call could not be placed. `status` is the HTTP status the admin API answers with.
    `maybe_placed`: the carrier may have placed it anyway (no answer, or one we could not read),
    so a campaign must not dial the number again (campaigns/outcomes.py)."""

    def __init__(self, status: int, message: str, *, maybe_placed: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.maybe_placed = maybe_placed


class Dialer(Protocol):
    carrier: str

    @property
    def caller_id(self) -> str:
        """The number the callee sees."""
        ...

    def problems(self) -> list[str]:
        """What stops this carrier from placing calls with the current settings (empty: nothing)."""
        ...

    async def place(self, to: str, language: str) -> str:
        """Place the call; return the carrier's call id. OutboundError when the carrier refuses."""
        ...


def missing_settings(settings: Any, carrier: str, *names: str) -> list[str]:
    """A dialer's `problems`: the settings (by field name) its outbound calls need and lack."""
    lacking = [name.upper() for name in names if not getattr(settings, name)]
    return [f"outbound {carrier} calls need {', '.join(lacking)}"] if lacking else []
