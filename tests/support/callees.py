"""The people a campaign dials, played against the Twilio REST fake: each number's script says what
happens on each attempt, with the signed status callbacks Twilio would send.

Actions: busy, no-answer, failed (never connected); answered (picks up, hangs up); talk (picks up
and speaks to the agent over the media stream); ring (rings until the test ends it with `finish`);
hold (the fake placed it but never answers the create request: `FakeTwilioRest.hold_numbers`).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.fakes.twilio_rest import FakeTwilioRest, PlacedCall
from tests.support.audio import speech_pcm, with_silence


class Callees:
    def __init__(self, twilio: FakeTwilioRest, script: dict[str, list[str]], *, base_url: str = "",
                 admin_token: str | None = None) -> None:
        self.twilio, self.script = twilio, script
        self.base_url, self.admin_token = base_url, admin_token
        self.open = 0  # calls placed whose end the server cannot have seen yet
        self.most_open = 0
        self.attempts: Counter[str] = Counter()
        self.talked: list[Any] = []  # the simulator's CallResult of each `talk`
        self.ringing: dict[str, PlacedCall] = {}  # number -> its call left ringing
        self.errors: list[BaseException] = []
        self._tasks: set[asyncio.Task[None]] = set()
        twilio.hold_numbers |= {n for n, steps in script.items() if steps and steps[0] == "hold"}

    async def run(self) -> None:
        while True:
            call = await self.twilio.new_calls.get()
            self.open += 1
            self.most_open = max(self.most_open, self.open)
            task = asyncio.create_task(self._play(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _play(self, call: PlacedCall) -> None:
        number = call.one("To")
        action = self.script[number][self.attempts[number]]
        self.attempts[number] += 1
        if action == "hold":
            return
        try:
            await self._callbacks(call, action)
        except BaseException as exc:  # noqa: BLE001 - the test asserts there were none
            self.errors.append(exc)
            raise

    async def _callbacks(self, call: PlacedCall, action: str) -> None:
        assert await self.twilio.status(call, "initiated") == 204
        assert await self.twilio.status(call, "ringing") == 204
        if action == "ring":
            self.ringing[call.one("To")] = call
            return
        if action in ("answered", "talk"):
            assert await self.twilio.status(call, "answered") == 204
            if action == "talk":
                # Counted until its stream starts: the server learns of the hang-up from the stream.
                self.open -= 1
                caller = with_silence(speech_pcm("yes I will pay on friday"), 8000, 200, 300)
                self.talked.append(await simulate(SimConfig(
                    self.base_url, [CallerTurn(caller, 8000)], call_sid=call.sid, answer_url=call.one("Url"),
                    auth_token=self.twilio.auth_token, admin_token=self.admin_token, speed=2, timeout_s=30)))
            else:  # before the last callback: the server may dial the next number after it
                self.open -= 1
            assert await self.twilio.status(call, "completed", CallDuration="5") == 204
        else:
            self.open -= 1
            assert await self.twilio.status(call, action) == 204

    async def finish(self, number: str, outcome: str) -> None:
        """End a call left ringing with a final status (busy, no-answer, failed)."""
        self.open -= 1
        assert await self.twilio.status(self.ringing.pop(number), outcome) == 204
