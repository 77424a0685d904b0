"""Offline LLM with llama-cpp-python and a GGUF file (default: the packaged Qwen2.5 0.5B Instruct).

Generation runs on one dedicated thread (a llama.cpp context is not thread-safe, and one decode
already uses the configured cores); tokens cross into the event loop through an asyncio queue.
When the caller stops listening (barge-in cancels the task, or the consumer closes the stream) a
flag is set and the thread stops at the next token, so the cores are free for the next turn.
The chat template is the one stored in the GGUF.

A 0.5B model does not call tools reliably, so when tools are offered the responder's script plans
them instead (`tool_script`: a keyword intent with its number slot filled becomes a tool call, and
the result is said with the script's line); every other turn is generated as before.
"""

from __future__ import annotations

import asyncio
import threading
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
    ToolSchema,
)
from sutradhar.engines.local.flow_plan import answer_tool, flow_plan, plan_turn
from sutradhar.engines.threaded import stream_from_thread

log = logger.bind(stage="llm")

DEFAULT_GGUF = "qwen2.5-0.5b-instruct.gguf"


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
    model_path: Path = Path()
    max_tokens: int = 120
    threads: int = 2
    context_tokens: int = 2048
    temperature: float = 0.3
    tool_script: Any = None  # a responder Script that plans tool calls; None: no tools
    _llama: Any = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    _executor: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="llama"),
        init=False, repr=False)

    def _load(self) -> Any:
        with self._lock:
            if self._llama is None:
                if not self.model_path.is_file():
                    raise ProviderError(f"no GGUF at {self.model_path}", provider=self.name,
                                        stage="llm", retryable=False)
                self._llama = _load_llama(self.model_path, self.context_tokens, self.threads)
                log.info("loaded GGUF {}", self.model_path)
            return self._llama

    async def warm_up(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._load)

    def _generate(self, messages: list[dict[str, str]], stop: threading.Event) -> Iterator[str]:
        """Worker thread: completion deltas until done or `stop` is set."""
        chunks = self._load().create_chat_completion(messages=messages, stream=True,
                                                     max_tokens=self.max_tokens,
                                                     temperature=self.temperature)
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
        return self.tool_script is not None

    async def stream(self, messages: Sequence[Message], language: str,
                     tools: Sequence[ToolSchema] | None = None) -> AsyncIterator[LLMDelta]:
        script = self.tool_script
        if tools and script is not None and language in script.languages:
            plan = flow_plan(tools)
            if messages and messages[-1].role == "tool":
                yield answer_tool(plan, messages) or script.tool_answer(messages, language)
                return
            heard = next((m.content for m in reversed(messages) if m.role == "user"), "")
            offered = {t.get("function", {}).get("name") for t in tools}
            planned = plan_turn(plan, messages) if plan is not None else None
            planned = planned if planned is not None else script.plan(heard, messages, language, offered)
            if planned is not None:  # a tool call, or the question for its missing number
                yield planned
                return
        # Earlier tool exchanges stay out of the prompt: the reply after them says what they found.
        wire = [m.as_dict() for m in messages if m.role != "tool" and not m.tool_calls]
        produced = False
        try:
            async for delta in stream_from_thread(self._executor,
                                                  lambda stop: self._generate(wire, stop)):
                produced = True
                yield delta
        except ProviderError:
            raise
        except Exception as exc:
            raise ProviderError(f"llama.cpp failed: {exc}", provider=self.name, stage="llm") from exc
        if not produced:
            raise EmptyResult("the model produced no text", provider=self.name, stage="llm")

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
