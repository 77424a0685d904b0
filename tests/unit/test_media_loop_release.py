"""The media loop releases what its frame sink left queued when the stream ends before it got there."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any

from sutradhar.config import load_settings
from sutradhar.engines.registry import EngineSet
from sutradhar.services import open_services
from sutradhar.telephony.media import THEN, _run
from sutradhar.telephony.transport import MEDIA_SINK, Transport
from sutradhar.telephony.twilio.codec import TwilioCodec
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS


class _Protocol:
    """Stands in for server/websocket_protocol.py: records sinks, holds what is left queued."""

    def __init__(self, left: list[dict[str, Any]]) -> None:
        self.sinks: list[Any] = []
        self.left = left

    def set_sink(self, sink: Any) -> None:
        self.sinks.append(sink)

    def take_queued(self) -> list[dict[str, Any]]:
        left, self.left = self.left, []
        return left

    def send_now(self, message: str | bytes) -> bool:
        return True  # written; nothing to see


class _Socket:
    client = None
    headers: dict[str, str] = {}

    def __init__(self, protocol: _Protocol, messages: list[str]) -> None:
        self.scope = {"type": "websocket", "extensions": {MEDIA_SINK: protocol}}
        self.messages = messages

    async def receive(self) -> dict[str, Any]:
        if not self.messages:
            return {"type": "websocket.disconnect"}
        return {"type": "websocket.receive", "text": self.messages.pop(0)}

    async def close(self, code: int = 1000, reason: str = "") -> None:
        pass


async def test_a_stream_that_ends_closes_the_work_its_sink_left_queued(tmp_path: Path) -> None:
    ran = []

    async def rest_of_a_barge_in() -> None:
        ran.append(True)

    leftover = rest_of_a_barge_in()
    protocol = _Protocol([{"type": "websocket.receive", THEN: leftover},
                          {"type": "websocket.receive", "text": "{}"}])
    start = {"event": "start", "streamSid": "MZ" + "1" * 32,
             "start": {"streamSid": "MZ" + "1" * 32, "callSid": "CA" + "1" * 32, "customParameters": {}}}
    socket = _Socket(protocol, [json.dumps(start)])
    settings = load_settings(_env_file=None, data_dir=str(tmp_path), log_level="WARNING", greeting="")
    services = await open_services(settings, EngineSet([ScriptedSTT()], [ScriptedLLM()], [ScriptedTTS()]),
                                   records=False)
    try:
        session = await _run(socket, Transport(socket, TwilioCodec()), services)  # type: ignore[arg-type]
    finally:
        await services.aclose()
    assert session is not None and session.ended
    assert len(protocol.sinks) == 2 and protocol.sinks[-1] is None  # the call had a sink, then none
    assert inspect.getcoroutinestate(leftover) == inspect.CORO_CLOSED and not ran
    assert protocol.left == []
