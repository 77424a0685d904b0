"""Load: the real server (a subprocess) and N concurrent simulated Twilio calls over loopback.

Each call is a Twilio Media Stream as Twilio speaks it: `connected`, `start`, then one `media`
message of 8 kHz mu-law every 20 ms for the whole call (speech or silence), marks echoed when the
audio before them has played (Twilio plays what it receives in real time), every pending mark
echoed at once on `clear`. The caller's words are real speech (espeak-ng), so the server's own VAD
and turn detector decide when a turn ends.

What is measured, per turn, on the client's clock (CLOCK_MONOTONIC, shared by all processes):
- voice-to-voice: end of caller speech (send time of the last frame the server's VAD hears as
  speech) to the first agent media frame received.
- orchestration overhead: first agent frame received - send time of the frame that completes the
  end-of-turn silence window - the scripted delays on the critical path. The frame indices come
  from replaying the server's TurnDetector offline on the exact mu-law audio the server receives
  (it is deterministic), so there is no guessing where the VAD thinks speech ended.
- barge-in: the caller starts talking 1.5 s into a reply; from the first voiced frame (and from
  the frame on which the VAD confirms speech, `barge_in_min_speech_ms`) to the `clear`, and to
  the last agent frame received.
- outbound pacing: inter-arrival of agent media messages within a reply (each holds 20-100 ms of
  audio, PLAYOUT_MESSAGE_MS; those due within the pacer's 40 ms lead are sent at once by design and
  skipped); jitter = |gap - the previous message's audio|; bunched = gap < 5 ms;
  late = the carrier's buffer ran dry mid-reply (a frame arrived after the previous one finished
  playing), i.e. an audible gap.
- cost: server CPU seconds per call-minute, (RSS at full load - idle RSS) / N, from psutil.

The client side runs in `procs` processes (one asyncio loop each, one shared 20 ms ticker per
process rather than a timer per call) so that one Python process driving hundreds of calls does not
become the bottleneck; each process reports its own loop lag so a client-bound run is visible.
"""

from __future__ import annotations

import asyncio
import json
import math
import multiprocessing as mp
import os
import tempfile
import time
import uuid
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.common import BENCH_DIR, summarize
from bench.scenario import TRANSCRIPTS, Delays, critical_path_ms
from sutradhar.testing.espeak_speech import espeak_pcm
from sutradhar.testing.pacing import audio_per_wall
from sutradhar.testing.pacing import measure as measure_pacing

FRAME_S = 0.020
WIRE_RATE = 8000
FRAME_BYTES = WIRE_RATE * 20 // 1000  # mu-law: one byte per sample
TRAILING_SILENCE_FRAMES = 40  # after each phrase; the end-of-turn window (30 frames) falls inside
AUDIO_CACHE = BENCH_DIR / ".cache"
CALLER_WPM = 165  # the callers' espeak-ng speed
SUMMARY_TRIES = 10  # asks for a call's summary until it is whole (see hang_up)


# --- caller audio ---

# --- a Twilio caller's wire messages (shared with bench/inbound.py) ---

CONNECTED = json.dumps({"event": "connected", "protocol": "Call", "version": "1.0.0"})


def twilio_start(stream_sid: str, call_sid: str, language: str = "en-IN") -> str:
    start = {"accountSid": "ACbench", "streamSid": stream_sid, "callSid": call_sid,
             "tracks": ["inbound"], "customParameters": {"call_id": call_sid, "language": language},
             "mediaFormat": {"encoding": "audio/x-mulaw", "sampleRate": 8000, "channels": 1}}
    return json.dumps({"event": "start", "sequenceNumber": "1", "streamSid": stream_sid, "start": start})


def twilio_media(seq: int, payload: str, stream_sid: str) -> str:
    """One inbound media message as Twilio lays it out (formatted, not json.dumps: the hot path)."""
    return ('{"event":"media","sequenceNumber":"%d","media":{"track":"inbound","chunk":"%d",'
            '"timestamp":"%d","payload":"%s"},"streamSid":"%s"}' % (seq, seq, seq * 20, payload, stream_sid))


def twilio_stop(seq: int, stream_sid: str, call_sid: str) -> str:
    return json.dumps({"event": "stop", "sequenceNumber": str(seq), "streamSid": stream_sid,
                       "stop": {"accountSid": "ACbench", "callSid": call_sid}})


@dataclass
class Phrase:
    text: str
    payloads: list[str]  # base64 mu-law, one per 20 ms frame (speech, then trailing silence)
    first_voiced: int  # first frame the server's VAD hears as speech
    confirm: int  # frame on which the detector confirms speech (SPEECH_STARTED: barge-in)
    last_voiced: int  # last frame the server's VAD hears as speech before the end-of-turn window
    trigger: int  # frame that completes the end-of-turn window (the utterance is emitted)
    last_spoken: int = 0  # last frame of the recorded speech (by energy): where the caller stops

    @property
    def speech_s(self) -> float:
        return (self.last_voiced + 1) * FRAME_S


def prepare_phrases(settings: Any | None = None) -> list[Phrase]:
    """Caller speech for every scripted transcript, as the server will receive it, with the frame
    indices the server's turn detector will act on (replayed offline)."""
    import base64

    from sutradhar.audio.codecs import (
        pcm16_to_ulaw,
        resample,
        ulaw_to_pcm16,
    )
    from sutradhar.config import load_settings

    s = settings or load_settings(_env_file=None)
    AUDIO_CACHE.mkdir(parents=True, exist_ok=True)
    silence_ulaw = pcm16_to_ulaw(bytes(FRAME_BYTES * 2))
    phrases = []
    for text in TRANSCRIPTS:
        pcm, rate = espeak_pcm(text, "en-us", CALLER_WPM, cache=AUDIO_CACHE)
        pcm8 = resample(pcm, rate, WIRE_RATE) if rate != WIRE_RATE else pcm
        ulaw = pcm16_to_ulaw(pcm8)
        ulaw += silence_ulaw[: -len(ulaw) % FRAME_BYTES] if len(ulaw) % FRAME_BYTES else b""
        frames = [ulaw[j:j + FRAME_BYTES] for j in range(0, len(ulaw), FRAME_BYTES)]
        frames += [silence_ulaw] * TRAILING_SILENCE_FRAMES
        pcm_frames = [ulaw_to_pcm16(f) for f in frames]
        marks = _replay_detector(pcm_frames, ulaw_to_pcm16(silence_ulaw), s)
        spoken = [j for j, f in enumerate(pcm_frames) if _rms(f) > SPOKEN_RMS and j < marks["trigger"]]
        phrases.append(Phrase(text, [base64.b64encode(f).decode() for f in frames], **marks,
                              last_spoken=spoken[-1] if spoken else marks["last_voiced"]))
    return phrases


SPOKEN_RMS = 300.0  # the simulator's threshold: a louder frame is caller speech (the latency clock)


def _rms(pcm: bytes) -> float:
    import numpy as np

    samples = np.frombuffer(pcm, "<i2").astype(np.float64)
    return float(np.sqrt(np.mean(samples ** 2))) if len(samples) else 0.0


def _replay_detector(frames: list[bytes], silence: bytes, s: Any) -> dict[str, int]:
    from sutradhar.audio.turns import SPEECH_STARTED, TurnDetector
    from sutradhar.audio.vad import make_vad

    vad = make_vad(s.vad, WIRE_RATE, s.vad_aggressiveness)
    decisions: list[bool] = []

    class Recording:
        sample_rate = vad.sample_rate

        def is_speech(self, frame: bytes) -> bool:
            decisions.append(vad.is_speech(frame))
            return decisions[-1]

        def reset(self) -> None:
            vad.reset()

    # The scripted transcripts are complete sentences: the semantic policy ends them at PAUSE_MS.
    window = s.pause_ms if s.turn_policy == "semantic" else s.end_of_turn_silence_ms
    detector = TurnDetector(Recording(), end_of_turn_ms=window, min_speech_ms=s.min_speech_ms,
                            max_utterance_s=s.max_utterance_s, barge_in_ms=s.barge_in_min_speech_ms,
                            energy_floor=s.vad_energy_floor)
    lead = 25
    for _ in range(lead):
        detector.push(silence)
    confirm = trigger = None
    for i, frame in enumerate(frames):
        event = detector.push(frame)
        if event is SPEECH_STARTED and confirm is None:
            confirm = i
        elif event is not None and event is not SPEECH_STARTED:
            trigger = i
            break
    voiced = [i for i, v in enumerate(decisions[lead:]) if v]
    if trigger is None or confirm is None or not voiced:
        raise RuntimeError("the caller phrase does not make a complete turn for the server's detector")
    last_voiced = max(i for i in voiced if i < trigger)
    return {"first_voiced": voiced[0], "confirm": confirm, "last_voiced": last_voiced, "trigger": trigger}


# --- one call (client side) ---

@dataclass
class TurnPlan:
    phrase: int
    barge_after_s: float | None = None  # start speaking this long into the previous reply
    listen_s: float | None = None  # hang up this long after the reply starts (None: let it finish)


@dataclass
class TurnLog:
    index: int
    barge_in: bool
    t: dict[str, float] = field(default_factory=dict)  # first_voiced, confirm, last_voiced, trigger
    first_audio: float | None = None


class Call:
    """A simulated Twilio caller. `step(now)` is called by the process's 20 ms ticker."""

    def __init__(self, index: int, url: str, plan: list[TurnPlan], phrases: list[Phrase],
                 start_at: float, gap_s: float, deadline_s: float) -> None:
        self.index = index
        self.url = url
        self.plan = list(plan)
        self.phrases = phrases
        self.start_at = start_at
        self.gap_s = gap_s
        self.deadline = start_at + deadline_s
        self.call_sid = "CA" + uuid.uuid4().hex
        self.stream_sid = "MZ" + uuid.uuid4().hex
        self.ws: Any = None
        self.phase = "pending"
        self.seq = 1
        self.frames = array("d")  # arrival times of agent media messages
        self.frame_s = array("d")  # ... and the audio each holds (PLAYOUT_MESSAGE_MS: up to 100 ms)
        self.clears: list[float] = []
        self.pending_marks: list[tuple[float, str]] = []
        self.marks = 0
        self.play_end = 0.0
        self.last_frame = 0.0
        self.reply_started: float | None = None  # first frame of the current reply
        self.idle_since: float | None = None
        self.speaking: Phrase | None = None
        self.pos = 0
        self.turn: TurnLog | None = None
        self.turns: list[TurnLog] = []
        self.current_plan: TurnPlan | None = None
        self.connected_at: float | None = None
        self.ended_at: float | None = None
        self.error: str | None = None
        self.summary: dict[str, Any] | None = None
        self.receiver: asyncio.Task[None] | None = None
        self._silence = ""
        self.summary_status: int | None = None

    # -- wire --
    def _media(self, payload: str) -> str:
        self.seq += 1
        return twilio_media(self.seq, payload, self.stream_sid)

    def _mark(self, name: str) -> str:
        self.seq += 1
        return json.dumps({"event": "mark", "sequenceNumber": str(self.seq), "streamSid": self.stream_sid,
                           "mark": {"name": name}})

    async def connect(self, sockets: Any, silence_payload: str) -> None:
        """`sockets`: the process's aiohttp ClientSession. aiohttp's client costs about 40 % of
        the `websockets` client's CPU per message (its framing and masking are compiled), and the
        load generator shares the two cores with the server under test."""
        self._silence = silence_payload
        ws_url = "ws" + self.url[len("http"):] + "/twilio/media"
        self.ws = await sockets.ws_connect(ws_url, compress=0, autoping=False, max_msg_size=0,
                                           timeout=30)
        self.connected_at = time.monotonic()
        await self.ws.send_str(CONNECTED)
        await self.ws.send_str(twilio_start(self.stream_sid, self.call_sid))
        self.receiver = asyncio.create_task(self._receive())
        self.phase = "await_reply"  # the greeting
        self.reply_started = None

    async def _receive(self) -> None:
        from aiohttp import WSMsgType

        frames, frame_s = self.frames, self.frame_s
        # The server's media message: this envelope around the base64 of mu-law (one byte a sample).
        envelope = len('{"event":"media","streamSid":"%s","media":{"payload":""}}' % self.stream_sid)
        try:
            async for message in self.ws:
                now = time.monotonic()
                if message.type is not WSMsgType.TEXT:
                    continue
                msg = message.data
                if msg.startswith('{"event":"media"'):
                    b64 = len(msg) - envelope
                    seconds = (b64 // 4 * 3 - msg.count("=", len(msg) - 6)) / WIRE_RATE
                    frames.append(now)
                    frame_s.append(seconds)
                    if now - self.last_frame > 0.25 and now >= self.play_end:
                        self.reply_started = now
                    self.last_frame = now
                    self.play_end = (self.play_end if self.play_end > now else now) + seconds
                    turn = self.turn
                    if turn is not None and turn.first_audio is None and "trigger" in turn.t \
                            and now > turn.t["trigger"]:
                        turn.first_audio = now
                        self.reply_started = now
                    continue
                event = json.loads(msg)
                kind = event.get("event")
                if kind == "mark":
                    self.marks += 1
                    self.pending_marks.append((max(self.play_end, now), event["mark"]["name"]))
                elif kind == "clear":
                    self.clears.append(now)
                    self.play_end = now
                    pending, self.pending_marks = self.pending_marks, []
                    for _, name in pending:
                        await self.ws.send_str(self._mark(name))
        except Exception as exc:  # noqa: BLE001 - recorded, the run goes on
            self.error = f"receive: {type(exc).__name__}: {exc}"
        if self.phase not in ("closing", "done"):
            self.phase = "done"
            self.error = self.error or "closed by server"

    def busy(self, now: float) -> bool:
        return now < self.play_end or bool(self.pending_marks) or now - self.last_frame < 0.25

    def step(self, now: float) -> list[str]:
        """What to send on this tick: due mark echoes, then one media frame."""
        out: list[str] = []
        while self.pending_marks and self.pending_marks[0][0] <= now:
            out.append(self._mark(self.pending_marks.pop(0)[1]))
        phase = self.phase
        if phase == "await_reply":
            turn = self.turn
            if turn is not None and turn.first_audio is not None:
                self.phase = phase = "in_reply"
            elif turn is None and self.reply_started is not None:
                self.phase = phase = "in_reply"
            elif now > self.deadline:
                self.phase = phase = "hangup"
        if phase == "in_reply":
            nxt = self.plan[0] if self.plan else None
            cur = self.current_plan
            started = self.reply_started or now
            if cur is not None and cur.listen_s is not None and now - started >= cur.listen_s:
                self.phase = phase = "hangup"
            elif nxt is not None and nxt.barge_after_s is not None and now - started >= nxt.barge_after_s:
                self._start_turn(now)
                phase = self.phase
            elif not self.busy(now):
                self.idle_since = self.idle_since or now
                if now - self.idle_since >= self.gap_s:
                    if self.plan:
                        self._start_turn(now)
                        phase = self.phase
                    else:
                        self.phase = phase = "hangup"
            else:
                self.idle_since = None
        if phase == "talking":
            p, i = self.speaking, self.pos
            assert p is not None and self.turn is not None
            out.append(self._media(p.payloads[i]))
            t = self.turn.t
            if i == p.first_voiced:
                t["first_voiced"] = now
            if i == p.confirm:
                t["confirm"] = now
            if i == p.last_voiced:
                t["last_voiced"] = now
            if i == p.last_spoken:
                t["last_spoken"] = now
            if i == p.trigger:
                t["trigger"] = now
            self.pos += 1
            if self.pos >= len(p.payloads):
                self.phase = "await_reply"
        elif phase in ("await_reply", "in_reply"):
            out.append(self._media(self._silence))
        return out

    def _start_turn(self, now: float) -> None:
        plan = self.plan.pop(0)
        self.current_plan = plan
        self.turn = TurnLog(len(self.turns), plan.barge_after_s is not None)
        self.turns.append(self.turn)
        self.speaking, self.pos = self.phrases[plan.phrase], 0
        self.idle_since = None
        self.phase = "talking"

    async def hang_up(self, http: Any) -> None:
        try:
            # A worker asks the call's own for its summary through Redis; one that did not answer
            # in time leaves the partial mirror (no per-turn timings): ask again.
            for _ in range(SUMMARY_TRIES):
                response = await http.get(f"{self.url}/telephony/calls/{self.call_sid}")
                self.summary_status = response.status_code
                if response.status_code != 200:
                    break
                self.summary = response.json()
                if not self.summary.get("partial"):
                    break
        except Exception:  # noqa: BLE001 - the summary is a cross-check, not required
            pass
        try:
            self.seq += 1
            await self.ws.send_str(twilio_stop(self.seq, self.stream_sid, self.call_sid))
            await self.ws.close()
        except Exception:  # noqa: BLE001
            pass
        self.ended_at = time.monotonic()
        if self.receiver is not None:
            try:
                await asyncio.wait_for(self.receiver, 5)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                self.receiver.cancel()
        self.phase = "done"

    # -- results --
    def report(self, d: Delays) -> dict[str, Any]:
        crit = critical_path_ms(d)
        turns = []
        for turn in self.turns:
            t = turn.t
            row: dict[str, Any] = {"turn": turn.index, "barge_in": turn.barge_in,
                                   "answered": turn.first_audio is not None}
            if not turn.barge_in and "first_voiced" in t:
                # Talked over: agent audio reached the caller while they were saying this turn
                # (a late reply to the previous one, or a reply to a fragment of this one); audio
                # after their last spoken frame is an answer, however soon it comes.
                end = t.get("last_spoken", t.get("trigger", t["first_voiced"]))
                row["talked_over"] = any(t["first_voiced"] <= f <= end for f in self.frames)
            if turn.first_audio is not None and "trigger" in t and "last_voiced" in t:
                # Voice-to-voice as the caller hears it: from the last frame of their recorded
                # speech; v2v_vad_ms starts where the server's VAD heard the speech end.
                row["v2v_ms"] = (turn.first_audio - t.get("last_spoken", t["last_voiced"])) * 1000
                row["v2v_vad_ms"] = (turn.first_audio - t["last_voiced"]) * 1000
                row["eot_window_ms"] = (t["trigger"] - t["last_voiced"]) * 1000
                row["overhead_ms"] = (turn.first_audio - t["trigger"]) * 1000 - crit
            turns.append(row)
        barge = []
        for k, turn in enumerate(self.turns):
            if not turn.barge_in or "first_voiced" not in turn.t:
                continue
            t0 = turn.t["first_voiced"]
            confirm = turn.t.get("confirm")
            clear = next((c for c in self.clears if c >= t0), None)
            end = turn.t.get("trigger", t0 + 10)
            before = [f for f in self.frames if t0 <= f < end]
            row = {"turn": k, "clear_after_speech_ms": None if clear is None else (clear - t0) * 1000,
                   "clear_after_confirm_ms": None if clear is None or confirm is None else (clear - confirm) * 1000,
                   "last_frame_after_speech_ms": (max(before) - t0) * 1000 if before else 0.0,
                   "frames_after_clear": sum(1 for f in before if clear is not None and f > clear)}
            barge.append(row)
        pacing = measure_pacing(self.frames, self.frame_s, self.clears, keep_outliers=20)
        jitter, gaps_bunched, late, late_ms, paced = (pacing.jitter_ms, pacing.bunched, pacing.late,
                                                      pacing.late_ms, pacing.paced)
        outliers = pacing.outliers
        late_buffered = pacing.late_buffered
        server_turns = []
        server_heard = []  # what the server heard and said, turn by turn
        playout = None
        if self.summary:
            playout = self.summary.get("playout")
            for entry in self.summary.get("turns", []):
                server_turns.append(entry.get("timings", {}))
                server_heard.append({"heard": entry.get("text"), "reply": entry.get("reply")})
        duration = ((self.ended_at or time.monotonic()) - (self.connected_at or self.start_at))
        return {"index": self.index, "error": self.error, "turns": turns, "barge": barge,
                "jitter_ms": [round(x, 3) for x in jitter], "bunched": gaps_bunched, "late": late,
                "late_buffered": late_buffered, "audio_s": pacing.audio_s, "wall_s": pacing.wall_s,
                "late_ms": round(late_ms, 1), "paced_frames": paced, "frames": len(self.frames),
                "marks": self.marks, "clears": len(self.clears), "gap_outliers": outliers, "summary_status": self.summary_status,
                "summary_full": bool(self.summary) and not self.summary.get("partial"), "duration_s": round(duration, 3),
                "server_turns": server_turns, "server_heard": server_heard, "server_playout": playout}


# --- one client process ---

def client_process(args: dict[str, Any], queue: Any) -> None:
    """Entry point of a client process: run its calls, put the JSON-able report on `queue`."""
    nice = args.pop("nice", 0)
    if nice:
        os.nice(nice)
    try:
        from bench.common import use_uvloop

        use_uvloop()
        queue.put(asyncio.run(_client(**args)))
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        import traceback

        queue.put({"error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()})


async def _client(url: str, indices: list[int], plan: list[dict[str, Any]], start_at: float, ramp_s: float,
                  gap_s: float, deadline_s: float, delays: dict[str, Any], settings: dict[str, Any]) -> dict:
    import httpx

    from sutradhar.config import load_settings

    d = Delays(**delays)
    s = load_settings(_env_file=None, **settings)
    phrases = prepare_phrases(s)
    import base64

    from sutradhar.audio.codecs import pcm16_to_ulaw

    silence = base64.b64encode(pcm16_to_ulaw(bytes(FRAME_BYTES * 2))).decode()
    turn_plan = [TurnPlan(**p) for p in plan]
    total = max(indices) + 1 if indices else 1
    calls = [Call(i, url, turn_plan, phrases, start_at + ramp_s * i / max(1, total), gap_s, deadline_s)
             for i in indices]
    lags = array("d")
    cpu0 = time.process_time()
    http = httpx.AsyncClient(timeout=10, limits=httpx.Limits(max_connections=20))
    pending_connects: set[asyncio.Task] = set()
    hangups: set[asyncio.Task] = set()

    import aiohttp

    sockets = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))

    async def connect(call: Call) -> None:
        try:
            await call.connect(sockets, silence)
        except Exception as exc:  # noqa: BLE001
            call.error = f"connect: {type(exc).__name__}: {exc}"
            call.phase = "done"

    loop_deadline = start_at + ramp_s + deadline_s + 30
    next_tick = time.monotonic()
    while time.monotonic() < loop_deadline:
        now = time.monotonic()
        if now >= start_at:
            lags.append((now - next_tick) * 1000)
        active = 0
        for call in calls:
            phase = call.phase
            if phase == "pending":
                active += 1
                if now >= call.start_at:
                    call.phase = "connecting"
                    task = asyncio.create_task(connect(call))
                    pending_connects.add(task)
                    task.add_done_callback(pending_connects.discard)
                continue
            if phase in ("connecting", "closing"):
                active += 1
                continue
            if phase == "done":
                continue
            active += 1
            if phase == "hangup":
                call.phase = "closing"
                task = asyncio.create_task(call.hang_up(http))
                hangups.add(task)
                task.add_done_callback(hangups.discard)
                continue
            for msg in call.step(now):
                try:
                    await call.ws.send_str(msg)
                except Exception as exc:  # noqa: BLE001
                    call.error = f"send: {type(exc).__name__}: {exc}"
                    call.phase = "done"
                    break
        if not active:
            break
        next_tick += FRAME_S
        delay = next_tick - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            next_tick = time.monotonic()  # we fell behind: do not burst to catch up
    for call in calls:
        if call.phase not in ("done",) and call.ws is not None:
            call.error = call.error or "unfinished at the deadline"
            await call.hang_up(http)
    await http.aclose()
    await sockets.close()
    cpu = time.process_time() - cpu0
    lag_list = sorted(lags)
    return {"calls": [c.report(d) for c in calls], "cpu_s": round(cpu, 3), "pid": os.getpid(),
            "loop_lag_ms": summarize(lag_list)}


# --- a sweep step: server + clients + psutil ---

def default_plan(turns: int) -> list[dict[str, Any]]:
    """`turns` normal turns (each reply heard to the end), then the caller barges into the last
    reply 1.5 s after it starts, and hangs up 1.5 s into the reply to that."""
    plan = [{"phrase": i % len(TRANSCRIPTS)} for i in range(turns)]
    plan.append({"phrase": turns % len(TRANSCRIPTS), "barge_after_s": 1.5, "listen_s": 1.5})
    return plan


def run_step(n: int, d: Delays, turns: int, procs: int | None = None, gap_s: float = 0.4,
             src: str | None = None, server_log: str | None = None, operations: bool = True,
             settings: dict[str, Any] | None = None, profile_dir: Path | None = None,
             gc_freeze: bool = False, plan: list[dict[str, Any]] | None = None, engines: str = "scripted",
             models_dir: str | None = None, ready_timeout_s: float = 30.0,
             resampler_quality: str | None = None, providers: str = "scripted",
             workers: int = 1, server_env: dict[str, str] | None = None,
             client_nice: int = 0) -> dict[str, Any]:
    """One step of N calls. `providers`: "scripted" (in-process engines of fixed delays, the
    bench server) or "http" (the production server, `workers` processes, with its OpenAI engines
    calling bench/provider_server.py over loopback HTTP). `server_env`: settings for the bench
    server's environment (e.g. TURN_POLICY), on top of this process's. `client_nice`: the load
    generator's processes run this much nicer than the rest (they stand in for callers who are not
    on the server's machine; their CPU still counts against the same cores)."""
    import httpx
    import psutil

    from bench.http_stack import ProcessTree

    settings = settings or {}
    procs = procs or max(1, min(4, math.ceil(n / 100)))
    plan = plan or default_plan(turns)
    phrases = prepare_phrases()  # also fills the cache before the clients start
    speech_s = sum(phrases[p["phrase"]].speech_s for p in plan)
    expected_s = 4 + speech_s + len(plan) * 2.5 + turns * 10 + 3
    if engines != "scripted":
        expected_s *= 2  # real engines: slower replies, longer audio
    deadline_s = expected_s * 2 + 30
    # Calls start spread over the ramp so their turns do not all end in the same instant (real
    # calls arrive at random); at 100+ calls the ramp is several seconds of a ~25 s call.
    ramp_s = min(8.0, max(0.5, n * 0.04))
    server, provider = _start_stack(d, providers, workers, src, server_log, operations, gc_freeze, engines,
                                    models_dir, resampler_quality, ready_timeout_s, server_env)
    try:
        tree = ProcessTree(server.proc.pid)
        provider_tree = ProcessTree(provider.proc.pid) if provider is not None else None
        time.sleep(1.0)
        idle_rss = tree.rss()
        cpu_start = tree.cpu_s()
        provider_cpu_start = provider_tree.cpu_s() if provider_tree is not None else 0.0
        _probe(server.url, "reset")
        lag_before = _loop_lag_buckets(server.url) if providers == "http" else None
        ctx = mp.get_context("spawn")
        queue = ctx.Queue()
        start_at = time.monotonic() + 2.0 + 0.3 * procs  # spawned interpreters need a moment
        clients = []
        for k in range(procs):
            indices = list(range(k, n, procs))
            args = {"url": server.url, "indices": indices, "plan": plan, "start_at": start_at, "ramp_s": ramp_s,
                    "gap_s": gap_s, "deadline_s": deadline_s, "delays": d.as_dict(), "settings": settings,
                    "nice": client_nice}
            w = ctx.Process(target=client_process, args=(args, queue), daemon=True)
            w.start()
            clients.append(w)
        spy = None
        if profile_dir is not None:
            from bench import pyspy

            raw = Path(profile_dir) / f"server-pyspy-{n}.txt"
            spy = pyspy.start(server.proc.pid, min(30.0, expected_s), raw)
        samples = []
        reports: list[dict[str, Any]] = []
        hard_stop = start_at + ramp_s + deadline_s + 60
        # One client for the whole step: a new httpx client per sample builds a TLS context each
        # time (~40 ms of CPU), which took 13 % of a core on the box under test.
        with httpx.Client(timeout=0.5) as health:
            while len(reports) < procs and time.monotonic() < hard_stop:
                try:
                    reports.append(queue.get(timeout=0.5))
                except Exception:  # noqa: BLE001 - queue.Empty
                    pass
                try:
                    live = _live_calls(health, server.url)
                    samples.append({"t": round(time.monotonic() - start_at, 2), "rss": tree.rss(),
                                    "cpu": tree.cpu_s(), "live": live})
                except psutil.Error:
                    break
        cpu_end = tree.cpu_s()
        provider_cpu = provider_tree.cpu_s() - provider_cpu_start if provider_tree is not None else None
        probe = _probe(server.url, "stats")
        if lag_before is not None:  # the production server: its event-loop lag from /metrics
            lag_after = _loop_lag_buckets(server.url)
            probe = {"loop_lag_ms": loop_lag_summary(lag_before, lag_after)} if lag_after else None
        provider_stats = _probe(provider.url, "stats") if provider is not None else None
        profile = None
        if spy is not None:
            try:
                spy.wait(40)
                profile = pyspy.summarize(raw)
            except Exception as exc:  # noqa: BLE001 - a profile is a bonus
                profile = {"error": str(exc)}
        for w in clients:
            w.join(5)
            if w.is_alive():
                w.terminate()
    finally:
        server.stop()
        if provider is not None:
            provider.stop()
    summary = _step_summary(n, d, procs, reports, samples, idle_rss, cpu_end - cpu_start, ramp_s)
    summary["providers"] = providers
    summary["server_workers"] = workers if providers == "http" else 1
    if provider_cpu is not None and summary["cost"]["call_minutes"]:
        summary["cost"]["provider_cpu_s"] = round(provider_cpu, 2)
        summary["cost"]["provider_cpu_s_per_call_minute"] = round(provider_cpu / summary["cost"]["call_minutes"], 3)
    if profile is not None:
        summary["server_profile"] = profile
    summary["server_probe"] = probe
    if provider_stats is not None:
        summary["provider_stats"] = provider_stats
    return summary


def _start_stack(d: Delays, providers: str, workers: int, src: str | None, server_log: str | None,
                 operations: bool, gc_freeze: bool, engines: str, models_dir: str | None,
                 resampler_quality: str | None, ready_timeout_s: float,
                 server_env: dict[str, str] | None = None) -> tuple[Any, Any]:
    """(server, provider process or None), both ready."""
    from bench.bench_server import ServerProcess
    from bench.http_stack import ProductionServer, ProviderProcess

    if providers == "scripted":
        server = ServerProcess(d, src=src, log_path=server_log, operations=operations, gc_freeze=gc_freeze,
                               engines=engines, models_dir=models_dir, resampler_quality=resampler_quality,
                               env=server_env)
        server.wait_ready(ready_timeout_s)
        return server, None
    if providers != "http":
        raise ValueError(f"unknown providers {providers!r} (scripted, http)")
    provider = ProviderProcess(d, src=src)
    try:
        provider.wait_ready("/v1/models", ready_timeout_s)
        server = ProductionServer(provider.url, workers, src=src, log_path=server_log)
        server.wait_ready(timeout_s=ready_timeout_s + 10 * workers)
    except BaseException:
        provider.stop()
        raise
    return server, provider


def _probe(url: str, what: str) -> dict[str, Any] | None:
    import httpx

    try:
        if what == "reset":
            return httpx.post(url + "/bench/reset", timeout=5).json()
        return httpx.get(url + "/bench/stats", timeout=10).json()
    except Exception:  # noqa: BLE001 - an instrument, not a requirement
        return None


LAG_METRIC = "sutradhar_event_loop_lag_seconds"


def _loop_lag_buckets(url: str) -> dict[float, float] | None:
    """The server's loop-lag histogram (summed over its workers): cumulative count per bucket."""
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    try:
        text = httpx.get(url + "/metrics", timeout=10).text
    except Exception:  # noqa: BLE001 - an instrument, not a requirement
        return None
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(text):
        if family.name != LAG_METRIC:
            continue
        for sample in family.samples:
            if sample.name == LAG_METRIC + "_bucket":
                le = float(sample.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + sample.value
    return buckets or None


def loop_lag_summary(before: dict[float, float], after: dict[float, float]) -> dict[str, Any]:
    """The step's lag from two cumulative histograms: percentiles as bucket upper bounds (ms)."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    total = counts[-1] if counts else 0.0

    def upper(q: float) -> float | str | None:
        for b, c in zip(bounds, counts):
            if total and c >= q * total:
                return round(b * 1000, 1) if b != float("inf") else "inf"
        return None

    cumulative = dict(zip(bounds, counts))
    above = {f"over_{ms}ms": round(total - cumulative[ms / 1000]) for ms in (25, 100, 250)
             if ms / 1000 in cumulative}
    reached = [b for b, c, prev in zip(bounds, counts, [0.0] + counts[:-1]) if c > prev]
    worst = reached[-1] if reached else None
    finite = [b for b in bounds if b != float("inf")]
    return {"ticks": round(total), "p50": upper(0.5), "p99": upper(0.99),
            "max": None if worst is None else (round(worst * 1000, 1) if worst != float("inf")
                                               else f">{finite[-1] * 1000:.0f}"),
            **above, "note": "bucket upper bounds"}


def settings_eot_ms() -> float:
    from sutradhar.config import load_settings

    return float(load_settings(_env_file=None).end_of_turn_silence_ms)


def _live_calls(http: Any, url: str) -> int | None:
    try:
        data = http.get(url + "/health").json()
    except Exception:  # noqa: BLE001
        return None
    for key in ("active_calls", "live_calls", "calls"):
        if isinstance(data.get(key), int):
            return data[key]
    return None


def _step_summary(n: int, d: Delays, procs: int, reports: list[dict[str, Any]], samples: list[dict[str, Any]],
                  idle_rss: int, server_cpu: float, ramp_s: float) -> dict[str, Any]:
    errors = [r for r in reports if "calls" not in r]
    calls = [c for r in reports if "calls" in r for c in r["calls"]]
    turns = [t for c in calls for t in c["turns"] if "overhead_ms" in t]
    barge = [b for c in calls for b in c["barge"]]
    jitter = [j for c in calls for j in c["jitter_ms"]]
    paced = sum(c["paced_frames"] for c in calls)
    late = sum(c["late"] for c in calls)
    call_minutes = sum(c["duration_s"] for c in calls) / 60
    # Memory at full load: the largest RSS while (nearly) every call was live.
    live_rss = [s["rss"] for s in samples if s.get("live") is not None and s["live"] >= 0.95 * n]
    peak_rss = max(live_rss or [s["rss"] for s in samples] or [idle_rss])
    server_timings = [t for c in calls for t in c["server_turns"]]
    # The server's own view: its v2v_wire_ms runs from the first unvoiced frame it processed to
    # its first frame written; the utterance is emitted (end_of_turn - 20 ms) after that frame.
    eot_ms = (settings_eot_ms() - 20.0)
    for t in server_timings:
        if t.get("v2v_wire_ms") is not None:
            t["server_overhead_ms"] = t["v2v_wire_ms"] - eot_ms - critical_path_ms(d)
    playouts = [c["server_playout"] for c in calls if c.get("server_playout")]
    failed = [c for c in calls if c["error"]]
    return {
        "calls": n,
        "client_processes": procs,
        "calls_completed": len(calls) - len(failed),
        "call_errors": sorted({c["error"] for c in failed})[:5] + [e.get("error") for e in errors][:3],
        "turns_measured": len(turns),
        "turns_started": sum(len(c["turns"]) for c in calls),
        "unanswered_turns": sum(1 for c in calls for t in c["turns"] if not t.get("answered", True)),
        "talked_over_turns": sum(1 for c in calls for t in c["turns"] if t.get("talked_over")),
        "v2v_ms": summarize(t["v2v_ms"] for t in turns),
        "v2v_vad_ms": summarize(t.get("v2v_vad_ms") for t in turns),
        "overhead_ms": summarize(t["overhead_ms"] for t in turns),
        "eot_window_ms": summarize(t["eot_window_ms"] for t in turns),
        "barge_in": {
            "count": len(barge),
            "clear_after_confirm_ms": summarize(b["clear_after_confirm_ms"] for b in barge),
            "clear_after_speech_ms": summarize(b["clear_after_speech_ms"] for b in barge),
            "last_frame_after_speech_ms": summarize(b["last_frame_after_speech_ms"] for b in barge),
            "frames_after_clear": sum(b["frames_after_clear"] for b in barge),
        },
        "pacing": {
            "frames": sum(c["frames"] for c in calls),
            "paced_gaps": paced,
            "jitter_ms": summarize(jitter),
            "bunched": sum(c["bunched"] for c in calls),
            "late_frames": late,
            # against a phone's 100 ms playout buffer (testing/pacing.py JITTER_BUFFER_S)
            "late_behind_100ms_buffer": sum(c["late_buffered"] for c in calls),
            "late_fraction": round(late / paced, 5) if paced else None,
            "audio_per_wall": audio_per_wall(sum(c["audio_s"] for c in calls), sum(c["wall_s"] for c in calls)),
            "late_ms_total": round(sum(c["late_ms"] for c in calls), 1),
            "server_underruns": sum(p.get("underruns", 0) for p in playouts),
            # the pacer's figures and the stage timings come from the calls whose own worker answered
            "server_summaries": sum(c["summary_full"] for c in calls),
            "server_max_late_ms": max((p.get("max_late_ms", 0.0) for p in playouts), default=None),
        },
        "server_stage_ms": {k: summarize(t.get(k) for t in server_timings)
                            for k in ("stt_ms", "llm_ttft_ms", "tts_ttfb_ms", "v2v_ms", "v2v_wire_ms",
                                      "server_overhead_ms")},
        "cost": {
            "server_cpu_s": round(server_cpu, 2),
            "call_minutes": round(call_minutes, 2),
            "cpu_s_per_call_minute": round(server_cpu / call_minutes, 3) if call_minutes else None,
            "server_cpu_util": round(server_cpu / max(1e-9, max((s["t"] for s in samples), default=1)), 3),
            "idle_rss_mb": round(idle_rss / 2**20, 1),
            "load_rss_mb": round(peak_rss / 2**20, 1),
            "rss_per_call_mb": round((peak_rss - idle_rss) / 2**20 / n, 3),
            "client_cpu_s": round(sum(r.get("cpu_s", 0) for r in reports if "cpu_s" in r), 2),
        },
        "client_loop_lag_ms": [r["loop_lag_ms"] for r in reports if "loop_lag_ms" in r],
        "critical_path_ms": critical_path_ms(d),
        "examples": [{k: c[k] for k in ("index", "error", "turns", "barge", "gap_outliers", "summary_status",
                                        "server_turns", "server_heard", "server_playout", "frames", "marks",
                                        "clears")}
                     for c in calls[:2]],
        "rss_samples": [(s["t"], round(s["rss"] / 2**20, 1), s.get("live")) for s in samples[::4]],
    }


def sweep(levels: list[int], d: Delays, turns: int, extend: bool, max_overhead_p95: float, max_late_frac: float,
          budget_s: float, procs: int | None, src: str | None, step: int = 100, max_n: int = 1000,
          log: Any = print, operations: bool = True, profile_dir: Path | None = None,
          profile_levels: tuple[int, ...] = (), gc_freeze: bool = False,
          resampler_quality: str | None = None, providers: str = "scripted", workers: int = 1,
          client_nice: int = 0) -> dict[str, Any]:
    started = time.monotonic()
    results = []
    queue = list(levels)
    stopped_because = None
    last_step_s = 0.0
    while queue:
        n = queue.pop(0)
        elapsed = time.monotonic() - started
        if results and elapsed + last_step_s * 1.3 > budget_s:
            stopped_because = f"time budget of {budget_s:.0f}s reached before N={n}"
            break
        t0 = time.monotonic()
        log(f"N={n}: starting ({elapsed:.0f}s elapsed)")
        r = run_step(n, d, turns, procs, src=src, operations=operations,
                     profile_dir=profile_dir if n in profile_levels else None, gc_freeze=gc_freeze,
                     resampler_quality=resampler_quality, providers=providers, workers=workers,
                     client_nice=client_nice)
        last_step_s = time.monotonic() - t0
        r["step_s"] = round(last_step_s, 1)
        results.append(r)
        lag = (r.get("server_probe") or {}).get("loop_lag_ms") or {}
        log(f"N={n}: server loop lag p99/max {lag.get('p99')}/{lag.get('max')} ms"
            + (f", ticks late by 25/100/250 ms or more: {lag.get('over_25ms')}/{lag.get('over_100ms')}/"
               f"{lag.get('over_250ms')} of {lag.get('ticks')}" if "ticks" in lag else ""))
        if r.get("provider_stats"):
            plag = r["provider_stats"].get("loop_lag_ms") or {}
            log(f"N={n}: provider requests {r['provider_stats']['requests']} over "
                f"{r['provider_stats']['connections']} connections; its loop lag p99/max "
                f"{plag.get('p99')}/{plag.get('max')} ms, {plag.get('over_25ms')} ticks 25 ms or more late")
        log(f"N={n}: overhead p50/p95/p99 {r['overhead_ms']['p50']}/{r['overhead_ms']['p95']}/"
            f"{r['overhead_ms']['p99']} ms, jitter p99 {r['pacing']['jitter_ms']['p99']} ms, late "
            f"{r['pacing']['late_frames']} ({r['pacing']['late_behind_100ms_buffer']} behind a 100 ms buffer), "
            f"v2v p50/p95 {r['v2v_ms']['p50']}/{r['v2v_ms']['p95']} ms, CPU {r['cost']['cpu_s_per_call_minute']} s/call-min, "
            f"{r['cost']['rss_per_call_mb']} MB/call, unanswered {r['unanswered_turns']}, talked over "
            f"{r['talked_over_turns']}, errors {len(r['call_errors'])} ({last_step_s:.0f}s)")
        p95 = r["overhead_ms"]["p95"]
        late = r["pacing"]["late_fraction"]
        if (p95 is not None and p95 > max_overhead_p95) or (late is not None and late > max_late_frac) \
                or r["calls_completed"] < 0.9 * n:
            stopped_because = (f"N={n}: overhead p95 {p95} ms (limit {max_overhead_p95}), late fraction {late} "
                               f"(limit {max_late_frac}), {r['calls_completed']}/{n} calls completed")
            break
        if not queue and extend and n + step <= max_n:
            queue.append(n + step if n >= step else step)
    return {"levels": results, "stopped_because": stopped_because,
            "total_s": round(time.monotonic() - started, 1)}


def tmp_results_dir() -> str:
    return tempfile.mkdtemp(prefix="sutradhar-bench-")
