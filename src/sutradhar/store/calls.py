"""CallStore: call and turn records in SQLite (default, WAL mode) or PostgreSQL.

Writes never delay audio: the recorder hooks put the event on a queue and return; one background
task per process writes them. The call-record events (start, turns, what was heard, end) that
arrive within `batch_window_s` of each other share one transaction: at 300 calls a transaction per
event cost a fifth of the server's CPU. A crash loses at most that window. A batch the database
refuses is written again one event at a time, so one bad record never costs the others. A slow or
failing database is logged (with the call id) and never raises into the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from loguru import logger
from sqlalchemy import (
    Text,
    bindparam,
    cast,
    delete,
    event,
    func,
    insert,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import selectinload

from sutradhar.ids import is_call_id
from sutradhar.store import results as result_rows
from sutradhar.store.recording_bucket import RecordingBucket, is_object_url
from sutradhar.store.recording_files import delete_recordings, recordings_dir
from sutradhar.store.schema import (
    TIMING_KEYS,
    CallResultRow,
    CallRow,
    ContactRow,
    TurnRow,
)

STORE_DIR = Path(__file__).resolve().parent
# Carrier call states after which there is no call any more (Twilio's names; "canceled": we hung up first).
CARRIER_FINAL = frozenset({"completed", "busy", "no-answer", "failed", "canceled"})
FAILED_REASONS = frozenset({"error", "failed", "crash", "provider_error", "internal_error", "server_lost"})
_MIGRATION_LOCK = 0x5A7D  # pg_advisory_xact_lock key: one worker migrates at a time
# Paging bounds: (page - 1) * page_size must fit the databases' 64-bit OFFSET (SQLite raises
# OverflowError beyond it); a million pages of 500 is far more calls than any deployment keeps.
MAX_PAGE = 1_000_000
MAX_PAGE_SIZE = 500
BATCH_MAX = 500  # events in one transaction: a bound on the work a refused batch repeats
MAX_TRACKED_CALLS = 100_000  # calls whose inserted turn ids the store remembers (until each ends)

log = logger.bind(stage="store")

# The call-record events' statements, built once. They are Core statements on the tables, not ORM
# units of work: at 300 calls the ORM's per-event work (an object loaded and tracked, expressions
# built, a flush planned) cost more CPU than the rest of the store. Parameters named like a column
# set it; `b_*` ones are the keys and guards.
_CALLS, _TURNS = CallRow.__table__, TurnRow.__table__
_NEW_CALL = insert(_CALLS)
_NEW_TURN = insert(_TURNS)
_START = (update(_CALLS).where(_CALLS.c.id == bindparam("b_id"))
          .values(from_number=func.coalesce(bindparam("b_from", type_=_CALLS.c.from_number.type),
                                            _CALLS.c.from_number),
                  to_number=func.coalesce(bindparam("b_to", type_=_CALLS.c.to_number.type), _CALLS.c.to_number),
                  started_at=func.coalesce(_CALLS.c.started_at,
                                           bindparam("b_started", type_=_CALLS.c.started_at.type))))
_END = (update(_CALLS).where(_CALLS.c.id == bindparam("b_id"))
        .values(final_language=func.coalesce(bindparam("b_language", type_=_CALLS.c.final_language.type),
                                             _CALLS.c.language)))
_COUNT_TURN = (update(_CALLS).where(_CALLS.c.id == bindparam("b_id"))
               .values(turn_count=func.coalesce(_CALLS.c.turn_count, 0) + 1).returning(_CALLS.c.turn_count))
_SET_TURN = update(_TURNS).where(_TURNS.c.call_id == bindparam("b_call"), _TURNS.c.turn_id == bindparam("b_turn"))


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def to_datetime(value: Any) -> datetime | None:
    """Accept a datetime, a date, epoch seconds or an ISO string; return an aware UTC datetime.
    ValueError for anything else, including moments outside what a datetime can hold."""
    try:
        return _to_datetime(value)
    except (OverflowError, OSError) as exc:  # year 0 or 10000 after the offset, epoch 1e20
        raise ValueError(f"{value!r:.60} is out of range: {exc}") from None


def _to_datetime(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, timezone.utc)
    else:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return value.isoformat()


def _str(value: Any, limit: int) -> str | None:
    return None if value is None else str(value)[:limit]


def _number(value: Any) -> float | None:
    try:
        return None if value is None else float(value)
    except (TypeError, ValueError):
        return None


def status_for(reason: str) -> str:
    reason = (reason or "").lower()
    return "failed" if reason in FAILED_REASONS or reason.startswith("error") else "completed"


class CallStore:
    """Call records: recorder hooks (queued), query API, retention.

    `await store.start()` runs the Alembic migrations shipped in the package and starts the writer.
    """

    def __init__(
        self,
        url: str,
        *,
        retention_days: int = 0,
        queue_size: int = 10_000,
        write_timeout_s: float = 10.0,
        write_attempts: int = 2,
        batch_window_s: float = 0.05,
        worker_id: str | None = None,
        recordings: Path | None = None,
        bucket: RecordingBucket | None = None,
    ) -> None:
        self.url = url
        self.recordings = recordings  # DATA_DIR/recordings: the purge deletes the files there too
        self.bucket = bucket  # RECORDINGS_BUCKET: ... and the uploaded objects
        self.worker_id = worker_id  # stamped on the calls this process serves (crash recovery)
        self.retention_days = retention_days
        self.write_timeout_s = write_timeout_s
        self.write_attempts = max(1, write_attempts)
        self.batch_window_s = batch_window_s
        self._queue: asyncio.Queue[_Event] = asyncio.Queue(maxsize=queue_size)
        self._engine: AsyncEngine | None = None
        self._sessions: async_sessionmaker | None = None
        self._tasks: list[asyncio.Task] = []
        self.dropped = 0  # events lost because the queue was full
        # Told (call id, status) after each status callback is committed: the campaign runner
        # wakes up on them instead of waiting for its next tick.
        self.status_listeners: list[Callable[[str, str], None]] = []
        # The turn ids this process has inserted, per call it started and has not ended: a turn
        # not among them is new, so its write skips looking for a stored one to update. A call
        # not in here (started elsewhere, or forgotten past the bound) takes the looking path.
        self._turn_ids: dict[str, set[str]] = {}

    @classmethod
    def from_settings(cls, settings: Any, bucket: RecordingBucket | None = None) -> CallStore:
        """`bucket`: RECORDINGS_BUCKET's (`bucket_from_settings`), built by the caller so that a
        bad bucket setting fails the start before anything opens."""
        from sutradhar.ops.shared_state import worker_id

        return cls(settings.database, retention_days=settings.retention_days, worker_id=worker_id(),
                   recordings=recordings_dir(settings.data_dir), bucket=bucket)

    @property
    def dialect(self) -> str:
        return make_url(self.url).get_backend_name()

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        if self._engine is not None:
            return
        url = make_url(self.url)
        kwargs: dict[str, Any] = {"pool_pre_ping": True}
        if url.get_backend_name() == "sqlite":
            if url.database and url.database != ":memory:":
                Path(url.database).parent.mkdir(parents=True, exist_ok=True)
            kwargs = {"connect_args": {"timeout": 30}}
        self._engine = create_async_engine(url, **kwargs)
        if url.get_backend_name() == "sqlite":
            event.listen(self._engine.sync_engine, "connect", _sqlite_pragmas)
        self._sessions = async_sessionmaker(self._engine, expire_on_commit=False)
        await self.migrate()
        self._tasks.append(asyncio.create_task(self._write_loop(), name="call-store-writer"))
        if self.retention_days > 0:
            self._tasks.append(asyncio.create_task(self._retention_loop(), name="call-store-retention"))
        log.debug("call store ready ({})", url.render_as_string(hide_password=True))

    async def migrate(self) -> None:
        """Bring the schema to head, one process at a time: PostgreSQL under an advisory lock,
        SQLite under a lock file beside the database (workers started together would otherwise
        race to create the same tables, and the loser would run without call records)."""
        assert self._engine is not None
        async with _sqlite_migration_lock(self.url):
            async with self._engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    await conn.execute(text(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK})"))
                await conn.run_sync(_upgrade_to_head)

    async def flush(self) -> None:
        """Wait until every event queued so far has been written (or given up on)."""
        await self._queue.join()

    async def aclose(self, timeout_s: float = 5.0) -> None:
        if self._engine is None:
            return
        try:
            await asyncio.wait_for(self.flush(), timeout_s)
        except asyncio.TimeoutError:
            log.error("call store closed with {} records unwritten", self._queue.qsize())
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        await self._engine.dispose()
        self._engine = None

    async def ping(self) -> None:
        """Raise when the database does not answer."""
        assert self._engine is not None, "CallStore.start() was not awaited"
        async with self._engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    # --- recorder hooks: enqueue only, never raise -------------------------------------------

    async def call_started(self, call_id: str, info: dict[str, Any]) -> None:
        self._enqueue_batched(self._call_started, call_id, dict(info or {}))

    async def turn_completed(self, call_id: str, record: dict[str, Any]) -> None:
        self._enqueue_batched(self._turn, call_id, dict(record or {}), utcnow())

    async def turn_heard(self, call_id: str, turn_id: Any, heard: str | None, playing: bool) -> None:
        self._enqueue_batched(self._turn_heard, call_id, turn_id, heard, playing)

    async def call_ended(self, call_id: str, reason: str, summary: dict[str, Any]) -> None:
        self._enqueue_batched(self._call_ended, call_id, reason, dict(summary or {}), utcnow())

    # --- outbound calls (telephony/outbound.py): the same queue, so events stay in order ----------

    async def call_placed(self, call_id: str, info: dict[str, Any]) -> None:
        self._enqueue(self.write_call_placed, call_id, dict(info or {}), utcnow())

    async def carrier_status(self, call_id: str, status: str, info: dict[str, Any],
                             alias: str | None = None) -> None:
        self._enqueue(self.write_carrier_status, call_id, status, dict(info or {}), utcnow(), alias)

    async def call_answered(self, placed_as: str, call_id: str) -> None:
        self._enqueue(self.write_call_answered, placed_as, call_id)

    # --- post-call results (agents/result_delivery.py): queued after the call's end ----------------

    async def call_results(self, call_id: str, results: dict[str, Any], webhook_url: str | None) -> None:
        self._enqueue(self.write_call_results, call_id, dict(results), webhook_url, utcnow())

    async def write_call_results(self, call_id: str, results: dict[str, Any], webhook_url: str | None,
                                 at: datetime | None = None) -> None:
        async with self._session() as session, session.begin():
            await result_rows.write_results(session, call_id, _jsonable(results), webhook_url, at or utcnow())

    async def claim_due_results(self, lease_s: float, limit: int = 20) -> list[dict[str, Any]]:
        """Pending webhook deliveries that are due, claimed by this worker for `lease_s`."""
        async with self._session() as session, session.begin():
            return await result_rows.claim_due(session, utcnow(), lease_s, limit)

    async def record_delivery(self, call_id: str, error: str | None, next_at: datetime | None) -> None:
        async with self._session() as session, session.begin():
            await result_rows.record_attempt(session, call_id, utcnow(), error, next_at)

    async def answering(self, call_id: str, source: str, verdict: dict[str, Any]) -> None:
        """A verdict on who answered (telephony/screening.py, Twilio's AMD callback)."""
        self._enqueue(self.write_answering, call_id, source, dict(verdict or {}), utcnow())

    def _enqueue(self, op: Callable[..., Awaitable[None]], *args: Any) -> None:
        """An event written in a transaction of its own (rare ones, or with effects after commit)."""
        self._put(_Event(op, args, batched=False))

    def _enqueue_batched(self, op: Callable[..., Awaitable[None]], *args: Any) -> None:
        """A call-record event: `op(session, *args)`, in the writer's shared transaction."""
        self._put(_Event(op, args, batched=True))

    def _put(self, item: _Event) -> None:
        call_id = item.args[0]
        if not is_call_id(call_id):  # callers check ids at the door; an unbounded one never gets in
            log.bind(call_id="-").error("call record dropped: unusable call id {!r:.60}", call_id)
            return
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            self.dropped += 1
            log.bind(call_id=call_id).error(
                "call record dropped: write queue full ({} waiting); is the database down?",
                self._queue.qsize())

    async def _write_loop(self) -> None:
        while True:
            batch = [await self._queue.get()]
            try:
                if batch[0].batched and self.batch_window_s > 0:
                    await asyncio.sleep(self.batch_window_s)  # let the other calls' events join it
                while len(batch) < BATCH_MAX and not self._queue.empty():
                    batch.append(self._queue.get_nowait())
                await self._write_batch(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write_batch(self, batch: list[_Event]) -> None:
        """In queue order: runs of call-record events in one transaction each, the rest alone."""
        run: list[_Event] = []
        for item in batch:
            if item.batched:
                run.append(item)
                continue
            await self._write_run(run)
            run = []
            await self._write_with_retry(item)
        await self._write_run(run)

    async def _write_run(self, run: list[_Event]) -> None:
        run = _coalesce(run)
        if len(run) > 1:
            try:
                await asyncio.wait_for(self._in_transaction(run), self.write_timeout_s)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - the events get their own transactions below
                log.bind(call_id=run[0].args[0]).warning(
                    "call records: a batch of {} failed ({}: {}); writing them one by one",
                    len(run), type(exc).__name__, exc)
        for item in run:
            await self._write_with_retry(item)

    async def _in_transaction(self, run: list[_Event]) -> None:
        async with self._session() as session, session.begin():
            for item in run:
                await item.op(session, *item.args)

    async def _write_with_retry(self, item: _Event) -> None:
        for attempt in range(1, self.write_attempts + 1):
            try:
                write = self._in_transaction([item]) if item.batched else item.op(*item.args)
                await asyncio.wait_for(write, self.write_timeout_s)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a record write must never end the writer
                transient = isinstance(exc, (OperationalError, asyncio.TimeoutError, OSError))
                if transient and attempt < self.write_attempts:
                    await asyncio.sleep(0.2 * attempt)
                    continue
                log.bind(call_id=item.args[0]).error(
                    "call record write failed ({}): {}: {}", item.op.__name__.strip("_"),
                    type(exc).__name__, exc)
                return

    # --- writes (run by the writer task; usable directly in scripts) ---------------------------

    async def write_call_started(self, call_id: str, info: dict[str, Any]) -> None:
        async with self._session() as session, session.begin():
            await self._call_started(session, call_id, info)

    async def _call_started(self, session: AsyncSession, call_id: str, info: dict[str, Any]) -> None:
        values = {
            "transport": _str(info.get("transport"), 32),
            "carrier_call_id": _str(info.get("carrier_call_id"), 128),
            "language": _str(info.get("language"), 16),
            "worker_id": self.worker_id,
            "recording_path": _str(info.get("recording_path"), 255),
        }
        # An outbound call's record already names its numbers: a stream's start does not.
        numbers = {"b_from": _str(info.get("from_number"), 64) or None,
                   "b_to": _str(info.get("to_number"), 64) or None,
                   "b_started": to_datetime(info.get("started_at")) or utcnow()}
        if len(self._turn_ids) >= MAX_TRACKED_CALLS:  # ends lost somehow: forget, never guess
            self._turn_ids.clear()
        self._turn_ids.setdefault(call_id, set())
        if (await session.execute(_START, {"b_id": call_id, **numbers, **values})).rowcount:
            return
        await session.execute(_NEW_CALL, {"id": call_id, "status": "active", "turn_count": 0, **values,
                                          "from_number": numbers["b_from"], "to_number": numbers["b_to"],
                                          "started_at": numbers["b_started"]})

    async def write_call_placed(self, call_id: str, info: dict[str, Any], at: datetime | None = None) -> None:
        """An outbound call the carrier accepted: on record before it rings."""
        async with self._session() as session, session.begin():
            row = await session.get(CallRow, call_id)
            if row is None:
                row = CallRow(id=call_id, status="active", turn_count=0, started_at=at or utcnow())
                session.add(row)
            row.direction = "outbound"
            row.transport = _str(info.get("carrier"), 32)
            row.from_number = _str(info.get("from_number"), 64)
            row.to_number = _str(info.get("to_number"), 64)
            row.carrier_call_id = _str(info.get("carrier_call_id"), 128)
            row.language = _str(info.get("language"), 16)
            row.carrier_status = row.carrier_status or "queued"
            row.worker_id = self.worker_id

    async def write_call_answered(self, placed_as: str, call_id: str) -> None:
        """A call placed under a request id (Plivo's request_uuid) was answered as `call_id`: its
        record moves to the id its stream and call control use. Before any turn, so no child rows."""
        if placed_as == call_id:
            return
        async with self._session() as session, session.begin():
            if await session.get(CallRow, call_id) is not None:
                return
            await session.execute(update(CallRow).where(CallRow.id == placed_as)
                                  .values(id=call_id, carrier_call_id=call_id))
            # A campaign contact follows its call to the new id (campaigns/store.py settles by it).
            await session.execute(update(ContactRow).where(ContactRow.call_id == placed_as)
                                  .values(call_id=call_id))

    async def write_carrier_status(self, call_id: str, status: str, info: dict[str, Any],
                                   at: datetime | None = None, alias: str | None = None) -> None:
        """One status callback. A call that ends without ever streaming (busy, no-answer, failed,
        or completed before its stream) is closed here; one that streamed was closed by its session.
        `alias`: the id the call was placed under, for callbacks before its answer (Plivo)."""
        at = at or utcnow()
        lock = self.dialect != "sqlite"
        async with self._session() as session, session.begin():
            row = await session.get(CallRow, call_id, with_for_update=lock)
            if row is None and alias and is_call_id(alias):
                row = await session.get(CallRow, alias, with_for_update=lock)
            if row is None:  # placed by a worker whose record was lost; keep what the carrier says
                row = CallRow(id=call_id, status="active", turn_count=0, started_at=at, direction="outbound")
                session.add(row)
            event = {"status": status, "at": _iso(at), **{k: _str(v, 64) for k, v in info.items()}}
            row.carrier_events = [*(row.carrier_events or []), event]  # a new list: JSON columns track assignment
            row.carrier_status = _str(status, 32)
            if status in CARRIER_FINAL and row.ended_at is None and not row.turn_count and row.summary is None:
                row.status = status_for(status)
                row.end_reason = _str(status, 64)
                row.ended_at = at
        for listener in self.status_listeners:
            listener(call_id, status)

    async def write_answering(self, call_id: str, source: str, verdict: dict[str, Any],
                              at: datetime | None = None) -> None:
        """One source's verdict, kept beside the others'; a decisive one sets `answered_by` (an
        "unknown" only fills it while nothing else has)."""
        at = at or utcnow()
        async with self._session() as session, session.begin():
            row = await session.get(CallRow, call_id, with_for_update=self.dialect != "sqlite")
            if row is None:  # the callback outran the record of the placed call
                row = CallRow(id=call_id, status="active", turn_count=0, started_at=at, direction="outbound")
                session.add(row)
            row.amd = {**(row.amd or {}), _str(source, 32): {**_jsonable(verdict), "at": _iso(at)}}
            answered_by = _str(verdict.get("answered_by"), 16)
            if answered_by and (answered_by != "unknown" or row.answered_by is None):
                row.answered_by = answered_by

    async def write_turn(self, call_id: str, record: dict[str, Any], at: datetime | None = None) -> None:
        async with self._session() as session, session.begin():
            await self._turn(session, call_id, record, at or utcnow())

    async def _turn(self, session: AsyncSession, call_id: str, record: dict[str, Any], at: datetime) -> None:
        timings = record.get("timings") or {}
        providers = record.get("providers") or {}
        fields = dict(
            text=record.get("text"),
            reply=record.get("reply"),
            heard=record.get("heard"),
            interrupted=bool(record.get("interrupted")),
            playing=bool(record.get("playing")),
            language=_str(record.get("language"), 16),
            detected_language=_str(record.get("detected_language"), 16),
            switched_to=_str(record.get("switched_to"), 16),
            intent=_str(record.get("intent"), 64),
            **{key: _number(timings.get(key)) for key in TIMING_KEYS},
            stt_provider=_str(providers.get("stt"), 64),
            llm_provider=_str(providers.get("llm"), 64),
            tts_provider=_str(providers.get("tts"), 64),
            errors=[dict(e) for e in record.get("errors") or []],
            tool_calls=[dict(c) for c in record.get("tool_calls") or []],
            state=_str(record.get("state"), 64),
        )
        turn_id = _str(record.get("turn_id"), 64)
        # A turn interrupted after it was stored comes again with what the caller heard.
        known = self._turn_ids.get(call_id)
        if turn_id is not None and (known is None or turn_id in known) and (await session.execute(
                _SET_TURN, {"b_call": call_id, "b_turn": turn_id, **fields})).rowcount:
            return
        # The count and the new turn's seq in one statement (on PostgreSQL it locks the call's
        # row until commit, so two writers could not give two turns one seq).
        seq = (await session.execute(_COUNT_TURN, {"b_id": call_id})).scalar()
        if seq is None:  # call_started was lost; keep the turn anyway
            seq = 1
            await session.execute(_NEW_CALL, {"id": call_id, "status": "active", "turn_count": seq,
                                              "started_at": at, "language": fields["language"]})
        await session.execute(_NEW_TURN, {"call_id": call_id, "seq": seq, "turn_id": turn_id,
                                          "created_at": at, **fields})
        if known is not None and turn_id is not None:
            known.add(turn_id)  # a refused batch's retry then looks first, finds nothing, inserts

    async def write_turn_heard(self, call_id: str, turn_id: Any, heard: str | None, playing: bool) -> None:
        """Playout progress of a stored turn: what the caller's marks confirmed so far. One small
        UPDATE per sentence (the last of a batch's), so a crash mid-reply leaves the record holding
        what was heard."""
        async with self._session() as session, session.begin():
            await self._turn_heard(session, call_id, turn_id, heard, playing)

    async def _turn_heard(self, session: AsyncSession, call_id: str, turn_id: Any, heard: str | None,
                          playing: bool) -> None:
        await session.execute(_SET_TURN, {"b_call": call_id, "b_turn": _str(turn_id, 64),
                                            "heard": heard, "playing": playing})

    async def write_call_ended(self, call_id: str, reason: str, summary: dict[str, Any],
                               at: datetime | None = None) -> None:
        async with self._session() as session, session.begin():
            await self._call_ended(session, call_id, reason, summary, at or utcnow())

    async def _call_ended(self, session: AsyncSession, call_id: str, reason: str, summary: dict[str, Any],
                          at: datetime) -> None:
        values = {"status": status_for(reason), "end_reason": _str(reason, 64), "ended_at": at,
                  "summary": _jsonable(summary)}
        language = _str(summary.get("language"), 16) or None
        self._turn_ids.pop(call_id, None)
        if (await session.execute(_END, {"b_id": call_id, "b_language": language, **values})).rowcount:
            return
        await session.execute(_NEW_CALL, {"id": call_id, "started_at": at, "turn_count": 0,
                                          "final_language": language, **values})

    # --- queries -------------------------------------------------------------------------------

    async def list_calls(
        self,
        page: int = 1,
        page_size: int = 50,
        since: Any = None,
        until: Any = None,
        language: str | None = None,
        status: str | None = None,
        *,
        carrier: str | None = None,
        end_reason: str | None = None,
        had_errors: bool = False,
        slow_ms: float | None = None,
    ) -> dict[str, Any]:
        """One page of calls, newest first: {"total", "page", "page_size", "calls": [...]}.

        `had_errors`: only calls with a turn that recorded an error; `slow_ms`: only calls with a
        turn whose voice-to-voice on the wire (v2v_wire_ms) exceeded it."""
        page = min(max(1, int(page)), MAX_PAGE)
        page_size = min(max(1, int(page_size)), MAX_PAGE_SIZE)
        query = select(CallRow)
        if (start := to_datetime(since)) is not None:
            query = query.where(CallRow.started_at >= start)
        if (end := to_datetime(until)) is not None:
            query = query.where(CallRow.started_at < end)
        if language:  # the language chosen at the start, or the one the call switched to
            query = query.where(or_(CallRow.language == language, CallRow.final_language == language))
        if status:
            query = query.where(CallRow.status == status)
        if carrier:
            query = query.where(CallRow.transport == carrier)
        if end_reason:
            query = query.where(CallRow.end_reason == end_reason)
        if had_errors:  # a JSON column: no errors is stored as the text "[]" (or JSON null)
            query = query.where(CallRow.id.in_(select(TurnRow.call_id).where(
                TurnRow.errors.is_not(None), cast(TurnRow.errors, Text).not_in(("[]", "null")))))
        if slow_ms is not None:
            query = query.where(CallRow.id.in_(
                select(TurnRow.call_id).where(TurnRow.v2v_wire_ms > float(slow_ms))))
        async with self._session() as session:
            total = await session.scalar(select(func.count()).select_from(query.subquery()))
            rows = await session.scalars(
                query.order_by(CallRow.started_at.desc(), CallRow.id)
                .offset((page - 1) * page_size).limit(page_size))
            calls = [_call_dict(row) for row in rows]
        return {"total": total or 0, "page": page, "page_size": page_size, "calls": calls}

    async def get_call(self, call_id: str) -> dict[str, Any] | None:
        """The call with every turn in order, or None."""
        if not is_call_id(call_id):  # no such id can have been stored
            return None
        async with self._session() as session:
            row = await session.scalar(
                select(CallRow).where(CallRow.id == call_id).options(selectinload(CallRow.turns)))
            if row is None:
                return None
            result = _call_dict(row)
            result["turns"] = [_turn_dict(turn) for turn in row.turns]
            result["results"] = result_rows.result_dict(await session.get(CallResultRow, call_id))
        return result

    async def turn_timings(self, since: Any, limit: int = 20_000) -> list[dict[str, Any]]:
        """The turns stored since `since` (the newest `limit`): language, providers, errors and
        TIMING_KEYS, for the console's latency percentiles."""
        columns = [TurnRow.language, TurnRow.stt_provider, TurnRow.llm_provider, TurnRow.tts_provider,
                   TurnRow.errors, *(getattr(TurnRow, key) for key in TIMING_KEYS)]
        query = (select(*columns).where(TurnRow.created_at >= to_datetime(since))
                 .order_by(TurnRow.created_at.desc()).limit(max(1, int(limit))))
        async with self._session() as session:
            rows = (await session.execute(query)).mappings().all()
        return [dict(row) for row in rows]

    async def delete_older_than(self, days: float) -> int:
        """Delete calls (their turns and recordings) that started more than `days` ago; return how
        many calls. The files go after the rows are committed: a failed commit deletes no audio."""
        cutoff = utcnow() - timedelta(days=days)
        old = select(CallRow.id).where(CallRow.started_at < cutoff)
        async with self._session() as session, session.begin():
            files = list(await session.scalars(select(CallRow.recording_path).where(
                CallRow.started_at < cutoff, CallRow.recording_path.is_not(None))))
            await session.execute(delete(TurnRow).where(TurnRow.call_id.in_(old)))
            await session.execute(delete(CallResultRow).where(CallResultRow.call_id.in_(old)))
            result = await session.execute(delete(CallRow).where(CallRow.started_at < cutoff))
        await self._delete_recording_files(files)
        return result.rowcount or 0

    async def _delete_recording_files(self, names: list[str]) -> None:
        purge = log.bind(call_id="-", stage="retention")
        objects = [name for name in names if is_object_url(name)]
        files = [name for name in names if not is_object_url(name)]
        # A WAV still on record may have its OGG beside it (made, then the upload failed).
        files += [name.removesuffix(".wav") + ".ogg" for name in files if name.endswith(".wav")]
        if files and self.recordings is not None:
            removed = await asyncio.to_thread(delete_recordings, self.recordings, files)
            purge.info("retention: deleted {} recordings", removed)
        if not objects:
            return
        if self.bucket is None:  # the records are gone either way; say what stayed behind
            purge.error("retention: {} recordings left in their bucket (RECORDINGS_BUCKET is not set), "
                        "first {}", len(objects), objects[0])
            return
        try:
            removed, errors = await asyncio.to_thread(self.bucket.delete, objects)
        except Exception as exc:  # noqa: BLE001 - boto3 raises several families
            purge.error("retention: {} recording objects not deleted: {}: {}", len(objects),
                        type(exc).__name__, exc)
            return
        purge.info("retention: deleted {} recording objects", removed)
        for error in errors:
            purge.error("retention: recording object not deleted: {}", error)

    # --- recordings finished after the call (store/recording_archive.py) -------------------------

    async def move_recording(self, call_id: str, old: str, new: str) -> bool:
        """Point the call's record from recording `old` to `new` (an OGG beside it, or its object
        in the bucket). False when the record does not name `old` (not written yet, or moved by
        another worker): then the caller keeps `old`."""
        async with self._session() as session, session.begin():
            result = await session.execute(update(CallRow).where(
                CallRow.id == call_id, CallRow.recording_path == old).values(recording_path=new))
        return (result.rowcount or 0) == 1

    async def recordings_of_ended_calls(self, names: list[str]) -> dict[str, str]:
        """Of these recording names, those whose call has ended, mapped to the call id."""
        found: dict[str, str] = {}
        async with self._session() as session:
            for start in range(0, len(names), 500):  # under every database's bound-parameter limit
                rows = await session.execute(select(CallRow.recording_path, CallRow.id).where(
                    CallRow.recording_path.in_(names[start:start + 500]), CallRow.status != "active"))
                found.update({path: call_id for path, call_id in rows})
        return found

    async def _retention_loop(self, every_s: float = 6 * 3600) -> None:
        while True:
            try:
                removed = await self.delete_older_than(self.retention_days)
                if removed:
                    log.info("retention: deleted {} calls older than {} days", removed,
                             self.retention_days)
            except Exception as exc:  # noqa: BLE001
                log.error("retention purge failed: {}", exc)
            await asyncio.sleep(every_s)

    def _session(self):
        if self._sessions is None:
            raise RuntimeError("CallStore.start() was not awaited")
        return self._sessions()


@asynccontextmanager
async def _sqlite_migration_lock(url: str) -> AsyncIterator[None]:
    """An exclusive lock on `<database>.migrate.lock` for a file SQLite database; else nothing.
    Waited for in a thread, so a second store in this process cannot block the first one's loop."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        yield
        return
    import fcntl

    path = Path(parsed.database).with_suffix(".migrate.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as lock:
        await asyncio.to_thread(fcntl.flock, lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@dataclass(slots=True)
class _Event:
    """One queued write: `op(*args)` alone, or `op(session, *args)` inside a batch."""

    op: Callable[..., Awaitable[None]]
    args: tuple[Any, ...]
    batched: bool


def _coalesce(run: list[_Event]) -> list[_Event]:
    """Drop playout progress that a later update of the same turn in this run replaces: it sets the
    same two columns, so the last writer decides them whether or not the earlier one ran."""
    if len(run) < 2:
        return run
    seen: set[tuple[Any, Any]] = set()
    kept: list[_Event] = []
    for item in reversed(run):
        if item.op.__name__ == "_turn_heard":
            key = (item.args[0], item.args[1])
            if key in seen:
                continue
            seen.add(key)
        kept.append(item)
    kept.reverse()
    return kept


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable across a process crash in WAL mode
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


def _upgrade_to_head(connection: Any) -> None:
    from alembic import command
    from alembic.config import Config

    config = Config(str(STORE_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(STORE_DIR / "migrations"))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _call_dict(row: CallRow) -> dict[str, Any]:
    started, ended = row.started_at, row.ended_at
    duration = None
    if started and ended:
        duration = round((to_datetime(ended) - to_datetime(started)).total_seconds(), 3)
    return {
        "call_id": row.id,
        "transport": row.transport,
        "from_number": row.from_number,
        "to_number": row.to_number,
        "carrier_call_id": row.carrier_call_id,
        "language": row.language,
        "final_language": row.final_language,
        "status": row.status,
        "end_reason": row.end_reason,
        "started_at": _iso(started),
        "ended_at": _iso(ended),
        "duration_s": duration,
        "turn_count": row.turn_count,
        "summary": row.summary,
        "recording_path": row.recording_path,
        "direction": row.direction or "inbound",
        "carrier_status": row.carrier_status,
        "carrier_events": row.carrier_events or [],
        "answered_by": row.answered_by,
        "amd": row.amd or {},
    }


def _turn_dict(row: TurnRow) -> dict[str, Any]:
    return {
        "seq": row.seq,
        "turn_id": row.turn_id,
        "created_at": _iso(row.created_at),
        "text": row.text,
        "reply": row.reply,
        "heard": row.heard,
        "interrupted": row.interrupted,
        "playing": row.playing,
        "language": row.language,
        "detected_language": row.detected_language,
        "switched_to": row.switched_to,
        "intent": row.intent,
        "timings": {key: getattr(row, key) for key in TIMING_KEYS},
        "errors": row.errors or [],
        "tool_calls": row.tool_calls or [],
        "state": row.state,
        "providers": {"stt": row.stt_provider, "llm": row.llm_provider, "tts": row.tts_provider},
    }
