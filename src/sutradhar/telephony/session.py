"""CallSession: one live call, whatever the carrier. LISTENING -> THINKING -> SPEAKING.

Inbound frames go through the TurnDetector; a finished utterance starts `orchestrator.respond()` in
a task; its ReplyAudio is resampled to the wire rate and paced out by the Playout with a mark after
each sentence. Marks coming back say what the caller actually heard. Caller speech while the agent
is thinking or speaking is a barge-in, one code path: clear the carrier's buffer, drop our queue,
cancel the reply, and tell the orchestrator what was heard.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import time
from collections.abc import AsyncIterator, Awaitable
from dataclasses import dataclass
from typing import Any

from sutradhar.agents.results import CallTranscript
from sutradhar.audio.codecs import StreamResampler
from sutradhar.audio.dtmf import dtmf_pcm
from sutradhar.audio.playout import Playout
from sutradhar.audio.turns import (
    SPEECH_RESUMED,
    SPEECH_STARTED,
    SpeechPaused,
    SpeechSegment,
    TurnDetector,
)
from sutradhar.audio.vad import FRAME_MS, make_vad
from sutradhar.campaigns.prompts import CallScript
from sutradhar.engines.base import Transcript
from sutradhar.engines.deadline import TurnDeadline
from sutradhar.engines.live_stt import LiveTranscription, open_transcription
from sutradhar.pipeline.events import (
    ActionRequested,
    Event,
    LanguageSwitched,
    ReplyAudio,
    ReplyText,
    SentenceDone,
    Transcribed,
    TurnCompleted,
    Utterance,
)
from sutradhar.pipeline.keypad import KeypadUnavailable
from sutradhar.pipeline.orchestrator import Checkpoint
from sutradhar.pipeline.turn_policy import EndOfTurn
from sutradhar.services import Services
from sutradhar.telephony.recording import CallRecording, open_recording
from sutradhar.telephony.screening import CallScreen, screens
from sutradhar.telephony.transport import DISCONNECTED, Start, Transport
from sutradhar.text.languages import LANGUAGES

# The TTS -> phone-line resampler holds back part of its first chunk (soxr HQ: ~96 ms at 16 kHz,
# which stalled every sentence's start in the load benchmark); LQ holds ~24 ms and is still a
# proper low-pass filter, plenty for a 3.4 kHz phone channel.
OUTBOUND_RESAMPLER_QUALITY = "LQ"
ACTION_GRACE_S = 2.0  # perform an action this long after its audio should have played, mark or not
BACKCHANNEL_PAUSE_MS = 200  # silence after short speech over the reply before judging what it was


@dataclass
class Speculation:
    task: asyncio.Task[None]  # runs orchestrator.respond(speculative=True) into `events`
    events: asyncio.Queue[Event | None]
    checkpoint: Checkpoint
    utterance: Utterance


class State(enum.Enum):
    LISTENING = "listening"
    THINKING = "thinking"
    SPEAKING = "speaking"
    ENDED = "ended"


class CallSession:
    def __init__(self, services: Services, transport: Transport, start: Start, language: str,
                 script: CallScript | None = None) -> None:
        s = services.settings
        self.services, self.settings, self.transport = services, s, transport
        self.telemetry = services.telemetry
        self.call_id = start.call_id
        self.start_info = start
        transport.bind(start)
        self.log = transport.log.bind(stage="session")
        wire = transport.sample_rate
        # The detector runs at the wire rate when the VAD can (8/16 kHz); other rates are resampled.
        vad_rate = wire if wire in (8000, 16000) else 16000
        self._in_resampler = StreamResampler(wire, vad_rate) if vad_rate != wire else None
        semantic = s.turn_policy == "semantic"
        # Semantic turns: the detector reports short pauses and waits at most END_OF_TURN_MAX_MS;
        # the policy ends the turn earlier when what the caller said is complete (and, with
        # TURN_ACOUSTIC_MODEL, when the model hears the speech as finished).
        self.policy = (EndOfTurn(s.pause_ms, s.end_of_turn_max_ms, s.end_of_turn_silence_ms,
                                 s.end_of_turn_number_ms, acoustic=services.acoustic,
                                 acoustic_threshold=s.turn_acoustic_threshold,
                                 acoustic_wait_ms=s.turn_acoustic_wait_ms) if semantic else None)
        self.detector = TurnDetector(
            make_vad(s.vad, vad_rate, s.vad_aggressiveness),
            end_of_turn_ms=s.end_of_turn_max_ms if semantic else s.end_of_turn_silence_ms,
            min_speech_ms=s.min_speech_ms, max_utterance_s=s.max_utterance_s,
            barge_in_ms=s.barge_in_min_speech_ms,
            pause_ms=min(s.pause_ms, s.speculate_pause_ms) if semantic else 0,
            energy_floor=s.vad_energy_floor)
        self._wait_ms: int | None = None  # the policy's decision for the current pause
        self._acoustic: asyncio.Task[float | None] | None = None  # the model hearing the current pause
        self.words = self.policy or EndOfTurn()  # backchannel words, whichever turn policy
        self._held: float | None = None  # playout paused at this time: the caller spoke over us
        self._judging: asyncio.Task[None] | None = None  # deciding: backchannel or interruption
        self.backchannels = 0
        self._early: asyncio.Task[Transcript] | None = None  # batch STT started at the pause
        self._early_started = 0.0
        self._paused_segment: SpeechSegment | None = None  # the audio that early STT hears
        self._spec: Speculation | None = None  # a reply prepared while the policy still waits
        self._frame_bytes = vad_rate * FRAME_MS // 1000 * 2
        self._vad_rate = vad_rate
        self._inbuf = bytearray()
        self._live: LiveTranscription | None = None  # a streaming STT hearing the open segment
        self._live_tried = 0  # the detector's segment that _open_live last ran for
        self.last_interim: Transcript | None = None
        # RECORD_CALLS: both sides of the call on one timeline, taken as they cross the wire.
        opened = open_recording(s.data_dir, self.call_id, wire) if s.record_calls else None
        self.recording: CallRecording | None = opened[0] if opened else None
        self.recording_name: str | None = opened[1] if opened else None
        self.playout = Playout(self._send_recorded if self.recording else transport.send_audio, self._mark_sent,
                               frame_bytes=wire * transport.frame_ms // 1000 * 2,
                               frame_ms=transport.frame_ms, lead_frames=transport.lead_frames,
                               message_frames=s.playout_message_ms // transport.frame_ms,
                               on_frame=self._frame_sent)
        self.orchestrator = services.new_orchestrator(self.call_id, language, script)
        self.orchestrator.keypad.sender = self._press_keys  # send_dtmf presses keys on this line
        self.state = State.LISTENING
        self.started_at = time.time()
        self.end_reason: str | None = None
        self._reply: asyncio.Task[None] | None = None
        self._reply_turn: int | None = None
        self._pending: dict[str, tuple[int, str]] = {}  # mark name -> (turn, sentence): sent, not played
        self._cleared: set[str] = set()  # marks dropped by a clear: their echoes mean nothing
        self._heard: dict[int, list[str]] = {}
        self._actions: dict[str, str] = {}  # mark name -> action to perform once it has played
        self._final_mark: str | None = None
        self._awaiting_first: float | None = None  # ended_at of the turn waiting for its first frame
        self._first_frame = asyncio.Event()  # set when that turn's first frame is on the wire
        self._last_v2v: float | None = None
        self._resamplers: dict[int, StreamResampler] = {}  # TTS rate -> wire rate, per sentence
        self._last_inbound = time.monotonic()
        self.heard_caller = False  # any caller audio (or typed text) yet: FIRST_MEDIA_TIMEOUT_S
        self.inbound_dropped_s = 0.0  # caller audio dropped for arriving too fast (media.py)
        self._watchdog: asyncio.Task[None] | None = None
        self._background: set[asyncio.Task[None]] = set()  # action timers; referenced so they are not GC'd
        self.turns: list[dict[str, Any]] = []
        self._playing: set[int] = set()  # recorded turns whose reply is still going out
        self._closing = False  # saying the drain goodbye: the caller cannot talk over it
        self.barge_ins = 0
        self.malformed = 0
        # An outbound call: the greeting waits until we know a person answered, not a machine.
        self.screen = CallScreen(self, services, vad_rate) if screens(s, start.info) else None

    # --- lifecycle ---

    async def start(self) -> None:
        self.services.calls.register(self)
        self.playout.start()
        if self.recording is not None:
            self.recording.start()
        self._watchdog = asyncio.create_task(self._watch_inactivity(), name=f"watchdog-{self.call_id}")
        await self._record("call_started", self.call_id, {
            "transport": self.transport.carrier, "carrier": self.transport.carrier, "carrier_call_id": self.start_info.carrier_call_id,
            "language": self.language, "recording_path": self.recording_name, **self.start_info.info})
        self.log.info("call started carrier={} language={}", self.transport.carrier, self.language)
        await self.transport.send_event({"type": "started", "call_id": self.call_id, "language": self.language})
        if self.screen is None:
            self.greet()

    def greet(self) -> None:
        """The agent's first words (at the start, or once the screen has heard a person)."""
        greeting = self.orchestrator.greeting()
        if self.recording is not None:  # consent: the caller is told before they say anything
            greeting = f"{LANGUAGES[self.language].recording_notice} {greeting}"
        self._play(self.orchestrator.speak(greeting))

    @property
    def language(self) -> str:
        return self.orchestrator.language.current

    @property
    def ended(self) -> bool:
        return self.state is State.ENDED

    def live_info(self) -> dict[str, Any]:
        """What the live-call registry, /status and the console show of this call (JSON for Redis)."""
        last = self.turns[-1]["timings"].get("v2v_wire_ms") if self.turns else None
        return {"transport": self.transport.carrier, "language": self.language, "state": self.state.value,
                "turns": len(self.turns), "last_v2v_ms": last}

    async def end(self, reason: str, hang_up: bool = False) -> None:
        """End the call once (idempotent): stop audio, hang up if asked, write the record."""
        if self.state is State.ENDED:
            return
        self.state, self.end_reason = State.ENDED, reason
        me = asyncio.current_task()
        if self._live is not None:
            live, self._live = self._live, None
            await live.aclose()
        if self._early is not None:
            self._early.cancel()
        if self._spec is not None:
            self._spec.task.cancel()
        if self._judging is not None:
            self._judging.cancel()
        if self.screen is not None:
            await self.screen.aclose()
        reply, turn = self._reply, self._reply_turn
        for task in (self._reply, self._watchdog, *self._background):
            if task is not None and task is not me:
                task.cancel()
        running = reply is not None and reply is not me and not reply.done()
        if running:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reply
        # Sentence marks still out: audio the caller may not have heard (action and end marks carry none).
        unplayed = any(t == turn and sentence for t, sentence in self._pending.values())
        if turn is not None and (running or unplayed):
            # Hung up mid-reply: the turn is stored with what the caller heard before the line dropped.
            await self._settle_interrupted(turn)
        await self.playout.aclose()
        if self.recording is not None:
            await self.recording.aclose()
        if hang_up:
            try:
                await self.transport.hang_up(reason)
            except Exception as exc:  # the call may already be gone; the record still gets written
                self.log.warning("hang-up failed: {}", exc)
                self.telemetry.error("transport", "hang_up_failed")
        self.services.calls.unregister(self.call_id)
        self.log.info("call ended reason={} turns={} barge_ins={}", reason, len(self.turns), self.barge_ins)
        await self._record("call_ended", self.call_id, reason, self.summary())
        if self.services.results is not None:  # made in the background: the end waits for nothing
            self.services.results.submit(self._transcript(reason))
        if self.recording_name is not None and self.services.recordings is not None:
            self.services.recordings.submit(self.call_id, self.recording_name)  # OGG, bucket: in the background

    def leave_message(self, text: str) -> None:
        """An answering machine is recording: say `text` once (nothing on the line interrupts it),
        then hang up."""
        self._closing = True
        self._play(self._line_then(text, "voicemail_left"))

    async def end_politely(self, reason: str, line: str, within_s: float) -> None:
        """End the call from our side with `line` said first (in the call's language), whatever
        the call was doing; hang up once it has played, or after `within_s` at the latest."""
        if self.state is State.ENDED:
            return
        await self.interrupt(reason)
        self._closing = True
        self._play(self._line_then(line, reason))
        try:
            async with asyncio.timeout(within_s):
                while self.state is not State.ENDED:
                    await asyncio.sleep(0.05)
        except TimeoutError:
            self.log.warning("the {} line did not finish within {}s; hanging up", reason, within_s)
        await self.end(reason, hang_up=True)

    def _transcript(self, reason: str) -> CallTranscript:
        orchestrator = self.orchestrator
        flow = orchestrator.flow
        facts = {**orchestrator.facts, **(flow.slots if flow is not None else {})}
        return CallTranscript(self.call_id, self.language, reason, list(self.turns), facts,
                              flow.state if flow is not None else None)

    def summary(self) -> dict[str, Any]:
        return {
            "call_id": self.call_id, "carrier": self.transport.carrier, "language": self.language,
            "state": self.state.value, "end_reason": self.end_reason, "turns": self.turns,
            "barge_ins": self.barge_ins, "backchannels": self.backchannels,
            "malformed_messages": self.malformed, "inbound_dropped_s": round(self.inbound_dropped_s, 2),
            **({"answering": self.screen.summary()} if self.screen is not None else {}),
            "duration_s": round(time.time() - self.started_at, 2),
            "playout": vars(self.playout.stats).copy(),
            "orchestrator": self.orchestrator.get_status(),
            # What the LLM will see next turn: after a barge-in, only what the caller heard.
            "context": [{"role": t.role, "content": t.content, "interrupted": getattr(t, "interrupted", False)}
                        for t in self.orchestrator.context.history],
        }

    # --- inbound ---

    async def on_audio(self, pcm: bytes) -> None:
        """One inbound chunk of PCM at the wire rate (20 ms on phones, ~100 ms on Exotel)."""
        then = self.audio_now(pcm)
        if then is not None:
            await then

    def audio_now(self, pcm: bytes) -> Awaitable[None] | None:
        """`on_audio` without a coroutine for the common frame: what a chunk needs done at once is
        done here; what must wait (a barge-in's interrupt, an answering-machine screen, a held
        reply) comes back as an awaitable, with the chunk's remaining frames after it. The media
        loop calls this from the socket's protocol for most frames (`telephony/media.py`)."""
        self._last_inbound = time.monotonic()
        self.heard_caller = True
        if self.recording is not None:
            self.recording.caller(pcm)
        if self._in_resampler is not None:
            pcm = self._in_resampler.process(pcm)
        if not self._inbuf and len(pcm) == self._frame_bytes:  # the common case: one frame, no copy
            return self._frame_now(pcm)
        self._inbuf += pcm
        return self._buffered_now()

    def _buffered_now(self) -> Awaitable[None] | None:
        """The buffer's whole frames, as far as they go at once; after one that must wait, the
        rest follow it."""
        buf, size = self._inbuf, self._frame_bytes
        while len(buf) >= size:
            frame = bytes(buf[:size])
            del buf[:size]
            if (then := self._frame_now(frame)) is not None:
                return self._then_the_rest(then)
        return None

    async def _then_the_rest(self, then: Awaitable[None]) -> None:
        await then
        if (rest := self._buffered_now()) is not None:
            await rest

    def _frame_now(self, frame: bytes) -> Awaitable[None] | None:
        if self._closing:  # the goodbye plays to the end; nothing the caller says starts a turn
            return None
        if self.screen is not None and self.screen.active:  # an answering machine, maybe: not a turn
            return self.screen.push(frame)
        detector = self.detector
        event = detector.push(frame)
        live = self._live
        if live is not None:
            if detector.segment_open:
                live.push(frame)
            elif not isinstance(event, SpeechSegment):  # a noise blip, dropped: no utterance came
                self._live = None
                self._spawn(live.aclose())
        elif detector.segment_open and self._live_tried != detector.opened:
            self._live_tried = detector.opened  # once a segment: a batch STT chain says no every frame
            self._open_live()
        if self._held is not None and self._judging is None:
            return self._held_then(event)
        return self._on_event(event)

    async def _held_then(self, event: Any) -> None:
        await self._while_held()
        if (then := self._on_event(event)) is not None:
            await then

    def _on_event(self, event: Any) -> Awaitable[None] | None:
        detector = self.detector
        if event is None:
            if self._wait_ms is not None and detector.segment_open and detector.silence_ms >= self._wait_ms:
                self._end_turn(detector.end_segment())  # the policy's wait is over
            return None
        if event is SPEECH_STARTED:
            if self.orchestrator.keypad.collecting:
                pass  # heard, not an interruption: what they say ends the collection (_end_turn)
            elif self.state is State.SPEAKING and self.settings.backchannels:
                self._hold()
            elif self.state in (State.THINKING, State.SPEAKING):
                return self.interrupt("barge_in")
        elif isinstance(event, SpeechSegment):
            if self._held is not None and self._judging is None:
                self._judge(event)
            else:
                self._end_turn(event)
        elif isinstance(event, SpeechPaused):
            self._on_pause(event.segment)
        elif event is SPEECH_RESUMED:
            return self._drop_early("resumed")
        return None

    # --- backchannels (BACKCHANNELS=true) ---

    def _hold(self) -> None:
        """The caller spoke over the reply: pause it at once (a real interruption is then instant)."""
        self._held = time.monotonic()
        self.playout.pause()
        self.log.bind(stage="barge_in").debug("caller speech over the reply: paused")

    async def _while_held(self) -> None:
        """Speech that goes on past BACKCHANNEL_MAX_MS is an interruption; a blip that ended
        without an utterance (a cough, a click) resumes the reply; short speech followed by a
        short pause is judged by what it said."""
        assert self._held is not None
        detector = self.detector
        if self.state is not State.SPEAKING:
            self._held = None
        elif not detector.segment_open:
            self._resume("noise")
        elif detector.voiced_ms >= self.settings.backchannel_max_ms:
            self._held = None
            await self.interrupt("barge_in")
        elif detector.silence_ms >= BACKCHANNEL_PAUSE_MS:
            segment = detector.end_segment()
            if segment is None:
                self._resume("noise")
            else:
                self._judge(segment)

    def _judge(self, segment: SpeechSegment) -> None:
        """A short utterance over the reply: a backchannel resumes it, anything else interrupts it
        and is answered."""
        live, self._live = self._live, None

        async def judge() -> None:
            try:
                if live is not None:
                    transcript = await live.finish(segment.audio, segment.sample_rate, self.language)
                else:
                    transcript = await self.services.router.route_transcription(
                        segment.audio, segment.sample_rate, self.language, detect=True)
                text = transcript.text
            except Exception as exc:  # noqa: BLE001 - an STT failure: treat it as a noise, go on talking
                self.log.bind(stage="barge_in").info("could not hear the caller's short speech: {}", exc)
                text = ""
            finally:
                self._judging = None
            if self.state is not State.SPEAKING or self._held is None:
                return
            if not text.strip() or self.words.is_backchannel(text, self.language):
                self._resume("backchannel" if text.strip() else "noise")
                return
            self._held = None
            await self.interrupt("barge_in")
            done: asyncio.Future[Transcript] = asyncio.get_running_loop().create_future()
            done.set_result(transcript)
            self._answer(Utterance(segment.audio, segment.sample_rate, segment.ended_at,
                                   early_stt=done, early_started=time.monotonic()))

        self._judging = asyncio.create_task(judge(), name=f"backchannel-{self.call_id}")

    def _resume(self, what: str) -> None:
        self._held = None
        self.playout.resume()
        if what == "backchannel":
            self.backchannels += 1
            for entry in self.turns:  # the reply's turn, once it is complete (noted in the summary)
                if entry.get("turn_id") == self._reply_turn:
                    entry["backchannels"] = entry.get("backchannels", 0) + 1
        self.log.bind(stage="barge_in").info("caller {} over the reply; going on", what)

    # --- end of turn (TURN_POLICY=semantic) ---

    def _on_pause(self, segment: SpeechSegment) -> None:
        """A short pause (SPECULATE_PAUSE_MS): decide from the interim transcript, or transcribe
        the audio so far now; either way the reply can be prepared before the turn is over."""
        if self.state is not State.LISTENING:
            return
        interim = self.last_interim if self._live is not None else None
        # The model hears the pause beside the batch STT; a streaming STT's interim already says
        # whether the text leaves the decision to the audio (a model run is ~50 ms of a core).
        if self.policy.asks_acoustic(interim.text if interim else None, self.language):
            self._acoustic = asyncio.create_task(self._listen(segment), name=f"end-of-turn-model-{self.call_id}")
        if self._live is not None:
            self._decide(interim.text if interim else None)
            if interim is not None and interim.text.strip() and self.settings.speculate:
                # Prepare the reply to what the stream heard so far, held back until the turn
                # ends (at PAUSE_MS if complete, later if unfinished); it plays if the final
                # transcript says the same words.
                heard: asyncio.Future[Transcript] = asyncio.get_running_loop().create_future()
                heard.set_result(interim)
                self._early_started = time.monotonic()
                self.telemetry.speculation("started")
                self._speculate(heard, segment)
            return
        self._early_started = time.monotonic()
        self._paused_segment = segment
        # The turn's budget runs from this silence too: a hung STT hands over to the next in time.
        deadline = TurnDeadline.starting(self.services.settings.turn_budget_s, segment.ended_at or None)
        self._early = asyncio.create_task(self.services.router.route_transcription(
            segment.audio, segment.sample_rate, self.language, detect=True, deadline=deadline),
            name=f"early-stt-{self.call_id}")
        self.telemetry.speculation("started")
        self._wait_ms = self.policy.silence_ms  # until the transcript says otherwise
        self._early.add_done_callback(self._early_done)

    def _early_done(self, task: asyncio.Task[Transcript]) -> None:
        if task is not self._early or task.cancelled() or self.state is State.ENDED:
            return
        failed = task.exception() is not None
        self._decide(None if failed else task.result().text)
        if self._wait_ms is not None and self.detector.segment_open and self.detector.silence_ms >= self._wait_ms:
            self._end_turn(self.detector.end_segment())
        elif (not failed and self.settings.speculate and self._wait_ms is not None
              and self._paused_segment is not None):
            self._speculate(task, self._paused_segment)  # held until the policy's wait is over

    def _speculate(self, early: asyncio.Task[Transcript], segment: SpeechSegment) -> None:
        """The turn is not over yet (the pause is short, or the policy waits after an unfinished
        phrase or digits): prepare the reply to what was said so far (`segment`, the audio the
        early STT heard) meanwhile, held back. If the caller stops,
        it plays at once; if they go on, it is undone without a trace (orchestrator checkpoint)."""
        utterance = Utterance(segment.audio, segment.sample_rate, segment.ended_at,
                              early_stt=early, early_started=self._early_started)
        checkpoint = self.orchestrator.checkpoint()
        events: asyncio.Queue[Event | None] = asyncio.Queue()

        async def prepare() -> None:
            try:
                async for event in self.orchestrator.respond(utterance, speculative=True):
                    events.put_nowait(event)
            finally:
                events.put_nowait(None)

        task = asyncio.create_task(prepare(), name=f"speculation-{self.call_id}")
        self._spec = Speculation(task, events, checkpoint, utterance)
        self.telemetry.speculation("reply_started")

    def _decide(self, text: str | None) -> None:
        acoustic = self._acoustic
        if acoustic is not None and not acoustic.done() and self.policy.asks_acoustic(text, self.language):
            # The text leaves it to the audio: wait for the model's word. Meanwhile the plain
            # window holds (so a slow model costs at most that) and a speculation may start.
            self._wait_ms = self.policy.silence_ms
            acoustic.add_done_callback(lambda task: self._heard(task, text))
            return
        heard = acoustic is not None and acoustic.done() and not acoustic.cancelled()
        complete_p = acoustic.result() if heard else None
        self._wait_ms = self.policy.wait_ms(text, self.language, complete_p)
        self.log.bind(stage="turn").debug("pause: wait_ms={} complete={} acoustic_p={}", self._wait_ms,
                                          self._wait_ms <= self.policy.pause_ms, complete_p)

    async def _listen(self, segment: SpeechSegment) -> float | None:
        """The acoustic model's P(complete) for the audio up to this pause (None if it failed)."""
        began = time.perf_counter()
        try:
            complete_p = await self.policy.score(segment.audio, segment.sample_rate, self.language)
        except Exception as exc:  # noqa: BLE001 - the text rules decide alone
            self.log.bind(stage="turn").warning("end-of-turn model failed; text rules only: {}", exc)
            return None
        self.log.bind(stage="turn").debug("end-of-turn model: p_complete={} in {:.0f} ms", complete_p,
                                          (time.perf_counter() - began) * 1000)
        return complete_p

    def _heard(self, task: asyncio.Task[float | None], text: str | None) -> None:
        """The model has scored the pause the text left to it: decide, and end the turn if its
        wait is already over."""
        if task is not self._acoustic or task.cancelled() or self._wait_ms is None:
            return  # the caller went on, or the turn already ended
        self._decide(text)
        if self.detector.segment_open and self.detector.silence_ms >= self._wait_ms:
            self._end_turn(self.detector.end_segment())

    async def _drop_early(self, reason: str) -> None:
        """The caller went on: forget the pause's decision, its speculative STT and reply (no trace)."""
        self._wait_ms = None
        self._forget_acoustic()
        early, self._early = self._early, None
        if early is not None:
            if not early.done():
                early.cancel()
            self.telemetry.speculation(reason)
        spec, self._spec = self._spec, None
        if spec is not None:
            await self._undo(spec)

    def _forget_acoustic(self) -> None:
        acoustic, self._acoustic = self._acoustic, None
        if acoustic is not None and not acoustic.done():
            acoustic.cancel()

    async def _undo(self, spec: Speculation) -> None:
        spec.task.cancel()
        await asyncio.gather(spec.task, return_exceptions=True)
        self.orchestrator.restore(spec.checkpoint)
        self.telemetry.speculation("reply_undone")

    def _end_turn(self, segment: SpeechSegment | None) -> None:
        live, self._live = self._live, None
        early, self._early = self._early, None
        self._wait_ms = None
        self._forget_acoustic()
        spec, self._spec = self._spec, None
        if segment is not None and self.orchestrator.keypad.collecting:
            if spec is not None:
                self._spawn(self._undo(spec))
            if early is not None:
                early.cancel()
            self._spawn(self._hear_while_collecting(segment, live))
            return
        if segment is not None and spec is not None and live is None:
            self._play_speculation(spec)  # the caller stopped where we prepared for: play it now
            return
        if segment is not None and spec is not None and live is not None:
            self._confirm_speculation(spec, live, segment)  # prepared from an interim: check it
            return
        if spec is not None:
            self._spawn(self._undo(spec))
        if segment is None:  # too little speech: not an utterance
            if live is not None:
                self._spawn(live.aclose())
            if early is not None:
                early.cancel()
            return
        if early is not None:
            self.telemetry.speculation("used")
        self._answer(Utterance(segment.audio, segment.sample_rate, segment.ended_at, transcription=live,
                               early_stt=early, early_started=self._early_started))

    async def _hear_while_collecting(self, segment: SpeechSegment, live: LiveTranscription | None) -> None:
        """The caller spoke while a tool collected keys: their words go to the tool (someone
        reading the number out). If the collection ended meanwhile, they are answered as a turn."""
        try:
            if live is not None:
                transcript = await live.finish(segment.audio, segment.sample_rate, self.language)
            else:
                transcript = await self.services.router.route_transcription(
                    segment.audio, segment.sample_rate, self.language)
        except Exception as exc:  # noqa: BLE001 - like a noise: the collection goes on
            self.log.bind(stage="stt").info("could not hear the caller during a key collection: {}", exc)
            return
        if not transcript.text.strip() or self.orchestrator.keypad.heard(transcript.text):
            return
        await self.interrupt("barge_in")
        done: asyncio.Future[Transcript] = asyncio.get_running_loop().create_future()
        done.set_result(transcript)
        self._answer(Utterance(segment.audio, segment.sample_rate, segment.ended_at,
                               early_stt=done, early_started=time.monotonic()))

    def _confirm_speculation(self, spec: Speculation, live: LiveTranscription, segment: SpeechSegment) -> None:
        """A reply prepared from the stream's interim at the pause: play it when the final
        transcript says the same words, else answer the final one (the flush is all that waits)."""
        self.state = State.THINKING
        self._awaiting_first = segment.ended_at
        self._first_frame.clear()
        prepared_for = _words(spec.utterance.early_stt.result().text) if spec.utterance.early_stt else ""

        async def confirm() -> None:
            try:
                final = await live.finish(segment.audio, segment.sample_rate, self.language)
            except asyncio.CancelledError:  # the call ended meanwhile
                spec.task.cancel()
                await live.aclose()
                raise
            except Exception as exc:  # noqa: BLE001 - the orchestrator's own STT path reports it
                self.log.bind(stage="stt").info("stream flush failed after a speculation: {}", exc)
                final = None
            if self.state is not State.THINKING:
                await self._undo(spec)  # hung up, or the caller spoke again meanwhile
                return
            if final is not None and _words(final.text) == prepared_for:
                self.telemetry.speculation("used")
                self._play_speculation(spec)
                return
            await self._undo(spec)
            done: asyncio.Future[Transcript] = asyncio.get_running_loop().create_future()
            if final is not None:
                done.set_result(final)
            self._answer(Utterance(segment.audio, segment.sample_rate, segment.ended_at,
                                   early_stt=done if final is not None else None,
                                   early_started=time.monotonic()))

        self._spawn(confirm())

    def _open_live(self) -> None:
        """A segment just opened: when the chain's STT streams, it hears the caller from now on."""
        live = open_transcription(self.services.router, self._vad_rate, self.language, self._interim,
                                  detect=True)
        if live is not None:
            live.push(self.detector.segment_audio())
            self._live = live

    def _interim(self, transcript: Transcript) -> None:
        self.last_interim = transcript
        # Shown on the browser page; phone codecs drop call events.
        self._spawn(self.transport.send_event({"type": "interim", "text": transcript.text}))

    def touch(self) -> None:
        """Any inbound message (not only audio) proves the call is alive."""
        self._last_inbound = time.monotonic()

    async def on_text(self, text: str) -> None:
        if self._closing:
            return
        self.heard_caller = True
        if text.strip() and self.orchestrator.keypad.heard(text):
            return  # typed while a tool collects keys: like speech, it goes to the tool
        await self.interrupt("typed")
        self._answer(Utterance(b"", 16000, time.monotonic(), text=text))

    def on_mark(self, name: str) -> None:
        if name in self._cleared:  # Twilio returns every pending mark after a clear: not heard
            self._cleared.discard(name)
            return
        entry = self._pending.pop(name, None)
        if entry is None:
            self.log.debug("mark {} unknown or already played; ignored", name)
            return
        turn, sentence = entry
        if sentence:
            self._heard.setdefault(turn, []).append(sentence.strip())
        action = self._actions.pop(name, None)
        if action is not None:
            self._spawn(self._perform(action))
        if name == self._final_mark and (self._reply is None or self._reply.done()):
            self._final_mark = None
            self._heard.pop(turn, None)  # fully played: nothing to trim later
            self._progress(turn, None)
            if self.state is State.SPEAKING:
                self.state = State.LISTENING
        elif sentence:
            self._progress(turn, " ".join(self._heard[turn]))

    def _progress(self, turn: int, heard: str | None) -> None:
        """Persist what the caller has heard of a recorded turn (None: all of it), so a crash
        mid-reply leaves the record holding only that."""
        if turn in self._playing:
            if heard is None:
                self._playing.discard(turn)
            self._spawn(self._record("turn_heard", self.call_id, turn, heard, heard is not None))

    async def on_dtmf(self, digit: str) -> None:
        s = self.settings
        # A collected key may be part of a PIN: its value stays out of the log.
        self.log.info("dtmf {}", "key for a collection" if self.orchestrator.keypad.collecting else digit)
        if self._closing:
            return
        if self.screen is not None and self.screen.active:
            await self.screen.key_pressed(digit)
        await self.transport.send_event({"type": "dtmf", "digit": digit})
        if self.orchestrator.keypad.key_pressed(digit):
            return  # a tool is collecting keys: 0, * and the language digits mean nothing now
        if digit == s.dtmf_human:
            await self.interrupt("dtmf")
            self._play(self._line_then(LANGUAGES[self.language].transfer, "transfer"))
        elif digit == s.dtmf_repeat:
            await self.interrupt("dtmf")
            self._play(self.orchestrator.repeat_last())
        elif digit.isdigit() and 1 <= int(digit) <= len(s.languages):
            code = s.languages[int(digit) - 1]
            await self.interrupt("dtmf")
            old = self.language
            if self.orchestrator.set_language(code, "caller"):
                self.telemetry.language_switch()
            await self.transport.send_event({"type": "language", "old": old, "new": code, "reason": "dtmf"})
            self._play(self.orchestrator.speak(LANGUAGES[code].switched))
        else:
            self.log.info("dtmf {} has no action; ignored", digit)

    # --- barge-in ---

    async def interrupt(self, reason: str) -> None:
        """Stop the agent now: clear the carrier, drop our queue, cancel the reply, record what was heard."""
        if self.state not in (State.THINKING, State.SPEAKING) or self._closing:
            return
        self._held = None
        had_audio = self._pending or self.playout.busy
        if had_audio:
            await self.transport.send_clear()
        self.playout.flush()
        self._cleared.update(self._pending)
        self._pending.clear()
        self._actions.clear()
        self._final_mark = None
        task, self._reply = self._reply, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        turn = self._reply_turn
        self.state = State.LISTENING
        if turn is not None:
            heard = await self._settle_interrupted(turn)
            await self.transport.send_event({"type": "interrupted", "turn_id": turn, "heard": heard})
        if reason == "barge_in":
            self.barge_ins += 1
            self.telemetry.barge_in()
        self.log.bind(stage="barge_in").info("agent interrupted by {} turn={} had_audio={}",
                                             reason, turn, bool(had_audio))

    async def _settle_interrupted(self, turn: int) -> str:
        """A reply stopped early: keep only what the caller heard, in the context and the record."""
        heard = " ".join(self._heard.pop(turn, []))
        self._playing.discard(turn)  # the record below is final
        record = self.orchestrator.record_heard(turn, heard)
        entry = next((e for e in self.turns if e.get("turn_id") == turn), None)
        if entry is None and record is not None and record.get("text") and record.get("reply"):
            # Cut off before its reply was all made (a reply not begun is not a turn of the call
            # yet): the turn still happened (summary, transcript), and its first frame may have
            # reached the caller.
            self._take_wire_v2v(record)
            entry = self._turn_entry(turn, record)
            self.turns.append(entry)
        if entry is not None:
            entry.update(heard=heard, interrupted=True)
        if record is not None and record.get("text"):
            await self._record("turn_completed", self.call_id, record)
        return heard

    # --- replies ---

    def _play_speculation(self, spec: Speculation) -> None:
        self.orchestrator.commit()
        self.telemetry.speculation("reply_used")
        self.state = State.THINKING
        self._awaiting_first = spec.utterance.ended_at
        self._first_frame.clear()

        async def prepared() -> AsyncIterator[Event]:
            try:
                while (event := await spec.events.get()) is not None:
                    yield event
            finally:
                if not spec.task.done():  # barge-in or hang-up while it plays
                    spec.task.cancel()
                    await asyncio.gather(spec.task, return_exceptions=True)

        self._play(prepared(), thinking=True)

    def _answer(self, utterance: Utterance) -> None:
        if self._reply is not None and not self._reply.done():
            self._reply.cancel()  # interrupt() already ran for audio; typed text may race a reply
        self.state = State.THINKING
        self._awaiting_first = utterance.ended_at
        self._first_frame.clear()
        self._play(self.orchestrator.respond(utterance), thinking=True)

    def _play(self, events: AsyncIterator[Event], thinking: bool = False) -> None:
        if self.state is State.ENDED:
            return
        if not thinking:
            self.state = State.SPEAKING
        self._reply_turn = None
        self._reply = asyncio.create_task(self._stream(events), name=f"reply-{self.call_id}")

    async def _line_then(self, text: str, action: str) -> AsyncIterator[Event]:
        turn = 0
        async for event in self.orchestrator.speak(text):
            turn = event.turn_id
            yield event
        yield ActionRequested(turn, action)

    async def _stream(self, events: AsyncIterator[Event]) -> None:
        """Consume one reply's events: audio to the pacer, marks per sentence, records out."""
        wire = self.transport.sample_rate
        resamplers = self._resamplers = {}
        seq: int | None = None
        sentence = ""
        turn = 0
        sent_audio = False
        try:
            async for event in events:
                kind = type(event)
                if kind is ReplyAudio:
                    turn = self._reply_turn = event.turn_id
                    if seq is not None and event.seq != seq:
                        self._mark(turn, seq, sentence)
                    seq, sentence = event.seq, event.text
                    chunk = event.chunk
                    pcm = chunk.pcm
                    if chunk.sample_rate != wire:
                        rs = resamplers.get(chunk.sample_rate)
                        if rs is None:
                            rs = resamplers[chunk.sample_rate] = StreamResampler(
                                chunk.sample_rate, wire, OUTBOUND_RESAMPLER_QUALITY)
                        pcm = rs.process(pcm)
                    if self.state is State.THINKING:
                        self.state = State.SPEAKING
                    self.playout.push_audio(pcm)
                    sent_audio = True
                elif kind is SentenceDone:
                    self._flush_resamplers()  # the tail now, not when the next sentence arrives
                elif kind is ReplyText:
                    self._reply_turn = event.turn_id
                elif kind is Transcribed:
                    self._reply_turn = event.turn_id
                    self.log.info("caller said chars={} language={}", len(event.text), event.language)
                    await self.transport.send_event({"type": "transcript", "turn_id": event.turn_id,
                                                     "text": event.text, "language": event.language})
                elif kind is LanguageSwitched:
                    await self.transport.send_event({"type": "language", "old": event.old,
                                                     "new": event.new, "reason": event.reason})
                elif kind is ActionRequested:
                    turn = event.turn_id
                    if seq is not None:
                        self._mark(turn, seq, sentence)
                        seq = None
                    name = f"{turn}.{event.action}"
                    self._pending[name] = (turn, "")
                    self._actions[name] = event.action
                    self.playout.push_mark(name)
                    self._spawn(self._action_deadline(name, self.playout.queued_s + ACTION_GRACE_S))
                elif kind is TurnCompleted:
                    await self._turn_completed(event, sent_audio)
            if seq is not None:
                self._mark(turn, seq, sentence, final=True)
            else:
                self._final_mark = name = f"{turn}.end"
                self._pending[name] = (turn, "")
                self.playout.push_mark(name, final=True)
            if self.state is State.THINKING:  # no audio at all (every TTS failed)
                self.state = State.LISTENING
        except asyncio.CancelledError:
            raise
        except DISCONNECTED:  # the caller hung up mid-reply: the media loop ends the call
            self.log.info("caller disconnected during the reply")
            self.state = State.LISTENING
        except Exception as exc:  # a bug in one reply must not take the call down
            self.log.opt(exception=exc).error("reply failed: {}", exc)
            self.telemetry.error("session", "reply_failed")
            self.state = State.LISTENING

    def _flush_resamplers(self) -> None:
        for rs in self._resamplers.values():
            self.playout.push_audio(rs.process(b"", last=True))
        self._resamplers.clear()

    def _mark(self, turn: int, seq: int, sentence: str, final: bool = False) -> None:
        # A resampler holds back a few ms of audio; flush it so the sentence's tail goes before its
        # mark (otherwise a short sentence could be marked "played" before any of it was sent).
        self._flush_resamplers()
        name = f"{turn}.{seq}"
        self._pending[name] = (turn, sentence)
        if final:
            self._final_mark = name
        self.playout.push_mark(name, final=final)

    async def _mark_sent(self, name: str) -> None:
        await self.transport.send_mark(name)
        if not self.transport.echoes_marks:
            self.on_mark(name)

    async def _send_recorded(self, pcm: bytes) -> None:
        await self.transport.send_audio(pcm)
        assert self.recording is not None
        self.recording.agent(pcm)  # after the send: what reached the wire, when it did

    def _frame_sent(self, now: float) -> None:
        if self._awaiting_first is not None:
            # Voice-to-voice as the caller feels it: end of their speech to our first frame on the wire.
            v2v = (time.monotonic() - self._awaiting_first) * 1000
            self._awaiting_first = None
            self.services.metrics.record("v2v_wire_ms", v2v)
            self._last_v2v = round(v2v, 1)
            self._first_frame.set()

    def _take_wire_v2v(self, record: dict[str, Any]) -> None:
        """The reply's voice-to-voice on the wire (measured at its first frame) goes to its record."""
        if self._last_v2v is not None:
            record["timings"]["v2v_wire_ms"], self._last_v2v = self._last_v2v, None
            self.telemetry.observe_wire(record)

    @staticmethod
    def _turn_entry(turn_id: int, record: dict[str, Any]) -> dict[str, Any]:
        """A turn as the summary, the live view and the post-call transcript keep it."""
        return {"turn_id": turn_id, "text": record["text"], "reply": record["reply"],
                "language": record["language"], "intent": record["intent"],
                "timings": record["timings"], "errors": len(record["errors"])}

    async def _turn_completed(self, event: TurnCompleted, sent_audio: bool) -> None:
        if sent_audio and self._awaiting_first is not None:
            # The reply's audio is queued but its first frame may not be on the wire yet (a fast
            # TTS): wait for it, so the record holds what the caller heard, not what we prepared.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.playout.queued_s + 1.0):
                    await self._first_frame.wait()
        record = event.record.as_dict()
        self._take_wire_v2v(record)
        self.turns.append(self._turn_entry(event.turn_id, record))
        await self.transport.send_event({"type": "turn", "turn_id": event.turn_id, "text": record["text"],
                                         "reply": record["reply"], "language": record["language"],
                                         "timings": record["timings"], "state": record.get("state")})
        if sent_audio and self._reply_turn == event.turn_id:
            # Still going out: stored with what was heard so far, brought up to date by the marks.
            record.update(playing=True, heard=" ".join(self._heard.get(event.turn_id, [])))
            self._playing.add(event.turn_id)
        await self._record("turn_completed", self.call_id, record)

    # --- actions ---

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro, name=f"call-{self.call_id}")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _action_deadline(self, name: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        if name in self._actions:
            self.log.warning("mark {} never came back; performing its action anyway", name)
            self.on_mark(name)

    async def _press_keys(self, digits: str) -> str:
        """The agent presses `digits`: through the carrier's API where it has one (Plivo), else as
        in-band tones queued after the audio already going out, so they follow what it said."""
        if self.state is State.ENDED:
            raise KeypadUnavailable("the call has ended")
        log = self.log.bind(stage="dtmf")
        if await self.transport.send_digits(digits):
            log.info("pressed keys={} through the carrier", len(digits))
            return "carrier"
        self.playout.push_audio(dtmf_pcm(digits, self.transport.sample_rate))
        log.info("pressed keys={} as tones", len(digits))
        return "tones"

    async def _perform(self, action: str) -> None:
        if self.state is State.ENDED:
            return
        if action == "end_call":
            await self.end("agent_hangup", hang_up=True)
        elif action == "drained":
            await self.end("drained", hang_up=True)
        elif action == "voicemail_left":
            await self.end("voicemail_left", hang_up=True)
        elif action == "transfer":
            number = self.settings.transfer_number
            if not number:
                self.log.warning("transfer requested but TRANSFER_NUMBER is not set; staying on the call")
                return
            if await self.transport.transfer(number):
                await self.end("transferred")
            else:
                self.log.warning("{} cannot transfer this call; staying on it", self.transport.carrier)
        else:
            self.log.warning("unknown action {}", action)

    async def _watch_inactivity(self) -> None:
        """End the call when the caller sends no audio within FIRST_MEDIA_TIMEOUT_S of the start
        (a start-only socket must not hold a call slot), or no message for INACTIVITY_TIMEOUT_S."""
        timeout = self.settings.inactivity_timeout_s
        first_by = time.monotonic() + self.settings.first_media_timeout_s
        while self.state is not State.ENDED:
            now = time.monotonic()
            if not self.heard_caller and now >= first_by:
                self.log.warning("no caller audio within {}s of the start (FIRST_MEDIA_TIMEOUT_S); ending the call",
                                 self.settings.first_media_timeout_s)
                self.telemetry.stream_refused(self.transport.carrier, "no_media")
                await self.end("no_media", hang_up=True)
                return
            remaining = self._last_inbound + timeout - now
            if remaining <= 0:
                self.log.warning("no message from the carrier for {}s; ending the call", timeout)
                await self.end("inactivity", hang_up=True)
                return
            await asyncio.sleep(remaining if self.heard_caller else min(remaining, first_by - now))

    async def _record(self, hook: str, *args: Any) -> None:
        try:
            await getattr(self.services.recorder, hook)(*args)
        except Exception as exc:  # the store must never break a live call
            self.log.bind(stage="recorder").warning("{} failed: {}", hook, exc)
            self.telemetry.error("recorder", f"{hook}_failed")


def _words(text: str) -> str:
    """A transcript's words, for "does the final say what the interim said" (case and
    punctuation differ between a stream's interim and final results)."""
    return " ".join("".join(ch for ch in word if ch.isalnum()) for word in text.casefold().split())
