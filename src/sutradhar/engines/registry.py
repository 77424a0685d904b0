"""Engine names -> builders: how `STT=sarvam,local`, `LLM=local,responder`, `TTS=piper,espeak`
become provider instances, in chain order, for the router's fallback lists.

Each vendor registers its engines in its own package (`@register("stt", "sarvam")`); the only line
here that knows a vendor is its package name in `VENDORS`. Settings validate every configured name
against this registry at start (`problems`), and a builder's own `check` names a missing key then.

A local engine whose model is not installed raises `Unavailable` and is left out with a warning
naming what to install, so `LLM=local,responder` still answers (with the responder) on a machine
without the GGUF. A stage left with no provider at all is a configuration error, raised at start.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from sutradhar.engines.base import LLMProvider, Stage, STTProvider, TTSProvider
from sutradhar.errors import ConfigError

# The registry hands the settings through to the builders without reading them, beyond the
# three chains (`settings.stt`, `.llm`, `.tts`): so it needs no import of the config module,
# which validates against it.
Settings = Any

log = logger.bind(stage="engines")

# One line per vendor package; each registers its engines when imported.
VENDORS = (
    "sutradhar.engines.local",
    "sutradhar.engines.sarvam",
    "sutradhar.engines.openai",
    "sutradhar.engines.deepgram",
    "sutradhar.testing.scripted",
)
STAGES: tuple[Stage, ...] = ("stt", "llm", "tts")


class Unavailable(Exception):
    """A configured engine cannot run here; the message says what is missing."""


@dataclass(frozen=True)
class EngineSpec:
    stage: Stage
    name: str
    build: Callable[[Settings], Any]
    check: Callable[[Settings], str | None] | None = None  # a configuration problem, or None


_SPECS: dict[tuple[Stage, str], EngineSpec] = {}


def register(stage: Stage, name: str, *, check: Callable[[Settings], str | None] | None = None
             ) -> Callable[[Callable[[Settings], Any]], Callable[[Settings], Any]]:
    def decorator(build: Callable[[Settings], Any]) -> Callable[[Settings], Any]:
        _SPECS[(stage, name)] = EngineSpec(stage, name, build, check)
        return build

    return decorator


def _specs() -> dict[tuple[Stage, str], EngineSpec]:
    for vendor in VENDORS:
        importlib.import_module(vendor)
    return _SPECS


def known(stage: Stage) -> list[str]:
    return sorted(name for (s, name) in _specs() if s == stage)


def problems(settings: Settings) -> list[str]:
    """Every configuration problem of the engine chains: unknown names, missing keys."""
    specs = _specs()
    found: list[str] = []
    for stage in STAGES:
        chain = getattr(settings, stage)
        if not chain:
            found.append(f"{stage.upper()} names no provider")
        for name in chain:
            spec = specs.get((stage, name))
            if spec is None:
                found.append(f"{stage.upper()}: unknown provider {name!r} (known: {', '.join(known(stage))})")
            elif spec.check is not None and (problem := spec.check(settings)) and problem not in found:
                found.append(problem)
    return found


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


def build_engines(settings: Settings) -> EngineSet:
    """Instances for every configured provider, chain order kept; unavailable ones skipped."""
    specs = _specs()
    engines = EngineSet()
    for stage in STAGES:
        chain: list[str] = getattr(settings, stage)
        into: list[Any] = getattr(engines, stage)
        for name in chain:
            spec = specs.get((stage, name))
            if spec is None:
                raise ConfigError(f"unknown {stage.upper()} provider {name!r}")
            try:
                into.append(spec.build(settings))
            except Unavailable as exc:
                note = f"{stage.upper()} provider {name!r} skipped: {exc}"
                log.warning(note)
                engines.skipped.append(note)
        if not into:
            raise ConfigError(f"no usable {stage.upper()} provider in {','.join(chain)}: "
                              + "; ".join(engines.skipped))
    return engines
