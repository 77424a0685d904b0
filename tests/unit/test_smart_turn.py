"""Smart Turn v3 from the installed pipecat-ai wheel (scripts/setup.sh): it loads from disk without
importing pipecat, and hears a finished English sentence as more complete than one cut off
mid-phrase, at the phone line's 8 kHz and at 16 kHz."""

from __future__ import annotations

import importlib.util
import sys

import numpy as np
import pytest

from sutradhar.audio.codecs import silence
from sutradhar.audio.smart_turn import (
    MODEL_RATE,
    WINDOW_S,
    SmartTurn,
    SmartTurnUnavailable,
    model_path,
    shared_smart_turn,
)
from tests.support.audio import speech_pcm

pytestmark = pytest.mark.local_models

FINISHED = "I want to check the status of my order."
CUT_OFF = "I would like to check the status of my"


def test_the_model_is_found_in_the_wheel_without_importing_pipecat():
    path = model_path()
    assert shared_smart_turn().path == path
    assert path.name == "smart-turn-v3.2-cpu.onnx" and path.stat().st_size > 8_000_000
    assert not any(name == "pipecat" or name.startswith("pipecat.") for name in sys.modules)


def test_the_process_shares_one_model_session():
    assert shared_smart_turn() is shared_smart_turn()


def test_features_keep_the_last_eight_seconds_with_the_end_of_speech_at_the_end():
    model = shared_smart_turn()
    short = model.features(speech_pcm(FINISHED, "en-us", MODEL_RATE), MODEL_RATE)
    assert short.shape == (80, 800) and short.dtype == np.float32
    assert np.ptp(short[:, :100], axis=1).max() < 1e-5  # front padding: the same in every frame
    assert np.ptp(short[:, -150:], axis=1).max() > 0.5  # the speech is at the end
    long = speech_pcm(FINISHED, "en-us", MODEL_RATE) * 6  # ~14 s: only the end is heard
    assert len(long) / 2 / MODEL_RATE > WINDOW_S
    assert model.features(long, MODEL_RATE).shape == (80, 800)


@pytest.mark.parametrize("rate", [8000, 16000])
async def test_a_finished_sentence_scores_higher_than_one_cut_off_mid_phrase(rate):
    model: SmartTurn = shared_smart_turn()
    pause = silence(200, rate)  # what the session hands over: speech up to a 200 ms pause
    finished = await model.score(speech_pcm(FINISHED, "en-us", rate) + pause, rate)
    cut_off = await model.score(speech_pcm(CUT_OFF, "en-us", rate) + pause, rate)
    assert 0.0 <= cut_off < finished <= 1.0
    assert finished - cut_off > 0.3, (finished, cut_off)


def test_it_covers_english_and_hindi_only():
    assert SmartTurn.covers("en-IN") and SmartTurn.covers("hi-IN") and SmartTurn.covers("en")
    assert not SmartTurn.covers("te-IN") and not SmartTurn.covers("gu-IN")


def test_without_the_wheel_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(SmartTurnUnavailable, match="scripts/setup.sh"):
        model_path()
