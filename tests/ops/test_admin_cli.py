"""`sutradhar calls`: list, show, purge against the configured database."""

from __future__ import annotations

import asyncio
import json
from datetime import datetime, timedelta, timezone

import pytest

from sutradhar.cli import calls as admin_cli
from sutradhar.store import CallStore


@pytest.fixture
def database(tmp_path, monkeypatch):
    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.setenv("STT", "scripted")
    monkeypatch.setenv("LLM", "scripted")
    monkeypatch.setenv("TTS", "scripted")

    async def fill():
        store = CallStore(url)
        await store.start()
        old = datetime.now(timezone.utc) - timedelta(days=40)
        await store.call_started("CA-old", {"transport": "plivo", "language": "gu-IN", "started_at": old})
        await store.call_started("CA-new", {"transport": "twilio", "language": "hi-IN",
                                            "from_number": "+919876543210"})
        await store.turn_completed("CA-new", {"turn_id": 1, "text": "kya haal hai", "reply": "sab badhiya",
                                              "interrupted": True, "heard": "sab",
                                              "timings": {"v2v_ms": 512.0},
                                              "providers": {"stt": "sarvam", "llm": "local", "tts": "piper"},
                                              "errors": [{"stage": "tts", "provider": "sarvam",
                                                          "kind": "timeout", "message": "slow"}]})
        await store.call_ended("CA-new", "hangup", {"turns": 1})
        await store.aclose()

    asyncio.run(fill())
    return url


def run(capsys, *argv) -> tuple[int, str]:
    code = admin_cli.main(list(argv))
    return code, capsys.readouterr().out


def test_list_show_and_purge(database, capsys):
    code, out = run(capsys, "calls")
    assert code == 0 and "CA-new" in out and "CA-old" in out and "2 of 2" in out
    code, out = run(capsys, "list", "--language", "hi-IN", "--json")
    assert [c["call_id"] for c in json.loads(out)["calls"]] == ["CA-new"]
    code, out = run(capsys, "show", "CA-new")
    assert code == 0 and "caller: kya haal hai" in out and "heard:  sab" in out
    assert "v2v 512 ms" in out and "error:  tts sarvam timeout" in out
    code, out = run(capsys, "show", "CA-new", "--json")
    assert json.loads(out)["turns"][0]["interrupted"] is True
    assert run(capsys, "show", "CA-missing")[0] == 1
    code, out = run(capsys, "purge", "--older-than", "30")
    assert code == 0 and "deleted 1 calls" in out
    code, out = run(capsys, "--json")
    assert [c["call_id"] for c in json.loads(out)["calls"]] == ["CA-new"]


def test_a_bad_date_is_a_clear_error(database, capsys):
    assert admin_cli.main(["list", "--since", "last tuesday"]) == 2


@pytest.mark.parametrize("argv", [["--page", "99999999999999999999"], ["--page", "0"],
                                  ["list", "--page-size", "501"], ["--page", "two"]])
def test_paging_outside_the_bounds_is_a_usage_error_not_an_overflow(database, capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        admin_cli.main(argv)
    assert exit_.value.code == 2 and "--page" in capsys.readouterr().err


def test_a_date_off_the_calendar_is_reported_not_a_traceback(database, capsys):
    assert admin_cli.main(["--since", "0001-01-01T00:00:00+01:00"]) == 2
    assert "out of range" in capsys.readouterr().err
