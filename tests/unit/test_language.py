import pytest

from sutradhar.engines.local.espeak import VOICES as ESPEAK_VOICES
from sutradhar.engines.sarvam.common import SARVAM_LANGUAGES
from sutradhar.engines.sarvam.tts import SarvamTTS
from sutradhar.pipeline.call_language import LanguageCoordinator
from sutradhar.text.languages import LANGUAGES


def test_registry_has_the_four_launch_languages_with_phrases():
    for code in ("te-IN", "hi-IN", "en-IN", "gu-IN"):
        info = LANGUAGES[code]
        assert info.greeting and info.not_heard and info.trouble and info.goodbye and info.instruction
        assert "{digit}" in info.menu_item
        # Voices live with their vendors, and every launch language has one in each.
        assert code in ESPEAK_VOICES and code in SARVAM_LANGUAGES
        for model in ("bulbul:v2", "bulbul:v3"):
            assert SarvamTTS(api_key="k", model=model).speaker_for(code)


def test_switches_language_after_two_consecutive_turns():
    lc = LanguageCoordinator("en-IN", switch_threshold=2, min_turns_before_switch=0)
    assert lc.set_detected_language("hi-IN") is False
    assert lc.current == "en-IN"
    assert lc.set_detected_language("hi-IN") is True
    assert lc.current == "hi-IN"
    assert lc.get_switch_status()["switches"][-1]["reason"] == "auto"


def test_does_not_switch_on_alternating_detections():
    lc = LanguageCoordinator("en-IN", switch_threshold=2, min_turns_before_switch=0)
    for code in ("hi-IN", "te-IN", "hi-IN", "en-IN", "hi-IN"):
        assert lc.set_detected_language(code) is False
    assert lc.current == "en-IN"


def test_does_not_switch_before_min_turns():
    lc = LanguageCoordinator("en-IN", switch_threshold=2, min_turns_before_switch=3)
    assert lc.set_detected_language("gu-IN") is False
    assert lc.set_detected_language("gu-IN") is False  # streak reached, but only 2 turns so far
    assert lc.current == "en-IN"
    assert lc.set_detected_language("gu-IN") is True
    assert lc.current == "gu-IN"


def test_threshold_is_configurable_and_same_language_resets_streak():
    lc = LanguageCoordinator("en-IN", switch_threshold=3, min_turns_before_switch=0)
    lc.set_detected_language("te-IN")
    lc.set_detected_language("te-IN")
    lc.set_detected_language("en-IN")
    lc.set_detected_language("te-IN")
    assert lc.current == "en-IN"
    lc.set_detected_language("te-IN")
    assert lc.set_detected_language("te-IN") is True


def test_history_keeps_the_last_five_detections():
    lc = LanguageCoordinator("en-IN")
    for code in ("hi-IN", "en-IN", "te-IN", "en-IN", "gu-IN", "en-IN", "hi-IN"):
        lc.set_detected_language(code)
    assert lc.get_switch_status()["history"] == ["te-IN", "en-IN", "gu-IN", "en-IN", "hi-IN"]


def test_set_language_from_ivr_and_unknown_language_rejected():
    lc = LanguageCoordinator("en-IN")
    assert lc.set_language("te-IN", "ivr") is True
    assert lc.current == "te-IN"
    with pytest.raises(ValueError):
        lc.set_language("fr-FR")


def test_ensure_consistency_checks_the_script():
    lc = LanguageCoordinator("hi-IN")
    assert lc.ensure_consistency("नमस्ते, आप कैसे हैं?")
    assert not lc.ensure_consistency("Hello, how are you?")
