"""Screening an outbound call for an answering machine, inside the call.

While the detector (voicemail.py) decides, the caller's frames go to it instead of the turn
detector and the agent's greeting is held, so the agent never talks over a machine's greeting.
A person (or no decision within AMD_DECISION_MS) is greeted at once. A machine is hung up on, or,
with `voicemail: {action: leave_message}`, left the agent's message once after the beep (or once
the greeting has ended and the line is quiet), and then hung up on. The carrier's own verdict
(Twilio's AsyncAmd callback) is a second opinion: whichever decides first wins, and a
DetectMessageEnd "machine_end_*" says the message can start now.

Each verdict is logged, counted (sutradhar_answering_verdicts) and stored on the call record.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field
from typing import Any, Protocol

from sutradhar.agents.spec import AgentSpec
from sutradhar.audio.codecs import resample
from sutradhar.audio.turns import STT_RATE
from sutradhar.audio.vad import make_vad
from sutradhar.config import Settings
from sutradhar.services import Services
from sutradhar.telephony.voicemail import (
    HUMAN,
    MACHINE,
    UNKNOWN,
    MachineDetector,
    Pending,
    Thresholds,
    Verdict,
    carrier_verdict,
)
from sutradhar.text.languages import LANGUAGES

DECIDING, AWAITING_BEEP, DONE = "deciding", "awaiting_beep", "done"


class ScreenedCall(Protocol):
    """What the screen needs of its call (a `CallSession`)."""

    call_id: str
    log: Any

    @property
    def language(self) -> str: ...

    def greet(self) -> None:
        """Play the held greeting and start taking turns."""

    def leave_message(self, text: str) -> None:
        """Say `text` once, uninterruptible, then hang up."""

    async def end(self, reason: str, hang_up: bool = False) -> None: ...


@dataclass(frozen=True)
class VoicemailPolicy:
    action: str  # hang_up | leave_message
    messages: dict[str, str] = field(default_factory=dict)

    @classmethod
    def resolve(cls, settings: Settings, agent: AgentSpec | None) -> VoicemailPolicy:
        spec = agent.voicemail if agent is not None else None
        if spec is None:
            return cls(settings.voicemail_action)
        return cls(spec.action, dict(spec.message))

    def message(self, language: str) -> str:
        return self.messages.get(language) or LANGUAGES[language].voicemail


def thresholds(settings: Settings) -> Thresholds:
    s = settings
    return Thresholds(long_greeting_ms=s.amd_long_greeting_ms, short_answer_ms=s.amd_short_answer_ms,
                      max_gap_ms=s.amd_max_gap_ms, decision_ms=s.amd_decision_ms,
                      message_silence_ms=s.amd_message_silence_ms, energy_floor=s.vad_energy_floor)


def screens(settings: Settings, info: dict[str, Any]) -> bool:
    """Is this stream an outbound call to screen? (Its answer webhook marked it outbound.)"""
    return settings.amd_enabled and info.get("direction") == "outbound"


class CallScreen:
    def __init__(self, call: ScreenedCall, services: Services, sample_rate: int) -> None:
        s = services.settings
        self.call, self.services = call, services
        self.log = call.log.bind(stage="amd")
        self.policy = VoicemailPolicy.resolve(s, services.agent)
        self.detector = MachineDetector(make_vad(s.vad, sample_rate, s.vad_aggressiveness), thresholds(s))
        self.beep_wait_ms = int(s.amd_beep_wait_s * 1000)
        self.phase = DECIDING
        self.verdict: Verdict | None = None  # the one acted on
        self.opinions: dict[str, dict[str, Any]] = {}  # source (detector, twilio) -> its verdict
        self.message: dict[str, Any] | None = None  # when and why the message was left
        self._decided_by: str | None = None
        self._transcribing: asyncio.Task[None] | None = None

    @property
    def active(self) -> bool:
        """True while the caller's audio is the screen's, not the conversation's."""
        return self.phase != DONE

    async def push(self, frame: bytes) -> None:
        outcome = self.detector.push(frame)
        if self.phase == DECIDING:
            if isinstance(outcome, Verdict):
                await self._decided(outcome, "detector")
            elif isinstance(outcome, Pending):
                self._transcribe(outcome)
        elif isinstance(outcome, Verdict):  # the carrier decided first: ours is kept as a second opinion
            await self._note("detector", outcome)
        if self.phase == AWAITING_BEEP:
            cue = self.detector.message_cue()
            assert self.verdict is not None
            if cue is None and self.detector.now_ms - self.verdict.at_ms >= self.beep_wait_ms:
                cue = "timeout"  # AMD_BEEP_WAIT_S: leave it now rather than never
            if cue is not None:
                self._leave(cue)

    async def carrier_verdict(self, carrier: str, answered_by: str, info: dict[str, Any]) -> None:
        """The carrier's own AMD answered (Twilio AsyncAmd)."""
        verdict = carrier_verdict(answered_by, self.detector.now_ms, info)
        await self._note(carrier, verdict)
        if self.phase == DECIDING and verdict.answered_by != UNKNOWN:
            await self._decided(verdict, carrier, noted=True)
        if self.phase == AWAITING_BEEP and answered_by.startswith("machine_end"):
            self._leave("carrier")  # DetectMessageEnd: the greeting (and its beep) are over

    async def key_pressed(self, digit: str) -> None:
        """Machines do not press keys: a key while deciding is a person."""
        if self.phase == DECIDING:
            await self._decided(Verdict(HUMAN, "dtmf", self.detector.now_ms, {"digit": digit}), "detector")

    def summary(self) -> dict[str, Any]:
        return {"answered_by": self.verdict.answered_by if self.verdict else None,
                "decided_by": self._decided_by, "opinions": self.opinions, "message": self.message}

    async def aclose(self) -> None:
        task, self._transcribing = self._transcribing, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    # --- deciding ---

    async def _decided(self, verdict: Verdict, source: str, noted: bool = False) -> None:
        if not noted:
            await self._note(source, verdict)
        self.verdict, self._decided_by = verdict, source
        self.log.info("answered by {} reason={} source={} at_ms={}", verdict.answered_by, verdict.reason,
                      source, verdict.at_ms)
        if verdict.answered_by != MACHINE:
            self.phase = DONE
            self.call.greet()
        elif self.policy.action == "hang_up":
            self.phase = DONE
            await self.call.end("voicemail", hang_up=True)
        else:
            self.phase = AWAITING_BEEP  # push() leaves the message on the next frame's cue

    async def _note(self, source: str, verdict: Verdict) -> None:
        """Count and store one opinion (every source's, acted on or not)."""
        self.opinions[source] = verdict.as_dict()
        self.services.telemetry.answering(source, verdict.answered_by)
        if self.services.store is not None:  # queued: never waits on the database
            await self.services.store.answering(self.call.call_id, source, verdict.as_dict())

    def _transcribe(self, pending: Pending) -> None:
        """An ambiguous greeting: what it said decides (a machine's phrase, else a person)."""
        if self._transcribing is not None:
            return

        async def run() -> None:
            try:
                audio = resample(pending.audio, pending.sample_rate, STT_RATE)
                transcript = await self.services.router.route_transcription(
                    audio, STT_RATE, self.call.language, detect=True)
                text = transcript.text
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - no transcript: the timeout decides
                self.log.info("could not transcribe the greeting: {}", exc)
                return
            finally:
                self._transcribing = None
            verdict = self.detector.heard(text)
            if verdict is None:
                return
            if self.phase == DECIDING:
                await self._decided(verdict, "detector")
            else:  # the carrier decided meanwhile: ours is kept as a second opinion
                await self._note("detector", verdict)

        self._transcribing = asyncio.create_task(run(), name=f"amd-stt-{self.call.call_id}")

    # --- leaving the message ---

    def _leave(self, cue: str) -> None:
        self.phase = DONE
        beep = self.detector.beep
        self.message = {"cue": cue, "at_ms": self.detector.now_ms, "language": self.call.language,
                        **({"beep": beep.as_dict()} if beep is not None else {})}
        self.log.info("leaving the voicemail message cue={} at_ms={}", cue, self.detector.now_ms)
        self.call.leave_message(self.policy.message(self.call.language))

