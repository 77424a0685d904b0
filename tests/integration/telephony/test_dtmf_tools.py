"""DTMF both ways through the real server and the call simulator: the LLM's collect_digits gathers
the keys the caller presses (the keypad's own meanings suspended meanwhile), and its send_dtmf
presses keys on the line: Plivo's Send Digits API (strict fake), in-band tones elsewhere."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest

from sutradhar.audio.codecs import resample
from sutradhar.audio.dtmf import decode_dtmf
from sutradhar.engines.base import Message, ToolCall, Transcript
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.fakes.plivo_rest import FakePlivoRest
from tests.support.audio import speech_pcm
from tests.support.server import RecordingRecorder
from tests.support.server import scripted_server as server_with

PROMPT = "Please type your order number, then the hash key."
CALL = "11111111-2222-3333-4444-555555555555"


def order_desk(messages: Sequence[Message], language: str) -> ToolCall | str:
    """Asks for the order number on the keypad, then reads back what the tool returned."""
    last = messages[-1]
    if last.role == "tool":
        return f"Order {json.loads(last.content)['digits']} is on its way."
    return ToolCall("call_1", "collect_digits", json.dumps({"prompt": PROMPT, "max_digits": 8,
                                                            "timeout_s": 20}))


def presser(digits: str):
    def reply(messages: Sequence[Message], language: str) -> ToolCall | str:
        if messages[-1].role == "tool":
            return "I have pressed the keys."
        return ToolCall("call_1", "send_dtmf", json.dumps({"digits": digits}))
    return reply


def tool_result(llm: ScriptedLLM) -> dict:
    """The one tool result the LLM was shown (a reply prepared ahead of the end of the turn may
    have asked for the same tool call first, and been dropped before it ran)."""
    [result] = [json.loads(call[-1].content) for call in llm.calls if call[-1].role == "tool"]
    return result


def user_turns(llm: ScriptedLLM) -> set[str]:
    """What the caller said in the turns the LLM answered."""
    return {call[-1].content for call in llm.calls if call[-1].role == "user"}


def tool_turn(recorder: RecordingRecorder) -> dict:
    [turn] = [record for _, record in recorder.turns if record.get("tool_calls")]
    return turn


@pytest.mark.parametrize("carrier", ["twilio", "plivo", "exotel"])
async def test_collect_digits_returns_the_keys_the_caller_pressed(carrier: str) -> None:
    recorder = RecordingRecorder()
    llm = ScriptedLLM(responder=order_desk)
    with server_with(recorder, stt=ScriptedSTT(script=("where is my order",)), llm=llm,
                     tools="collect_digits,send_dtmf", languages="te-IN,hi-IN,en-IN,gu-IN") as srv:
        result = await simulate(SimConfig(
            srv.url, [CallerTurn(speech_pcm("Where is my order?"), 8000), CallerTurn(digits="4567#")],
            carrier=carrier, language="en-IN", call_sid=CALL if carrier == "plivo" else "", timeout_s=40))
    assert llm.tools_seen[0] == ["collect_digits", "send_dtmf"]
    assert tool_result(llm) == {"ok": True, "digits": "4567", "ended_by": "finish_key"}
    turn = tool_turn(recorder)
    assert turn["reply"] == f"{PROMPT} Order 4567 is on its way."
    [record] = turn["tool_calls"]
    assert (record["name"], record["error"]) == ("collect_digits", None)
    assert record["arguments"]["prompt"] == PROMPT
    assert not turn["filler"]  # the prompt was said instead
    # 4 is a language key (gu-IN) outside a collection: inside one it was only a digit.
    assert not [e for e in result.events if e.get("type") == "language"]
    assert turn["language"] == "en-IN" and recorder.ended[0][2]["language"] == "en-IN"


async def test_send_dtmf_on_plivo_goes_through_its_send_digits_api() -> None:
    llm = ScriptedLLM(responder=presser("2#"))
    async with FakePlivoRest() as plivo:
        with server_with(stt=ScriptedSTT(script=("press two",)), llm=llm, tools="send_dtmf",
                         plivo_auth_id=plivo.auth_id, plivo_auth_token=plivo.auth_token,
                         plivo_api_base=plivo.base_url) as srv:
            result = await simulate(SimConfig(srv.url, [CallerTurn(speech_pcm("Press two."), 8000)],
                                              carrier="plivo", call_sid=CALL, language="en-IN", timeout_s=30))
    assert plivo.digits == [(CALL, {"digits": "2#", "leg": "aleg"})]
    assert tool_result(llm) == {"ok": True, "digits": "2#", "sent_by": "carrier"}
    assert decode_dtmf(bytes(result.agent_audio), result.agent_rate) == ""  # no tones besides


@pytest.mark.parametrize("carrier", ["twilio", "exotel"])
async def test_send_dtmf_without_a_carrier_api_plays_tones_on_the_stream(carrier: str) -> None:
    llm = ScriptedLLM(responder=presser("19#"))
    with server_with(stt=ScriptedSTT(script=("press one nine hash",)), llm=llm, tools="send_dtmf") as srv:
        result = await simulate(SimConfig(srv.url, [CallerTurn(speech_pcm("Press one nine hash."), 8000)],
                                          carrier=carrier, language="en-IN", timeout_s=30))
    assert tool_result(llm) == {"ok": True, "digits": "19#", "sent_by": "tones"}
    # What reached the caller, at the phone rate, carries the keys (the scripted voice is one sine).
    audio = bytes(result.agent_audio)
    if result.agent_rate != 8000:
        audio = resample(audio, result.agent_rate, 8000)
    assert decode_dtmf(audio, 8000) == "19#"


async def test_send_dtmf_falls_back_to_tones_when_plivos_api_refuses() -> None:
    llm = ScriptedLLM(responder=presser("3"))
    async with FakePlivoRest() as plivo:
        with server_with(stt=ScriptedSTT(script=("press three",)), llm=llm, tools="send_dtmf",
                         plivo_auth_id=plivo.auth_id, plivo_auth_token="not-the-token",
                         plivo_api_base=plivo.base_url) as srv:
            result = await simulate(SimConfig(srv.url, [CallerTurn(speech_pcm("Press three."), 8000)],
                                              carrier="plivo", call_sid=CALL, language="en-IN", timeout_s=30))
    assert [r["endpoint"] for r in plivo.requests] == ["dtmf"] and plivo.digits == []  # 401
    assert tool_result(llm)["sent_by"] == "tones"
    assert decode_dtmf(bytes(result.agent_audio), result.agent_rate) == "3"


async def test_speech_during_a_collection_is_heard_and_given_to_the_tool() -> None:
    """The caller reads the number out instead of typing it: no barge-in, no new turn; the
    collection ends with their words, and the LLM answers from them."""
    recorder = RecordingRecorder()
    llm = ScriptedLLM(responder=lambda messages, language: (
        "Thank you." if messages[-1].role == "tool" else order_desk(messages, language)))
    def transcribe(audio: bytes, rate: int, language: str | None) -> Transcript:
        # Told apart by length, not by order: a turn may be transcribed more than once (early STT).
        long = len(audio) / 2 / rate > 2.2
        return Transcript("it is four five six seven" if long else "where is my order", language)

    with server_with(recorder, stt=ScriptedSTT(transcriber=transcribe), llm=llm, tools="collect_digits") as srv:
        result = await simulate(SimConfig(
            srv.url, [CallerTurn(speech_pcm("Where is my order?"), 8000),
                      CallerTurn(speech_pcm("It is four five six seven, that is my order number."), 8000)],
            language="en-IN", timeout_s=40))
    assert tool_result(llm) == {"ok": True, "digits": "", "ended_by": "speech",
                                "said": "it is four five six seven"}
    assert user_turns(llm) == {"where is my order"}  # the words went to the tool, not to a turn
    assert tool_turn(recorder)["reply"] == f"{PROMPT} Thank you."
    assert not result.clears and recorder.ended[0][2]["barge_ins"] == 0


async def test_text_typed_during_a_collection_goes_to_the_tool() -> None:
    llm = ScriptedLLM(responder=lambda messages, language: (
        "Thank you." if messages[-1].role == "tool" else order_desk(messages, language)))
    with server_with(llm=llm, tools="collect_digits") as srv:
        result = await simulate(SimConfig(srv.url, [CallerTurn(text="where is my order"), CallerTurn(text="4567")],
                                          carrier="browser", language="en-IN", timeout_s=30))
    assert tool_result(llm)["said"] == "4567" and user_turns(llm) == {"where is my order"}
    assert [e["reply"] for e in result.events if e.get("type") == "turn"] == [f"{PROMPT} Thank you."]


async def test_offline_the_responder_asks_for_the_order_number_on_the_keypad(tmp_path) -> None:
    from sutradhar.engines.local.responder import ScriptedResponder

    recorder = RecordingRecorder()
    with server_with(recorder, stt=ScriptedSTT(script=("where is my order",)), llm=ScriptedResponder(),
                     tools="collect_digits,order_status", data_dir=tmp_path) as srv:
        await simulate(SimConfig(
            srv.url, [CallerTurn(speech_pcm("Where is my order?"), 8000), CallerTurn(digits="4567#")],
            carrier="plivo", call_sid=CALL, language="en-IN", timeout_s=40))
    turn = tool_turn(recorder)
    assert [c["name"] for c in turn["tool_calls"]] == ["collect_digits", "order_status"]
    assert turn["tool_calls"][1]["arguments"] == {"order_id": "4567"}
    assert turn["reply"] == ("Sure. What is your order number? "
                             "Order 4567 has been shipped and should reach you in 2 days.")
