"""What a call session tells the record keeper, and the one that keeps nothing.

The session awaits these hooks on its audio path, so an implementation must return at once and
never raise: `CallStore` only enqueues and writes from a background task.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Recorder(Protocol):
    async def call_started(self, call_id: str, info: dict[str, Any]) -> None: ...

    async def turn_completed(self, call_id: str, record: dict[str, Any]) -> None: ...

    async def turn_heard(self, call_id: str, turn_id: Any, heard: str | None, playing: bool) -> None:
        """Playout progress of a turn already recorded: `heard` so far (None: all of it)."""
        ...

    async def call_ended(self, call_id: str, reason: str, summary: dict[str, Any]) -> None: ...


class NullRecorder:
    """Keeps no records. For tests, scripts and deployments that want none."""

    async def start(self) -> None:
        pass

    async def call_started(self, call_id: str, info: dict[str, Any]) -> None:
        pass

    async def turn_completed(self, call_id: str, record: dict[str, Any]) -> None:
        pass

    async def turn_heard(self, call_id: str, turn_id: Any, heard: str | None, playing: bool) -> None:
        pass

    async def call_ended(self, call_id: str, reason: str, summary: dict[str, Any]) -> None:
        pass

    async def flush(self) -> None:
        pass

    async def aclose(self) -> None:
        pass
