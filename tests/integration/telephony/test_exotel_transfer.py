"""Transfer to a person on Exotel, through the flow as Exotel documents it: the agent closes the
Voicebot stream after its transfer line, and the flow's Passthru applet asks /exotel/handoff,
whose 200 OK routes the call to the Connect applet (302 Found: to Hangup)."""

from __future__ import annotations

import httpx

from sutradhar.testing.scripted import ScriptedTTS
from sutradhar.testing.simulator import SimConfig, simulate
from tests.support.server import RecordingRecorder, wait_until
from tests.support.server import scripted_server as server_with

KEY, TOKEN = "exotel-key", "exotel-token"


async def test_pressing_0_hands_the_call_to_the_flows_connect_applet() -> None:
    recorder = RecordingRecorder()
    tts = ScriptedTTS(ms_per_char=2, chunk_ms=100)
    with server_with(recorder, tts=tts, exotel_api_key=KEY, exotel_api_token=TOKEN,
                     transfer_number="+919999999999") as srv:
        result = await simulate(SimConfig(srv.url, [], carrier="exotel", webhook=True, basic_auth=(KEY, TOKEN),
                                          language="en-IN", dtmf=[("0", 0.5)], hang_up=False,
                                          reply_wait_s=5, timeout_s=20))
        assert wait_until(lambda: srv.live_calls() == 0, 10)
        async with httpx.AsyncClient(base_url=srv.url, timeout=10) as client:
            handed = await client.get("/exotel/handoff", params={"CallSid": result.call_id, "Direction": "incoming"})
            posted = await client.post("/exotel/handoff", data={"CallSid": result.call_id})
            other = await client.get("/exotel/handoff", params={"CallSid": "CAnot-transferred"})
            junk = await client.get("/exotel/handoff", params={"CallSid": "x" * 500})
    assert result.closed_by_server and "Please hold while I connect you to a person." in [t for t, _ in tts.calls]
    assert recorder.ended[0][1] == "transferred"
    assert (handed.status_code, posted.status_code) == (200, 200)
    assert (other.status_code, junk.status_code) == (302, 302)


async def test_a_call_that_simply_ended_goes_to_the_flows_hangup() -> None:
    with server_with(exotel_api_key=KEY, exotel_api_token=TOKEN, transfer_number="+919999999999") as srv:
        result = await simulate(SimConfig(srv.url, [], carrier="exotel", webhook=True, basic_auth=(KEY, TOKEN),
                                          reply_wait_s=3, timeout_s=10))
        async with httpx.AsyncClient(base_url=srv.url, timeout=10) as client:
            after = await client.get("/exotel/handoff", params={"CallSid": result.call_id})
    assert result.frames and after.status_code == 302
