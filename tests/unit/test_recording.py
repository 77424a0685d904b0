"""CallRecording: two channels on one timeline, written as the call runs, readable after a crash."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

import numpy as np

from sutradhar.store.recording_files import (
    delete_recordings,
    recording_name,
    resolve_recording,
)
from sutradhar.telephony.recording import CallRecording

RATE = 8000
FRAME = RATE // 50  # 20 ms


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def frame(value: int) -> bytes:
    return np.full(FRAME, value, dtype="<i2").tobytes()


def read(path: Path) -> tuple[wave.Wave_read, np.ndarray]:
    w = wave.open(str(path), "rb")
    samples = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").reshape(-1, w.getnchannels())
    return w, samples


def first_nonzero(channel: np.ndarray) -> int:
    return int(np.flatnonzero(channel)[0])


async def test_places_each_side_where_it_hit_the_wire_and_fills_silence(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallRecording(tmp_path / "a.wav", RATE, "CA1", clock=clock)
    for i in range(50):  # the caller: 1 s of frames from the start, the first 0.5 s silent
        rec.caller(frame(1000 if i >= 25 else 0))
        clock.now += 0.02
    clock.now = 100.3  # the agent's reply goes out from 0.3 s (sent a frame ahead, as the pacer does)
    for _ in range(10):
        rec.agent(frame(-2000))
        clock.now += 0.02
    clock.now = 101.5  # after a quiet second, a second reply
    rec.agent(frame(-3000))
    await rec.aclose()
    w, samples = read(tmp_path / "a.wav")
    assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, RATE, 2)
    assert first_nonzero(samples[:, 0]) == int(0.5 * RATE)
    assert first_nonzero(samples[:, 1]) == int(0.3 * RATE)
    assert np.count_nonzero(samples[:, 1] == -2000) == 10 * FRAME
    assert np.flatnonzero(samples[:, 1] == -3000)[0] == int(1.5 * RATE)
    assert len(samples) == int(1.5 * RATE) + FRAME  # the shorter channel padded to the longer


async def test_a_caller_backlog_after_a_stall_stays_in_sequence_then_catches_up(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallRecording(tmp_path / "b.wav", RATE, "CA2", clock=clock)
    for i in range(10):
        rec.caller(frame(1000 + i))
        clock.now += 0.02
    clock.now += 0.1  # the loop stalled 100 ms: the five frames sent meanwhile arrive at once
    for i in range(10, 15):
        rec.caller(frame(1000 + i))
    for _ in range(10):  # then on time again, line noise only
        clock.now += 0.02
        rec.caller(frame(0))
    clock.now += 0.02
    speech_at = round((clock.now - 100.0) * RATE)
    rec.caller(frame(5000))
    rec.agent(frame(5))
    await rec.aclose()
    _, samples = read(tmp_path / "b.wav")
    caller = samples[:, 0]
    values = [int(v) for v in caller[np.flatnonzero(caller)][::FRAME]]
    assert values == [*range(1000, 1015), 5000]  # the backlog in order, nothing lost but noise
    assert abs(int(np.flatnonzero(caller == 5000)[0]) - speech_at) <= 0.04 * RATE  # back on the clock


async def test_a_file_cut_off_mid_call_opens_with_what_was_synced(tmp_path: Path) -> None:
    clock = Clock()
    rec = CallRecording(tmp_path / "c.wav", RATE, "CA3", clock=clock)
    for _ in range(100):  # 2 s on both sides
        rec.caller(frame(100))
        rec.agent(frame(200))
        clock.now += 0.02
    await rec._sync()  # what the once-a-second task does
    for _ in range(20):  # more audio after the last sync, then the process dies
        rec.caller(frame(100))
        rec.agent(frame(200))
        clock.now += 0.02
    rec._file.flush()
    shutil.copy(tmp_path / "c.wav", tmp_path / "crashed.wav")  # the file as a kill -9 leaves it
    w, samples = read(tmp_path / "crashed.wav")
    assert w.getnchannels() == 2 and len(samples) == 100 * FRAME  # the header's claim, all on disk
    assert set(samples[:, 0]) == {100} and set(samples[:, 1]) == {200}
    await rec.aclose()
    _, whole = read(tmp_path / "c.wav")
    assert len(whole) == 120 * FRAME


def test_names_stay_inside_the_recordings_directory(tmp_path: Path) -> None:
    name = recording_name("../../etc/passwd", "2026-12-01")
    assert name.startswith("2026-12-01/______etc_passwd-") and name.endswith(".wav")
    assert recording_name("a/b", "d") != recording_name("a_b", "d")
    assert resolve_recording(tmp_path, name) is not None
    assert resolve_recording(tmp_path, "../outside.wav") is None
    inside = tmp_path / "2026-12-01" / "x.wav"
    inside.parent.mkdir()
    inside.write_bytes(b"RIFF")
    (tmp_path.parent / "outside.wav").write_bytes(b"keep")
    assert delete_recordings(tmp_path, ["2026-12-01/x.wav", "../outside.wav", "gone.wav"]) == 1
    assert not inside.exists() and (tmp_path.parent / "outside.wav").exists()
