"""The outbound pacer: one call's agent audio sent in real time, frame by frame, with marks.

Carriers play what they receive and buffer the rest, so a reply sent as one burst could not be
interrupted: `clear` would be the only way to stop it, and marks would say nothing about what was
heard. The pacer keeps the queue on our side and sends each frame just before it is due, against a
monotonic schedule (`next_due += frame`, never `sleep(frame)`, which drifts), with at most
`lead_frames` frames in flight ahead of real time. `flush()` drops everything queued at once.

Frames queued back to back go out as one message of up to `message_frames` frames (PLAYOUT_MESSAGE_MS):
each media message costs a JSON envelope, base64 and a WebSocket send whatever its length, so five
20 ms frames in one message cost about a fifth. A message never crosses a mark, and it takes only
what is queued, so a reply's first audio goes out the moment its first frame exists. `clear` empties
the carrier's buffer on barge-in whatever its length.

Design note: one task per call. A shared clock task for all calls was considered; it saves timer
wake-ups but a slow socket (a caller on a bad network whose send blocks on drain) would stall every
call's audio. Per-call tasks isolate that, and the benchmark (bench in tests/unit/test_playout.py)
shows pacing stays tight with hundreds of concurrent playouts on one loop.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass


@dataclass(slots=True)
class Mark:
    name: str
    final: bool = False  # the last mark of a reply: a gap after it is not an underrun


@dataclass
class PlayoutStats:
    frames: int = 0
    messages: int = 0  # media messages: frames sent together count once
    marks: int = 0
    flushes: int = 0
    underruns: int = 0  # the queue ran dry in the middle of a reply (TTS slower than real time)
    underrun_ms: float = 0.0
    max_late_ms: float = 0.0  # worst lateness of a frame against its schedule (loop overload)


class Playout:
    def __init__(
        self,
        send_frame: Callable[[bytes], Awaitable[None]],
        send_mark: Callable[[str], Awaitable[None]],
        *,
        frame_bytes: int,
        frame_ms: int = 20,
        lead_frames: int = 2,
        message_frames: int = 1,
        on_frame: Callable[[float], None] | None = None,
    ) -> None:
        self._send_frame = send_frame
        self._send_mark = send_mark
        self.frame_bytes = frame_bytes
        self.frame_s = frame_ms / 1000
        self._lead_s = lead_frames * self.frame_s
        self.message_frames = max(1, message_frames)
        self._on_frame = on_frame
        self._queue: deque[bytes | Mark] = deque()
        self._partial = bytearray()
        self._wake = asyncio.Event()
        self._generation = 0
        self._next_due = 0.0
        self._in_reply = False
        self._resumed = asyncio.Event()
        self._resumed.set()
        self.queued_frames = 0
        self.stats = PlayoutStats()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="playout")

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
            self._task = None

    @property
    def paused(self) -> bool:
        return not self._resumed.is_set()

    def pause(self) -> None:
        """Stop sending frames, keep the queue (the caller may only be saying "hmm")."""
        self._resumed.clear()

    def resume(self) -> None:
        """Go on where it paused, on a fresh clock (a pause is not an underrun)."""
        if not self._resumed.is_set():
            self._in_reply = False
            self._resumed.set()

    @property
    def busy(self) -> bool:
        return bool(self._queue) or bool(self._partial)

    @property
    def queued_s(self) -> float:
        return self.queued_frames * self.frame_s

    def push_audio(self, pcm: bytes) -> None:
        """Queue PCM at the wire rate; it is cut into frames, the remainder waits for more."""
        if not pcm:
            return
        buf = self._partial
        buf += pcm
        size, n = self.frame_bytes, len(buf) // self.frame_bytes
        for i in range(n):
            self._queue.append(bytes(buf[i * size:(i + 1) * size]))
        del buf[: n * size]
        self.queued_frames += n
        if n:
            self._wake.set()

    def push_mark(self, name: str, final: bool = False) -> None:
        """Queue a mark after the audio queued so far (a partial frame is padded with silence)."""
        if self._partial:
            self._partial += bytes(self.frame_bytes - len(self._partial))
            self._queue.append(bytes(self._partial))
            self._partial.clear()
            self.queued_frames += 1
        self._queue.append(Mark(name, final))
        self._wake.set()

    def flush(self) -> list[str]:
        """Drop everything queued (barge-in). Returns the names of the marks that were dropped."""
        dropped = [item.name for item in self._queue if isinstance(item, Mark)]
        self._queue.clear()
        self._partial.clear()
        self.queued_frames = 0
        self._generation += 1
        self._in_reply = False
        self._resumed.set()
        self.stats.flushes += 1
        return dropped

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        queue, stats = self._queue, self.stats
        while True:
            if not self._resumed.is_set():
                await self._resumed.wait()
                continue
            if not queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            if isinstance(queue[0], Mark):
                mark = queue.popleft()
                assert isinstance(mark, Mark)
                stats.marks += 1
                if mark.final:
                    self._in_reply = False
                await self._send_mark(mark.name)
                continue
            now = loop.time()
            if not self._in_reply or now - self._next_due > self.frame_s:
                if self._in_reply:  # the reply is still going but we had nothing to send
                    stats.underruns += 1
                    stats.underrun_ms += (now - self._next_due) * 1000
                self._in_reply = True
                self._next_due = now
            elif self._next_due - now > self._lead_s:
                generation = self._generation
                await asyncio.sleep(self._next_due - self._lead_s - now)
                if generation != self._generation:  # flushed while we waited: the queue is another
                    continue
                if not self._resumed.is_set():  # paused while we waited: these frames go first later
                    continue
                late = loop.time() - (self._next_due - self._lead_s)
                if late * 1000 > stats.max_late_ms:
                    stats.max_late_ms = late * 1000
            # The frames queued back to back, up to a message (only this task pops the queue).
            parts = [queue.popleft()]
            while len(parts) < self.message_frames and queue and type(queue[0]) is bytes:
                parts.append(queue.popleft())
            n = len(parts)
            self.queued_frames -= n
            await self._send_frame(parts[0] if n == 1 else b"".join(parts))  # type: ignore[arg-type]
            stats.frames += n
            stats.messages += 1
            if self._on_frame is not None:
                self._on_frame(now)
            self._next_due += n * self.frame_s
