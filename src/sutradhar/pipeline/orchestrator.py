"""AgentOrchestrator: one call's conductor. One turn, top to bottom, in `respond`:

    utterance -> STT -> language -> intent? -> context -> LLM stream -> sentence chunks -> TTS stream
                                                          \-> tool calls -> tools -> LLM again

When the agent has tools, the LLM is offered them; a reply that calls some has them run (in
parallel, each under its timeout, a filler line said once if they are slow), their results added
to the context, and the LLM asked again to speak the answer, all inside the same cancellable turn.

The LLM and TTS run as two tasks joined by a queue of sentences, so the first sentence is being
spoken while later ones are still being written: first audio = STT + first clause + first TTS
chunk. Cancelling `respond` (barge-in) cancels both tasks and every provider call in flight; the
session then reports what the caller heard with `record_heard`, and the context keeps only that.

Each caller turn carries a `TurnDeadline` (TURN_BUDGET_S from the end of the caller's speech):
until the first audio plays, every provider attempt is bounded by what is left of it, and when
TTS fails (or the budget is spent) before the caller heard anything, the apology synthesised at
start-up (`ApologyCache`) is played instead, so the caller always hears something in time.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import time
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from loguru import logger

from sutradhar.agents.prefetch import ToolPrefetch, adopt
from sutradhar.agents.results import facts_from_tool
from sutradhar.agents.runs import ToolOutcome, run_tool_call
from sutradhar.agents.tools import ToolBox, ToolContext
from sutradhar.config import DEFAULT_SYSTEM_PROMPT
from sutradhar.engines.base import (
    AudioChunk,
    LLMProvider,
    MalformedResponse,
    Message,
    ProviderError,
    STTProvider,
    ToolCall,
    TTSProvider,
)
from sutradhar.engines.deadline import TurnDeadline
from sutradhar.engines.fallback import StreamInterrupted, TaskRouter
from sutradhar.pipeline.apologies import ApologyCache
from sutradhar.pipeline.call_language import LanguageCoordinator
from sutradhar.pipeline.context import ContextManager
from sutradhar.pipeline.events import (
    ActionRequested,
    Event,
    LanguageSwitched,
    ReplyAudio,
    ReplyText,
    SentenceDone,
    Transcribed,
    TurnCompleted,
    TurnRecord,
    Utterance,
)
from sutradhar.pipeline.flow import FlowRun
from sutradhar.pipeline.intents import Intent, detect_intent
from sutradhar.pipeline.keypad import Keypad
from sutradhar.pipeline.metrics import MetricsCollector
from sutradhar.text.langid import resolve_language
from sutradhar.text.languages import LANGUAGES
from sutradhar.text.sentences import SentenceChunker

# Audio shorter than this cannot hold a word; do not spend an STT call on it.
MIN_UTTERANCE_S = 0.15
EARLY_STT_GRACE_S = 0.05
# A cached apology goes out in pieces this long, like a TTS stream (marks, barge-in).
APOLOGY_CHUNK_S = 0.2
# LLM -> tools -> LLM rounds in one turn; a model that keeps calling tools is answered anyway.
MAX_TOOL_ROUNDS = 3


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


@dataclass
class Checkpoint:
    history: list[Any]
    total_turns: int
    language_instruction: str
    system_prompt: str
    language: LanguageCoordinator
    last_reply: str
    turn_count: int
    next_id: int
    records: set[int]
    facts: dict[str, Any]
    flow: tuple[Any, ...] | None


class AgentOrchestrator:
    """Conducts every turn of one call. Cheap to create: the providers live in the shared router."""

    def __init__(
        self,
        stt: STTProvider | Sequence[STTProvider] | None = None,
        llm: LLMProvider | Sequence[LLMProvider] | None = None,
        tts: TTSProvider | Sequence[TTSProvider] | None = None,
        *,
        router: TaskRouter | None = None,
        call_id: str = "",
        language: str = "en-IN",
        languages: Sequence[str] = ("te-IN", "hi-IN", "en-IN", "gu-IN"),
        system_prompt: str = DEFAULT_SYSTEM_PROMPT,
        max_history: int = 10,
        max_context_chars: int = 0,
        switch_threshold: int = 2,
        min_turns_before_switch: int = 1,
        metrics: MetricsCollector | None = None,
        clock: Any = time.monotonic,
        turn_budget_s: float | None = None,
        apologies: ApologyCache | None = None,
        tools: ToolBox | None = None,
        tool_filler_s: float = 0.4,
        tool_prefetch: bool = True,
        greetings: Mapping[str, str] | None = None,
        system_prompts: Mapping[str, str] | None = None,
        flow: FlowRun | None = None,
    ) -> None:
        self.router = router or TaskRouter(_as_list(stt), _as_list(llm), _as_list(tts))
        self.call_id = call_id
        self.languages = tuple(languages) if language in languages else (*languages, language)
        self.language = LanguageCoordinator(language, self.languages, switch_threshold,
                                            min_turns_before_switch)
        self.context = ContextManager(max_history, max_context_chars, system_prompt,
                                      LANGUAGES[language].instruction)
        self.metrics = metrics or MetricsCollector()
        self.clock = clock
        self.turn_budget_s = turn_budget_s  # None or 0: no budget, only each stage's timeouts
        self.apologies = apologies or ApologyCache()
        self.tools = tools or ToolBox()
        # An agent's own lines per language; a language it leaves out gets the standard ones.
        self.greetings = dict(greetings or {})
        self.system_prompts = dict(system_prompts or {})
        self._base_prompt = system_prompt
        self.flow = flow  # the agent file's flow: this call's state, its tools and prompt
        # What the call established (tool arguments and results, flow slots): post-call results.
        self.facts: dict[str, Any] = {}
        self.context.system_prompt = self._prompt_for(language)
        self.tool_filler_s = tool_filler_s  # a tool slower than this gets the filler line
        self.tool_prefetch = tool_prefetch  # start tools the transcript settles with the turn
        self.keypad = Keypad()  # the session plugs the line in: collect_digits and send_dtmf use it
        self.state = "idle"
        self.turn_count = 0  # caller turns answered
        self.records: dict[int, TurnRecord] = {}
        self._next_id = 1
        self._last_reply: str = ""
        self._speculative: set[int] = set()  # turns started ahead of the end of turn, not committed
        self._held_metrics: dict[int, tuple[dict[str, float | None], dict[str, Any]]] = {}
        # A speculative turn's tools that must not be interrupted (a booking, a payment) wait here
        # until `commit`: a speculation can be undone, their effect cannot.
        self._commit_gates: dict[int, asyncio.Event] = {}
        self.log = logger.bind(call_id=call_id or "-")

    # --- the seed's API ---

    def set_language(self, code: str, source: str = "caller") -> bool:
        changed = self.language.set_language(code, source)
        self._apply_language()
        if changed:
            self.log.bind(stage="language").info("language set to={} source={}", code, source)
        return changed

    def set_system_prompt(self, prompt: str) -> None:
        self._base_prompt = self.context.system_prompt = prompt
        self.system_prompts.clear()  # an explicit prompt is for every language

    def _apply_language(self) -> None:
        """The LLM's instructions follow the call's language (the agent's prompt for it, if any)."""
        current = self.language.current
        self.context.language_instruction = LANGUAGES[current].instruction
        self.context.system_prompt = self._prompt_for(current)

    def _prompt_for(self, language: str) -> str:
        base = self.system_prompts.get(language, self._base_prompt)
        return self.flow.system_prompt(base, language) if self.flow is not None else base

    def greeting(self) -> str:
        return self.greetings.get(self.language.current) or LANGUAGES[self.language.current].greeting

    def get_status(self) -> dict[str, Any]:
        last = self.records[max(self.records)] if self.records else None
        return {
            "call_id": self.call_id,
            "state": self.state,
            "language": self.language.current,
            "switching": self.language.get_switch_status(),
            "turn_count": self.turn_count,
            "history_length": len(self.context.history),
            "flow_state": self.flow.state if self.flow is not None else None,
            "last_turn": last.timings if last else None,
        }

    async def process_turn(
        self, audio: bytes, language: str | None = None, system_prompt: str | None = None,
        sample_rate: int = 16000,
    ) -> dict[str, Any]:
        """Batch API: one whole turn. Returns text, response, audio (PCM16), sample_rate, language."""
        if language:
            self.set_language(language, "caller")
        if system_prompt:
            self.set_system_prompt(system_prompt)
        pcm = bytearray()
        rate: int | None = None
        record: TurnRecord | None = None
        async for event in self.respond(Utterance(audio, sample_rate, self.clock())):
            if isinstance(event, ReplyAudio):
                if rate is None:
                    rate = event.chunk.sample_rate
                if event.chunk.sample_rate != rate:
                    from sutradhar.audio.codecs import resample

                    pcm += resample(event.chunk.pcm, event.chunk.sample_rate, rate)
                else:
                    pcm += event.chunk.pcm
            elif isinstance(event, TurnCompleted):
                record = event.record
        assert record is not None
        return {"text": record.text, "response": record.reply, "audio": bytes(pcm),
                "sample_rate": rate, "language": record.language, "intent": record.intent,
                "timings": record.timings, "errors": record.errors}

    # --- the streaming path ---

    def _new_turn_id(self) -> int:
        turn_id, self._next_id = self._next_id, self._next_id + 1
        return turn_id

    # --- speculation: a reply started before the end of turn is certain ---

    def checkpoint(self) -> Checkpoint:
        """Everything a turn changes, so a speculative reply can be undone without a trace."""
        return Checkpoint(list(self.context.history), self.context.total_turns,
                          self.context.language_instruction, self.context.system_prompt,
                          copy.deepcopy(self.language),
                          self._last_reply, self.turn_count, self._next_id, set(self.records),
                          dict(self.facts), self.flow.snapshot() if self.flow is not None else None)

    def restore(self, checkpoint: Checkpoint) -> None:
        """Undo a speculative reply that was cancelled (await its task first): context, language,
        turn ids and records are as they were; it is not counted in the metrics."""
        c = checkpoint
        self.context.history[:] = c.history
        self.context.total_turns, self.context.language_instruction = c.total_turns, c.language_instruction
        self.context.system_prompt = c.system_prompt
        self.language, self._last_reply, self.turn_count = c.language, c.last_reply, c.turn_count
        for turn_id in [t for t in self.records if t not in c.records]:
            del self.records[turn_id]
            self._speculative.discard(turn_id)
            self._held_metrics.pop(turn_id, None)
            self._commit_gates.pop(turn_id, None)
        self._next_id = c.next_id
        self.facts = dict(c.facts)
        if self.flow is not None and c.flow is not None:
            self.flow.restore(c.flow)
        self.state = "idle"

    def commit(self) -> None:
        """The caller did stop: the speculative reply is a real turn (counted in the metrics)."""
        for turn_id in sorted(self._speculative):
            if (gate := self._commit_gates.pop(turn_id, None)) is not None:
                gate.set()
            held = self._held_metrics.pop(turn_id, None)
            if held is not None:
                self.metrics.record_turn(*held)
        self._speculative.clear()

    async def respond(self, utterance: Utterance, speculative: bool = False) -> AsyncIterator[Event]:
        """Answer one caller turn as a stream of events. Cancel it to interrupt (barge-in).
        `speculative`: started before the end of turn is certain; `commit` or `restore` after."""
        turn_id = self._new_turn_id()
        if speculative:
            self._speculative.add(turn_id)
        start = utterance.ended_at or self.clock()
        record = TurnRecord(turn_id, self.call_id, language=self.language.current)
        self.records[turn_id] = record
        self._trim_records()
        log = self.log.bind(turn=turn_id)
        self.turn_count += 1
        first_audio: list[float] = []
        deadline = TurnDeadline.starting(self.turn_budget_s, start, self.clock)
        try:
            async for event in self._run_turn(utterance, turn_id, record, first_audio, deadline, log):
                yield event
        finally:
            self.state = "idle"
            if first_audio:
                record.timings["v2v_ms"] = round((first_audio[0] - start) * 1000, 1)
            if record.intent is None and record.reply:
                record.intent = "llm"
            if self.flow is not None:
                record.state = self.flow.state
            if turn_id in self._speculative:  # counted when committed, never if undone
                self._held_metrics[turn_id] = (record.timings, record.as_dict())
            else:
                self.metrics.record_turn(record.timings, record.as_dict())
        log.bind(stage="turn").info("turn done intent={} v2v_ms={} errors={}", record.intent,
                                    record.timings.get("v2v_ms"), len(record.errors))
        yield TurnCompleted(turn_id, record)

    async def _run_turn(self, utterance: Utterance, turn_id: int, record: TurnRecord,
                        first_audio: list[float], deadline: TurnDeadline, log: Any) -> AsyncIterator[Event]:
        # 1. Speech to text.
        self.state = "transcribing"
        text, stt_language = await self._transcribe(utterance, record, deadline, log)
        if text is None:
            record.intent = "not_heard"
            async for event in self._say(turn_id, LANGUAGES[self.language.current].not_heard,
                                         record, first_audio, remember=False, deadline=deadline):
                yield event
            return
        record.text = text
        yield Transcribed(turn_id, text, stt_language)

        # 2. Which language is this turn in; switch the call after enough consecutive turns.
        detected = resolve_language(stt_language, text, self.languages)
        record.detected_language = detected
        old = self.language.current
        if self.language.set_detected_language(detected):
            self._apply_language()
            record.switched_to = self.language.current
            log.bind(stage="language").info("auto-switched from={} to={}", old, self.language.current)
            yield LanguageSwitched(turn_id, old, self.language.current, "auto")
        record.language = self.language.current

        # 3. Actions bypass the LLM.
        intent = detect_intent(text, self.languages)
        if intent is not None:
            record.intent = intent.kind
            async for event in self._act(intent, turn_id, text, record, first_audio, deadline):
                yield event
            return

        # 4. LLM stream -> sentence chunks -> TTS stream.
        self.context.add_turn("user", text, self.language.current, turn_id=turn_id)
        async for event in self._generate_and_speak(turn_id, record, first_audio, deadline, log):
            yield event

    async def speak(self, text: str, remember: bool = True) -> AsyncIterator[Event]:
        """Speak a fixed line (greeting, DTMF answers) through the TTS chain."""
        turn_id = self._new_turn_id()
        record = TurnRecord(turn_id, self.call_id, language=self.language.current, intent="say")
        async for event in self._say(turn_id, text, record, [], remember=remember):
            yield event

    async def repeat_last(self) -> AsyncIterator[Event]:
        """Say the last reply again ("*" on the keypad, or "repeat that")."""
        line = self._last_reply or LANGUAGES[self.language.current].nothing_to_repeat
        async for event in self.speak(line, remember=False):
            yield event

    def record_heard(self, turn_id: int, heard_text: str) -> dict[str, Any] | None:
        """After a barge-in: keep only what the caller heard of `turn_id`'s reply in the context."""
        self.context.record_heard(turn_id, heard_text.strip(), self.language.current)
        record = self.records.get(turn_id)
        if record is None:
            return None
        record.heard, record.interrupted = heard_text.strip(), True
        if heard_text.strip():
            self._last_reply = heard_text.strip()
        self.log.bind(stage="barge_in", turn=turn_id).info("caller interrupted; heard {} of {} chars",
                                                           len(record.heard), len(record.reply))
        return record.as_dict()

    # --- steps ---

    async def _transcribe(self, utterance: Utterance, record: TurnRecord, deadline: TurnDeadline,
                          log: Any) -> tuple[str | None, str | None]:
        live = utterance.transcription
        if utterance.text is not None or utterance.duration_s < MIN_UTTERANCE_S:
            if live is not None:
                await live.aclose()
            if utterance.text is not None:
                return (utterance.text.strip() or None), None
            record.error("stt", ProviderError("utterance too short to transcribe", stage="stt"))
            return None, None
        began = self.clock()
        try:
            if utterance.early_stt is not None:  # started at the pause; the caller did not go on
                record.stt_mode = "early"
                began = utterance.early_started or began
                transcript = await self._within(deadline, utterance.early_stt)
            elif live is not None:  # heard while spoken: the flush (or the chain's fallback) is left
                record.stt_mode = "stream"
                transcript = await live.finish(utterance.audio, utterance.sample_rate,
                                               self.language.current, detect=True, deadline=deadline)
            else:
                transcript = await self.router.route_transcription(
                    utterance.audio, utterance.sample_rate, self.language.current, detect=True,
                    deadline=deadline)
        except ProviderError as exc:
            record.error("stt", exc)
            log.bind(stage="stt").warning("transcription failed: {}", exc)
            return None, None
        finally:
            record.timings["stt_ms"] = round((self.clock() - began) * 1000, 1)
        record.providers["stt"] = transcript.provider or None
        log.bind(stage="stt").info("heard chars={} language={}", len(transcript.text), transcript.language)
        return transcript.text.strip(), transcript.language

    def _first_chunk_words(self, served: list[str]) -> int:
        """The serving LLM's first-chunk rule (engines/base.py Provider.first_chunk_words)."""
        name = served[0] if served else None
        # getattr: an engine need not extend Provider (the LLM protocol does not require it)
        return next((getattr(p, "first_chunk_words", 0) for p in self.router.providers("llm") if p.name == name), 0)

    @staticmethod
    async def _within(deadline: TurnDeadline, early: asyncio.Future[Any]) -> Any:
        """Await the STT started at the caller's pause, no longer than what is left of the budget."""
        # A hair past the budget: the early STT runs under the same deadline, so its own error
        # (a provider timeout, say) is the truer one and reports first; this only bounds it.
        left = deadline.remaining()
        if left is not None:  # None: no budget (TURN_BUDGET_S=0)
            left += EARLY_STT_GRACE_S
        try:
            async with asyncio.timeout(left):
                return await early
        except TimeoutError:
            raise deadline.spent_error("stt") from None

    async def _act(self, intent: Intent, turn_id: int, text: str, record: TurnRecord,
                   first_audio: list[float], deadline: TurnDeadline) -> AsyncIterator[Event]:
        self.context.add_turn("user", text, self.language.current, turn_id=turn_id)
        info = LANGUAGES[self.language.current]
        if intent.kind == "switch_language" and intent.language:
            old = self.language.current
            self.set_language(intent.language, "caller")
            record.language = record.switched_to = self.language.current
            if old != self.language.current:
                yield LanguageSwitched(turn_id, old, self.language.current, "caller")
            line = LANGUAGES[self.language.current].switched
        elif intent.kind == "repeat":
            line = self._last_reply or info.nothing_to_repeat
        elif intent.kind == "human":
            line = info.transfer
        else:
            line = info.goodbye
        async for event in self._say(turn_id, line, record, first_audio, remember=True,
                                     deadline=deadline):
            yield event
        if intent.kind == "human":
            yield ActionRequested(turn_id, "transfer")
        elif intent.kind == "end_call":
            yield ActionRequested(turn_id, "end_call")

    async def _say(self, turn_id: int, line: str, record: TurnRecord, first_audio: list[float],
                   remember: bool, deadline: TurnDeadline | None = None) -> AsyncIterator[Event]:
        """Speak a fixed line, sentence by sentence, without the LLM."""
        record.reply = line
        chunker = SentenceChunker()
        sentences = [*chunker.push(line), *chunker.flush()]
        seq = 0
        for sentence in sentences:
            async for event in self._synthesize(turn_id, seq, sentence, record, first_audio, deadline):
                yield event
            seq += 1
        if remember:
            self.context.add_turn("assistant", line, self.language.current, turn_id=turn_id)
            self._last_reply = line

    async def _synthesize(self, turn_id: int, seq: int, sentence: str, record: TurnRecord,
                          first_audio: list[float], deadline: TurnDeadline | None = None
                          ) -> AsyncIterator[Event]:
        """Speak one sentence. `deadline`: a caller turn's (None for a greeting or a keypad line),
        which bounds TTS until the first audio and lets the cached apology stand in for it."""
        text = sentence.strip()
        if not text or record.apology:  # the cached apology stood in for the rest of this turn
            return
        if deadline is not None and deadline.spent and not first_audio and self._is_apology(record.reply):
            # Late, and only sorry to say: the cached line now, no TTS request (an answer's text
            # still gets a late TTS attempt: the router gives it LATE_SPEECH_S).
            record.error("tts", deadline.spent_error("tts"))
            async for event in self._play_apology(turn_id, seq, record, first_audio, deadline):
                yield event
            return
        yield ReplyText(turn_id, seq, sentence)
        began = self.clock()
        first = True
        served: list[str] = []
        try:
            async for chunk in self.router.route_synthesis(text, self.language.current, served, deadline):
                now = self.clock()
                if first:
                    first = False
                    record.timings.setdefault("tts_ttfb_ms", round((now - began) * 1000, 1))
                    if not first_audio:
                        first_audio.append(now)
                        if deadline is not None:
                            deadline.meet()
                yield ReplyAudio(turn_id, seq, sentence, chunk)
        except ProviderError as exc:
            # The text result still stands; the caller just does not hear this sentence.
            record.error("tts", exc)
            self.log.bind(stage="tts", turn=turn_id).warning("no audio for sentence {}: {}", seq, exc)
            if first and not first_audio and deadline is not None:
                # Nothing heard yet this turn: the caller must not be left in silence.
                async for event in self._play_apology(turn_id, seq, record, first_audio, deadline):
                    first = False
                    yield event
        finally:
            spent = round((self.clock() - began) * 1000, 1)
            record.timings["tts_ms"] = round((record.timings.get("tts_ms") or 0.0) + spent, 1)
        if served:
            record.providers["tts"] = served[0]
        if not first:
            yield SentenceDone(turn_id, seq, sentence)

    def _is_apology(self, text: str) -> bool:
        """`text` (a fixed line being said) is an apology line whose audio is cached."""
        language = self.language.current
        info = LANGUAGES[language]
        for kind, line in (("not_heard", info.not_heard), ("trouble", info.trouble)):
            if text.strip() == line.strip() and self.apologies.get(language, kind) is not None:
                return True
        return False

    async def _play_apology(self, turn_id: int, seq: int, record: TurnRecord, first_audio: list[float],
                            deadline: TurnDeadline) -> AsyncIterator[Event]:
        """Play the apology cached at start-up in place of a sentence TTS could not speak."""
        language = self.language.current
        apology = self.apologies.get(language, "not_heard" if record.intent == "not_heard" else "trouble")
        log = self.log.bind(stage="tts", turn=turn_id)
        if apology is None:
            log.error("TTS failed and no apology audio is cached for {}: the caller hears nothing", language)
            return
        record.apology = f"cached:{apology.provider}"
        first_audio.append(self.clock())
        deadline.meet()
        log.warning("playing the cached apology line={} voice={}", apology.kind, apology.provider)
        audio = apology.audio
        step = max(2, int(APOLOGY_CHUNK_S * audio.sample_rate) * 2)
        for start in range(0, len(audio.pcm), step):
            yield ReplyAudio(turn_id, seq, apology.text,
                             AudioChunk(audio.pcm[start:start + step], audio.sample_rate))

    async def _generate_and_speak(self, turn_id: int, record: TurnRecord, first_audio: list[float],
                                  deadline: TurnDeadline, log: Any) -> AsyncIterator[Event]:
        self.state = "thinking"
        language = self.language.current
        messages = self.context.get_context(include_metadata=True)
        box, schemas = self._offer(language)
        sentences: asyncio.Queue[str | None] = asyncio.Queue()
        events: asyncio.Queue[Event | None] = asyncio.Queue()
        reply: list[str] = []
        served: list[str] = []
        exchanges: list[tuple[tuple[ToolCall, ...], list[ToolOutcome]]] = []
        tool_context = ToolContext(self.call_id, language, self.languages, keypad=self.keypad)
        # Round 1 only decides on the tool: one the caller's words settle starts now, alongside it.
        prefetch = (ToolPrefetch.start(box, _offered_names(schemas), record.text or "", tool_context,
                                       self.clock)
                    if self.tool_prefetch and schemas and record.text else None)

        async def write() -> None:
            nonlocal language, box, schemas
            try:
                chunker = SentenceChunker()
                began = self.clock()
                conversation = list(messages)
                try:
                    for round_ in range(MAX_TOOL_ROUNDS + 1):
                        calls: list[ToolCall] = []
                        # The last round offers no tools: the LLM must speak an answer.
                        offered = schemas if round_ < MAX_TOOL_ROUNDS else ()
                        stream = contextlib.aclosing(self.router.route_generation(
                            conversation, language, served, deadline, tools=offered))
                        async with stream as deltas:
                            async for delta in deltas:
                                if isinstance(delta, ToolCall):
                                    calls.append(delta)
                                    continue
                                if not isinstance(delta, str):
                                    raise MalformedResponse(
                                        f"LLM yielded {type(delta).__name__}, not text", stage="llm",
                                        provider=served[0] if served else "")
                                if not reply:
                                    record.timings["llm_ttft_ms"] = round((self.clock() - began) * 1000, 1)
                                    chunker.first_max_words = self._first_chunk_words(served)
                                reply.append(delta)
                                for sentence in chunker.push(delta):
                                    sentences.put_nowait(sentence)
                        if not calls:
                            if prefetch is not None:
                                prefetch.cancel()  # answered without tools: the head start goes
                            break
                        for sentence in chunker.flush():  # what it said before calling is spoken now
                            sentences.put_nowait(sentence)
                        if reply and not reply[-1][-1:].isspace():
                            reply.append(" ")  # the next round's text is a new sentence
                        outcomes = await self._run_tools(turn_id, calls, tool_context, record,
                                                         reply, sentences, language, box, prefetch)
                        if prefetch is not None:
                            prefetch.cancel()  # round 1 has decided: what it did not ask for goes
                        exchanges.append((tuple(calls), outcomes))
                        conversation += [Message("assistant", "", tuple(calls)),
                                         *(Message("tool", o.content, tool_call_id=o.call.id)
                                           for o in outcomes)]
                        if self.flow is not None and self.flow.after_tools(
                                tool_context, [o.call.name for o in outcomes if not o.error],
                                self.context, turn_id):
                            # The next round is the new state's: its prompt, its tools, its context.
                            self._apply_language()
                            box, schemas = self._offer(language)
                            conversation = [*self.context.get_context(include_metadata=True),
                                            *_exchange_messages(exchanges)]
                        if tool_context.switch_to and tool_context.switch_to != self.language.current:
                            old = self.language.current
                            self.set_language(tool_context.switch_to, "caller")
                            language = record.language = record.switched_to = self.language.current
                            tool_context.language = language
                            conversation[0:1] = self.context.get_context(include_metadata=True)[0:1]
                            box, schemas = self._offer(language)
                            events.put_nowait(LanguageSwitched(turn_id, old, language, "tool"))
                except StreamInterrupted as exc:
                    record.error("llm", exc)
                    log.bind(stage="llm").warning("reply cut short: {}", exc)
                except ProviderError as exc:
                    record.error("llm", exc)
                    log.bind(stage="llm").warning("no reply from any LLM: {}", exc)
                except Exception as exc:  # noqa: BLE001 - a provider bug must not hang the turn
                    record.error("llm", exc)
                    log.bind(stage="llm").opt(exception=exc).error("LLM stream failed: {}", exc)
                finally:
                    record.timings["llm_ms"] = round((self.clock() - began) * 1000, 1)
                for sentence in chunker.flush():
                    sentences.put_nowait(sentence)
                if not "".join(reply).strip():
                    failed = any(o.error for _, outcomes in exchanges for o in outcomes)
                    fallback = LANGUAGES[language].tool_failed if failed else LANGUAGES[language].trouble
                    reply[:] = [fallback]
                    sentences.put_nowait(fallback)
            finally:
                sentences.put_nowait(None)  # speak() ends when the writer does, whatever happened

        async def speak() -> None:
            seq = 0
            try:
                while (sentence := await sentences.get()) is not None:
                    if self.state == "thinking":
                        self.state = "speaking"
                    async for event in self._synthesize(turn_id, seq, sentence, record, first_audio,
                                                        deadline):
                        events.put_nowait(event)
                    seq += 1
            finally:
                events.put_nowait(None)  # the consumer must never wait for a reply that is over

        tasks = [asyncio.create_task(write(), name=f"llm-{self.call_id}-{turn_id}"),
                 asyncio.create_task(speak(), name=f"tts-{self.call_id}-{turn_id}")]
        try:
            while (event := await events.get()) is not None:
                yield event
            await asyncio.gather(*tasks)
            for action in tool_context.actions:  # after every sentence of the reply
                yield ActionRequested(turn_id, action)
        finally:
            for task in tasks:
                task.cancel()
            if prefetch is not None:
                prefetch.cancel()  # a reply without tools, a barge-in, an undone speculation
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)
            # Even when interrupted, the context gets what was written; record_heard trims it.
            for calls, outcomes in exchanges:
                self.context.add_tool_exchange(calls, [(o.call.id, o.content) for o in outcomes],
                                               language, turn_id=turn_id)
            text = "".join(reply).strip()
            record.reply = text
            record.providers["llm"] = served[0] if served else None
            if text:
                self.context.add_turn("assistant", text, language, turn_id=turn_id)
                self._last_reply = text
            if not self.language.ensure_consistency(text):
                log.bind(stage="llm").warning("reply is not in {}'s script", language)

    def _offer(self, language: str) -> tuple[ToolBox, tuple[Any, ...]]:
        """The tools of this round: the flow state's (with its offline plan), else the agent's."""
        if self.flow is not None:
            return self.flow.box, self.flow.schemas(language)
        return self.tools, self.tools.schemas()

    async def _run_tools(self, turn_id: int, calls: list[ToolCall], context: ToolContext,
                         record: TurnRecord, reply: list[str], sentences: asyncio.Queue[str | None],
                         language: str, box: ToolBox,
                         prefetch: ToolPrefetch | None = None) -> list[ToolOutcome]:
        """Run one round of tool calls in parallel (a call the turn prefetched takes that run). If
        they outlast `tool_filler_s` and the caller has heard nothing of this reply yet, the filler
        line is said, once a turn."""
        self.state = "tool"
        began = self.clock()
        if turn_id in self._speculative and any(
                (t := box.get(c.name)) is not None and (not t.interruptible or t.waits_for_commit)
                for c in calls):
            await self._commit_gates.setdefault(turn_id, asyncio.Event()).wait()

        def say(line: str) -> None:  # a tool's own line (collect_digits' prompt), spoken at once
            reply.append(line + " ")
            sentences.put_nowait(line)

        context.say = say
        runs = asyncio.gather(*(self._tool_run(box, call, context, prefetch) for call in calls))
        try:
            if "".join(reply).strip() or record.filler:
                outcomes = await runs
            else:
                done, _ = await asyncio.wait({runs}, timeout=self.tool_filler_s)
                if not done and not "".join(reply).strip():  # a tool that spoke needs no filler
                    filler = LANGUAGES[language].filler
                    record.filler = True
                    reply.append(filler + " ")
                    sentences.put_nowait(filler)
                outcomes = await runs
        except asyncio.CancelledError:
            runs.cancel()  # barge-in: each run cancels its tool (or leaves a non-interruptible one)
            raise
        finally:
            # What the turn waited for its tools after the LLM asked (a prefetched run's head start
            # is not in it; its `duration_ms` in tool_calls is the whole run).
            record.timings["tool_ms"] = round((record.timings.get("tool_ms") or 0.0)
                                              + (self.clock() - began) * 1000, 1)
            self.state = "thinking"
        record.tool_calls.extend(o.record for o in outcomes)
        for outcome in outcomes:
            moved = self.flow is not None and self.flow.is_transition(outcome.call.name)
            if not outcome.error and not moved:  # a transition's arguments are the flow's slots
                self.facts.update(facts_from_tool(outcome.record["arguments"], outcome.content))
            if outcome.error:
                record.errors.append({"stage": "tool", "provider": outcome.call.name,
                                      "kind": outcome.error.split(":")[0], "message": outcome.error})
        return outcomes

    def _tool_run(self, box: ToolBox, call: ToolCall, context: ToolContext,
                  prefetch: ToolPrefetch | None) -> Awaitable[ToolOutcome]:
        task = prefetch.take(call) if prefetch is not None else None
        return adopt(task, call) if task is not None else run_tool_call(box, call, context, self.clock)

    def _trim_records(self) -> None:
        # Keep the last few records for status and barge-in; the store keeps them all.
        while len(self.records) > 20:
            del self.records[min(self.records)]


def _offered_names(schemas: Sequence[Any]) -> list[str]:
    return [name for s in schemas if (name := (s.get("function") or {}).get("name"))]


def _exchange_messages(exchanges: Sequence[tuple[tuple[ToolCall, ...], Sequence[ToolOutcome]]]) -> list[Message]:
    """This turn's tool calls and results so far, as the messages the LLM is shown."""
    out: list[Message] = []
    for calls, outcomes in exchanges:
        out.append(Message("assistant", "", calls))
        out += [Message("tool", o.content, tool_call_id=o.call.id) for o in outcomes]
    return out
