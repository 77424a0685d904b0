"""A caller simulator: plays WAV files into a running server as Twilio, Exotel, Plivo or a browser.

It behaves like the carrier: optional IVR webhooks first, then the media WebSocket; caller audio in
real time (or `speed` times faster), marks echoed only once the audio before them has "played" by
the real-time clock, `clear` honoured (pending marks sent back at once, as Twilio does). It records
the agent's audio and measures per-turn voice-to-voice latency: end of caller speech (last voiced
frame sent) to the first agent audio frame received after it.

Library use (tests, benchmarks):  `result = await simulate(SimConfig(base_url, turns=[...]))`.
CLI:  `sutradhar call --url http://127.0.0.1:8000 --wav hello.wav --wav bye.wav --ivr-digit 3`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import time
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import websockets

from sutradhar.audio.codecs import (
    read_wav_file,
    resample,
    write_wav_file,
)
from sutradhar.testing.pacing import Pacing
from sutradhar.testing.pacing import measure as measure_pacing
from sutradhar.testing.wires import WIRES, BrowserWire
from sutradhar.urls import websocket_url

CARRIERS = ("twilio", "exotel", "plivo", "browser")
VOICED_RMS = 300.0  # a frame louder than this counts as caller speech (for the latency clock)
KEY_GAP_S = 0.25  # between the keys of a `CallerTurn.digits` turn, as a person presses them


@dataclass
class CallerTurn:
    """One thing the caller says. `barge_in_at`: start this many seconds into the agent's reply
    to the previous turn (or the greeting) instead of waiting for it to finish."""

    audio: bytes = b""  # PCM16 mono at `sample_rate`
    sample_rate: int = 8000
    barge_in_at: float | None = None
    text: str | None = None  # browser only: a typed turn instead of audio
    digits: str | None = None  # keys pressed instead of speaking, KEY_GAP_S apart (any carrier)
    after_s: float | None = None  # start this long after the previous turn ended, reply or not

    @classmethod
    def from_wav(cls, path: str, barge_in_at: float | None = None) -> CallerTurn:
        pcm, rate = read_wav_file(path)
        return cls(pcm, rate, barge_in_at)


@dataclass
class SimConfig:
    base_url: str  # http://host:port of the server
    turns: list[CallerTurn] = field(default_factory=list)
    carrier: str = "twilio"
    ivr_digit: str | None = None  # twilio: run the IVR webhooks and press this digit ("" = no key)
    # Run the carrier's answer webhook first and stream as it says, its stream token included (Twilio
    # IVR, Plivo answer XML, Exotel stream URL). None: Twilio when auth_token or ivr_digit is set.
    webhook: bool | None = None
    language: str | None = None  # stream parameter (all carriers) when the IVR is not used
    # More stream parameters, as the carrier's answer carried them (e.g. Plivo's extraHeaders).
    stream_params: dict[str, str] = field(default_factory=dict)
    # twilio: an outbound call's Url (the TwiML Twilio fetches when the callee answers), fetched
    # instead of the IVR; the stream's parameters (language, token) come from it.
    answer_url: str | None = None
    dtmf: list[tuple[str, float]] = field(default_factory=list)  # (digit, seconds after stream start)
    speed: float = 1.0  # caller audio this many times faster than real time
    gap_s: float = 0.4  # caller silence after the agent finishes, before the next turn
    reply_wait_s: float = 15.0  # give up waiting for an agent reply after this long
    tail_s: float = 0.5  # stay on the line after the last reply
    hang_up: bool = True  # send stop and close at the end (False: wait for the server to close)
    auth_token: str | None = None  # twilio: sign webhooks and the handshake; plivo: sign the answer (V3)
    call_sid: str = ""
    basic_auth: tuple[str, str] | None = None  # exotel: the applet's KEY, TOKEN (stream URL and socket)
    sample_rate: int = 8000  # exotel: ?sample-rate=
    token: str | None = None  # browser: ?token=
    admin_token: str | None = None  # ADMIN_TOKEN, to read the live call's summary
    timeout_s: float = 60.0
    send_stream_messages: bool = True  # False: connect and stay silent (inactivity tests)


@dataclass
class TurnResult:
    index: int
    speech_start: float | None = None  # monotonic time the first voiced caller frame was sent
    speech_end: float | None = None  # monotonic time the last voiced caller frame was sent
    first_audio: float | None = None  # first agent frame received after it
    barge_in: bool = False

    @property
    def latency_ms(self) -> float | None:
        if self.speech_end is None or self.first_audio is None:
            return None
        return round((self.first_audio - self.speech_end) * 1000, 1)


@dataclass
class CallResult:
    carrier: str
    call_id: str
    language: str | None = None
    started_at: float = 0.0
    frames: list[tuple[float, int]] = field(default_factory=list)  # (arrival, bytes of PCM16)
    marks: list[tuple[float, str]] = field(default_factory=list)  # marks received
    marks_echoed: list[tuple[float, str]] = field(default_factory=list)
    clears: list[float] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)  # other server messages
    turns: list[TurnResult] = field(default_factory=list)
    agent_audio: bytearray = field(default_factory=bytearray)  # PCM16 at agent_rate
    agent_rate: int = 8000
    closed_by_server: bool = False
    close_code: int | None = None
    close_reason: str = ""
    summary: dict[str, Any] | None = None  # the server's /telephony/calls/{id} just before hanging up
    ivr_twiml: list[str] = field(default_factory=list)

    @property
    def latencies_ms(self) -> list[float]:
        return [t.latency_ms for t in self.turns if t.latency_ms is not None]

    def transcript(self) -> list[dict[str, Any]]:
        if self.summary and self.summary.get("turns"):
            return self.summary["turns"]
        return [e for e in self.events if e.get("type") == "turn"]

    def frame_gaps_ms(self) -> list[float]:
        times = [t for t, _ in self.frames]
        return [(b - a) * 1000 for a, b in zip(times, times[1:])]

    def frame_seconds(self) -> list[float]:
        """The audio each agent media message held (PCM16 at the agent's rate)."""
        return [size / 2 / self.agent_rate for _, size in self.frames]

    def pacing(self) -> Pacing:
        """How evenly the agent audio arrived (testing/pacing.py): jitter, bunching, dropouts."""
        return measure_pacing([t for t, _ in self.frames], self.frame_seconds(), self.clears)


# --- the call ---

class _Call:
    def __init__(self, cfg: SimConfig) -> None:
        if cfg.carrier not in WIRES:
            raise ValueError(f"unknown carrier {cfg.carrier!r} ({', '.join(CARRIERS)})")
        self.cfg = cfg
        self.call_sid = cfg.call_sid or ("CA" + uuid.uuid4().hex)
        self.wire = WIRES[cfg.carrier](cfg.base_url, self.call_sid, "MZ" + uuid.uuid4().hex,
                                       token=cfg.token, sample_rate=cfg.sample_rate)
        self.result = CallResult(cfg.carrier, self.call_sid, cfg.language, agent_rate=self.wire.rate)
        self.play_end = 0.0  # when the agent audio received so far finishes playing
        self.last_audio = 0.0
        self.pending_marks: list[tuple[float, str]] = []
        self.reply_started: float | None = None  # first agent frame of the current reply
        self.ws: Any = None
        self.closed = asyncio.Event()
        self._we_closed = False

    # The agent is talking while audio is still "playing" or its marks are still pending.
    def agent_busy(self, now: float) -> bool:
        return now < self.play_end or bool(self.pending_marks) or now - self.last_audio < 0.25

    async def run(self) -> CallResult:
        cfg = self.cfg
        url = self.wire.url()
        params: dict[str, str] = {}
        webhook = cfg.webhook
        if webhook is None:
            webhook = cfg.carrier == "twilio" and (cfg.ivr_digit is not None or bool(cfg.auth_token)
                                                   or cfg.answer_url is not None)
        if webhook:
            params, url = await self._answer(url)
        params = {**params, **cfg.stream_params}
        params.setdefault("call_id", self.call_sid)
        if cfg.language and ("language" not in params or cfg.ivr_digit is None):
            params["language"] = cfg.language  # the stream parameter, unless an IVR digit chose
        self.result.language = params.get("language")
        headers = {}
        if self.cfg.basic_auth and self.cfg.carrier == "exotel":
            credentials = base64.b64encode(":".join(self.cfg.basic_auth).encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        if self.cfg.auth_token and self.cfg.carrier == "twilio":
            from twilio.request_validator import RequestValidator

            signed = websocket_url(url, secure=True)
            headers["X-Twilio-Signature"] = RequestValidator(self.cfg.auth_token).compute_signature(signed, {})
        async with websockets.connect(url, additional_headers=headers, max_size=2**22) as ws:
            self.ws = ws
            self.result.started_at = time.monotonic()
            if self.cfg.send_stream_messages:
                for message in self.wire.opening(params):
                    await ws.send(message)
            receiver = asyncio.create_task(self._receive())
            try:
                await asyncio.wait_for(self._send(), self.cfg.timeout_s)
            except TimeoutError:
                pass
            finally:
                if not self.closed.is_set():
                    await self._fetch_summary()
                    if self.cfg.hang_up:
                        self._we_closed = True
                        stop = self.wire.stop()
                        if stop is not None:
                            try:
                                await ws.send(stop)
                            except websockets.ConnectionClosed:
                                pass
                        await ws.close()
                    else:
                        await asyncio.wait_for(self.closed.wait(), self.cfg.timeout_s)
                await receiver
        return self.result

    async def _answer(self, url: str) -> tuple[dict[str, str], str]:
        """The carrier's answer webhook: the stream's parameters (its token too) and its URL."""
        carrier = self.cfg.carrier
        if carrier == "twilio":
            return (await self._outbound_answer() if self.cfg.answer_url else await self._ivr()), url
        async with httpx.AsyncClient(base_url=self.cfg.base_url, timeout=10) as client:
            if carrier == "plivo":
                query = {"language": self.cfg.language} if self.cfg.language else {}
                form = {"CallUUID": self.call_sid}
                headers = {}
                if self.cfg.auth_token:
                    from sutradhar.telephony.plivo.signature import signature_v3

                    url = str(httpx.URL(self.cfg.base_url.rstrip("/") + "/plivo/answer", params=query))
                    nonce = uuid.uuid4().hex
                    headers = {"X-Plivo-Signature-V3-Nonce": nonce,
                               "X-Plivo-Signature-V3": signature_v3(self.cfg.auth_token, "POST", url, form, nonce)}
                response = await client.post("/plivo/answer", params=query, data=form, headers=headers)
                response.raise_for_status()
                stream = ET.fromstring(response.text).find("./Stream")
                if stream is None:
                    raise RuntimeError(f"Plivo answer did not stream the call: {response.text}")
                extra = dict(part.split("=", 1) for part in (stream.get("extraHeaders") or "").split(",") if "=" in part)
                return extra, (stream.text or url).strip()
            if carrier == "exotel":
                response = await client.get("/exotel/stream", auth=self.cfg.basic_auth,
                                            params={"CallSid": self.call_sid, "sample-rate": str(self.wire.rate)})
                response.raise_for_status()
                return {}, response.json()["url"]
        return {}, url

    async def _ivr(self) -> dict[str, str]:
        form = {"CallSid": self.call_sid, "AccountSid": "ACsimulator", "From": "+910000000000",
                "To": "+910000000001", "CallStatus": "in-progress"}
        async with httpx.AsyncClient(base_url=self.cfg.base_url, timeout=10) as client:
            voice = await self._post(client, "/twilio/voice", form)
            self.result.ivr_twiml.append(voice)
            digits = {"Digits": self.cfg.ivr_digit} if self.cfg.ivr_digit else {}
            twiml = await self._post(client, "/twilio/language?attempt=1", {**form, **digits})
            self.result.ivr_twiml.append(twiml)
            if "<Stream" not in twiml:  # wrong key: the menu again; press nothing the second time
                twiml = await self._post(client, "/twilio/language?attempt=2", form)
                self.result.ivr_twiml.append(twiml)
        stream = ET.fromstring(twiml).find("./Connect/Stream")
        if stream is None:
            raise RuntimeError(f"IVR did not connect a stream: {twiml}")
        return {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}

    async def _outbound_answer(self) -> dict[str, str]:
        form = {"CallSid": self.call_sid, "AccountSid": "ACsimulator", "From": "+910000000001",
                "To": "+910000000000", "CallStatus": "in-progress", "Direction": "outbound-api"}
        async with httpx.AsyncClient(timeout=10) as client:
            twiml = await self._post(client, str(self.cfg.answer_url), form)
        self.result.ivr_twiml.append(twiml)
        stream = ET.fromstring(twiml).find("./Connect/Stream")
        if stream is None:
            raise RuntimeError(f"the outbound answer did not connect a stream: {twiml}")
        return {p.get("name", ""): p.get("value", "") for p in stream.findall("Parameter")}

    async def _post(self, client: httpx.AsyncClient, path: str, form: dict[str, str]) -> str:
        """POST a webhook (a path on the server, or a full URL), signed like Twilio when asked."""
        url = path if path.startswith(("http://", "https://")) else self.cfg.base_url.rstrip("/") + path
        headers = {}
        if self.cfg.auth_token:
            from twilio.request_validator import RequestValidator

            headers["X-Twilio-Signature"] = RequestValidator(self.cfg.auth_token).compute_signature(url, form)
        response = await client.post(url, data=form, headers=headers)
        response.raise_for_status()
        return response.text

    async def _fetch_summary(self) -> None:
        if self.cfg.carrier == "browser":
            return
        try:
            headers = {"Authorization": f"Bearer {self.cfg.admin_token}"} if self.cfg.admin_token else {}
            async with httpx.AsyncClient(base_url=self.cfg.base_url, timeout=5, headers=headers) as client:
                response = await client.get(f"/telephony/calls/{self.call_sid}")
            if response.status_code == 200:
                self.result.summary = response.json()
        except httpx.HTTPError:
            pass

    async def _receive(self) -> None:
        result, wire = self.result, self.wire
        try:
            async for message in self.ws:
                now = time.monotonic()
                kind, value = wire.parse(message)
                if kind == "audio":
                    result.frames.append((now, len(value)))
                    result.agent_audio += value
                    if now >= self.play_end and now - self.last_audio >= 0.25:  # a new reply begins
                        self.reply_started = now
                    self.last_audio = now
                    duration = len(value) / 2 / wire.rate
                    self.play_end = max(self.play_end, now) + duration
                    for turn in result.turns:
                        if turn.speech_end is not None and turn.first_audio is None and now > turn.speech_end:
                            turn.first_audio = now
                elif kind == "mark":
                    result.marks.append((now, value))
                    # echoed when the audio before it has played (plus one frame of carrier latency)
                    self.pending_marks.append((max(self.play_end, now), value))
                elif kind == "clear":
                    result.clears.append(now)
                    self.play_end = now
                    if self.cfg.carrier == "twilio":  # Twilio sends every pending mark back on clear
                        for _, name in self.pending_marks:
                            await self._echo(name)
                    self.pending_marks.clear()
                else:
                    result.events.append(value)
        except websockets.ConnectionClosed:
            pass
        result.closed_by_server = not self._we_closed
        result.close_code = self.ws.close_code
        result.close_reason = self.ws.close_reason or ""
        self.closed.set()

    async def _echo(self, name: str) -> None:
        message = self.wire.mark_played(name)
        if message is not None:
            try:
                await self.ws.send(message)
            except websockets.ConnectionClosed:
                return
        self.result.marks_echoed.append((time.monotonic(), name))

    async def _tick_marks(self, now: float) -> None:
        while self.pending_marks and self.pending_marks[0][0] <= now:
            _, name = self.pending_marks.pop(0)
            await self._echo(name)

    async def _send(self) -> None:
        """The caller's side of the stream: a frame every 20 ms (divided by speed), always."""
        cfg, wire = self.cfg, self.wire
        rate = wire.rate
        frame_bytes = rate * wire.frame_ms // 1000 * 2
        tick = wire.frame_ms / 1000 / cfg.speed
        silence = bytes(frame_bytes)
        dtmf = sorted(cfg.dtmf, key=lambda d: d[1])
        turns = list(enumerate(cfg.turns))
        t0 = self.result.started_at  # the receiver may already have seen the greeting start
        next_tick = time.monotonic()
        batch: list[bytes] = []
        current: list[bytes] = []  # frames of the turn being spoken
        keys: list[str] = []  # keys of the turn being pressed
        next_key = 0.0
        last_voiced = first_voiced = -1
        turn_result: TurnResult | None = None
        waiting_since = t0
        # wait for the greeting (or previous reply) to start, then for it to end (or barge in)
        phase = "await_reply" if cfg.send_stream_messages else "idle"
        idle_since: float | None = None
        while not self.closed.is_set():
            now = time.monotonic()
            await self._tick_marks(now)
            while dtmf and (now - t0) * cfg.speed >= dtmf[0][1]:
                await self._send_msg(wire.dtmf(dtmf.pop(0)[0]))
            if phase == "await_reply":
                nxt = turns[0][1] if turns else None
                if nxt is not None and nxt.after_s is not None and now - waiting_since >= nxt.after_s:
                    phase = "start_turn"
                elif self.reply_started is not None and self.reply_started >= waiting_since:
                    phase = "in_reply"
                elif now - waiting_since > cfg.reply_wait_s:
                    phase = "in_reply"  # no reply came; carry on
            if phase == "in_reply":
                nxt = turns[0][1] if turns else None
                if nxt is not None and nxt.barge_in_at is not None and self.reply_started is not None \
                        and now - self.reply_started >= nxt.barge_in_at:
                    phase = "start_turn"
                elif not self.agent_busy(now):
                    idle_since = idle_since or now
                    if (now - idle_since) * cfg.speed >= (cfg.gap_s if turns else cfg.tail_s):
                        if not turns:
                            return
                        phase = "start_turn"
                else:
                    idle_since = None
            if phase == "start_turn":
                index, turn = turns.pop(0)
                turn_result = TurnResult(index, barge_in=turn.barge_in_at is not None)
                self.result.turns.append(turn_result)
                idle_since = None
                if turn.digits:
                    keys, next_key = list(turn.digits), now
                    phase = "keying"
                elif turn.text is not None and isinstance(wire, BrowserWire):
                    await self._send_msg(wire.text(turn.text))
                    turn_result.speech_end = time.monotonic()
                    phase, waiting_since = "await_reply", time.monotonic()
                else:
                    pcm = resample(turn.audio, turn.sample_rate, rate) if turn.sample_rate != rate else turn.audio
                    pcm += bytes(-len(pcm) % frame_bytes)
                    current = [pcm[i:i + frame_bytes] for i in range(0, len(pcm), frame_bytes)]
                    levels = [np.sqrt(np.mean(np.frombuffer(f, "<i2").astype(np.float64) ** 2)) for f in current]
                    voiced = [i for i, level in enumerate(levels) if level > VOICED_RMS]
                    last_voiced = voiced[-1] if voiced else len(current) - 1
                    first_voiced = voiced[0] if voiced else 0
                    phase = "talking"
            if phase == "keying" and now >= next_key:
                await self._send_msg(wire.dtmf(keys.pop(0)))
                next_key = now + KEY_GAP_S / cfg.speed
                if not keys:
                    if turn_result is not None:
                        turn_result.speech_end = time.monotonic()
                    phase, waiting_since = "await_reply", time.monotonic()
            if cfg.send_stream_messages:
                if phase == "talking" and current:
                    frame = current.pop(0)
                    if first_voiced == 0 and turn_result is not None and turn_result.speech_start is None:
                        turn_result.speech_start = time.monotonic()
                    first_voiced -= 1
                    last_voiced -= 1
                    if last_voiced == -1 and turn_result is not None:
                        turn_result.speech_end = time.monotonic()
                    if not current:
                        # The reply may begin before the recording's trailing silence has been
                        # sent (a short end-of-turn pause): it counts from the end of speech.
                        speech_end = turn_result.speech_end if turn_result is not None else None
                        phase, waiting_since = "await_reply", speech_end or time.monotonic()
                else:
                    frame = silence
                batch.append(frame)
                if len(batch) >= wire.frames_per_message:
                    await self._send_msg(wire.media(b"".join(batch)))
                    batch.clear()
            next_tick += tick
            delay = next_tick - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                next_tick = time.monotonic()

    async def _send_msg(self, message: str | bytes) -> None:
        try:
            await self.ws.send(message)
        except websockets.ConnectionClosed:
            self.closed.set()


async def simulate(cfg: SimConfig) -> CallResult:
    """Run one simulated call to completion and return everything observed."""
    return await _Call(cfg).run()


# --- CLI ---

def _parse_dtmf(value: str) -> tuple[str, float]:
    digit, _, at = value.partition("@")
    if not digit or not at:
        raise argparse.ArgumentTypeError(f"--dtmf wants DIGIT@SECONDS, e.g. 0@3.5, not {value!r}")
    return digit, float(at)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="sutradhar call",
        description="Simulate a caller against a running Sutradhar server: plays WAV files as caller "
                    "turns over the carrier's media WebSocket, echoes marks like the carrier, records "
                    "the agent and prints the transcript, language and voice-to-voice latency per turn.")
    p.add_argument("--url", default="http://127.0.0.1:8000", help="server base URL (default %(default)s)")
    p.add_argument("--carrier", choices=CARRIERS, default="twilio", help="wire protocol to speak")
    p.add_argument("--wav", action="append", default=[], metavar="FILE",
                   help="a caller turn (repeat for several turns, in order); any rate, mono PCM16")
    p.add_argument("--text", action="append", default=[], help="browser only: a typed caller turn")
    p.add_argument("--ivr-digit", default=None,
                   help="twilio: call /twilio/voice and press this digit in the language menu first")
    p.add_argument("--language", default=None, help="language parameter on the stream (no IVR), e.g. hi-IN")
    p.add_argument("--dtmf", action="append", default=[], type=_parse_dtmf, metavar="DIGIT@SECONDS",
                   help="press DIGIT this many seconds after the stream starts, e.g. 0@3.5")
    p.add_argument("--barge-in-at", type=float, default=None, metavar="SECONDS",
                   help="the last --wav (or --barge-in-wav) interrupts the agent's reply this many "
                        "seconds after it starts, instead of waiting for it to finish")
    p.add_argument("--barge-in-wav", default=None, help="what the caller says when barging in")
    p.add_argument("--speed", type=float, default=1.0, help="send caller audio N times faster than real time")
    p.add_argument("--gap", type=float, default=1.0, help="caller silence after each agent reply (s)")
    p.add_argument("--tail", type=float, default=2.0,
                   help="stay on the line this long after the agent goes quiet, so a reply whose next "
                        "sentence is still being generated is not cut off (s)")
    p.add_argument("--sample-rate", type=int, default=8000, help="exotel: stream rate (8000/16000)")
    p.add_argument("--token", default=None, help="browser: BROWSER_TOKEN")
    p.add_argument("--auth-token", default=None, help="twilio: sign requests with this auth token")
    p.add_argument("--webhook", action="store_true", default=None,
                   help="plivo/exotel: get the stream (and its token, STREAM_TOKENS=required) from the "
                        "answer webhook first; twilio does so with --auth-token or --ivr-digit")
    p.add_argument("--admin-token", default=None, help="ADMIN_TOKEN, to read the call's live summary")
    p.add_argument("--record", default=None, metavar="OUT.wav", help="save the agent's audio")
    p.add_argument("--timeout", type=float, default=120.0, help="give up after this many seconds")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    return p


def config_from_args(args: argparse.Namespace) -> SimConfig:
    turns = [CallerTurn.from_wav(path) for path in args.wav] + [CallerTurn(text=t) for t in args.text]
    if args.barge_in_at is not None:
        if args.barge_in_wav:
            turns.append(CallerTurn.from_wav(args.barge_in_wav, args.barge_in_at))
        elif turns:
            turns[-1].barge_in_at = args.barge_in_at
    return SimConfig(base_url=args.url.rstrip("/"), turns=turns, carrier=args.carrier, ivr_digit=args.ivr_digit,
                     language=args.language, dtmf=args.dtmf, speed=args.speed, gap_s=args.gap, tail_s=args.tail,
                     sample_rate=args.sample_rate, token=args.token, auth_token=args.auth_token,
                     admin_token=args.admin_token, webhook=args.webhook,
                     timeout_s=args.timeout)


def report(result: CallResult) -> dict[str, Any]:
    gaps = result.frame_gaps_ms()
    return {
        "call_id": result.call_id, "carrier": result.carrier,
        "language": (result.summary or {}).get("language") or result.language,
        "turns": [{"turn": t.index + 1, "barge_in": t.barge_in, "voice_to_voice_ms": t.latency_ms}
                  for t in result.turns],
        "transcript": [{"caller": t.get("text"), "agent": t.get("reply"), "language": t.get("language"),
                        "heard": t.get("heard") if t.get("interrupted") else None}
                       for t in result.transcript()],
        "agent_audio_s": round(len(result.agent_audio) / 2 / result.agent_rate, 2),
        "frames": len(result.frames), "median_frame_gap_ms": round(float(np.median(gaps)), 2) if gaps else None,
        "marks": len(result.marks), "clears": len(result.clears),
        "closed_by_server": result.closed_by_server, "close_reason": result.close_reason,
    }


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    result = asyncio.run(simulate(config_from_args(args)))
    if args.record:
        write_wav_file(args.record, bytes(result.agent_audio), result.agent_rate)
    out = report(result)
    if args.json:
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(f"call {out['call_id']} via {out['carrier']} language={out['language']}")
    for line in out["transcript"]:
        print(f"  caller: {line['caller']}\n  agent:  {line['agent']}  [{line['language']}]")
        if line["heard"] is not None:
            print(f"          (interrupted; the caller heard: {line['heard']!r})")
    for turn in out["turns"]:
        tag = " (barge-in)" if turn["barge_in"] else ""
        print(f"  turn {turn['turn']}{tag}: voice-to-voice {turn['voice_to_voice_ms']} ms")
    print(f"  agent audio {out['agent_audio_s']} s in {out['frames']} frames "
          f"(median gap {out['median_frame_gap_ms']} ms), marks {out['marks']}, clears {out['clears']}")
    if args.record:
        print(f"  recorded to {args.record}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
