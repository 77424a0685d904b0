"""The browser page, as a person would use it: Playwright drives Debian's chromium with a fake
microphone fed from a WAV of espeak speech, opens GET /, presses Talk, speaks, and sees its words
and the agent's reply on the page while the agent's audio arrives on the socket."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from playwright import async_api as playwright_api

from sutradhar.audio.codecs import resample, silence, write_wav_file
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from tests.e2e.fixtures import CACHE, UTTERANCES
from tests.e2e.harness import e2e_settings, free_port, live_server, scripted_engines

CHROMIUM = os.environ.get("SUTRADHAR_CHROMIUM", "/usr/bin/chromium")
HEARD = "where is my order"
REPLY = "Your order arrives tomorrow."


def microphone_wav() -> Path:
    """What the fake microphone plays (chromium loops it): silence, the caller's words, silence."""
    spoken = UTTERANCES["en-IN"][1]
    path = CACHE / f"browser-mic-{spoken.key}.wav"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        pcm = resample(spoken.pcm(), 8000, 48000)
        write_wav_file(str(path), silence(1500, 48000) + pcm + silence(4000, 48000), 48000)
    return path


@pytest.mark.skipif(not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists(), reason="chromium not installed")
async def test_browser_page_talks_to_the_agent_and_gets_the_transcript_and_audio_back(logs):
    port = free_port()
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port)
    stt = ScriptedSTT(script=(HEARD,))
    tts = ScriptedTTS(sample_rate=16000, ms_per_char=40, chunk_ms=100)
    services = lambda s: scripted_engines(stt=stt, llm=ScriptedLLM(replies=(REPLY,)), tts=tts)  # noqa: E731

    frames: list[bytes] = []
    with live_server(settings, engines=services) as server:
        async with playwright_api.async_playwright() as p:
            browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                f"--use-file-for-fake-audio-capture={microphone_wav()}", "--autoplay-policy=no-user-gesture-required"])
            try:
                page = await browser.new_page()
                page.on("websocket", lambda ws: ws.on(
                    "framereceived", lambda payload: frames.append(payload) if isinstance(payload, bytes) else None))
                await page.goto(server.url + "/")
                await page.click("#talk")
                await page.wait_for_selector("#log .caller", timeout=20_000)
                await page.wait_for_selector("#log .agent", timeout=20_000)
                caller_line = await page.inner_text("#log .caller")
                agent_line = await page.inner_text("#log .agent")
                status = await page.inner_text("#status")
                await page.click("#talk")  # hang up
                await page.wait_for_timeout(300)
            finally:
                await browser.close()
        left = server.wait_tasks_settled(5)

    # The page showed what the caller said and what the agent answered.
    assert HEARD in caller_line and REPLY in agent_line
    assert "Connected" in status or "Call ended" in status
    # The microphone's audio reached the server's VAD and STT: a real utterance, not silence.
    assert stt.calls and stt.calls[0]["bytes"] > 16000 * 2 * 0.8, stt.calls
    # The agent's audio came back as PCM16 frames, audible (greeting and reply).
    audio = b"".join(frames)
    assert len(audio) / 2 / 16000 > 1.0
    samples = np.frombuffer(audio[: len(audio) // 2 * 2], "<i2").astype(np.float64)
    assert np.sqrt(np.mean(samples ** 2)) > 1000
    assert left == []
