"""Recordings finished after the call: uploaded to an S3 bucket (a real moto server process on a
loopback port) and/or re-encoded as Opus/OGG, through the real server and a simulated call."""

from __future__ import annotations

import io
import re
import wave
from pathlib import Path

import av
import httpx
import numpy as np
import pytest

from sutradhar.store.calls import CallStore
from sutradhar.store.recording_files import recordings_dir
from sutradhar.telephony.recording import wav_header
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.support.audio import speech_pcm, with_silence
from tests.support.s3 import MotoServer, aws_test_env, moto_server
from tests.support.server import (
    LiveServer,
    free_port,
    live_server,
    make_settings,
    scripted_engines,
    wait_until,
)

RATE = 8000
ADMIN = {"Authorization": "Bearer admin-secret"}
BUCKET = "call-audio"
LOUD = 1000  # |sample| above this: speech or the agent's tone


@pytest.fixture(autouse=True)
def _aws(monkeypatch: pytest.MonkeyPatch) -> None:
    aws_test_env(monkeypatch)


def settings_for(tmp_path: Path, s3: MotoServer | None, **overrides: object):
    port = free_port()
    bucket = dict(recordings_bucket=f"s3://{BUCKET}/prod", recordings_s3_endpoint_url=s3.url) if s3 else {}
    return make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                         record_calls=True, admin_token="admin-secret", **bucket, **overrides)


def engines():
    return scripted_engines(ScriptedSTT(script=("what is my balance",)),
                            ScriptedLLM(replies=("Your balance is five hundred rupees.",)),
                            ScriptedTTS(ms_per_char=20, chunk_ms=100))


async def one_call(srv: LiveServer) -> str:
    caller = with_silence(speech_pcm("What is my account balance?"), RATE, before_ms=200, after_ms=200)
    result = await simulate(SimConfig(srv.url, [CallerTurn(caller, RATE)], language="en-IN",
                                      admin_token="admin-secret", timeout_s=30))
    assert wait_until(lambda: srv.live_calls() == 0, 10)
    return result.call_id


async def record_of(srv: LiveServer, call_id: str) -> dict:
    await_flush(srv)
    async with httpx.AsyncClient(base_url=srv.url) as client:
        return (await client.get(f"/calls/{call_id}", headers=ADMIN)).json()


def await_flush(srv: LiveServer) -> None:
    srv.run(srv.services.store.flush())


def local_recordings(tmp_path: Path) -> list[Path]:
    return sorted(p for p in recordings_dir(tmp_path).rglob("*") if p.suffix in {".wav", ".ogg"})


def stereo_of_wav(data: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(data)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, RATE, 2)
        return np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, 2)


def assert_both_sides(samples: np.ndarray) -> None:
    """The agent spoke first (greeting) on channel 1, the caller after it on channel 0."""
    loud = np.abs(samples.astype(np.int32)) > LOUD
    caller_at, agent_at = int(np.argmax(loud[:, 0])), int(np.argmax(loud[:, 1]))
    assert loud[:, 0].any() and loud[:, 1].any()
    assert agent_at < caller_at
    greeting = samples[agent_at:agent_at + RATE // 2]  # half a second of greeting: the agent's alone
    assert np.abs(greeting[:, 0].astype(np.int32)).max() < LOUD


async def test_recording_goes_to_the_bucket_is_served_from_it_and_purged(tmp_path: Path) -> None:
    with moto_server() as s3:
        s3.create_bucket(BUCKET)
        with live_server(settings_for(tmp_path, s3), engines()) as srv:
            call_id = await one_call(srv)
            srv.run(srv.services.recordings.drain(), timeout=30)
            record = await record_of(srv, call_id)
            async with httpx.AsyncClient(base_url=srv.url) as client:
                whole = await client.get(f"/calls/{call_id}/recording", headers=ADMIN)
                part = await client.get(f"/calls/{call_id}/recording", headers={**ADMIN, "Range": "bytes=0-99"})
                console = await client.get(f"/console/calls/{call_id}/recording", headers=ADMIN)
            keys = s3.keys(BUCKET)
            stored = s3.get(BUCKET, keys[0]) if keys else b""
            removed = srv.run(srv.services.store.delete_older_than(-1))  # every call: "older" than tomorrow
            keys_after = s3.keys(BUCKET)
    url = record["recording_path"]
    assert url.startswith(f"s3://{BUCKET}/prod/") and url.endswith(".wav")
    assert keys == [url.removeprefix(f"s3://{BUCKET}/")]
    assert_both_sides(stereo_of_wav(stored))
    assert whole.status_code == 200 and whole.headers["content-type"] == "audio/wav"
    assert whole.content == stored
    assert part.status_code == 206 and part.content == stored[:100]
    assert part.headers["content-range"] == f"bytes 0-99/{len(stored)}"
    assert console.status_code == 200 and console.content == stored  # the console's player
    assert local_recordings(tmp_path) == []  # the local file went once the bucket held it
    assert removed == 1 and keys_after == []


async def test_bucket_down_keeps_the_file_and_the_sweep_uploads_it_later(tmp_path: Path) -> None:
    """With RECORDING_FORMAT=ogg too: the OGG made before the failed upload is the one uploaded."""
    with moto_server(started=False) as s3:
        settings = settings_for(tmp_path, s3, recording_format="ogg", recordings_upload_attempts=2,
                                recordings_upload_backoff_s=0.05, recordings_sweep_s=0.2)
        with live_server(settings, engines()) as srv:
            archive = srv.services.recordings
            call_id = await one_call(srv)
            assert wait_until(lambda: archive.upload_failures >= 1, 30)
            kept = local_recordings(tmp_path)
            record_kept = await record_of(srv, call_id)
            async with httpx.AsyncClient(base_url=srv.url) as client:
                metrics = (await client.get("/metrics")).text
                served_kept = await client.get(f"/calls/{call_id}/recording", headers=ADMIN)

            s3.start()
            s3.create_bucket(BUCKET)
            assert wait_until(lambda: s3.keys(BUCKET) != [] and local_recordings(tmp_path) == [], 30)
            record = await record_of(srv, call_id)
            stored = s3.get(BUCKET, s3.keys(BUCKET)[0])
    wav_name = record_kept["recording_path"]
    assert [p.relative_to(recordings_dir(tmp_path)).as_posix() for p in kept] == [
        wav_name.removesuffix(".wav") + ".ogg", wav_name]  # nothing removed while not uploaded
    assert served_kept.status_code == 200 and served_kept.headers["content-type"] == "audio/wav"
    assert re.search(r'^sutradhar_recording_uploads_total\{outcome="failed"\} [1-9]', metrics, re.M)
    assert record["recording_path"] == f"s3://{BUCKET}/prod/{wav_name.removesuffix('.wav')}.ogg"
    rate, samples = decode_ogg(stored)
    assert rate == RATE
    assert_both_sides(samples)


async def test_start_up_sweep_uploads_what_a_crash_left(tmp_path: Path) -> None:
    """A call that ended (the crash recovery closed it) with its WAV still on disk."""
    name = "2026-01-02/CA-crashed-0123456789.wav"
    path = recordings_dir(tmp_path) / name
    path.parent.mkdir(parents=True)
    frames = np.zeros((RATE, 2), dtype="<i2")
    frames[:, 0], frames[:, 1] = 3000, -3000
    path.write_bytes(wav_header(RATE, frames.nbytes) + frames.tobytes())
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path}/calls.db")
    await store.start()
    await store.write_call_started("CA-crashed", {"transport": "twilio", "recording_path": name})
    await store.write_call_ended("CA-crashed", "server_lost", {})
    await store.aclose()
    with moto_server() as s3:
        s3.create_bucket(BUCKET)
        with live_server(settings_for(tmp_path, s3, database_url=f"sqlite+aiosqlite:///{tmp_path}/calls.db"),
                         engines()) as srv:
            assert wait_until(lambda: s3.keys(BUCKET) == [f"prod/{name}"] and not path.exists(), 30)
            record = await record_of(srv, "CA-crashed")
            stored = s3.get(BUCKET, f"prod/{name}")
    assert record["recording_path"] == f"s3://{BUCKET}/prod/{name}"
    assert np.array_equal(stereo_of_wav(stored), frames)


def decode_ogg(data: bytes) -> tuple[int, np.ndarray]:
    """The OpusHead's input rate, and the audio decoded and resampled to it (samples x channels)."""
    head = data.index(b"OpusHead")
    channels, input_rate = data[head + 9], int.from_bytes(data[head + 12:head + 16], "little")
    container = av.open(io.BytesIO(data))
    resampler = av.AudioResampler(format="s16", layout="stereo" if channels == 2 else "mono", rate=input_rate)
    pieces = []
    for frame in container.decode(audio=0):
        pieces += [out.to_ndarray().reshape(-1, channels) for out in resampler.resample(frame)]
    pieces += [out.to_ndarray().reshape(-1, channels) for out in resampler.resample(None)]
    container.close()
    assert channels == 2
    return input_rate, np.concatenate(pieces)


async def test_ogg_format_keeps_two_channels_at_the_wire_rate(tmp_path: Path) -> None:
    with live_server(settings_for(tmp_path, None, recording_format="ogg"), engines()) as srv:
        call_id = await one_call(srv)
        srv.run(srv.services.recordings.drain(), timeout=30)
        record = await record_of(srv, call_id)
        async with httpx.AsyncClient(base_url=srv.url) as client:
            response = await client.get(f"/calls/{call_id}/recording", headers=ADMIN)
    assert record["recording_path"].endswith(".ogg")
    assert [p.suffix for p in local_recordings(tmp_path)] == [".ogg"]  # the WAV went once on record
    assert response.status_code == 200 and response.headers["content-type"] == "audio/ogg"
    rate, samples = decode_ogg(response.content)
    assert rate == RATE and len(samples) > 2 * RATE
    assert_both_sides(samples)
