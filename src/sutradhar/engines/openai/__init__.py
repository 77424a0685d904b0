"""Any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp, Groq, ...): chat, STT, TTS."""

from __future__ import annotations

from sutradhar.config import Settings
from sutradhar.engines.registry import register


@register("stt", "openai")
def _stt(s: Settings):
    from sutradhar.engines.openai.compat import OpenAISTT

    return OpenAISTT(base_url=s.openai_stt_base_url or s.openai_base_url, api_key=s.openai_api_key,
                     model=s.openai_stt_model, timeout_s=s.stt_timeout_s)


@register("llm", "openai")
def _llm(s: Settings):
    from sutradhar.engines.openai.compat import OpenAIChat

    return OpenAIChat(base_url=s.openai_base_url, api_key=s.openai_api_key, model=s.openai_llm_model,
                      max_tokens=s.llm_max_tokens, timeout_s=s.llm_timeout_s)


@register("tts", "openai")
def _tts(s: Settings):
    from sutradhar.engines.openai.compat import OpenAITTS

    return OpenAITTS(base_url=s.openai_tts_base_url or s.openai_base_url, api_key=s.openai_api_key,
                     model=s.openai_tts_model, voice=s.openai_tts_voice, timeout_s=s.tts_timeout_s)
