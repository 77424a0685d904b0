"""Call recordings: the caller (channel 0) and the agent (channel 1) as one stereo WAV at the wire rate.

Both channels share one timeline, the call's monotonic clock. A channel's first chunk is placed
where it hit the wire (the caller's as it arrived, the agent's as the Playout sent it); each later
chunk follows the one before, unless it came late (the agent between replies or in an underrun,
caller frames lost or slow), and then it starts at its own time after silence. A caller channel
that got ahead of the clock (a backlog after an event-loop stall, placed in sequence) catches up by
skipping quiet chunks, so the two sides stay within LATE_S of each other. Samples are written to the file as soon as both channels
have them; every FLUSH_EVERY_S the header's sizes are brought up to the data on disk and the file
is fsynced, so a crash loses at most that much and the file still opens (the header never claims
more than was written).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from loguru import logger

from sutradhar.audio.codecs import rms
from sutradhar.store.recording_files import recording_name, recordings_dir

CALLER, AGENT = 0, 1
CHANNELS = 2
SAMPLE_BYTES = 2
FLUSH_EVERY_S = 1.0
# A chunk later than this past its channel's end starts after silence; an earlier one follows on
# (a few ms of network or loop jitter must not cut speech with tiny gaps).
LATE_S = (0.04, 0.03)  # caller, agent
CATCH_UP_S = 0.04  # a caller channel this far ahead of the clock drops quiet chunks
QUIET_RMS = 150.0  # below this a chunk is line noise (as VAD_ENERGY_FLOOR's default)
# A channel with nothing to say is filled with silence up to this long ago, so the other channel's
# audio reaches the disk even while one side is quiet. Above both LATE_S, so a chunk after such
# silence starts at its own time.
HOLD_S = 0.25


def wav_header(sample_rate: int, data_bytes: int) -> bytes:
    block = CHANNELS * SAMPLE_BYTES
    return (b"RIFF" + struct.pack("<I", 36 + data_bytes) + b"WAVE"
            + b"fmt " + struct.pack("<IHHIIHH", 16, 1, CHANNELS, sample_rate, sample_rate * block,
                                    block, 8 * SAMPLE_BYTES)
            + b"data" + struct.pack("<I", data_bytes))


HEADER_BYTES = len(wav_header(8000, 0))


class CallRecording:
    """One call's recording, written while the call runs. Feed it with `caller()` and `agent()`."""

    def __init__(self, path: Path, sample_rate: int, call_id: str,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = path
        self.rate = sample_rate
        self._clock = clock
        self._t0 = clock()
        self.log = logger.bind(call_id=call_id, stage="recording")
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(path, "wb")  # noqa: SIM115 - held open for the whole call
        self._file.write(wav_header(sample_rate, 0))
        self._written = 0  # samples per channel in the file
        self._synced = 0  # data bytes the header declares
        self._pending = [bytearray(), bytearray()]  # per channel, from sample `_written` on
        self._fed = [False, False]  # the channel has had a chunk: later ones follow it
        self._task: asyncio.Task[None] | None = None
        self.closed = False
        self.failed = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._sync_loop(), name="recording-sync")

    # --- taps ---

    def caller(self, pcm: bytes) -> None:
        """Caller audio at the wire rate, as it arrived."""
        self._place(CALLER, pcm)

    def agent(self, pcm: bytes) -> None:
        """Agent audio at the wire rate, as it went out."""
        self._place(AGENT, pcm)

    def _place(self, channel: int, pcm: bytes) -> None:
        if self.closed or self.failed or not pcm:
            return
        now = self._sample_now()
        pending = self._pending[channel]
        end = self._written + len(pending) // SAMPLE_BYTES
        if now > end and (not self._fed[channel] or now - end > LATE_S[channel] * self.rate):
            pending += bytes((now - end) * SAMPLE_BYTES)
        elif channel == CALLER and end - now > CATCH_UP_S * self.rate and rms(pcm) < QUIET_RMS:
            return  # ahead of the clock: drop line noise, never speech, to get back on it
        self._fed[channel] = True
        pending += pcm
        self._commit()

    def _sample_now(self) -> int:
        return round((self._clock() - self._t0) * self.rate)

    def _fill_quiet(self, upto: int) -> None:
        for pending in self._pending:
            end = self._written + len(pending) // SAMPLE_BYTES
            if end < upto:
                pending += bytes((upto - end) * SAMPLE_BYTES)

    def _commit(self) -> None:
        """Write the samples both channels have: interleaved L/R PCM16."""
        n = min(len(p) for p in self._pending) // SAMPLE_BYTES
        if n == 0:
            return
        frames = np.empty((n, CHANNELS), dtype="<i2")
        for channel, pending in enumerate(self._pending):
            frames[:, channel] = np.frombuffer(pending, dtype="<i2", count=n)
            del pending[: n * SAMPLE_BYTES]
        try:
            self._file.write(frames.tobytes())
        except OSError as exc:  # a full disk ends the recording, never the call
            self._fail(exc)
            return
        self._written += n

    # --- durability ---

    async def _sync_loop(self) -> None:
        while not self.closed and not self.failed:
            await asyncio.sleep(FLUSH_EVERY_S)
            self._fill_quiet(self._sample_now() - int(HOLD_S * self.rate))
            self._commit()
            await self._sync()

    async def _sync(self) -> None:
        if self.failed:
            return
        data = self._written * CHANNELS * SAMPLE_BYTES
        try:
            self._file.flush()
            fd = self._file.fileno()
            # The header is rewritten in place (pwrite leaves the append offset alone), after the
            # data it declares has been handed to the OS: a crash never leaves it claiming more.
            await asyncio.to_thread(_declare, fd, data)
        except (OSError, ValueError) as exc:
            self._fail(exc)
            return
        self._synced = data

    def _fail(self, exc: Exception) -> None:
        self.failed = True
        self.log.error("recording stopped: {}: {}", type(exc).__name__, exc)

    async def aclose(self) -> None:
        """Write out everything (the shorter channel padded with silence), fix the header, close."""
        if self.closed:
            return
        self.closed = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        longest = max(len(p) for p in self._pending) // SAMPLE_BYTES
        self._fill_quiet(self._written + longest)
        self._commit()
        await self._sync()
        with contextlib.suppress(OSError):
            self._file.close()
        self.log.info("recording closed seconds={:.1f} path={}", self.seconds, self.path.name)

    @property
    def seconds(self) -> float:
        return self._written / self.rate


def _declare(fd: int, data_bytes: int) -> None:
    os.pwrite(fd, struct.pack("<I", 36 + data_bytes), 4)
    os.pwrite(fd, struct.pack("<I", data_bytes), HEADER_BYTES - 4)
    os.fsync(fd)


def open_recording(data_dir: Path, call_id: str, sample_rate: int) -> tuple[CallRecording, str] | None:
    """A new recording for this call and its stored name, or None when the file cannot be created
    (logged: the call goes on unrecorded)."""
    name = recording_name(call_id, datetime.now(timezone.utc).strftime("%Y-%m-%d"))
    try:
        return CallRecording(recordings_dir(data_dir) / name, sample_rate, call_id), name
    except OSError as exc:
        logger.bind(call_id=call_id, stage="recording").error("cannot record this call: {}", exc)
        return None
