"""Each carrier codec (through the Transport that sends what it encodes): wire message -> internal
event, and internal event -> wire message."""

from __future__ import annotations

import base64
import json

import pytest

from sutradhar.audio.codecs import pcm16_to_ulaw, ulaw_to_pcm16
from sutradhar.telephony.browser.codec import BrowserCodec
from sutradhar.telephony.exotel.codec import ExotelCodec
from sutradhar.telephony.plivo.codec import PlivoCodec, parse_extra_headers
from sutradhar.telephony.transport import (
    Dtmf,
    MalformedMessage,
    MarkPlayed,
    Start,
    Stop,
    Text,
    Transport,
)
from sutradhar.telephony.twilio.codec import TwilioCodec
from sutradhar.testing.scripted import tone
from tests.support.calls import RecordingSocket
from tests.support.server import make_settings

SETTINGS = make_settings()
PCM = ulaw_to_pcm16(pcm16_to_ulaw(tone(160, 8000)))  # 20 ms that survives mu-law exactly


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_twilio_codec_round_trip() -> None:
    ws = RecordingSocket()
    t = Transport(ws, TwilioCodec())  # type: ignore[arg-type]
    assert t.decode('{"event":"connected","protocol":"Call","version":"1.0.0"}') is None
    start = t.decode(json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": "MZ1", "start": {
        "accountSid": "AC1", "streamSid": "MZ1", "callSid": "CA1", "tracks": ["inbound"],
        "customParameters": {"language": "hi-IN", "call_id": "CA1"},
        "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}}))
    assert start == Start("CA1", "CA1", "hi-IN", {"stream_sid": "MZ1", "account_sid": "AC1"})
    media = {"event": "media", "streamSid": "MZ1", "media": {"track": "inbound", "payload": b64(pcm16_to_ulaw(PCM))}}
    assert t.decode(json.dumps(media)) == PCM
    assert t.decode('{"event":"dtmf","dtmf":{"track":"inbound_track","digit":"5"}}') == Dtmf("5")
    assert t.decode('{"event":"mark","mark":{"name":"3.1"}}') == MarkPlayed("3.1")
    assert t.decode('{"event":"stop","stop":{}}') == Stop("caller_hangup")
    await t.send_audio(PCM)
    await t.send_mark("3.1")
    await t.send_clear()
    out = ws.json()
    assert out[0] == {"event": "media", "streamSid": "MZ1", "media": {"payload": b64(pcm16_to_ulaw(PCM))}}
    assert len(base64.b64decode(out[0]["media"]["payload"])) == 160
    assert out[1] == {"event": "mark", "streamSid": "MZ1", "mark": {"name": "3.1"}}
    assert out[2] == {"event": "clear", "streamSid": "MZ1"}


@pytest.mark.parametrize("message", ["nope", "[]", b"\x00", '{"event":"media"}', '{"event":"weird"}',
                                     '{"event":"media","media":{"payload":"***"}}', '{"event":"dtmf","dtmf":{}}'])
def test_twilio_codec_rejects_malformed_messages(message: str | bytes) -> None:
    with pytest.raises((MalformedMessage, KeyError, ValueError)):
        Transport(RecordingSocket(), TwilioCodec()).decode(message)  # type: ignore[arg-type]


async def test_exotel_codec_is_pcm16_snake_case_and_takes_the_rate_from_start() -> None:
    ws = RecordingSocket()
    t = Transport(ws, ExotelCodec(8000))  # type: ignore[arg-type]
    start = t.decode(json.dumps({"event": "start", "sequence_number": "1", "stream_sid": "S1", "start": {
        "stream_sid": "S1", "call_sid": "C1", "account_sid": "A1", "custom_parameters": {"language": "te-IN"},
        "media_format": {"encoding": "audio/x-raw", "sample_rate": "16000", "bit_rate": "16"}}}))
    assert isinstance(start, Start) and start.language == "te-IN" and start.call_id == "C1"
    assert t.sample_rate == 16000
    pcm = tone(1600, 16000)  # Exotel sends ~100 ms per message
    assert t.decode(json.dumps({"event": "media", "media": {"payload": b64(pcm)}})) == pcm
    assert t.decode('{"event":"dtmf","dtmf":{"digit":"2","duration":"100"}}') == Dtmf("2")
    assert t.decode('{"event":"stop","stop":{"reason":"callended"}}') == Stop("callended")
    with pytest.raises(MalformedMessage):
        t.decode(json.dumps({"event": "media", "media": {"payload": b64(b"\x01\x02\x03")}}))
    await t.send_audio(pcm)
    await t.send_mark("1.0")
    await t.send_clear()
    out = ws.json()
    assert out[0]["stream_sid"] == "S1" and base64.b64decode(out[0]["media"]["payload"]) == pcm
    assert out[1:] == [{"event": "mark", "stream_sid": "S1", "mark": {"name": "1.0"}},
                       {"event": "clear", "stream_sid": "S1"}]
    # outbound pacing unit: 100 ms, a multiple of 320 bytes at every rate Exotel offers
    for rate in (8000, 16000, 24000):
        assert (rate * ExotelCodec.frame_ms // 1000 * 2) % 320 == 0


async def test_plivo_codec_speaks_play_audio_checkpoint_and_clear_audio() -> None:
    ws = RecordingSocket()
    t = Transport(ws, PlivoCodec(SETTINGS.languages))  # type: ignore[arg-type]
    start = t.decode(json.dumps({"event": "start", "sequenceNumber": 1, "extra_headers": "language=guIN",
                                 "start": {"callId": "u-1", "streamId": "s-1", "accountId": "MA1",
                                           "tracks": ["inbound"],
                                           "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000}}}))
    assert isinstance(start, Start) and start.language == "gu-IN" and start.carrier_call_id == "u-1"
    assert t.decode(json.dumps({"event": "media", "sequenceNumber": 2, "streamId": "s-1",
                                "media": {"track": "inbound", "payload": b64(pcm16_to_ulaw(PCM))}})) == PCM
    assert t.decode('{"event":"playedStream","sequenceNumber":9,"streamId":"s-1","name":"2.0"}') == MarkPlayed("2.0")
    assert t.decode('{"event":"clearedAudio","sequenceNumber":0,"streamId":"s-1"}') is None
    assert t.decode('{"event":"dtmf","dtmf":{"digit":"0"}}') == Dtmf("0")
    await t.send_audio(PCM)
    await t.send_mark("2.0")
    await t.send_clear()
    out = ws.json()
    assert out[0] == {"event": "playAudio", "streamId": "s-1", "media": {
        "contentType": "audio/x-mulaw", "sampleRate": 8000, "payload": b64(pcm16_to_ulaw(PCM))}}
    assert out[1] == {"event": "checkpoint", "streamId": "s-1", "name": "2.0"}
    assert out[2] == {"event": "clearAudio", "streamId": "s-1"}
    assert parse_extra_headers("language=hiIN,tenant=acme") == {"language": "hiIN", "tenant": "acme"}


async def test_browser_codec_binary_audio_and_json_control() -> None:
    ws = RecordingSocket()
    t = Transport(ws, BrowserCodec())  # type: ignore[arg-type]
    start = t.decode('{"type":"start","language":"en-IN","call_id":"chosen-by-page"}')
    assert isinstance(start, Start) and start.call_id.startswith("web-") and start.language == "en-IN"
    assert t.decode(b"\x01\x00\x02\x00") == b"\x01\x00\x02\x00"
    assert t.decode('{"type":"text","text":" hi "}') == Text("hi")
    assert t.decode('{"type":"mark","name":"1.0"}') == MarkPlayed("1.0")
    with pytest.raises(MalformedMessage):
        t.decode(b"\x01")
    await t.send_audio(b"\x00\x00")
    await t.send_clear()
    await t.send_event({"type": "transcript", "text": "नमस्ते"})
    assert ws.sent[0] == b"\x00\x00" and json.loads(ws.sent[1]) == {"type": "clear"}
    assert "नमस्ते" in ws.sent[2]


@pytest.mark.parametrize("transport,message", [
    (lambda: Transport(RecordingSocket(), TwilioCodec()), {"event": "mark", "mark": {"name": ["x"]}}),
    (lambda: Transport(RecordingSocket(), ExotelCodec(8000)), {"event": "mark", "mark": {"name": {"a": 1}}}),
    (lambda: Transport(RecordingSocket(), PlivoCodec(SETTINGS.languages)), {"event": "playedStream", "name": []}),
])
def test_a_mark_whose_name_is_not_text_is_malformed(transport, message) -> None:
    # Found by the e2e fuzzer: a list as a mark name used to crash the socket handler.
    with pytest.raises(MalformedMessage):
        transport().decode(json.dumps(message))  # type: ignore[arg-type]


@pytest.mark.parametrize("transport,message", [
    (lambda: Transport(RecordingSocket(), TwilioCodec()), {"event": "dtmf", "dtmf": {"digit": "²"}}),
    (lambda: Transport(RecordingSocket(), ExotelCodec(8000)), {"event": "dtmf", "dtmf": {"digit": "12"}}),
    (lambda: Transport(RecordingSocket(), PlivoCodec(SETTINGS.languages)), {"event": "dtmf", "dtmf": {"digit": "A"}}),
    (lambda: Transport(RecordingSocket(), BrowserCodec()), {"type": "dtmf", "digit": ""}),
], ids=["twilio-superscript", "exotel-two-keys", "plivo-letter", "browser-empty"])
def test_a_dtmf_digit_that_is_not_one_keypad_key_is_malformed(transport, message) -> None:
    # "²".isdigit() is True but int("²") raises: the session's language switch used to crash on it.
    with pytest.raises(MalformedMessage):
        transport().decode(json.dumps(message))  # type: ignore[arg-type]
