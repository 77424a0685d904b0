"""RECORD_CALLS end to end: a simulated Twilio call through the real server, its stereo WAV fetched
from the admin API and checked against the simulator's own clock."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import httpx
import numpy as np

from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import VOICED_RMS, CallerTurn, SimConfig, simulate
from tests.support.audio import speech_pcm, with_silence
from tests.support.server import (
    free_port,
    live_server,
    make_settings,
    scripted_engines,
    wait_until,
)

RATE = 8000
FRAME = RATE // 50
ONSET = 1000  # |sample| above this: the caller's speech or the agent's tone has begun
ADMIN = {"Authorization": "Bearer admin-secret"}


def onset(samples: np.ndarray, after: int = 0) -> int:
    return after + int(np.flatnonzero(np.abs(samples[after:].astype(np.int32)) > ONSET)[0])


def first_voiced_frame(pcm: bytes) -> int:
    """The frame the simulator stamps as the start of speech (its own RMS rule)."""
    x = np.frombuffer(pcm, dtype="<i2").astype(np.float64)
    x = x[: len(x) // FRAME * FRAME].reshape(-1, FRAME)
    return int(np.flatnonzero(np.sqrt((x ** 2).mean(axis=1)) > VOICED_RMS)[0])


async def test_recording_holds_caller_and_agent_on_their_channels_aligned(tmp_path: Path) -> None:
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                             record_calls=True, admin_token="admin-secret")
    tts = ScriptedTTS(ms_per_char=20, chunk_ms=100)
    engines = scripted_engines(ScriptedSTT(script=("what is my balance",)),
                               ScriptedLLM(replies=("Your balance is five hundred rupees.",)), tts)
    caller = with_silence(speech_pcm("What is my account balance?"), RATE, before_ms=200, after_ms=200)
    with live_server(settings, engines) as srv:
        result = await simulate(SimConfig(srv.url, [CallerTurn(caller, RATE)], language="en-IN",
                                          admin_token="admin-secret", timeout_s=30))
        async with httpx.AsyncClient(base_url=srv.url) as client:
            assert wait_until(lambda: srv.live_calls() == 0, 10)
            await srv.flush_records()
            assert (await client.get(f"/calls/{result.call_id}/recording")).status_code == 401
            record = (await client.get(f"/calls/{result.call_id}", headers=ADMIN)).json()
            response = await client.get(f"/calls/{result.call_id}/recording", headers=ADMIN)
            missing = await client.get("/calls/nope/recording", headers=ADMIN)
    assert tts.calls[0][0].startswith("This call is recorded")  # the consent line, before the greeting
    assert record["recording_path"].endswith(".wav") and missing.status_code == 404
    assert response.status_code == 200 and response.headers["content-type"] == "audio/wav"
    with wave.open(io.BytesIO(response.content)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, RATE, 2)
        samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)
    caller_ch, agent_ch = samples[:, 0], samples[:, 1]
    turn = result.turns[0]
    assert turn.speech_start is not None and turn.first_audio is not None

    # Where each event is in the file, and when the simulator saw it on the wire.
    greeting_at = onset(agent_ch)
    speech_offset = onset(np.frombuffer(caller, dtype="<i2")) - first_voiced_frame(caller) * FRAME
    caller_at = onset(caller_ch)
    caller_end = int(np.flatnonzero(np.abs(caller_ch.astype(np.int32)) > ONSET)[-1])
    reply_at = onset(agent_ch, after=caller_end)
    greeting_t = result.frames[0][0]
    caller_t = turn.speech_start + speech_offset / RATE
    reply_t = turn.first_audio
    assert abs((caller_at - greeting_at) / RATE - (caller_t - greeting_t)) < 0.04
    assert abs((reply_at - caller_at) / RATE - (reply_t - caller_t)) < 0.04
    # Each side only on its own channel: the agent's tone is not in the caller's, nor the reverse.
    greeting_end = greeting_at + int(0.5 * RATE)
    assert np.abs(caller_ch[greeting_at:greeting_end].astype(np.int32)).max() < ONSET
    assert np.abs(agent_ch[caller_at:caller_at + int(0.5 * RATE)].astype(np.int32)).max() < ONSET
