import numpy as np

from sutradhar.audio.codecs import (
    StreamResampler,
    pcm16_to_ulaw,
    pcm16_to_wav,
    resample,
    rms,
    strip_wav_header,
    ulaw_to_pcm16,
    wav_to_pcm16,
)


def sine(rate, seconds=0.5, freq=440, amp=10000):
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype("<i2").tobytes()


def test_mulaw_round_trip_is_close_and_matches_g711_reference_points():
    pcm = sine(8000)
    back = np.frombuffer(ulaw_to_pcm16(pcm16_to_ulaw(pcm)), dtype="<i2").astype(float)
    orig = np.frombuffer(pcm, dtype="<i2").astype(float)
    assert np.max(np.abs(back - orig)) < 0.04 * 10000
    # G.711: 0xFF and 0x7F decode to 0; 0x00 is the most negative value
    assert ulaw_to_pcm16(bytes([0xFF, 0x7F])) == b"\x00\x00\x00\x00"
    assert np.frombuffer(ulaw_to_pcm16(b"\x00"), dtype="<i2")[0] == -32124
    assert pcm16_to_ulaw(b"\x00\x00") == b"\xff"
    assert len(pcm16_to_ulaw(bytes(320))) == 160


def test_mulaw_encoding_of_every_16_bit_sample_matches_the_g711_table():
    from sutradhar.audio.codecs import _build_encode_table

    samples = np.arange(-32768, 32768, dtype="<i2")
    assert pcm16_to_ulaw(samples.tobytes()) == _build_encode_table().tobytes()  # built for -32768..32767


def test_mulaw_decoding_of_every_code_matches_the_g711_table():
    from sutradhar.audio.codecs import _build_decode_table

    assert ulaw_to_pcm16(bytes(range(256))) == _build_decode_table().tobytes()
    assert ulaw_to_pcm16(memoryview(b"\xff\x00")) == ulaw_to_pcm16(b"\xff\x00")  # any bytes-like
    assert ulaw_to_pcm16(b"") == b""


def test_resample_preserves_duration_and_level():
    pcm = sine(22050)
    out = resample(pcm, 22050, 8000)
    assert abs(len(out) / 2 - 4000) <= 2
    assert abs(rms(out) - rms(pcm)) / rms(pcm) < 0.05
    assert resample(pcm, 8000, 8000) is pcm


def test_stream_resampler_matches_total_length():
    r = StreamResampler(16000, 8000)
    pcm = sine(16000, 1.0)
    out = b"".join(r.process(pcm[i:i + 640]) for i in range(0, len(pcm), 640)) + r.process(b"", last=True)
    assert abs(len(out) / 2 - 8000) < 50


def test_wav_round_trip_and_header_strip():
    pcm = sine(16000)
    wav = pcm16_to_wav(pcm, 16000)
    assert wav_to_pcm16(wav) == (pcm, 16000)
    assert strip_wav_header(wav) == (pcm, 16000)
    assert strip_wav_header(pcm) == (pcm, None)
