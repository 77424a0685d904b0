"""Deepgram: live streaming speech-to-text (nova-3) over `/v1/listen`, batch over the same REST path."""

from __future__ import annotations

from sutradhar.config import Settings
from sutradhar.engines.registry import register


def _needs_key(s: Settings) -> str | None:
    return None if s.deepgram_api_key else "a Deepgram provider is configured but DEEPGRAM_API_KEY is empty"


@register("stt", "deepgram", check=_needs_key)
def _stt(s: Settings):
    from sutradhar.engines.deepgram.stt import DeepgramSTT

    return DeepgramSTT(base_url=s.deepgram_base_url, api_key=s.deepgram_api_key,
                       model=s.deepgram_model, timeout_s=s.stt_timeout_s)
