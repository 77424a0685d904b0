"""Lines an LLM says word for word (Provider.fixed_lines) are made at start-up by a TTS that keeps
audio (`prepare_lines`, Piper's), in the LLM's languages; other TTS engines are left alone."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from sutradhar.services import open_services
from sutradhar.testing.scripted import ScriptedLLM, ScriptedTTS
from tests.support.server import make_settings, scripted_engines

LINE = "I can help with orders, hours and appointments."


class WithFallback(ScriptedLLM):
    fixed_lines = (LINE,)


@dataclass
class KeepingTTS(ScriptedTTS):
    prepared: list[tuple[str, str]] = field(default_factory=list)

    async def prepare_lines(self, lines: Iterable[str], language: str) -> None:
        self.prepared += [(line, language) for line in lines]


async def test_the_llms_fixed_lines_are_made_by_the_tts_that_keeps_audio(tmp_path) -> None:
    keeping, plain = KeepingTTS(name="keeping"), ScriptedTTS(name="plain")
    llm = WithFallback(languages=frozenset({"en-IN"}))
    services = await open_services(make_settings(data_dir=str(tmp_path)),
                                   engines=scripted_engines(llm=llm, tts=[keeping, plain]))
    try:
        await services.warm_up()
        assert keeping.prepared == [(LINE, "en-IN")]
    finally:
        await services.aclose()


async def test_no_fixed_lines_nothing_is_prepared(tmp_path) -> None:
    keeping = KeepingTTS(name="keeping")
    services = await open_services(make_settings(data_dir=str(tmp_path)), engines=scripted_engines(tts=keeping))
    try:
        await services.warm_up()
        assert keeping.prepared == []
    finally:
        await services.aclose()
