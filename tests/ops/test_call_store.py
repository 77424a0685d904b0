"""CallStore: records round-trip, migrations, durability and a database that must never stall a call."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import event, inspect
from sqlalchemy.ext.asyncio import create_async_engine

from sutradhar.store import CallStore, NullRecorder

SRC = str(Path(__file__).resolve().parents[2] / "src")


def turn(n: int, **extra) -> dict:
    record = {
        "turn_id": n, "text": f"question {n}", "reply": f"answer {n}", "heard": None,
        "interrupted": False, "language": "hi-IN", "detected_language": "hi-IN", "switched_to": None,
        "intent": None,
        "timings": {"stt_ms": 110.0, "llm_ttft_ms": 240.0, "llm_ms": 600.0, "tts_ttfb_ms": 90.0,
                    "tts_ms": 400.0, "v2v_ms": 480.0},
        "errors": [], "providers": {"stt": "sarvam", "llm": "local", "tts": "piper"},
    }
    record.update(extra)
    return record


def started(**extra) -> dict:
    info = {"transport": "twilio", "from_number": "+919876543210", "to_number": "+914066001234",
            "language": "hi-IN", "started_at": datetime.now(timezone.utc), "carrier_call_id": "CA42"}
    info.update(extra)
    return info


@pytest.fixture
async def store(tmp_path):
    s = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'calls.db'}")
    await s.start()
    yield s
    await s.aclose()


async def test_call_and_turns_round_trip_on_sqlite(store, tmp_path):
    await store.call_started("call-1", started())
    await store.turn_completed("call-1", turn(1))
    await store.turn_completed("call-1", turn(2, heard="answer", interrupted=True,
                                              switched_to="en-IN", errors=[
        {"stage": "tts", "provider": "sarvam", "kind": "timeout", "message": "no audio in 20s"}]))
    await store.call_ended("call-1", "hangup", {"languages": {"selected": "hi-IN",
                                                              "detected": ["hi-IN"], "switches": 1},
                                                "turns": 2})
    await store.flush()

    call = await store.get_call("call-1")
    assert call["status"] == "completed" and call["end_reason"] == "hangup"
    assert call["from_number"] == "+919876543210" and call["transport"] == "twilio"
    assert call["summary"]["languages"]["switches"] == 1
    assert [t["seq"] for t in call["turns"]] == [1, 2]
    second = call["turns"][1]
    assert second["heard"] == "answer" and second["interrupted"] is True
    assert second["switched_to"] == "en-IN"
    assert second["timings"]["v2v_ms"] == 480.0
    assert second["providers"] == {"stt": "sarvam", "llm": "local", "tts": "piper"}
    assert second["errors"][0]["kind"] == "timeout"

    with sqlite3.connect(tmp_path / "calls.db") as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_turn_interrupted_after_it_was_stored_is_updated_not_duplicated(store):
    await store.call_started("call-2", started())
    await store.turn_completed("call-2", turn(1, reply="One. Two. Three."))
    await store.turn_completed("call-2", turn(1, reply="One. Two. Three.", heard="One.", interrupted=True))
    await store.flush()
    call = await store.get_call("call-2")
    assert call["turn_count"] == 1 and len(call["turns"]) == 1
    assert call["turns"][0]["heard"] == "One." and call["turns"][0]["interrupted"] is True


async def test_a_stored_turn_sent_again_is_updated_by_a_store_that_did_not_write_it(store, tmp_path):
    """The store skips looking for a stored turn when it inserted none with that id for the call;
    a store that never saw the call (another process, a restart) must still look, not duplicate."""
    await store.call_started("call-9", started())
    await store.turn_completed("call-9", turn(1, reply="One. Two."))
    await store.turn_completed("call-9", turn(2, reply="Three."))
    await store.flush()
    other = CallStore(store.url)
    await other.start()
    try:
        await other.turn_completed("call-9", turn(1, reply="One. Two.", heard="One.", interrupted=True))
        await other.turn_completed("call-9", turn(3, reply="Four."))
        await other.flush()
    finally:
        await other.aclose()
    call = await store.get_call("call-9")
    assert [(t["seq"], t["heard"]) for t in call["turns"]] == [(1, "One."), (2, None), (3, None)]
    assert call["turn_count"] == 3


async def test_a_call_that_switched_language_is_listed_under_both_languages(store):
    await store.call_started("call-3", started(language="hi-IN"))
    await store.call_ended("call-3", "hangup", {"language": "gu-IN", "turns": 2})
    await store.flush()
    call = await store.get_call("call-3")
    assert call["language"] == "hi-IN" and call["final_language"] == "gu-IN"
    for code in ("hi-IN", "gu-IN"):
        assert [c["call_id"] for c in (await store.list_calls(language=code))["calls"]] == ["call-3"]
    assert (await store.list_calls(language="te-IN"))["total"] == 0


async def test_migrations_create_the_schema_on_an_empty_database(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"
    store = CallStore(url)
    await store.start()
    await store.aclose()
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        version = (await conn.exec_driver_sql("SELECT version_num FROM alembic_version")).scalar()
        columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("calls")})
        turn_columns = await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns("turns")})
    await engine.dispose()
    assert {"calls", "turns", "workers", "call_results", "campaigns", "campaign_contacts", "do_not_call",
            "alembic_version"} <= tables
    assert version == "0010" and {"final_language", "worker_id", "recording_path", "direction", "answered_by",
                                  "amd"} <= columns
    assert {"v2v_wire_ms", "playing", "tool_calls", "state"} <= turn_columns
    again = CallStore(url)  # a second start on a migrated database is a no-op
    await again.start()
    await again.aclose()


async def test_list_calls_filters_pages_and_purges(store):
    now = datetime.now(timezone.utc)
    for i in range(5):
        await store.call_started(f"c{i}", started(language="te-IN" if i % 2 else "hi-IN",
                                                  started_at=now - timedelta(days=i * 10)))
    await store.call_ended("c0", "error", {})
    await store.call_ended("c1", "hangup", {})
    await store.flush()

    page = await store.list_calls(page=1, page_size=2)
    assert page["total"] == 5 and [c["call_id"] for c in page["calls"]] == ["c0", "c1"]
    assert [c["call_id"] for c in (await store.list_calls(page=3, page_size=2))["calls"]] == ["c4"]
    assert {c["call_id"] for c in (await store.list_calls(language="te-IN"))["calls"]} == {"c1", "c3"}
    assert [c["call_id"] for c in (await store.list_calls(status="failed"))["calls"]] == ["c0"]
    assert [c["call_id"] for c in (await store.list_calls(status="active"))["calls"]] == ["c2", "c3", "c4"]
    recent = await store.list_calls(since=(now - timedelta(days=15)).isoformat())
    assert {c["call_id"] for c in recent["calls"]} == {"c0", "c1"}
    older = await store.list_calls(until=(now - timedelta(days=25)).date())
    assert {c["call_id"] for c in older["calls"]} == {"c3", "c4"}

    assert await store.delete_older_than(25) == 2
    assert (await store.list_calls())["total"] == 3
    assert await store.get_call("c4") is None


async def test_list_calls_filters_by_carrier_end_reason_errors_and_slow_turns(store):
    await store.call_started("tw", started(transport="twilio"))
    await store.call_started("ex", started(transport="exotel"))
    await store.call_started("pl", started(transport="plivo"))
    await store.turn_completed("tw", turn(1, timings={"v2v_wire_ms": 2400.0}))
    await store.turn_completed("ex", turn(1, timings={"v2v_wire_ms": 700.0}, errors=[
        {"stage": "llm", "provider": "sarvam", "kind": "timeout", "message": "no token in 15s"}]))
    await store.turn_completed("pl", turn(1))  # no wire timing at all
    await store.call_ended("tw", "hangup", {})
    await store.call_ended("ex", "provider_error", {})
    await store.flush()

    def ids(page: dict) -> set[str]:
        return {c["call_id"] for c in page["calls"]}

    assert ids(await store.list_calls(carrier="exotel")) == {"ex"}
    assert ids(await store.list_calls(end_reason="hangup")) == {"tw"}
    assert ids(await store.list_calls(had_errors=True)) == {"ex"}
    assert ids(await store.list_calls(slow_ms=1500)) == {"tw"}
    assert ids(await store.list_calls(slow_ms=500)) == {"tw", "ex"}
    assert ids(await store.list_calls(slow_ms=500, carrier="twilio", had_errors=True)) == set()
    assert (await store.list_calls())["total"] == 3


async def test_turn_timings_are_the_turns_since_a_moment_with_their_providers(store):
    await store.call_started("c", started())
    await store.turn_completed("c", turn(1, timings={"stt_ms": 120.0, "v2v_wire_ms": 810.0}, errors=[
        {"stage": "stt", "provider": "sarvam", "kind": "timeout", "message": "no answer"}]))
    await store.flush()
    rows = await store.turn_timings(datetime.now(timezone.utc) - timedelta(hours=1))
    assert len(rows) == 1 and rows[0]["errors"][0]["provider"] == "sarvam"
    assert rows[0]["language"] == "hi-IN" and rows[0]["stt_provider"] == "sarvam"
    assert rows[0]["stt_ms"] == 120.0 and rows[0]["v2v_wire_ms"] == 810.0 and rows[0]["llm_ms"] is None
    assert await store.turn_timings(datetime.now(timezone.utc) + timedelta(minutes=1)) == []


async def test_hooks_return_at_once_while_a_slow_write_is_in_flight(store):
    await store.call_started("slow", started())
    await store.flush()
    original = store._turn
    first_write_started = asyncio.Event()

    async def slow_first(session, call_id, record, at):
        if record["turn_id"] == 1:
            first_write_started.set()
            await asyncio.sleep(0.5)
        await original(session, call_id, record, at)

    store._turn = slow_first
    await store.turn_completed("slow", turn(1))
    await first_write_started.wait()
    t0 = time.perf_counter()
    await store.turn_completed("slow", turn(2))
    assert time.perf_counter() - t0 < 0.05  # the hook did not wait for the slow write
    await store.flush()
    call = await store.get_call("slow")
    assert [t["turn_id"] for t in call["turns"]] == ["1", "2"]


async def test_a_failing_database_logs_and_never_raises_into_the_call(store):
    async def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    store._turn = broken
    await store.turn_completed("c", turn(1))  # no exception here
    await store.flush()
    del store._turn  # the class's writer again
    await store.turn_completed("c", turn(2))  # the writer survived and keeps writing
    await store.flush()
    assert [t["turn_id"] for t in (await store.get_call("c"))["turns"]] == ["2"]


def _count_commits(store) -> list[int]:
    commits = [0]

    def on_commit(_conn):
        commits[0] += 1

    event.listen(store._engine.sync_engine, "commit", on_commit)
    return commits


async def test_events_of_many_calls_within_the_window_share_one_transaction(store):
    commits = _count_commits(store)
    for n in range(20):
        await store.call_started(f"call-{n}", started())
        await store.turn_completed(f"call-{n}", turn(1))
        await store.call_ended(f"call-{n}", "hangup", {"turns": 1})
    await store.flush()
    assert commits[0] == 1  # 60 events, one commit
    page = await store.list_calls(page_size=100)
    assert page["total"] == 20 and {c["status"] for c in page["calls"]} == {"completed"}
    assert all(c["turn_count"] == 1 for c in page["calls"])


async def test_a_batch_the_database_refuses_is_written_event_by_event(store, caplog):
    await store.call_started("good-1", started())
    await store.turn_completed("good-1", turn(1))
    await store.turn_completed("bad", turn(1, errors=["not a mapping"]))  # dict("...") raises
    await store.turn_completed("good-2", turn(1))
    await store.flush()
    assert [t["turn_id"] for t in (await store.get_call("good-1"))["turns"]] == ["1"]
    assert [t["turn_id"] for t in (await store.get_call("good-2"))["turns"]] == ["1"]
    assert await store.get_call("bad") is None


async def test_playout_progress_of_one_turn_is_coalesced_to_its_last_update(store):
    await store.call_started("heard", started())
    await store.turn_completed("heard", turn(1, playing=True))
    await store.flush()
    statements: list[str] = []
    event.listen(store._engine.sync_engine, "before_cursor_execute",
                 lambda _c, _cur, statement, *_: statements.append(statement))
    for heard in ("answer", "answer 1 of", "answer 1"):
        await store.turn_heard("heard", 1, heard, heard != "answer 1")
    await store.flush()
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in statements) == 1
    stored = (await store.get_call("heard"))["turns"][0]
    assert stored["heard"] == "answer 1" and stored["playing"] is False


async def test_a_turn_without_call_started_is_kept(store):
    await store.turn_completed("orphan", turn(1))
    await store.call_ended("orphan", "hangup", {"turns": 1})
    await store.flush()
    call = await store.get_call("orphan")
    assert call["turn_count"] == 1 and call["status"] == "completed"


async def test_an_unbounded_call_id_is_never_handed_to_the_database(store):
    for call_id in ("C" * 200_000, "CA one", ""):
        await store.call_started(call_id, started())
        await store.turn_completed(call_id, turn(1))
        await store.call_ended(call_id, "hangup", {})
    await store.call_started("C" * 128, started())  # the longest id that fits the column
    await store.flush()
    assert [c["call_id"] for c in (await store.list_calls())["calls"]] == ["C" * 128]
    assert await store.get_call("C" * 200_000) is None


async def test_a_page_number_past_the_64_bit_offset_is_clamped_not_an_overflow(store):
    page = await store.list_calls(page=99_999_999_999_999_999_999, page_size=10**9)
    assert (page["page"], page["page_size"], page["calls"]) == (1_000_000, 500, [])


async def test_a_date_a_timezone_pushes_off_the_calendar_is_a_value_error(store):
    with pytest.raises(ValueError, match="out of range"):
        await store.list_calls(since="0001-01-01T00:00:00+01:00")


async def test_null_recorder_accepts_every_hook():
    r = NullRecorder()
    await r.call_started("x", {})
    await r.turn_completed("x", {})
    await r.call_ended("x", "hangup", {})


KILLED_WRITER = textwrap.dedent("""
    import asyncio, os, sys
    from sqlalchemy import event
    from sqlalchemy.orm import Session
    from sutradhar.store import CallStore

    async def main(url):
        store = CallStore(url)
        await store.start()
        await store.call_started("crash", {"transport": "twilio", "language": "en-IN"})
        for n in (1, 2, 3):
            await store.turn_completed("crash", {"turn_id": n, "text": f"t{n}", "reply": "r"})
            await store.flush()
        # the fourth turn dies inside its transaction, before the commit
        event.listen(Session, "before_commit", lambda session: os._exit(9))
        await store.turn_completed("crash", {"turn_id": 4, "text": "t4", "reply": "r"})
        await store.flush()
        os._exit(0)  # not reached

    asyncio.run(main(sys.argv[1]))
""")


async def test_a_killed_writer_process_keeps_the_committed_turns(tmp_path):
    url = f"sqlite+aiosqlite:///{tmp_path / 'crash.db'}"
    proc = subprocess.run([sys.executable, "-c", KILLED_WRITER, url], capture_output=True,
                          env={**os.environ, "PYTHONPATH": SRC}, timeout=60)
    assert proc.returncode == 9, proc.stderr.decode()[-2000:]
    store = CallStore(url)
    await store.start()
    call = await store.get_call("crash")
    await store.aclose()
    assert [t["turn_id"] for t in call["turns"]] == ["1", "2", "3"]
    assert call["turn_count"] == 3


async def test_postgresql_round_trip(postgres_url):
    s = CallStore(postgres_url)
    await s.start()
    try:
        await s.delete_older_than(-1)  # the session-wide database may hold earlier rows
        await s.call_started("pg-1", started())
        for n in (1, 2, 3):
            await s.turn_completed("pg-1", turn(n))
        await s.call_ended("pg-1", "error", {"turns": 3})
        await s.flush()
        call = await s.get_call("pg-1")
        assert call["status"] == "failed" and [t["seq"] for t in call["turns"]] == [1, 2, 3]
        assert call["turns"][0]["timings"]["stt_ms"] == 110.0
        assert (await s.list_calls(language="hi-IN", status="failed"))["total"] == 1
        await s.ping()
    finally:
        await s.aclose()
    again = CallStore(postgres_url)  # migrations already applied: start is a no-op
    await again.start()
    assert (await again.get_call("pg-1"))["turn_count"] == 3
    await again.aclose()


async def test_purge_deletes_the_recordings_of_the_calls_it_deletes(tmp_path):
    recordings = tmp_path / "recordings"
    store = CallStore(f"sqlite+aiosqlite:///{tmp_path / 'rec.db'}", recordings=recordings)
    await store.start()
    now = datetime.now(timezone.utc)
    for name, days in (("old", 40), ("new", 1)):
        path = recordings / f"day/{name}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF")
        await store.call_started(name, started(started_at=now - timedelta(days=days),
                                               recording_path=f"day/{name}.wav"))
    await store.flush()
    assert (await store.get_call("old"))["recording_path"] == "day/old.wav"
    assert await store.delete_older_than(30) == 1
    await store.aclose()
    assert not (recordings / "day/old.wav").exists()
    assert (recordings / "day/new.wav").exists()


def test_workers_starting_together_on_a_fresh_sqlite_file_migrate_once_each_with_records(tmp_path):
    """`serve --workers N` starts N stores on one new SQLite file at once: without the migration
    lock the loser hit "table alembic_version already exists" and ran without call records."""
    import subprocess
    import sys
    from pathlib import Path

    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.db'}"
    go = tmp_path / "go"
    # Each process imports everything first, then waits for `go`: the migrations start together.
    script = ("import asyncio, os, sys, time\nfrom sutradhar.store import CallStore\n"
              "while not os.path.exists(sys.argv[2]): time.sleep(0.001)\n"
              "async def main():\n    s = CallStore(sys.argv[1]); await s.start(); await s.ping(); await s.aclose()\n"
              "asyncio.run(main())\n")
    src = str(Path(__file__).resolve().parents[2] / "src")
    procs = [subprocess.Popen([sys.executable, "-c", script, url, str(go)], env={**os.environ, "PYTHONPATH": src},
                              stderr=subprocess.PIPE) for _ in range(4)]
    time.sleep(3.0)  # every process has imported and is waiting
    go.touch()
    for proc in procs:
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()[-2000:]


async def test_answering_verdicts_are_kept_per_source_and_unknown_never_overrides_a_decision(store):
    await store.write_call_placed("CAamd", {"carrier": "twilio", "to_number": "+919876543210"})
    await store.write_answering("CAamd", "detector", {"answered_by": "machine", "reason": "beep",
                                                      "beep": {"start_ms": 6960, "hz": 1000.0}})
    await store.write_answering("CAamd", "twilio", {"answered_by": "unknown", "reason": "carrier"})
    call = await store.get_call("CAamd")
    assert call["answered_by"] == "machine" and set(call["amd"]) == {"detector", "twilio"}
    assert call["amd"]["detector"]["beep"] == {"start_ms": 6960, "hz": 1000.0} and call["amd"]["detector"]["at"]
    # A callback for a call whose record was lost still lands.
    await store.write_answering("CAlost", "twilio", {"answered_by": "unknown"})
    assert (await store.get_call("CAlost"))["answered_by"] == "unknown"
