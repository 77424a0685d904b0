"""The outbound pacer: real-time frames, a small lead, marks in order, flush, underruns."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest

from sutradhar.audio.playout import Playout

FRAME = 320  # 20 ms at 8 kHz PCM16


class Sink:
    def __init__(self) -> None:
        self.items: list[tuple[float, str]] = []
        self.sizes: list[int] = []

    async def frame(self, data: bytes) -> None:
        self.items.append((time.monotonic(), "frame"))
        self.sizes.append(len(data))

    async def mark(self, name: str) -> None:
        self.items.append((time.monotonic(), f"mark:{name}"))

    def frame_times(self) -> list[float]:
        return [t for t, kind in self.items if kind == "frame"]


def make(sink: Sink, **kw) -> Playout:
    playout = Playout(sink.frame, sink.mark, frame_bytes=FRAME, **kw)
    playout.start()
    return playout


async def test_frames_go_out_in_real_time_not_as_a_burst() -> None:
    sink = Sink()
    playout = make(sink, lead_frames=2)
    start = time.monotonic()
    playout.push_audio(bytes(FRAME * 50))  # one second of audio at once
    playout.push_mark("end", final=True)
    while not any(k == "mark:end" for _, k in sink.items):
        await asyncio.sleep(0.01)
    times = sink.frame_times()
    assert len(times) == 50
    # never more than lead_frames + 1 frames ahead of real time
    for n, t in enumerate(times):
        assert t - start >= (n - 3) * 0.02 - 0.005
    assert times[-1] - start == pytest.approx(0.94, abs=0.06)
    gaps = [b - a for a, b in zip(times[3:], times[4:])]
    assert statistics.mean(gaps) == pytest.approx(0.02, abs=0.002)
    await playout.aclose()


async def test_frames_queued_together_leave_as_one_message_paced_by_its_audio() -> None:
    sink = Sink()
    playout = make(sink, lead_frames=2, message_frames=5)
    start = time.monotonic()
    playout.push_audio(bytes(FRAME * 23))  # 460 ms: four 100 ms messages and a 60 ms one
    playout.push_mark("s0")
    playout.push_audio(bytes(FRAME * 2))  # the next sentence: a message never crosses a mark
    playout.push_mark("s1", final=True)
    while not any(k == "mark:s1" for _, k in sink.items):
        await asyncio.sleep(0.01)
    assert sink.sizes == [FRAME * 5] * 4 + [FRAME * 3, FRAME * 2]
    assert [k for _, k in sink.items] == ["frame"] * 5 + ["mark:s0", "frame", "mark:s1"]
    assert (playout.stats.frames, playout.stats.messages) == (25, 6)
    # each message leaves 40 ms before its audio is due: at 0, 60, 160, 260, 360 and 420 ms
    sent = [t - start for t in sink.frame_times()]
    for t, due in zip(sent, [0.0, 0.1, 0.2, 0.3, 0.4, 0.46]):
        assert max(0.0, due - 0.04) - 0.005 <= t <= max(0.0, due - 0.04) + 0.05
    await playout.aclose()


async def test_a_message_takes_only_what_is_queued_so_first_audio_is_not_held_back() -> None:
    sink = Sink()
    playout = make(sink, message_frames=5)
    playout.push_audio(bytes(FRAME))  # a TTS's first 20 ms
    while not sink.sizes:
        await asyncio.sleep(0.001)
    playout.push_audio(bytes(FRAME * 10))
    playout.push_mark("end", final=True)
    while not any(k == "mark:end" for _, k in sink.items):
        await asyncio.sleep(0.01)
    assert sink.sizes[0] == FRAME and sum(sink.sizes) == FRAME * 11 and max(sink.sizes) == FRAME * 5
    assert playout.stats.underruns == 0
    await playout.aclose()


async def test_marks_follow_their_audio_and_partial_frames_are_padded() -> None:
    sink = Sink()
    playout = make(sink)
    playout.push_audio(bytes(FRAME * 2 + 100))
    playout.push_mark("s0")
    playout.push_audio(bytes(FRAME))
    playout.push_mark("s1", final=True)
    while len(sink.items) < 6:
        await asyncio.sleep(0.01)
    assert [k for _, k in sink.items] == ["frame", "frame", "frame", "mark:s0", "frame", "mark:s1"]
    await playout.aclose()


async def test_flush_drops_queued_audio_at_once_and_reports_dropped_marks() -> None:
    sink = Sink()
    playout = make(sink)
    playout.push_audio(bytes(FRAME * 100))
    playout.push_mark("a")
    playout.push_audio(bytes(FRAME * 10))
    playout.push_mark("b", final=True)
    await asyncio.sleep(0.2)
    sent_before = len(sink.frame_times())
    assert playout.flush() == ["a", "b"]
    assert not playout.busy
    await asyncio.sleep(0.1)
    assert len(sink.frame_times()) <= sent_before + 1  # at most the frame already in flight
    await playout.aclose()


async def test_a_gap_inside_a_reply_counts_as_an_underrun() -> None:
    sink = Sink()
    playout = make(sink)
    playout.push_audio(bytes(FRAME * 3))
    await asyncio.sleep(0.2)  # TTS is late with the rest
    playout.push_audio(bytes(FRAME * 3))
    playout.push_mark("end", final=True)
    await asyncio.sleep(0.15)
    assert playout.stats.underruns == 1
    # a pause between replies (after a final mark) is not an underrun
    await asyncio.sleep(0.1)
    playout.push_audio(bytes(FRAME))
    await asyncio.sleep(0.05)
    assert playout.stats.underruns == 1
    await playout.aclose()


@pytest.mark.slow
@pytest.mark.serial  # asserts wall-clock timing
async def test_pacing_stays_tight_with_200_concurrent_playouts() -> None:
    """Bench: 200 calls speaking at once on one event loop; measure inter-frame jitter."""
    sinks = [Sink() for _ in range(200)]
    playouts = [make(s) for s in sinks]
    for p in playouts:
        p.push_audio(bytes(FRAME * 100))  # 2 s each
        p.push_mark("end", final=True)
    await asyncio.gather(*(wait_done(s) for s in sinks))
    gaps, ahead = [], []
    for s in sinks:
        t = s.frame_times()
        gaps += [b - a for a, b in zip(t[3:], t[4:])]
        # how far each frame is behind the time it must play (first frame plays on arrival):
        # positive means the far end's buffer ran dry and the caller heard a gap
        ahead += [(t[0] + n * 0.02) - tn for n, tn in enumerate(t)]
    gaps.sort()
    p99 = gaps[int(len(gaps) * 0.99)] * 1000
    worst_behind = -min(ahead) * 1000
    worst = max(p.stats.max_late_ms for p in playouts)
    print(f"\n200 playouts: mean gap {statistics.mean(gaps)*1000:.2f} ms, p99 gap {p99:.2f} ms, "
          f"worst frame behind its play time {worst_behind:.1f} ms, worst wake-up late {worst:.1f} ms")
    assert statistics.mean(gaps) == pytest.approx(0.02, abs=0.001)
    # the 2-frame lead absorbs wake-up jitter: no frame arrives after it should have played
    assert worst_behind < 20
    for p in playouts:
        await p.aclose()


async def wait_done(sink: Sink) -> None:
    while not sink.items or sink.items[-1][1] != "mark:end":
        await asyncio.sleep(0.1)
