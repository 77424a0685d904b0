"""Micro-benchmark of the per-frame telephony work: what one call costs 50 times a second each way.

Inbound Twilio `media` message -> PCM16 frame -> VAD -> turn detector, and outbound PCM16 frame ->
mu-law -> base64 -> JSON text, each step timed alone (best of several `timeit` repeats, so the
shared machine's noise is mostly filtered out), with cheaper alternatives next to the current code
where one exists, to show what a change would save:

- decode: orjson and pybase64 (what the codecs use) vs the standard library's json and base64,
  and vs slicing the payload out of the text.
- mu-law: the numpy table lookups in `sutradhar.audio.codecs` vs precomputed `bytes` tables
  (`bytes.translate` for encode after a high-byte view; decode through an int16 table) and the
  stdlib `audioop` (C; deprecated in 3.11, removed in 3.13, so only as a yardstick).
- resampling of a 200 ms TTS chunk 16 kHz -> 8 kHz (soxr HQ stream) and its start-up delay.

Results are in microseconds per frame and in CPU-% of one core for N calls (x 50 frames/s).
"""

from __future__ import annotations

import base64
import json
import timeit
import warnings
from typing import Any

FRAME_8K = 160  # samples in 20 ms at 8 kHz


def _best_us(fn: Any, number: int = 2000, repeat: int = 5) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def run(calls: int = 200) -> dict[str, Any]:
    import numpy as np
    import orjson
    import pybase64

    from sutradhar.audio.codecs import StreamResampler, pcm16_to_ulaw, ulaw_to_pcm16
    from sutradhar.telephony.twilio.codec import TwilioCodec
    from sutradhar.testing.scripted import tone

    pcm = tone(FRAME_8K, 8000)
    ulaw = pcm16_to_ulaw(pcm)
    payload = base64.b64encode(ulaw).decode()
    msg = ('{"event":"media","sequenceNumber":"42","media":{"track":"inbound","chunk":"41",'
           f'"timestamp":"820","payload":"{payload}"}},"streamSid":"MZ0123456789abcdef0123456789abcdef"}}')
    codec = TwilioCodec()
    codec.decode('{"event":"start","start":{"streamSid":"MZ0123456789abcdef0123456789abcdef",'
                 '"callSid":"CA0123456789abcdef0123456789abcdef"}}')

    rows: dict[str, dict[str, float]] = {}

    def add(group: str, name: str, us: float) -> None:
        rows.setdefault(group, {})[name] = round(us, 3)

    # --- inbound ---
    add("inbound", "orjson.loads(message)", _best_us(lambda: orjson.loads(msg)))
    add("inbound", "alt: json.loads(message) (stdlib)", _best_us(lambda: json.loads(msg)))
    add("inbound", "pybase64.b64decode(payload, validate=True)",
        _best_us(lambda: pybase64.b64decode(payload, validate=True)))
    add("inbound", "alt: base64.b64decode(payload, validate=True) (stdlib)",
        _best_us(lambda: base64.b64decode(payload, validate=True)))
    add("inbound", "ulaw_to_pcm16 (bytes tables)", _best_us(lambda: ulaw_to_pcm16(ulaw)))
    add("inbound", "twilio decode total (TwilioCodec.decode)", _best_us(lambda: codec.decode(msg)))

    def slice_payload() -> str:
        start = msg.index('"payload":"') + 11
        return msg[start:msg.index('"', start)]

    add("inbound", "alt: slice payload out of the text (no json)", _best_us(slice_payload))
    table16 = np.frombuffer(ulaw_to_pcm16(bytes(range(256))), dtype="<i2")
    add("inbound", "alt: ulaw decode via np.take on a cached table",
        _best_us(lambda: table16.take(np.frombuffer(ulaw, np.uint8)).tobytes()))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            import audioop

        add("inbound", "yardstick: audioop.ulaw2lin (C, removed in 3.13)", _best_us(lambda: audioop.ulaw2lin(ulaw, 2)))
    except ImportError:
        audioop = None  # type: ignore[assignment]

    try:
        from sutradhar.audio.vad import make_vad

        vad = make_vad("webrtc", 8000, 2)
        add("inbound", "WebRTC VAD is_speech (8 kHz)", _best_us(lambda: vad.is_speech(pcm)))
    except ImportError:
        pass
    try:
        from sutradhar.audio.turns import TurnDetector
        from sutradhar.audio.vad import make_vad

        det = TurnDetector(make_vad("webrtc", 8000, 2))
        silence = bytes(FRAME_8K * 2)
        add("inbound", "TurnDetector.push (silence, with VAD)", _best_us(lambda: det.push(silence)))
    except ImportError:
        pass

    # --- outbound ---
    add("outbound", "pcm16_to_ulaw (numpy table)", _best_us(lambda: pcm16_to_ulaw(pcm)))
    add("outbound", "pybase64.b64encode(...).decode()", _best_us(lambda: pybase64.b64encode(ulaw).decode()))
    add("outbound", "alt: base64.b64encode(...).decode() (stdlib)",
        _best_us(lambda: base64.b64encode(ulaw).decode()))
    add("outbound", "twilio encode total (TwilioCodec.audio)", _best_us(lambda: codec.audio(pcm)))
    enc_hi = bytes(_encode_high_table())
    add("outbound", "alt: ulaw encode via bytes.translate on the high byte (approx.)",
        _best_us(lambda: pcm[1::2].translate(enc_hi)))
    if audioop is not None:
        add("outbound", "yardstick: audioop.lin2ulaw", _best_us(lambda: audioop.lin2ulaw(pcm, 2)))
    add("outbound", "json.dumps of a mark message",
        _best_us(lambda: json.dumps({"event": "mark", "streamSid": "MZ01", "mark": {"name": "3.1"}})))

    # --- per TTS chunk ---
    chunk16 = tone(3200, 16000)  # 200 ms at 16 kHz
    rs = StreamResampler(16000, 8000)
    first = len(rs.process(chunk16)) // 2
    later = len(rs.process(chunk16)) // 2
    add("per 200 ms TTS chunk", "StreamResampler 16k->8k (soxr HQ)",
        _best_us(lambda: rs.process(chunk16), number=300))
    held_ms = (1600 - first) / 8
    stream_delay = {"first_chunk_samples_out": first, "later_chunk_samples_out": later,
                    "expected_samples": 1600, "held_back_ms": round(held_ms, 1)}
    try:
        import soxr

        for quality in ("QQ", "LQ", "MQ"):
            s = soxr.ResampleStream(16000, 8000, 1, dtype="int16", quality=quality)
            out = len(s.resample_chunk(np.frombuffer(chunk16, "<i2")))
            stream_delay[f"first_chunk_samples_out_{quality}"] = out
    except ImportError:
        pass

    inbound = rows["inbound"].get("twilio decode total (TwilioCodec.decode)", 0) \
        + rows["inbound"].get("TurnDetector.push (silence, with VAD)", 0)
    outbound = rows["outbound"]["twilio encode total (TwilioCodec.audio)"]
    per_call_second_us = 50 * (inbound + outbound)
    return {
        "us_per_frame": rows,
        "resampler_stream_delay": stream_delay,
        "per_call": {"inbound_us_per_frame": round(inbound, 2), "outbound_us_per_frame": round(outbound, 2),
                     "codec_cpu_percent_of_core_per_call": round(per_call_second_us / 1e4, 3),
                     f"codec_cpu_percent_of_core_at_{calls}_calls": round(per_call_second_us * calls / 1e4, 1)},
        "note": "codec work only; the WebSocket framing (uvicorn/websockets) and asyncio scheduling per "
                "message come on top and are measured by the load benchmark as a whole",
    }


def _encode_high_table() -> list[int]:
    """mu-law code for each high byte of a PCM16 sample (drops the low byte: ~8-bit precision)."""
    import numpy as np

    from sutradhar.audio.codecs import pcm16_to_ulaw

    highs = (np.arange(256, dtype=np.int32) << 8).astype(np.uint16).astype("<i2")
    return list(pcm16_to_ulaw(highs.tobytes()))
