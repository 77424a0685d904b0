"""A finished call's WAV re-encoded as Opus in OGG (RECORDING_FORMAT=ogg), with PyAV's libopus.

The live recording stays a WAV (telephony/recording.py: a crash loses at most a second); the OGG
is made once the call is over. Opus takes the wire rate (8 or 16 kHz) as it is and notes it in the
OpusHead, so nothing is resampled on the way in; players decode Opus at 48 kHz.
"""

from __future__ import annotations

import os
import wave
from pathlib import Path

import numpy as np

FRAME_MS = 20  # one Opus frame; libopus takes exactly this many samples per call


class OggUnavailable(RuntimeError):
    pass


def require_av() -> None:
    """Fail at start-up, not after the first call, when RECORDING_FORMAT=ogg cannot work."""
    try:
        import av
    except ImportError as exc:
        raise OggUnavailable("RECORDING_FORMAT=ogg needs PyAV: pip install 'sutradhar[ogg]'") from exc
    if "libopus" not in av.codecs_available:
        raise OggUnavailable("RECORDING_FORMAT=ogg: this PyAV build has no libopus encoder")


def wav_to_ogg_opus(src: Path, dst: Path, kbps: int) -> None:
    """Encode the stereo PCM16 WAV `src` as `dst`, written whole under a temporary name and
    renamed, so `dst` exists only complete (a crash mid-way leaves the WAV to convert again)."""
    import av

    partial = dst.with_name(dst.name + ".part")
    with wave.open(str(src), "rb") as wav:
        rate, channels = wav.getframerate(), wav.getnchannels()
        layout = "stereo" if channels == 2 else "mono"
        frame = rate * FRAME_MS // 1000
        out = av.open(str(partial), "w", format="ogg")
        try:
            stream = out.add_stream("libopus", rate=rate, layout=layout)
            stream.bit_rate = kbps * 1000
            while block := wav.readframes(frame):
                samples = np.frombuffer(block, dtype="<i2")
                if len(samples) < frame * channels:  # the last frame, padded to a whole one
                    samples = np.pad(samples, (0, frame * channels - len(samples)))
                audio = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout=layout)
                audio.sample_rate = rate
                for packet in stream.encode(audio):
                    out.mux(packet)
            for packet in stream.encode(None):
                out.mux(packet)
        finally:
            out.close()
    with open(partial, "rb") as done:
        os.fsync(done.fileno())
    os.replace(partial, dst)
