"""How evenly the agent's audio reached the caller: the one measure the call simulator and the load
benchmark share.

The server's pacer (audio/playout.py) sends each media message `lead_s` before its audio is due,
up to PLAYOUT_MESSAGE_MS of audio in one message, so the carrier's buffer never holds more than a
message and the lead. Messages whose audio is due within the lead arrive at once by design; after
them, a message should arrive one message's audio after the one before. A message that arrives
after the carrier has played everything before it is a dropout the caller hears.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

LEAD_S = 0.04  # the pacer's lead: Twilio's and Plivo's two 20 ms frames
LATE_TOLERANCE_S = 0.002  # an empty buffer for less than this is timer noise, not a dropout
REPLY_GAP_S = 0.300  # this long without audio after a message's end starts another reply (shorter: a dropout)
JITTER_BUFFER_S = 0.100  # a phone's playout buffer: a reply starts playing this long after it arrives


@dataclass
class Pacing:
    jitter_ms: list[float] = field(default_factory=list)  # |gap - the previous message's audio|
    bunched: int = 0  # steady messages less than 5 ms after the one before
    late: int = 0  # messages that came after the carrier's buffer ran dry
    late_ms: float = 0.0  # how long it was dry, in all
    # messages that came after their audio was due behind a JITTER_BUFFER_S playout buffer: a
    # dropout even for a phone that buffers (`late` counts any moment the carrier's queue was empty)
    late_buffered: int = 0
    paced: int = 0  # gaps measured
    # The replies' audio against the time the carrier took to play it (from each reply's first
    # message to the end of its audio, dry spells included): 1.0 when it never ran dry.
    audio_s: float = 0.0
    wall_s: float = 0.0
    outliers: list[tuple[float, int, float]] = field(default_factory=list)  # (s into the call, index, gap ms)


def audio_per_wall(audio_s: float, wall_s: float) -> float | None:
    """Pacing as a ratio (`Pacing.audio_s` over `wall_s`): 1.0 when no reply ever ran dry."""
    return round(audio_s / wall_s, 4) if wall_s > 0 else None


def measure(times: Sequence[float], durations: Sequence[float], clears: Sequence[float] = (),
            lead_s: float = LEAD_S, keep_outliers: int = 0, jitter_buffer_s: float = JITTER_BUFFER_S) -> Pacing:
    """`times[i]`: arrival of agent media message i; `durations[i]`: the seconds of audio it holds.
    A clear or REPLY_GAP_S without audio ends a reply."""
    out = Pacing()
    segments: list[list[int]] = []
    cur: list[int] = []
    clear_iter = iter(sorted(clears))
    next_clear = next(clear_iter, math.inf)
    for i, t in enumerate(times):
        boundary = bool(cur) and (t - times[cur[-1]] - durations[cur[-1]] > REPLY_GAP_S or t > next_clear)
        while t > next_clear:
            next_clear = next(clear_iter, math.inf)
        if boundary:
            segments.append(cur)
            cur = []
        cur.append(i)
    if cur:
        segments.append(cur)
    for seg in segments:
        play_end = times[seg[0]] + durations[seg[0]]
        due = 0.0  # when each message's audio is due, from the reply's first
        steady: list[int] = []
        for prev, nxt in zip(seg, seg[1:]):
            due += durations[prev]
            if due > lead_s + 1e-6:
                steady.append(nxt)
            if times[nxt] > times[seg[0]] + jitter_buffer_s + due + LATE_TOLERANCE_S:
                out.late_buffered += 1
            if times[nxt] > play_end + LATE_TOLERANCE_S:
                out.late += 1
                out.late_ms += (times[nxt] - play_end) * 1000
            play_end = max(play_end, times[nxt]) + durations[nxt]
        out.audio_s += sum(durations[i] for i in seg)
        out.wall_s += play_end - times[seg[0]]
        for prev, nxt in zip(steady, steady[1:]):
            gap = (times[nxt] - times[prev]) * 1000
            off = abs(gap - durations[prev] * 1000)
            out.jitter_ms.append(off)
            if off > 5 and len(out.outliers) < keep_outliers:
                out.outliers.append((round(times[nxt] - times[0], 3), nxt, round(gap, 2)))
            out.bunched += gap < 5.0
            out.paced += 1
    return out
