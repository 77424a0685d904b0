"""RECORD_CALLS and kill -9: the recording of a call cut off mid-reply is still a readable WAV,
holding the call up to about a second before the crash."""

from __future__ import annotations

import signal
import time
import wave

import numpy as np
import pytest

from tests.support.server import free_port

from .test_lifecycle import Callers, caller, eventually, live_calls, rows, start_server

pytestmark = pytest.mark.slow


def test_kill_9_mid_call_leaves_a_readable_two_channel_recording(tmp_path):
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    proc = start_server(tmp_path, port, tmp_path / "server.log", RECORD_CALLS="true")
    try:
        callers = Callers(base, [caller(base, "CArec", "en-IN", turns=1)])
        eventually(lambda: live_calls(base) == 1)
        # The caller has spoken and the (long) reply is going out.
        eventually(lambda: rows(tmp_path, "SELECT * FROM turns WHERE playing = 1 AND heard != ''"),
                   timeout_s=20, step=0.05)
        time.sleep(1.5)  # at least one header update and fsync while the reply plays
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        callers.join(40)
    finally:
        if proc.poll() is None:
            proc.kill()
    (call,) = rows(tmp_path, "SELECT * FROM calls")
    assert call["status"] == "active" and call["recording_path"]  # nobody closed it: it crashed
    path = tmp_path / "recordings" / call["recording_path"]
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getframerate(), w.getsampwidth()) == (2, 8000, 2)
        frames = w.getnframes()
        samples = np.frombuffer(w.readframes(frames), dtype="<i2").reshape(-1, 2)
    assert len(samples) == frames  # the header claims no more than the file holds
    assert frames / 8000 > 2.0  # greeting, the caller's turn and part of the reply survived
    assert np.abs(samples[:, 0].astype(np.int32)).max() > 1000  # the caller's speech
    assert np.abs(samples[:, 1].astype(np.int32)).max() > 1000  # the agent's audio
