"""Hindi, Telugu and Gujarati callers, end to end through the real server, the real VAD and the
call simulator, with Sarvam STT, chat and TTS served by the loopback Sarvam server.

The fake returns, for each caller turn, the transcript and language code of the espeak fixture that
was spoken; everything else (IVR, turn detection, language hysteresis, prompts, voices, records)
is the real code path.
"""

from __future__ import annotations

from typing import Any

import httpx

from sutradhar.text.languages import LANGUAGES
from tests.e2e.calls import agent_audio_rms, place_call
from tests.e2e.fixtures import UTTERANCES, Spoken
from tests.e2e.harness import configured_engines as build_services
from tests.e2e.harness import e2e_settings, free_port, live_server

HI, TE, GU = (UTTERANCES[code] for code in ("hi-IN", "te-IN", "gu-IN"))
REPLY = {"en-IN": "Okay.", "hi-IN": "ठीक है।", "te-IN": "సరే.", "gu-IN": "સારું."}


def ivr_digit(settings: Any, code: str) -> str:
    return str(settings.languages.index(code) + 1)


def reply_in_prompt_language(messages: list[dict[str, Any]]) -> str:
    """The fake LLM answers in whatever language the system prompt asks for."""
    system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
    for code, info in LANGUAGES.items():
        if info.instruction in system:
            return REPLY[code]
    return "No instruction."


def sarvam_settings(fake: Any, port: int, **overrides: Any) -> Any:
    # No speculative replies: the prompts and voices of replies undone at a pause would interleave
    # with the turns' in the fake's log (speculation has its own tests: test_end_of_turn.py).
    defaults: dict[str, Any] = {"stt": ["sarvam"], "llm": ["sarvam"], "tts": ["sarvam"], "speculate": False}
    return e2e_settings(**{**defaults, **overrides}, sarvam_base_url=fake.base_url,
                        sarvam_api_key=fake.api_key, public_url=f"http://127.0.0.1:{port}",
                        port=port)


def script(fake: Any, spoken: list[Spoken]) -> None:
    for item in spoken:
        fake.transcribe_as(item.text, item.language, item.seconds)
    fake.default_reply = reply_in_prompt_language


def system_prompt(chat_request: dict[str, Any]) -> str:
    messages = chat_request["json"]["messages"]
    assert messages[0]["role"] == "system"
    return messages[0]["content"]


def reply_tts_languages(fake: Any) -> list[str]:
    """language_code of each LLM reply's TTS request (greeting sentences excluded)."""
    replies = set(REPLY.values())
    return [r["json"]["language_code"] for r in fake.calls("tts") if r["json"]["text"] in replies]


async def test_call_starts_in_ivr_language_and_switches_after_two_turns_not_one(fake_sarvam):
    port = free_port()
    settings = sarvam_settings(fake_sarvam, port)
    turns = [HI[0], TE[0], TE[1], GU[0], GU[1]]
    script(fake_sarvam, turns)
    with live_server(settings, engines=build_services) as server:
        result = await place_call(server.url, turns, ivr_digit=ivr_digit(settings, "hi-IN"))

    # The IVR's choice is the call's first language: the greeting is spoken in Hindi.
    tts = fake_sarvam.calls("tts")
    assert LANGUAGES["hi-IN"].greeting.startswith(tts[0]["json"]["text"])
    assert tts[0]["json"]["language_code"] == "hi-IN"

    # Each utterance is one turn (an early STT at a pause inside one heard part of it; the caller
    # went on and the turn with them), and the whole of it was heard.
    assert len(result.transcript()) == len(turns)
    whole = [r["seconds"] for r in fake_sarvam.calls("stt")]
    assert all(any(abs(s - t.seconds) < 1.0 for s in whole) for t in turns), whole

    # Hindi; one Telugu turn (no switch); a second (switch); one Gujarati (no switch); a second.
    expected = ["hi-IN", "hi-IN", "te-IN", "te-IN", "gu-IN"]
    chats = fake_sarvam.calls("chat")
    assert len(chats) == len(turns)
    for n, (chat, code) in enumerate(zip(chats, expected), 1):
        prompt = system_prompt(chat)
        assert LANGUAGES[code].instruction in prompt, f"turn {n}: {prompt!r}"
        others = [c for c in ("hi-IN", "te-IN", "gu-IN") if c != code]
        assert not any(LANGUAGES[c].instruction in prompt for c in others), f"turn {n}: {prompt!r}"

    # The reply of each turn is synthesized in the call's language at that turn, with a voice.
    assert reply_tts_languages(fake_sarvam) == expected
    assert all(r["json"].get("speaker") for r in tts)

    # The caller heard every reply, and the server told it about the switches.
    assert len(result.latencies_ms) == len(turns)
    assert agent_audio_rms(result) > 500
    # The server's live view of the call, read just before hanging up, agrees.
    assert result.summary is not None and result.summary["language"] == "gu-IN"
    assert [t["language"] for t in result.transcript()] == expected


async def test_a_single_turn_in_another_language_is_answered_in_the_call_language(fake_sarvam):
    port = free_port()
    settings = sarvam_settings(fake_sarvam, port)
    turns = [TE[0], GU[0], TE[1]]
    script(fake_sarvam, turns)
    with live_server(settings, engines=build_services) as server:
        await place_call(server.url, turns, ivr_digit=ivr_digit(settings, "te-IN"))
    assert reply_tts_languages(fake_sarvam) == ["te-IN", "te-IN", "te-IN"]
    for chat in fake_sarvam.calls("chat"):
        assert LANGUAGES["te-IN"].instruction in system_prompt(chat)


async def test_stored_call_record_shows_the_switch(fake_sarvam):
    port = free_port()
    settings = sarvam_settings(fake_sarvam, port, admin_token="e2e-admin-token")
    turns = [TE[0], GU[0], GU[1]]
    script(fake_sarvam, turns)
    with live_server(settings, engines=build_services) as server:
        result = await place_call(server.url, turns, ivr_digit=ivr_digit(settings, "te-IN"))
        record = await fetch_record(server, result.call_id)
    # Each stored turn says the language it was answered in, and where the call switched.
    assert record_language_story(record) == ["te-IN", "te-IN", "gu-IN"]
    assert [t.get("detected_language") for t in record["turns"]] == ["te-IN", "gu-IN", "gu-IN"]
    assert [t.get("switched_to") for t in record["turns"]] == [None, None, "gu-IN"]
    # The call row keeps the IVR's language; its summary the language the call ended in.
    assert record["language"] == "te-IN"
    assert record["summary"]["language"] == "gu-IN"
    assert record["status"] == "completed" and record["turn_count"] == 3


async def fetch_record(server: Any, call_id: str, timeout: float = 5.0) -> dict[str, Any]:
    """GET /calls/{id} with the admin token, waiting for the store's background writer."""
    import asyncio

    token = server.settings.admin_token
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(base_url=server.url, headers=headers, timeout=5) as client:
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            response = await client.get(f"/calls/{call_id}")
            if response.status_code == 200:
                body = response.json()
                if body.get("ended_at") or body.get("status") in ("completed", "failed"):
                    return body
            if asyncio.get_running_loop().time() > deadline:
                raise AssertionError(f"no finished record for {call_id}: {response.status_code} {response.text}")
            await asyncio.sleep(0.1)


def record_language_story(record: dict[str, Any]) -> list[str]:
    return [turn.get("language") for turn in record.get("turns", [])]


async def test_realtime_stt_streams_every_turn_and_still_follows_the_switch(fake_sarvam):
    """STT=sarvam-realtime,sarvam: each caller turn goes over the realtime socket while it is
    spoken (REST stays unused behind it), and the socket's detected language drives the switch."""
    port = free_port()
    settings = sarvam_settings(fake_sarvam, port, stt=["sarvam-realtime", "sarvam"])
    turns = [TE[0], GU[0], GU[1]]
    script(fake_sarvam, turns)
    with live_server(settings, engines=build_services) as server:
        result = await place_call(server.url, turns, ivr_digit=ivr_digit(settings, "te-IN"))
    streams = [c for c in fake_sarvam.calls("stt_rt") if "transcript.final" in c["sent"]]
    assert len(streams) == len(turns) and not fake_sarvam.calls("stt")
    assert all(c["query"]["language_code"] == "auto" for c in streams)
    assert all("transcript.partial" in c["sent"] for c in streams)  # heard while spoken
    assert reply_tts_languages(fake_sarvam) == ["te-IN", "te-IN", "gu-IN"]
    assert len(result.latencies_ms) == len(turns)
