"""One call's keypad as its tools see it: keys the caller presses, collected for a tool
(`collect`), and keys the agent presses on the line (`press`, through the session's sender).

While a collection is open the session hands it every key (`key_pressed`), so the keypad's usual
meanings (0 for a person, * to repeat, digits for a language) are suspended until it closes, and
what the caller says meanwhile (`heard`): a caller who reads the number out instead of typing it
ends the collection, and the tool returns their words beside the keys pressed so far.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sutradhar.audio.dtmf import DTMF_KEYS

# How the session presses keys: it returns how they went out ("carrier" API or in-band "tones").
Sender = Callable[[str], Awaitable[str]]


class KeypadUnavailable(RuntimeError):
    """This call cannot press keys (no line: a test, or the call has ended)."""


@dataclass(frozen=True, slots=True)
class Collected:
    digits: str
    ended_by: str  # "finish_key", "max_digits", "timeout" or "speech"
    said: str | None = None  # the caller's words, when speech ended it

    def as_dict(self) -> dict[str, str]:
        out = {"digits": self.digits, "ended_by": self.ended_by}
        if self.said is not None:
            out["said"] = self.said
        return out


class _Collection:
    def __init__(self, max_digits: int, finish_on_key: str) -> None:
        self.max_digits = max_digits
        self.finish_on_key = finish_on_key
        self.digits: list[str] = []
        self.inputs: asyncio.Queue[tuple[str, str]] = asyncio.Queue()  # ("key", digit) | ("speech", text)


class Keypad:
    def __init__(self) -> None:
        self.sender: Sender | None = None  # set by the session that owns the line
        self._collection: _Collection | None = None

    @property
    def collecting(self) -> bool:
        return self._collection is not None

    def key_pressed(self, digit: str) -> bool:
        """The caller pressed `digit`: True when an open collection took it."""
        return self._give("key", digit)

    def heard(self, text: str) -> bool:
        """The caller said `text` during a collection: True when an open collection took it."""
        return self._give("speech", text)

    def _give(self, kind: str, value: str) -> bool:
        collection = self._collection
        if collection is None:
            return False
        collection.inputs.put_nowait((kind, value))
        return True

    async def collect(self, max_digits: int, finish_on_key: str, timeout_s: float,
                      total_s: float | None = None) -> Collected:
        """Keys until `finish_on_key` (not included), `max_digits` of them, or `timeout_s` with no
        key (the wait for the first key and between keys, like a carrier's <Gather>) or `total_s`
        in all: then what was pressed so far. One collection at a time: a newer one takes the keys."""
        if finish_on_key and finish_on_key not in DTMF_KEYS:
            raise ValueError(f"finish_on_key {finish_on_key!r} is not a keypad key")
        collection = self._collection = _Collection(max_digits, finish_on_key)
        loop = asyncio.get_running_loop()
        ends_at = loop.time() + total_s if total_s is not None else None
        try:
            while True:
                wait = timeout_s if ends_at is None else min(timeout_s, ends_at - loop.time())
                try:
                    async with asyncio.timeout(max(0.0, wait)):
                        kind, key = await collection.inputs.get()
                except TimeoutError:
                    return Collected("".join(collection.digits), "timeout")
                if kind == "speech":
                    return Collected("".join(collection.digits), "speech", key)
                if key == collection.finish_on_key:
                    return Collected("".join(collection.digits), "finish_key")
                collection.digits.append(key)
                if len(collection.digits) >= collection.max_digits:
                    return Collected("".join(collection.digits), "max_digits")
        finally:
            if self._collection is collection:
                self._collection = None

    async def press(self, digits: str) -> str:
        """Press `digits` on the line; returns how they went out ("carrier" or "tones")."""
        if self.sender is None:
            raise KeypadUnavailable("this call has no line to press keys on")
        return await self.sender(digits)
