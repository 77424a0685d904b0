import pytest

from sutradhar.config import ConfigError, load_settings
from sutradhar.urls import websocket_url


def test_defaults_are_the_offline_engines(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    s = load_settings()
    assert s.stt == ["local"] and s.llm == ["local", "responder"] and s.tts == ["piper", "espeak"]
    assert s.database.startswith("sqlite+aiosqlite:///")


def test_chains_from_comma_separated_environment(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TTS", "sarvam, espeak")
    monkeypatch.setenv("SARVAM_API_KEY", "sk-test")
    monkeypatch.setenv("LANGUAGES", "hi-IN,en-IN")
    s = load_settings()
    assert s.tts == ["sarvam", "espeak"] and s.languages == ["hi-IN", "en-IN"]


def test_every_problem_is_reported_at_once(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STT", "whisperx")
    monkeypatch.setenv("LLM", "sarvam")
    monkeypatch.setenv("PORT", "99999")
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert "PORT" in text
    monkeypatch.setenv("PORT", "8000")
    with pytest.raises(ConfigError) as info:
        load_settings()
    text = str(info.value)
    assert "unknown provider 'whisperx'" in text and "SARVAM_API_KEY is empty" in text


def test_bad_number_and_unknown_language(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("END_OF_TURN_SILENCE_MS", "fast")
    with pytest.raises(ConfigError, match="END_OF_TURN_SILENCE_MS"):
        load_settings()
    monkeypatch.delenv("END_OF_TURN_SILENCE_MS")
    monkeypatch.setenv("DEFAULT_LANGUAGE", "xx-YY")
    with pytest.raises(ConfigError, match="unknown language 'xx-YY'"):
        load_settings()


def test_dotenv_file_is_read(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("DEFAULT_LANGUAGE=hi-IN\nPUBLIC_URL=https://voice.example.com\n")
    s = load_settings()
    assert s.default_language == "hi-IN"
    assert websocket_url(s.public_url + "/twilio/media") == "wss://voice.example.com/twilio/media"


def test_the_acoustic_end_of_turn_model_is_none_or_smart_turn(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    assert load_settings().turn_acoustic_model == "none"
    monkeypatch.setenv("TURN_ACOUSTIC_MODEL", "Smart-Turn")
    assert load_settings().turn_acoustic_model == "smart-turn"
    monkeypatch.setenv("TURN_ACOUSTIC_MODEL", "vap")
    with pytest.raises(ConfigError, match="TURN_ACOUSTIC_MODEL"):
        load_settings()
    monkeypatch.setenv("TURN_ACOUSTIC_MODEL", "smart-turn")
    monkeypatch.setenv("TURN_ACOUSTIC_THRESHOLD", "1.5")
    with pytest.raises(ConfigError, match="TURN_ACOUSTIC_THRESHOLD"):
        load_settings()


def test_answering_machine_thresholds_must_leave_room_between_a_hello_and_a_greeting(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AMD_SHORT_ANSWER_MS", "4000")
    with pytest.raises(ConfigError, match="AMD_SHORT_ANSWER_MS .* must be below AMD_LONG_GREETING_MS"):
        load_settings()
    monkeypatch.setenv("AMD_SHORT_ANSWER_MS", "1500")
    monkeypatch.setenv("VOICEMAIL_ACTION", "sing")
    with pytest.raises(ConfigError, match="VOICEMAIL_ACTION"):
        load_settings()
