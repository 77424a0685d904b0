"""RecordingArchive's ordering rules with RECORDING_FORMAT=ogg on disk (a real SQLite call store):
the record moves before a file goes, a record not yet written keeps the WAV, a stem locked by
another process is left alone; and the OGG encoder keeps each side on its own channel."""

from __future__ import annotations

import fcntl
import io
import os
from collections.abc import AsyncIterator
from pathlib import Path

import av
import numpy as np
import pytest

from sutradhar.audio.ogg_opus import wav_to_ogg_opus
from sutradhar.errors import ConfigError
from sutradhar.store.calls import CallStore
from sutradhar.store.recording_archive import RecordingArchive
from sutradhar.telephony.recording import wav_header
from tests.support.server import make_settings

NAME = "2026-01-02/CA1-0123456789.wav"
OGG = "2026-01-02/CA1-0123456789.ogg"


def write_wav(path: Path, rate: int, seconds: float) -> np.ndarray:
    """Caller: a 440 Hz tone; agent: silence."""
    n = int(rate * seconds)
    frames = np.zeros((n, 2), dtype="<i2")
    frames[:, 0] = (8000 * np.sin(2 * np.pi * 440 * np.arange(n) / rate)).astype("<i2")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_header(rate, frames.nbytes) + frames.tobytes())
    return frames


def decode(path: Path) -> tuple[int, np.ndarray]:
    data = path.read_bytes()
    head = data.index(b"OpusHead")
    rate = int.from_bytes(data[head + 12:head + 16], "little")
    resampler = av.AudioResampler(format="s16", layout="stereo", rate=rate)
    with av.open(io.BytesIO(data)) as container:
        pieces = [out.to_ndarray().reshape(-1, 2) for frame in container.decode(audio=0)
                  for out in resampler.resample(frame)]
    pieces += [out.to_ndarray().reshape(-1, 2) for out in resampler.resample(None)]
    return rate, np.concatenate(pieces)


@pytest.mark.parametrize("rate", [8000, 16000])  # Twilio/Plivo, Exotel's 16 kHz
def test_ogg_keeps_the_wire_rate_and_each_side_on_its_channel(tmp_path: Path, rate: int) -> None:
    write_wav(tmp_path / "a.wav", rate, 2.0)
    wav_to_ogg_opus(tmp_path / "a.wav", tmp_path / "a.ogg", 32)  # the lowest RECORDING_OPUS_KBPS
    decoded_rate, samples = decode(tmp_path / "a.ogg")
    assert decoded_rate == rate
    assert abs(len(samples) - 2 * rate) <= rate // 50  # within one 20 ms frame of padding
    caller, agent = samples[rate // 10:-rate // 10].astype(np.float64).T
    assert np.sqrt((caller ** 2).mean()) > 4000  # the tone (8000 peak: 5657 RMS) survives
    assert np.sqrt((agent ** 2).mean()) < 20  # and does not leak into the agent's channel
    assert not (tmp_path / "a.ogg.part").exists()


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[CallStore]:
    s = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await s.start()
    yield s
    await s.aclose()


def archive(tmp_path: Path, store: CallStore) -> RecordingArchive:
    return RecordingArchive(tmp_path / "recordings", store, None, fmt="ogg", attempts=2, backoff_s=0.01)


async def test_a_record_not_yet_written_keeps_the_wav(tmp_path: Path, store: CallStore) -> None:
    write_wav(tmp_path / "recordings" / NAME, 8000, 1.0)
    assert not await archive(tmp_path, store).finish("CA1", NAME)
    assert (tmp_path / "recordings" / NAME).is_file()  # the only copy the record could name

    await store.write_call_started("CA1", {"recording_path": NAME})
    assert await archive(tmp_path, store).finish("CA1", NAME)  # the OGG from before is reused
    assert (await store.get_call("CA1"))["recording_path"] == OGG
    assert not (tmp_path / "recordings" / NAME).exists()
    assert (tmp_path / "recordings" / OGG).is_file()


async def test_the_sweep_takes_only_ended_calls(tmp_path: Path, store: CallStore) -> None:
    write_wav(tmp_path / "recordings" / NAME, 8000, 1.0)
    await store.write_call_started("CA1", {"recording_path": NAME})
    sweeper = archive(tmp_path, store)
    assert await sweeper.sweep() == 0  # still active: perhaps live on another worker
    await store.write_call_ended("CA1", "hangup", {})
    assert await sweeper.sweep() == 1
    assert (await store.get_call("CA1"))["recording_path"] == OGG


async def test_a_recording_locked_by_another_process_is_left_alone(tmp_path: Path, store: CallStore) -> None:
    write_wav(tmp_path / "recordings" / NAME, 8000, 1.0)
    await store.write_call_started("CA1", {"recording_path": NAME})
    fd = os.open(tmp_path / "recordings" / "2026-01-02/CA1-0123456789.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # flock is per open file: this fd stands for the other process
        assert not await archive(tmp_path, store).finish("CA1", NAME)
        assert not (tmp_path / "recordings" / OGG).exists()
    finally:
        os.close(fd)


@pytest.mark.parametrize("url", ["bucket", "s3://", "s3://A_B/x", "s3://b/" + "p" * 71])
def test_a_bucket_setting_that_cannot_work_is_refused(url: str) -> None:
    with pytest.raises(ConfigError, match="RECORDINGS_BUCKET"):
        make_settings(recordings_bucket=url)


async def test_the_sweep_removes_a_wav_whose_ogg_is_already_on_record(tmp_path: Path, store: CallStore) -> None:
    """A crash after the record moved to the OGG, before the WAV was removed."""
    write_wav(tmp_path / "recordings" / NAME, 8000, 1.0)
    wav_to_ogg_opus(tmp_path / "recordings" / NAME, tmp_path / "recordings" / OGG, 32)
    await store.write_call_started("CA1", {"recording_path": OGG})
    await store.write_call_ended("CA1", "hangup", {})
    assert await archive(tmp_path, store).sweep() == 1
    assert not (tmp_path / "recordings" / NAME).exists() and (tmp_path / "recordings" / OGG).is_file()


async def test_retention_deletes_the_ogg_made_beside_a_wav_on_record(tmp_path: Path) -> None:
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}", recordings=tmp_path / "recordings")
    await store.start()
    try:
        write_wav(tmp_path / "recordings" / NAME, 8000, 0.2)
        (tmp_path / "recordings" / OGG).write_bytes(b"OggS")
        await store.write_call_started("CA1", {"recording_path": NAME})
        assert await store.delete_older_than(-1) == 1
    finally:
        await store.aclose()
    assert not (tmp_path / "recordings" / NAME).exists() and not (tmp_path / "recordings" / OGG).exists()
