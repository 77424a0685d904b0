"""The operator console, as an operator uses it: Playwright drives Debian's chromium against the
real server (call store on, ADMIN_TOKEN set) after real simulated Hindi calls (espeak speech over
the Twilio wire). The live list shows a call while it runs and drops it when it ends; the detail
page shows the turns in Devanagari (rendered with real glyphs, not tofu) and a waterfall whose
numbers are the stored record's; the token is required and a wrong one refused; no secret is on
any page. The detail page's screenshot is saved to docs/console-call.png for the README."""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright import async_api as playwright_api

from sutradhar.server.console.auth import COOKIE
from sutradhar.server.console.templating import ms
from sutradhar.server.console.timeline import waterfall
from sutradhar.store.calls import to_datetime
from sutradhar.store.schema import TIMING_KEYS
from sutradhar.testing.scripted import ScriptedLLM, ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, CallResult, SimConfig, simulate
from tests.e2e.harness import e2e_settings, free_port, live_server, scripted_engines
from tests.support.audio import speech_pcm

CHROMIUM = os.environ.get("SUTRADHAR_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "console-call.png"
ADMIN_TOKEN = "adm-console-SECRET-5e9d21"
TWILIO_TOKEN = "tw-console-SECRET-a71c03"
SARVAM_KEY = "sk-sarvam-console-SECRET-0b4f"
SECRETS = (ADMIN_TOKEN, TWILIO_TOKEN, SARVAM_KEY)
ASKED = ("मेरा ऑर्डर कहाँ है", "क्या आप मदद कर सकते हैं")
REPLIES = ("आपका ऑर्डर कल पहुँच जाएगा। धन्यवाद।", "जी हाँ, मैं आपकी मदद कर सकता हूँ।")
# One letter of each script the console must render (Hindi is on the page; the others through
# the console's font stack): a missing font draws them exactly like an unassigned code point.
LETTERS = {"Devanagari": "क", "Telugu": "న", "Gujarati": "ન"}
BEARER = {"Authorization": f"Bearer {ADMIN_TOKEN}"}

pytestmark = pytest.mark.skipif(not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists(),
                                reason="chromium not installed")


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Any]:
    port = free_port()
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, admin_token=ADMIN_TOKEN,
                            twilio_account_sid="ACconsole", twilio_auth_token=TWILIO_TOKEN,
                            sarvam_api_key=SARVAM_KEY, data_dir=tmp_path_factory.mktemp("console-data"),
                            log_level="WARNING")
    # Fixed stage delays, so each turn's waterfall has real bars to draw.
    engines = scripted_engines(stt=ScriptedSTT(script=ASKED, delay_s=0.12),
                               llm=ScriptedLLM(replies=REPLIES, first_token_delay_s=0.2),
                               tts=ScriptedTTS(sample_rate=8000, ms_per_char=20, chunk_ms=100,
                                               first_chunk_delay_s=0.08))
    with live_server(settings, engines) as live:
        yield live


async def place_call(server: Any, call_sid: str, turns: int = 1, *, speed: float = 3.0,
                     tail_s: float = 0.3) -> CallResult:
    said = [CallerTurn(speech_pcm(text, "hi"), 8000) for text in ASKED[:turns]]
    return await simulate(SimConfig(
        base_url=server.url, turns=said, call_sid=call_sid, language="hi-IN", auth_token=TWILIO_TOKEN,
        admin_token=ADMIN_TOKEN, speed=speed, gap_s=0.3, tail_s=tail_s, reply_wait_s=10.0, timeout_s=60.0))


def stored(server: Any, call_id: str) -> dict[str, Any]:
    async def read() -> dict[str, Any] | None:
        await server.services.store.flush()
        return await server.services.store.get_call(call_id)

    record = server.run(read())
    assert record is not None, f"no record of {call_id}"
    return record


def wait_until_recorded(server: Any, call_id: str) -> dict[str, Any]:
    """The call's record once its end is written (the session writes it as the socket closes)."""
    async def ended() -> dict[str, Any]:
        store = server.services.store
        while True:
            await store.flush()
            record = await store.get_call(call_id)
            if record is not None and record["ended_at"] is not None:
                return record
            await asyncio.sleep(0.05)

    return server.run(ended(), timeout=15)


@asynccontextmanager
async def browser_page(server: Any, *, log_in: bool = True) -> AsyncIterator[Any]:
    async with playwright_api.async_playwright() as p:
        browser = await p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            outside: list[str] = []
            page.on("request", lambda r: outside.append(r.url) if not r.url.startswith(server.url) else None)
            if log_in:
                await page.goto(server.url + "/console")
                await page.fill("#token", ADMIN_TOKEN)
                await page.click("button[type=submit]")
                await page.wait_for_url(server.url + "/console")
            yield page
            assert outside == [], f"the console made requests off the server: {outside}"
        finally:
            await browser.close()


async def test_the_live_list_shows_a_call_while_it_runs_and_drops_it_when_it_ends(server):
    call_sid = "CA" + uuid.uuid4().hex
    async with browser_page(server) as page:
        row = f'#live-calls tr[data-call-id="{call_sid}"]'
        assert await page.locator(row).count() == 0
        # Real time, with a second on the line after the reply: the call is live for seconds.
        call = asyncio.create_task(place_call(server, call_sid, speed=1.0, tail_s=1.0))
        await page.wait_for_selector(row, timeout=20_000)
        cells = await page.locator(f"{row} td").all_inner_texts()
        assert cells[1] == "twilio" and cells[2] == "hi-IN"
        assert cells[3] in ("listening", "thinking", "speaking")
        result = await call
        assert result.turns, "the simulated call had no turn"
        await page.wait_for_selector(row, state="detached", timeout=20_000)
        assert await page.inner_text("#live-count") == "0"
        assert await page.is_visible("#live-empty")


async def test_the_call_detail_shows_each_turn_in_devanagari_and_a_timeline_matching_the_record(server):
    call_sid = "CA" + uuid.uuid4().hex
    await place_call(server, call_sid, turns=2)
    record = wait_until_recorded(server, call_sid)
    assert len(record["turns"]) == 2

    async with browser_page(server) as page:
        await page.goto(f"{server.url}/console/calls/{call_sid}")
        for turn in record["turns"]:
            article = page.locator(f'article[data-seq="{turn["seq"]}"]')
            said = article.locator(".said .text")
            assert turn["text"] in ASKED and turn["reply"] in REPLIES  # Devanagari in the record
            assert await said.inner_text() == turn["text"]
            assert await article.locator(".reply .text").inner_text() == turn["reply"]
            assert await said.get_attribute("lang") == "hi-IN"
            box = await said.bounding_box()
            assert box is not None and box["width"] > 0 and box["height"] > 0
            # The timeline prints the stored timings, and the wait derived from them.
            timings = turn["timings"]
            assert timings["stt_ms"] and timings["llm_ttft_ms"] and timings["v2v_wire_ms"]
            for key in TIMING_KEYS:
                cell = article.locator(f'td[data-timing="{key}"]')
                if key in ("llm_ms", "tts_ms") or timings[key] is None:
                    assert await cell.count() == 0
                    continue
                assert await cell.inner_text() == ms(timings[key])
                assert float(await cell.get_attribute("data-ms")) == timings[key]
            wait = next(b for b in waterfall(timings).bars if b.key == "wait_ms")
            assert await article.locator('td[data-timing="wait_ms"]').inner_text() == ms(wait.length_ms)
            assert await article.locator("svg.waterfall rect.stage").count() == 4

        # Indic text renders with real glyphs: each script's letter draws differently from an
        # unassigned code point (the .notdef box a missing font falls back to).
        tofu = await page.evaluate("""(letters) => {
            const font = getComputedStyle(document.querySelector('.said .text')).fontFamily;
            const draw = (text) => {
                const canvas = document.createElement('canvas'); canvas.width = canvas.height = 64;
                const ctx = canvas.getContext('2d'); ctx.font = `40px ${font}`; ctx.fillText(text, 8, 48);
                return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(',');
            };
            const missing = draw('\\u0378');
            return Object.entries(letters).filter(([, letter]) => draw(letter) === missing).map(([s]) => s);
        }""", LETTERS)
        assert tofu == [], f"no font for {tofu}: install fonts-noto-core (scripts/setup.sh)"

        SCREENSHOT.parent.mkdir(exist_ok=True)
        await page.screenshot(path=str(SCREENSHOT), full_page=True)
    assert SCREENSHOT.stat().st_size > 10_000


async def test_the_console_requires_the_admin_token_and_refuses_a_wrong_one(server):
    async with httpx.AsyncClient(base_url=server.url, timeout=10) as client:
        for path in ("/console", "/console/calls", "/console/health", "/console/calls/CAnone"):
            response = await client.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/console/login")
            wrong = await client.get(path, headers={"Authorization": "Bearer not-the-token"})
            assert wrong.status_code == 303
        assert (await client.get("/console/live/events")).status_code == 401
        assert (await client.get("/console", headers=BEARER)).status_code == 200
        forged = await client.get("/console", cookies={COOKIE: "9999999999.deadbeef"})
        assert forged.status_code == 303

        refused = await client.post("/console/login", data={"token": "guess-SECRET-123", "next": "/console"})
        assert refused.status_code == 401 and "guess-SECRET-123" not in refused.text
        assert COOKIE not in refused.headers.get("set-cookie", "")
        accepted = await client.post("/console/login", data={"token": ADMIN_TOKEN, "next": "https://evil.example/"})
        assert accepted.status_code == 303 and accepted.headers["location"] == "/console"
        cookie = accepted.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and ADMIN_TOKEN not in cookie

    async with browser_page(server, log_in=False) as page:
        await page.goto(server.url + "/console/calls?page=1")
        assert page.url.startswith(server.url + "/console/login")
        await page.fill("#token", "not-the-token")
        await page.click("button[type=submit]")
        assert await page.is_visible("#refused")
        assert await page.input_value("#token") == ""
        await page.fill("#token", ADMIN_TOKEN)
        await page.click("button[type=submit]")
        await page.wait_for_url(server.url + "/console/calls?page=1")
        [session] = [c for c in await page.context.cookies() if c["name"] == COOKIE]
        assert session["httpOnly"] and session["sameSite"] == "Strict" and session["path"] == "/console"
        assert ADMIN_TOKEN not in session["value"]
        await page.click("text=Log out")
        await page.wait_for_url(server.url + "/console/login")
        await page.goto(server.url + "/console")
        assert page.url.startswith(server.url + "/console/login")


async def test_no_secret_appears_on_any_console_page(server):
    call_sid = "CA" + uuid.uuid4().hex
    await place_call(server, call_sid)
    wait_until_recorded(server, call_sid)
    pages: dict[str, str] = {}
    async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=BEARER) as client:
        for path in ("/console", "/console/calls", f"/console/calls/{call_sid}", "/console/calls/CAnone",
                     "/console/health", "/console/calls?carrier=twilio&errors=1&slow=1",
                     "/console/static/console.js", "/console/static/console.css"):
            response = await client.get(path)
            assert response.status_code in (200, 404), (path, response.status_code)
            pages[path] = f"{response.headers}\n{response.text}"
        async with client.stream("GET", "/console/live/events") as events:
            async for line in events.aiter_lines():
                if line.startswith("data:"):
                    pages["/console/live/events"] = line
                    break
        async with httpx.AsyncClient(base_url=server.url, timeout=10) as anonymous:
            pages["/console/login"] = (await anonymous.get("/console/login")).text
            pages["login refused"] = (await anonymous.post("/console/login", data={"token": "x"})).text

    async with httpx.AsyncClient(base_url=server.url, timeout=10, headers=BEARER) as client:
        assert call_sid in (await client.get("/console/calls", params={"carrier": "twilio"})).text
        assert call_sid not in (await client.get("/console/calls", params={"carrier": "exotel"})).text
        assert call_sid not in (await client.get("/console/calls", params={"errors": "1"})).text

    health = pages["/console/health"]
    assert "scripted-stt" in health and "SARVAM_API_KEY" in health and "TWILIO_AUTH_TOKEN" in health
    assert call_sid in pages["/console/calls"] and call_sid in pages[f"/console/calls/{call_sid}"]
    for path, text in pages.items():
        for secret in SECRETS:
            assert secret not in text and secret[-8:] not in text, f"{path} shows a secret"


async def test_an_open_console_says_so_on_every_page():
    port = free_port()
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, log_level="WARNING")
    with live_server(settings, records=False) as open_server:
        async with httpx.AsyncClient(base_url=open_server.url, timeout=10) as client:
            for path in ("/console", "/console/calls", "/console/health"):
                response = await client.get(path)
                assert response.status_code == 200
                assert "ADMIN_TOKEN is not set" in response.text
            async with client.stream("GET", "/console/live/events") as events:
                assert events.status_code == 200
                first = [line async for line in _until_data(events)]
            assert first[-1] == 'data: {"now": ' + first[-1].split('"now": ')[1].split(",")[0] + ', "calls": []}'


async def _until_data(response: httpx.Response) -> AsyncIterator[str]:
    async for line in response.aiter_lines():
        yield line
        if line.startswith("data:"):
            return


async def test_a_barged_in_turn_shows_what_the_caller_heard_its_switch_and_its_errors(server):
    call_id = "CA" + uuid.uuid4().hex
    store = server.services.store
    heard, reply = "आपका ऑर्डर कल", "आपका ऑर्डर कल पहुँच जाएगा। धन्यवाद।"
    turn = {"turn_id": 1, "text": "మా ఆర్డర్ ఎక్కడ ఉంది", "reply": reply, "heard": heard, "interrupted": True,
            "language": "te-IN", "detected_language": "te-IN", "switched_to": "te-IN",
            "timings": {"stt_ms": 150.0, "v2v_ms": 900.0, "v2v_wire_ms": 2100.0},
            "errors": [{"stage": "tts", "provider": "sarvam", "kind": "timeout", "message": "no audio in 20s"}],
            "providers": {"stt": "scripted-stt", "llm": "scripted-llm", "tts": "scripted-tts"}}

    async def write() -> None:
        await store.write_call_started(call_id, {"transport": "exotel", "language": "hi-IN"})
        await store.write_turn(call_id, turn)
        await store.write_call_ended(call_id, "provider_error", {"language": "te-IN"})

    server.run(write())
    async with browser_page(server) as page:
        await page.goto(f"{server.url}/console/calls/{call_id}")
        article = page.locator('article[data-seq="1"]')
        assert await article.locator(".said .text").inner_text() == turn["text"]
        assert await article.locator(".heard .text").inner_text() == heard
        assert await article.locator(".reply.cut .text").inner_text() == reply
        badges = await article.locator(".badge").all_inner_texts()
        assert "barge-in" in badges and "language switched to te-IN" in badges and "slow" in badges
        assert "no audio in 20s" in await article.locator(".errors").inner_text()
        await page.goto(f"{server.url}/console/calls?errors=1&slow=1&carrier=exotel")
        assert await page.locator(f'#history tr[data-call-id="{call_id}"]').count() == 1
        # Latency at a glance counts the failed turn against its stage.
        await page.goto(f"{server.url}/console")
        caption = await page.locator('figure[data-chart="tts_ttfb_ms"] figcaption').inner_text()
        assert "errors in 1 of" in caption, caption
        await page.goto(f"{server.url}/console/health")
        assert "TTS 1 of" in await page.inner_text("#stage-errors")


async def test_the_live_stream_ends_once_the_worker_has_drained_so_it_never_holds_the_shutdown():
    port = free_port()
    settings = e2e_settings(public_url=f"http://127.0.0.1:{port}", port=port, log_level="WARNING")
    with live_server(settings, records=False) as open_server:
        async def drain() -> None:
            open_server.services.calls.draining = True

        async with httpx.AsyncClient(base_url=open_server.url, timeout=10) as client:
            async with client.stream("GET", "/console/live/events") as events:
                lines = events.aiter_lines()
                async for line in lines:
                    if line.startswith("data:"):
                        break
                open_server.run(drain())
                rest = [line async for line in lines]  # returns only when the server ends the stream
    assert all(not line.startswith("data:") for line in rest)


async def test_a_turn_with_a_tool_call_and_a_recorded_call_show_both_on_the_detail_page(server):
    import wave

    from sutradhar.store.recording_files import recording_name, recordings_dir

    call_id = "CA" + uuid.uuid4().hex
    store = server.services.store
    name = recording_name(call_id, "2026-12-01")
    path = recordings_dir(server.settings.data_dir) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as wav:  # caller left, agent right, as the recorder writes it
        wav.setnchannels(2)
        wav.setsampwidth(2)
        wav.setframerate(8000)
        wav.writeframes(b"\x00\x01" * 2 * 8000)
    tool = {"id": "call_1", "name": "order_status", "arguments": {"order_id": "4567"}, "result_chars": 64,
            "duration_ms": 312.5, "error": None}
    failed = {"id": "call_2", "name": "crm_lookup", "arguments": {"phone": "[redacted]"}, "result_chars": 0,
              "duration_ms": 5000.0, "error": "timeout"}
    turn = {"turn_id": 1, "text": "मेरा ऑर्डर चार पाँच छह सात कहाँ है", "reply": "आपका ऑर्डर कल पहुँच जाएगा।",
            "language": "hi-IN", "timings": {"stt_ms": 120.0, "v2v_wire_ms": 900.0},
            "providers": {"stt": "scripted-stt", "llm": "scripted-llm", "tts": "scripted-tts"},
            "tool_calls": [tool, failed]}

    async def write() -> None:
        await store.write_call_started(call_id, {"transport": "twilio", "language": "hi-IN",
                                                 "recording_path": name})
        await store.write_turn(call_id, turn)
        await store.write_call_ended(call_id, "caller_hangup", {"language": "hi-IN"})

    server.run(write())
    async with browser_page(server) as page:
        await page.goto(f"{server.url}/console/calls/{call_id}")
        rows = await page.locator('article[data-seq="1"] table.tools tbody tr').all_inner_texts()
        assert len(rows) == 2
        assert "order_status" in rows[0] and "4567" in rows[0] and "64 chars" in rows[0] and "312.5" in rows[0]
        assert "crm_lookup" in rows[1] and "timeout" in rows[1]
        audio = page.locator("audio")
        src = await audio.get_attribute("src")
        # The player's source is served to the logged-in browser (its session cookie, no header).
        fetched = await page.evaluate("async (src) => { const r = await fetch(src, {cache: \"no-store\"}); "
                                      "return [r.status, r.headers.get('content-type'), (await r.arrayBuffer()).byteLength]; }",
                                      src)
        assert fetched[0] == 200 and fetched[1] == "audio/wav" and fetched[2] == path.stat().st_size
        # The transcript follows the recording: a turn's button plays from its reply, and that
        # turn is marked as the one being heard.
        at = float(await page.locator('article[data-seq="1"]').get_attribute("data-at"))
        stored_turn = stored(server, call_id)["turns"][0]
        started, created = (to_datetime(v) for v in (stored(server, call_id)["started_at"], stored_turn["created_at"]))
        assert at == pytest.approx((created - started).total_seconds(), abs=0.01)
        await page.locator('article[data-seq="1"] button.seek').click()
        # at the turn, or just past it: the button also starts playback (a loaded box lets it run)
        assert at - 0.05 <= await audio.evaluate("a => a.currentTime") <= at + 0.5
        await audio.evaluate("a => a.dispatchEvent(new Event('timeupdate'))")
        assert await page.locator('article[data-seq="1"]').get_attribute("aria-current") == "true"
    async with httpx.AsyncClient(base_url=server.url) as http:  # and to nobody else
        assert (await http.get(src, follow_redirects=False)).status_code in (303, 401)
