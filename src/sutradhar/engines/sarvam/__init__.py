"""Sarvam AI: speech-to-text (saaras), text-to-speech (bulbul) and chat (sarvam-105b)."""

from __future__ import annotations

from sutradhar.config import Settings
from sutradhar.engines.registry import register


def _needs_key(s: Settings) -> str | None:
    return None if s.sarvam_api_key else "a Sarvam provider is configured but SARVAM_API_KEY is empty"


@register("stt", "sarvam", check=_needs_key)
def _stt(s: Settings):
    from sutradhar.engines.sarvam.stt import SarvamSTT

    return SarvamSTT(base_url=s.sarvam_base_url, api_key=s.sarvam_api_key, model=s.sarvam_stt_model,
                     streaming=s.sarvam_stt_streaming, ws_url=s.sarvam_ws_url, timeout_s=s.stt_timeout_s)


@register("stt", "sarvam-realtime", check=_needs_key)
def _stt_realtime(s: Settings):
    # A separate name, not a SARVAM_STT_STREAMING mode of `sarvam`: another endpoint with its own
    # models, so `STT=sarvam-realtime,sarvam` puts the REST endpoint behind it with its own breaker.
    from sutradhar.engines.sarvam.realtime import SarvamRealtimeSTT

    return SarvamRealtimeSTT(base_url=s.sarvam_base_url, api_key=s.sarvam_api_key,
                             model=s.sarvam_stt_realtime_model, ws_url=s.sarvam_ws_url,
                             detect_language=s.sarvam_stt_realtime_detect,
                             timeout_s=s.stt_timeout_s)


@register("llm", "sarvam", check=_needs_key)
def _llm(s: Settings):
    from sutradhar.engines.sarvam.llm import SarvamLLM

    return SarvamLLM(base_url=s.sarvam_base_url, api_key=s.sarvam_api_key, model=s.sarvam_llm_model,
                     reasoning_effort=s.sarvam_reasoning_effort or None,
                     max_tokens=s.llm_max_tokens, timeout_s=s.llm_timeout_s)


@register("tts", "sarvam", check=_needs_key)
def _tts(s: Settings):
    from sutradhar.engines.sarvam.tts import SarvamTTS

    return SarvamTTS(base_url=s.sarvam_base_url, api_key=s.sarvam_api_key, model=s.sarvam_tts_model,
                     speaker=s.sarvam_tts_speaker, sample_rate=s.sarvam_tts_sample_rate,
                     streaming=s.sarvam_tts_streaming, ws_url=s.sarvam_ws_url, timeout_s=s.tts_timeout_s)
