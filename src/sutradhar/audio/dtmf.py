"""DTMF keypad tones: synthesised in-band (the carrier-independent way for the agent to press keys)
and decoded from the power at each keypad frequency (Goertzel's single DFT bins), to check what a
line carries.

Each key is the sum of one low-group and one high-group sine (ITU-T Q.23). Q.24 asks receivers to
accept a tone of 40 ms or more and a pause of 40 ms or more, so 80 ms on / 60 ms off is well inside
what any IVR hears, and short enough that "1234#" takes 0.7 s.
"""

from __future__ import annotations

import numpy as np

DTMF_KEYS = "0123456789*#"  # a phone keypad: no carrier we serve sends A-D, nor do we
LOW_HZ = (697.0, 770.0, 852.0, 941.0)
HIGH_HZ = (1209.0, 1336.0, 1477.0, 1633.0)
KEYPAD = ("123A", "456B", "789C", "*0#D")
TONES: dict[str, tuple[float, float]] = {key: (LOW_HZ[r], HIGH_HZ[c])
                                         for r, row in enumerate(KEYPAD) for c, key in enumerate(row)}
TONE_MS = 80
GAP_MS = 60
# Each sine at -9 dBFS: the sum peaks below -3 dBFS, so G.711 and resampling never clip it.
AMPLITUDE = 0.35


def dtmf_pcm(digits: str, sample_rate: int, tone_ms: int = TONE_MS, gap_ms: int = GAP_MS) -> bytes:
    """PCM16 mono of `digits` pressed one after another, each tone followed by its gap."""
    unknown = [d for d in digits if d not in TONES]
    if unknown:
        raise ValueError(f"not keypad keys: {''.join(unknown)!r}")
    on = int(sample_rate * tone_ms / 1000)
    t = np.arange(on) / sample_rate
    # A 5 ms raised-cosine ramp at each end: an abrupt start splatters energy across the band.
    ramp = min(on // 2, int(sample_rate * 0.005))
    envelope = np.ones(on)
    if ramp:
        edge = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, ramp))
        envelope[:ramp], envelope[-ramp:] = edge, edge[::-1]
    gap = np.zeros(int(sample_rate * gap_ms / 1000))
    parts = []
    for digit in digits:
        low, high = TONES[digit]
        tone = AMPLITUDE * (np.sin(2 * np.pi * low * t) + np.sin(2 * np.pi * high * t)) * envelope
        parts += [tone, gap]
    samples = np.concatenate(parts) if parts else np.zeros(0)
    return (samples * 32767).astype("<i2").tobytes()


def _power(block: np.ndarray, hz: float, sample_rate: int) -> float:
    """The block's power at `hz`: one DFT bin at exactly that frequency (what Goertzel computes)."""
    phase = np.exp(-2j * np.pi * hz / sample_rate * np.arange(len(block)))
    return float(abs(np.dot(block, phase)) ** 2)


def decode_dtmf(pcm: bytes, sample_rate: int, block_ms: int = 20) -> str:
    """The keys a line carries, in order. A key counts once per continuous tone: judged on
    `block_ms` blocks, where one low and one high frequency must each dominate their group (by
    4x the others' power) and together hold most of the block's energy (speech does not)."""
    samples = np.frombuffer(pcm, "<i2").astype(np.float64) / 32768
    size = max(1, sample_rate * block_ms // 1000)
    keys: list[str] = []
    previous: str | None = None
    for start in range(0, len(samples) - size + 1, size):
        block = samples[start:start + size]
        key = _block_key(block, sample_rate)
        if key is not None and key != previous:
            keys.append(key)
        previous = key
    return "".join(keys)


def _block_key(block: np.ndarray, sample_rate: int) -> str | None:
    energy = float(np.dot(block, block))
    if energy < len(block) * 1e-4:  # below about -40 dBFS: silence
        return None
    low = [_power(block, hz, sample_rate) for hz in LOW_HZ]
    high = [_power(block, hz, sample_rate) for hz in HIGH_HZ]
    row, col = int(np.argmax(low)), int(np.argmax(high))
    if any(p * 4 > low[row] for i, p in enumerate(low) if i != row):
        return None
    if any(p * 4 > high[col] for i, p in enumerate(high) if i != col):
        return None
    # A pure sine of amplitude A over N samples has bin power (A*N/2)^2 against energy A^2*N/2.
    tonal = 2 * (low[row] + high[col]) / len(block)
    if tonal < 0.5 * energy:
        return None
    return KEYPAD[row][col]
