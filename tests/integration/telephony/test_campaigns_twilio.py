"""A campaign end to end on Twilio: `sutradhar campaign run FILE` creates it on the real server, the
runner dials through the official SDK against the strict Twilio REST fake, the fake answers each
call as scripted (busy, no-answer, failed, answered) with signed status callbacks, and busy and
unanswered numbers are dialled again until answered or out of attempts."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from sutradhar.cli import campaign as campaign_cli
from sutradhar.testing.scripted import ScriptedSTT, ScriptedTTS
from sutradhar.testing.simulator import CallerTurn, SimConfig, simulate
from tests.fakes.twilio_rest import FakeTwilioRest, PlacedCall
from tests.support.audio import speech_pcm, with_silence
from tests.support.server import free_port, live_server, make_settings, scripted_engines

ADMIN_TOKEN = "admin-secret"
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
FROM = "+918000000001"
CONCURRENCY = 2
# What the callee does on each attempt; "talk": answers and speaks to the agent over the stream.
SCRIPT = {
    "+919800000001": ["busy", "answered"],
    "+919800000002": ["no-answer", "no-answer", "answered"],
    "+919800000003": ["talk"],
    "+919800000004": ["failed", "answered"],
    "+919800000005": ["busy", "busy", "busy"],  # three attempts, all busy: given up
    "+919800000006": ["answered"],
}
CSV = """number,name,due_amount
+91 98000 00001,Ravi,500
+919800000002,Meena,750
+919800000003,Asha,1200
+919800000004,Kiran,300
+919800000005,Farah,900
+919800000006,John,100
"""
AGENT = """name: collections
languages: [en-IN]
prompts:
  en-IN:
    greeting: Hello {name}. Your payment of {due_amount} rupees is due.
    system: You remind {name} politely about {due_amount} rupees.
"""


@pytest.fixture
async def twilio() -> Any:
    async with FakeTwilioRest() as fake:
        yield fake


class Callees:
    """Plays each number's script as its calls arrive; checks no more than CONCURRENCY ring at once."""

    def __init__(self, twilio: FakeTwilioRest, base_url: str) -> None:
        self.twilio, self.base_url = twilio, base_url
        self.open = 0
        self.most_open = 0
        self.attempts: Counter[str] = Counter()
        self.talked: list[Any] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        while True:
            call = await self.twilio.new_calls.get()
            self.open += 1
            self.most_open = max(self.most_open, self.open)
            task = asyncio.create_task(self._play(call))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _play(self, call: PlacedCall) -> None:
        number = call.one("To")
        action = SCRIPT[number][self.attempts[number]]
        self.attempts[number] += 1
        assert await self.twilio.status(call, "initiated") == 204
        assert await self.twilio.status(call, "ringing") == 204
        if action in ("answered", "talk"):
            assert await self.twilio.status(call, "answered") == 204
            if action == "talk":
                # Counted until its stream starts: the server learns of the hang-up from the stream.
                self.open -= 1
                caller = with_silence(speech_pcm("yes I will pay on friday"), 8000, 200, 300)
                self.talked.append(await simulate(SimConfig(
                    self.base_url, [CallerTurn(caller, 8000)], call_sid=call.sid, answer_url=call.one("Url"),
                    auth_token=self.twilio.auth_token, admin_token=ADMIN_TOKEN, speed=2, timeout_s=30)))
            else:  # before the last callback: the server may dial the next number after it
                self.open -= 1
            assert await self.twilio.status(call, "completed", CallDuration="5") == 204
        else:
            self.open -= 1
            assert await self.twilio.status(call, action) == 204


async def test_a_campaign_retries_busy_and_unanswered_numbers_until_done(twilio, tmp_path: Path, capsys) -> None:
    port = free_port()
    settings = make_settings(public_url=f"http://127.0.0.1:{port}", port=port, data_dir=tmp_path,
                             admin_token=ADMIN_TOKEN, twilio_account_sid=twilio.account_sid,
                             twilio_auth_token=twilio.auth_token, twilio_api_base=twilio.base_url,
                             twilio_from_number=FROM, languages=["en-IN"], default_language="en-IN",
                             campaign_poll_s=0.2)
    tts = ScriptedTTS(ms_per_char=5, chunk_ms=100)
    (tmp_path / "numbers.csv").write_text(CSV)
    (tmp_path / "agent.yaml").write_text(AGENT)
    with live_server(settings, scripted_engines(ScriptedSTT(script=("yes I will pay on friday",)), tts=tts)) as srv:
        callees = Callees(twilio, srv.url)
        playing = asyncio.create_task(callees.run())
        try:
            code = await asyncio.to_thread(campaign_cli.main, [
                "--url", srv.url, "--admin-token", ADMIN_TOKEN, "run", str(tmp_path / "numbers.csv"),
                "--concurrency", str(CONCURRENCY), "--agent", str(tmp_path / "agent.yaml"),
                "--max-attempts", "3", "--retry-delay", "0.1", "--hours", "00:00-24:00", "--poll", "0.2"])
        finally:
            playing.cancel()
        out = capsys.readouterr().out
        campaign_id = out.split()[1].rstrip(":")
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            campaign = (await client.get(f"/campaigns/{campaign_id}?contacts=true", headers=ADMIN)).json()
            (talk,) = callees.talked
            record = (await client.get(f"/calls/{talk.call_id}", headers=ADMIN)).json()
    assert code == 0, out
    assert campaign["status"] == "completed" and campaign["counts"] == {"busy": 1, "completed": 5}
    assert "6/6 done" in out and "\r[" in out  # the progress line, redrawn in place
    # Each number was dialled exactly as often as its script has attempts, never more.
    assert Counter(call.one("To") for call in twilio.placed) == {n: len(s) for n, s in SCRIPT.items()}
    assert campaign["dials"] == sum(len(s) for s in SCRIPT.values())
    assert callees.most_open <= CONCURRENCY
    by_number = {c["number"]: c for c in campaign["contacts"]}
    assert by_number["+919800000005"]["attempts"] == 3 and by_number["+919800000005"]["next_attempt_at"] is None
    assert by_number["+919800000002"]["attempts"] == 3 and by_number["+919800000002"]["status"] == "completed"
    # The answered caller heard their own name and amount, and the LLM was prompted with them.
    assert tts.calls[0] == ("Hello Asha.", "en-IN")
    assert ("Your payment of 1200 rupees is due.", "en-IN") in tts.calls
    assert record["summary"]["context"][0]["content"].startswith("Hello Asha.")
    assert record["turn_count"] == 1


async def test_a_campaign_is_refused_when_the_carrier_is_not_configured(tmp_path: Path) -> None:
    settings = make_settings(data_dir=tmp_path, admin_token=ADMIN_TOKEN)
    with live_server(settings, scripted_engines()) as srv:
        async with httpx.AsyncClient(base_url=srv.url, timeout=20) as client:
            body = {"contacts": [{"number": "+919800000001"}]}
            no_token = await client.post("/campaigns", json=body)
            refused = await client.post("/campaigns", json=body, headers=ADMIN)
            twice = await client.post("/campaigns", headers=ADMIN,
                                      json={"contacts": [{"number": "+919800000001"}, {"number": "+91 98000 00001"}]})
            missing = await client.get("/campaigns/cmp_nope", headers=ADMIN)
    assert no_token.status_code == 401
    assert refused.status_code == 422 and "TWILIO_ACCOUNT_SID" in refused.json()["detail"]
    assert twice.status_code == 422 and "also contact 1" in twice.text
    assert missing.status_code == 404
