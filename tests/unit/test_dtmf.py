"""DTMF both ways without a server: the in-band tones we synthesise decode to the keys (also after
the phone line's mu-law and resampling), the keypad collects the caller's keys, and the
collect_digits / send_dtmf built-ins use it."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from sutradhar.agents.builtin import BUILTIN_TOOLS
from sutradhar.agents.tools import ToolContext
from sutradhar.audio.codecs import pcm16_to_ulaw, resample, ulaw_to_pcm16
from sutradhar.audio.dtmf import GAP_MS, TONE_MS, decode_dtmf, dtmf_pcm
from sutradhar.pipeline.keypad import Keypad

ALL_KEYS = "0123456789*#"


@pytest.mark.parametrize("rate", [8000, 16000])
def test_synthesised_tones_decode_to_every_key_in_order(rate: int) -> None:
    assert decode_dtmf(dtmf_pcm(ALL_KEYS, rate), rate) == ALL_KEYS


def test_a_repeated_key_is_heard_twice_because_of_the_gap() -> None:
    assert decode_dtmf(dtmf_pcm("1100", 8000), 8000) == "1100"


def test_each_key_is_tone_then_gap_of_the_documented_lengths() -> None:
    rate = 8000
    pcm = np.frombuffer(dtmf_pcm("5", rate), "<i2")
    assert len(pcm) == rate * (TONE_MS + GAP_MS) // 1000
    on = rate * TONE_MS // 1000
    assert np.abs(pcm[:on]).max() > 8000 and not pcm[on:].any()
    assert 70 <= TONE_MS <= 100 and 50 <= GAP_MS <= 70
    # Both of the key's frequencies, and nothing else of weight: 5 is 770 Hz + 1336 Hz.
    spectrum = np.abs(np.fft.rfft(pcm[:on].astype(np.float64)))
    freqs = np.fft.rfftfreq(on, 1 / rate)
    peaks = sorted(freqs[np.argsort(spectrum)[-2:]])
    assert abs(peaks[0] - 770) <= 13 and abs(peaks[1] - 1336) <= 13


def test_tones_survive_the_phone_line_mulaw_and_a_resample() -> None:
    pcm16k = dtmf_pcm("4567#", 16000)
    line = ulaw_to_pcm16(pcm16_to_ulaw(resample(pcm16k, 16000, 8000)))
    assert decode_dtmf(line, 8000) == "4567#"


def test_silence_noise_and_a_single_tone_are_not_keys() -> None:
    rate = 8000
    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 3000, rate)).astype("<i2").tobytes()
    t = np.arange(rate) / rate
    beep = (10000 * np.sin(2 * np.pi * 1000 * t)).astype("<i2").tobytes()  # a voicemail beep
    low_only = (10000 * np.sin(2 * np.pi * 697 * t)).astype("<i2").tobytes()
    assert decode_dtmf(bytes(rate * 2), rate) == ""
    assert decode_dtmf(noise, rate) == ""
    assert decode_dtmf(beep, rate) == ""
    assert decode_dtmf(low_only, rate) == ""


def test_a_key_that_is_not_on_the_keypad_is_refused() -> None:
    with pytest.raises(ValueError, match="not keypad keys"):
        dtmf_pcm("12x", 8000)


async def _collecting(keypad: Keypad) -> None:
    while not keypad.collecting:
        await asyncio.sleep(0)


async def test_the_keypad_collects_until_the_finish_key() -> None:
    keypad = Keypad()
    assert keypad.key_pressed("4") is False  # nobody collecting: the session's meanings apply
    task = asyncio.create_task(keypad.collect(10, "#", timeout_s=30))
    await _collecting(keypad)
    assert all(keypad.key_pressed(d) for d in "4567#")
    collected = await task
    assert (collected.digits, collected.ended_by) == ("4567", "finish_key")
    assert not keypad.collecting and keypad.key_pressed("1") is False


async def test_the_keypad_stops_at_max_digits() -> None:
    keypad = Keypad()
    task = asyncio.create_task(keypad.collect(3, "#", timeout_s=30))
    await _collecting(keypad)
    for digit in "12345":
        keypad.key_pressed(digit)
    assert (await task).as_dict() == {"digits": "123", "ended_by": "max_digits"}


async def test_a_timeout_returns_what_was_pressed_so_far() -> None:
    keypad = Keypad()
    task = asyncio.create_task(keypad.collect(10, "#", timeout_s=0.05))
    await _collecting(keypad)
    keypad.key_pressed("0")  # 0 is a digit here, not "a person"
    keypad.key_pressed("*")
    assert (await task).as_dict() == {"digits": "0*", "ended_by": "timeout"}


async def test_collect_digits_says_its_prompt_and_returns_the_keys() -> None:
    said: list[str] = []
    keypad = Keypad()
    context = ToolContext("call-1", "en-IN", keypad=keypad, say=said.append)
    tool = BUILTIN_TOOLS["collect_digits"]
    task = asyncio.create_task(tool.handler({"prompt": "Please key in your order number, then hash.",
                                             "max_digits": 8}, context))
    await _collecting(keypad)
    for digit in "4567#":
        keypad.key_pressed(digit)
    assert await task == {"ok": True, "digits": "4567", "ended_by": "finish_key"}
    assert said == ["Please key in your order number, then hash."]


async def test_collect_digits_arguments_are_bounded() -> None:
    from pydantic import ValidationError

    tool = BUILTIN_TOOLS["collect_digits"]
    context = ToolContext("call-1", "en-IN", keypad=Keypad())
    for bad in ({"prompt": "x", "max_digits": 0}, {"prompt": "x", "finish_on_key": "x"},
                {"prompt": "x", "timeout_s": 600}):
        with pytest.raises(ValidationError):
            await tool.handler(bad, context)


async def test_send_dtmf_presses_through_the_lines_sender() -> None:
    pressed: list[str] = []

    async def sender(digits: str) -> str:
        pressed.append(digits)
        return "tones"

    keypad = Keypad()
    keypad.sender = sender
    tool = BUILTIN_TOOLS["send_dtmf"]
    context = ToolContext("call-1", "en-IN", keypad=keypad)
    assert await tool.handler({"digits": "2#"}, context) == {"ok": True, "digits": "2#", "sent_by": "tones"}
    refused = await tool.handler({"digits": "2a"}, context)
    assert refused["ok"] is False and "a" in refused["error"]
    no_line = await tool.handler({"digits": "1"}, ToolContext("call-2", "en-IN", keypad=Keypad()))
    assert no_line["ok"] is False
    assert pressed == ["2#"]
    json.dumps(refused)  # what the LLM is shown must be JSON


async def test_speech_during_a_collection_ends_it_with_the_words_and_the_keys_so_far() -> None:
    keypad = Keypad()
    assert keypad.heard("four five") is False  # no collection: an ordinary turn
    task = asyncio.create_task(keypad.collect(10, "#", timeout_s=30))
    await _collecting(keypad)
    keypad.key_pressed("4")
    assert keypad.heard("five six seven") is True
    assert (await task).as_dict() == {"digits": "4", "ended_by": "speech", "said": "five six seven"}
