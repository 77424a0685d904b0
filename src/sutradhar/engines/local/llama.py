"""Offline LLM with llama-cpp-python and a GGUF file (default: the packaged Qwen2.5 0.5B Instruct).

Generation runs on one dedicated thread (a llama.cpp context is not thread-safe, and one decode
already uses the configured cores); tokens cross into the event loop through an asyncio queue.
When the caller stops listening (barge-in cancels the task, or the consumer closes the stream) a
flag is set and the thread stops at the next token, so the cores are free for the next turn.
The chat template is the one stored in the GGUF.

A 0.5B model does not call tools reliably and answers a misheard question with nonsense, so the
responder's script answers first (`script`): a keyword intent it knows is said with the script's
line, a tool intent with its number slot filled becomes a tool call (the result said with the
script's line). The model gets the rest, with the tuned prompt and greedy decoding of
`llm_prompt.LocalPrompt`, and each clause it writes passes `reply_guard` before it is said.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from sutradhar.engines.base import (
    EmptyResult,
    LLMDelta,
    Message,
    Provider,
    ProviderError,
    ToolCall,
    ToolSchema,
)
from sutradhar.engines.local.flow_plan import flow_plan
from sutradhar.engines.local.llm_prompt import LocalPrompt
from sutradhar.engines.local.responder import Script, spoken_sentences
from sutradhar.engines.threaded import stream_from_thread
from sutradhar.text.sentences import SentenceChunker

log = logger.bind(stage="llm")

DEFAULT_GGUF = "qwen2.5-0.5b-instruct.gguf"
JUDGED_WORDS = 6  # the guard judges the reply's opening at its first clause end or this many words
# The model's opening that commits it to the fallback line ("I can help ..."): the prompt teaches
# that line word for word and no example answer opens like it, so three words say it, and the
# caller need not wait for the model's next three (~0.2-0.4 s on one busy core).
FALLBACK_WORDS = 3


def _load_llama(path: Path, context_tokens: int, threads: int) -> Any:
    """Load a GGUF with llama.cpp's "extra buffer types" (AMX, weight repacking) turned off.

    On CPUs that advertise AMX inside a VM, llama.cpp 0.3.36's AMX matmul segfaults on the first
    decode (seen here on a 2-core Sapphire Rapids guest). The plain CPU path is safe everywhere and,
    for a 0.5B model, fast enough (about 30 tokens/s on 2 cores). llama-cpp-python exposes no
    argument for it, so the default parameters are wrapped while the model loads.
    """
    import llama_cpp.llama_cpp as bindings
    from llama_cpp import Llama

    original = bindings.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = original()
        if hasattr(params, "use_extra_bufts"):
            params.use_extra_bufts = False
        return params

    bindings.llama_model_default_params = without_extra_buffers
    try:
        return Llama(model_path=str(path), n_ctx=context_tokens, n_threads=threads,
                     n_threads_batch=threads, n_batch=256, verbose=False)
    finally:
        bindings.llama_model_default_params = original


@dataclass
class LocalLLM(Provider):
    name: str = "local-llm"
    # The 0.5B model writes one long sentence: TTS starts on the first clause the guard passed
    # (at 12 words it also waited for the model's next clause, ~0.1 s a token on the busy box).
    first_chunk_words = JUDGED_WORDS
    model_path: Path = Path()
    max_tokens: int = 120  # LLM_MAX_TOKENS; the prompt's own max_tokens applies when smaller
    threads: int = 1  # see LLM_THREADS in config.py
    context_tokens: int = 2048
    script: Script | None = None  # answers the intents it knows (and plans tool calls) first
    prompt: LocalPrompt = field(default=None)  # type: ignore[assignment]  # None: the packaged one
    _llama: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="llama"),
        init=False, repr=False)

    def __post_init__(self) -> None:
        if self.prompt is None:
            self.prompt = LocalPrompt.load(self.script)

    def _load(self) -> Any:
        with self._lock:
            if self._llama is None:
                if not self.model_path.is_file():
                    raise ProviderError(f"no GGUF at {self.model_path}", provider=self.name,
                                        stage="llm", retryable=False)
                self._llama = _load_llama(self.model_path, self.context_tokens, self.threads)
                log.info("loaded GGUF {}", self.model_path)
            return self._llama

    def _warm(self) -> None:
        """Load, then evaluate the prompt's fixed prefix once: the first caller's turn then
        prefills only its own words (llama.cpp reuses the longest matching prefix)."""
        began = time.monotonic()
        llama = self._load()
        loaded = time.monotonic()
        llama.create_chat_completion(messages=[*self.prompt.prefix(), {"role": "user", "content": "Hello"}],
                                     max_tokens=1, temperature=0.0)
        log.info("warm load_ms={} prefix_ms={}", round((loaded - began) * 1000),
                 round((time.monotonic() - loaded) * 1000))

    async def warm_up(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._warm)

    @property
    def fixed_lines(self) -> tuple[str, ...]:  # type: ignore[override]
        return (self.prompt.fallback,)

    def _generate(self, messages: list[dict[str, str]], stop: threading.Event) -> Iterator[str]:
        """Worker thread: completion deltas until done or `stop` is set."""
        chunks = self._load().create_chat_completion(
            messages=messages, stream=True, max_tokens=min(self.max_tokens, self.prompt.max_tokens),
            temperature=self.prompt.temperature, repeat_penalty=self.prompt.repeat_penalty,
            stop=list(self.prompt.stop))
        try:
            for chunk in chunks:
                if stop.is_set():
                    return  # closing the generator below ends llama.cpp's decode loop
                delta = chunk["choices"][0].get("delta", {}).get("content")
                if delta:
                    yield delta
        finally:
            chunks.close()

    @property
    def supports_tools(self) -> bool:
        return self.script is not None

    async def stream(self, messages: Sequence[Message], language: str,
                     tools: Sequence[ToolSchema] | None = None) -> AsyncIterator[LLMDelta]:
        script = self.script
        if script is not None and language in script.languages:
            offered = {t.get("function", {}).get("name") for t in tools or ()}
            planned = script.respond(messages, language, offered, flow_plan(tools))
            if isinstance(planned, ToolCall):  # a tool call, or below the question for its number
                yield planned
                return
            if planned is not None:
                async for sentence in spoken_sentences(planned):
                    yield sentence
                return
        heard = next((m.content for m in reversed(messages) if m.role == "user"), "")
        wire = self.prompt.messages(messages)
        produced = False
        try:
            async for clause in self._checked(wire, heard):
                produced = True
                yield clause
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(f"llama.cpp failed: {exc}", provider=self.name, stage="llm") from exc
        if not produced:
            raise EmptyResult("the model produced no text", provider=self.name, stage="llm")

    async def _clauses(self, wire: list[dict[str, str]]) -> AsyncIterator[str]:
        """The model's reply in clauses (text/sentences.py), the first at most `JUDGED_WORDS` long:
        the turn budget counts to the first delta, and six words are enough to judge it. An
        opening of the fallback line is the whole line at once (`opens_fallback`)."""
        chunker = SentenceChunker(first_max_words=JUDGED_WORDS)
        opening: str | None = ""  # the text before the first clause; None once one is out
        generation = stream_from_thread(self._executor, lambda stop: self._generate(wire, stop))
        async with contextlib.aclosing(generation) as deltas:  # closing it stops the decode
            async for delta in deltas:
                clauses = chunker.push(delta)
                if opening is not None:
                    opening += delta
                    if opens_fallback(opening, self.prompt.fallback):
                        yield self.prompt.fallback
                        return
                    if clauses:
                        opening = None
                for clause in clauses:
                    yield clause
        for clause in chunker.flush():
            yield clause

    async def _checked(self, wire: list[dict[str, str]], heard: str) -> AsyncIterator[str]:
        """Each clause checked by the prompt's guard before it is said: a bad first clause becomes
        the fallback line, a later echo ends the reply after the clauses already said."""
        said = ""
        async with contextlib.aclosing(self._clauses(wire)) as clauses:
            async for clause in clauses:
                if not said and self.prompt.fallback.startswith(clause.strip()):
                    # The model is saying the fallback line (the prompt asks it to): say all of it
                    # now, so TTS need not wait for the last words, and free the core.
                    yield self.prompt.fallback
                    return
                reason = self.prompt.guard.verdict(clause, heard, before=said)
                if reason is not None:
                    log.info("model answer replaced reason={} after_words={} clause_words={}", reason,
                             len(said.split()), len(clause.split()))
                    if not said:
                        yield self.prompt.fallback
                    return
                said += clause
                yield clause

    async def health(self) -> None:
        if self._llama is None and not self.model_path.is_file():
            raise ProviderError(f"no GGUF at {self.model_path}", provider=self.name, stage="llm",
                                retryable=False)

    async def aclose(self) -> None:
        """Free the model on the worker thread, after any generation still stopping there."""
        def close() -> None:
            llama, self._llama = self._llama, None
            if llama is not None:
                llama.close()

        await asyncio.get_running_loop().run_in_executor(self._executor, close)
        self._executor.shutdown(wait=False)


def opens_fallback(text: str, fallback: str) -> bool:
    """`text` (the model's opening so far) is `FALLBACK_WORDS` or more words, the fallback line's
    first ones. The last need not be complete ("help" could go on only to "helped", which "I can"
    rules out), so the line is known on the token that writes its third word."""
    words = text.split()
    return len(words) >= FALLBACK_WORDS and words == fallback.split()[:len(words)]

