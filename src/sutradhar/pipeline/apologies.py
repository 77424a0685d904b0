"""ApologyCache: the apology lines as audio, made at start-up, for when speaking them live fails.

When the only TTS is down the apology itself cannot be synthesised, and a spent turn budget leaves
no time to try. So at start-up every apology line of every configured language (LanguageInfo
`not_heard` and `trouble`) is synthesised with each TTS provider of the chain that serves it and
kept as PCM. A line no provider could make falls back to espeak-ng when it is installed (a plain
spoken line, never a tone); if that fails too it is logged, and such a turn stays silent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from loguru import logger

from sutradhar.audio.codecs import resample
from sutradhar.engines.base import AudioChunk
from sutradhar.text.languages import LANGUAGES

ApologyKind = Literal["not_heard", "trouble"]
KINDS: tuple[ApologyKind, ...] = ("not_heard", "trouble")

log = logger.bind(stage="apology")


@dataclass(frozen=True, slots=True)
class CachedApology:
    language: str
    kind: ApologyKind
    text: str
    provider: str
    audio: AudioChunk


class ApologyCache:
    """Per (language, kind), the line's audio from each provider that made it, in chain order."""

    def __init__(self) -> None:
        self._lines: dict[tuple[str, ApologyKind], list[CachedApology]] = {}

    def get(self, language: str, kind: ApologyKind) -> CachedApology | None:
        made = self._lines.get((language, kind))
        return made[0] if made else None  # the first voice of the chain, as a live reply would be

    def __len__(self) -> int:
        return sum(len(v) for v in self._lines.values())

    async def prepare(self, providers: Sequence[Any], languages: Sequence[str], timeout_s: float,
                      espeak_fallback: bool = True) -> None:
        """Synthesise every line with every provider serving its language; failures are logged."""
        jobs = [(language, kind, provider) for language in languages for kind in KINDS
                for provider in providers if provider.supports(language)]
        made = await asyncio.gather(*(self._make(lang, kind, p, timeout_s) for lang, kind, p in jobs))
        for apology in made:
            if apology is not None:
                self._lines.setdefault((apology.language, apology.kind), []).append(apology)
        missing = [(lang, kind) for lang in languages for kind in KINDS if (lang, kind) not in self._lines]
        if missing and espeak_fallback:
            from sutradhar.engines.local.espeak import EspeakTTS

            espeak = EspeakTTS(name="espeak-apology")
            for language, kind in missing:
                apology = await self._make(language, kind, espeak, timeout_s)
                if apology is not None:
                    self._lines[(language, kind)] = [apology]
        for language, kind in missing:
            if (language, kind) not in self._lines:
                log.error("no cached apology language={} line={}: a turn whose TTS fails stays silent",
                          language, kind)
        log.info("apology audio cached lines={} languages={}", len(self), ",".join(languages))

    async def _make(self, language: str, kind: ApologyKind, provider: Any,
                    timeout_s: float) -> CachedApology | None:
        text = getattr(LANGUAGES[language], kind)
        name = getattr(provider, "name", "?")
        pcm = bytearray()
        rate: int | None = None
        try:
            async with asyncio.timeout(timeout_s):
                async for chunk in provider.synthesize(text, language):
                    rate = rate or chunk.sample_rate
                    pcm += chunk.pcm if chunk.sample_rate == rate else resample(
                        chunk.pcm, chunk.sample_rate, rate)
        except Exception as exc:  # noqa: BLE001 - a missing line is logged; the others still serve
            log.warning("apology synthesis failed language={} line={} provider={} error={}",
                        language, kind, name, exc)
            return None
        if rate is None or not pcm:
            log.warning("apology synthesis gave no audio language={} line={} provider={}",
                        language, kind, name)
            return None
        return CachedApology(language, kind, text, name, AudioChunk(bytes(pcm), rate))
