"""WorkerLedger: each server process registers itself in the call store and beats; a dead one's
calls are closed by whoever notices first.

A worker killed mid-call (kill -9, OOM, power) cannot write `call_ended`, so its calls would stay
`active` forever. Every worker therefore stamps its id on the calls it serves and refreshes
`workers.heartbeat_at` every `heartbeat_s`. A worker whose heartbeat is older than `dead_after_s`
is lost: a live worker (at its own start-up, and then on every beat) marks it `lost` and closes its
active calls as `server_lost`, ending them at the dead worker's last heartbeat (the line dropped
within one beat of it). A turn that was still playing keeps only what the caller's marks
confirmed, and is marked interrupted.

Reaping is one conditional UPDATE per dead worker, so two workers that notice together close each
call once.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from sqlalchemy import func, or_, select, update

from sutradhar.ops.periodic import Periodic
from sutradhar.store.calls import CallStore, status_for, to_datetime, utcnow
from sutradhar.store.schema import CallRow, TurnRow, WorkerRow

log = logger.bind(stage="recovery")
LIVE = ("running", "draining")


@dataclass(frozen=True)
class Recovered:
    worker: str
    calls: list[str]


class WorkerLedger:
    def __init__(self, store: CallStore, worker: str, *, heartbeat_s: float = 5.0,
                 dead_after_s: float = 20.0) -> None:
        self.store = store
        self.worker = worker
        self.heartbeat_s = heartbeat_s
        self.dead_after_s = dead_after_s
        self.started_at = utcnow()
        self._periodic = Periodic("worker-heartbeat", self.beat, heartbeat_s)

    async def start(self) -> list[Recovered]:
        """Register this worker, close the calls of workers that died, then beat in the background."""
        recovered = await self.recover(at_start=True)
        await self._register()
        self._periodic.start()
        return recovered

    async def beat(self) -> list[Recovered]:
        async with self.store._session() as session, session.begin():
            await session.execute(update(WorkerRow).where(WorkerRow.id == self.worker)
                                  .values(heartbeat_at=utcnow()))
        return await self.recover()

    async def set_status(self, status: str) -> None:
        async with self.store._session() as session, session.begin():
            await session.execute(update(WorkerRow).where(WorkerRow.id == self.worker).values(status=status))

    async def aclose(self) -> None:
        """A clean stop: no beat, and the row says so (its calls were ended by the session code)."""
        await self._periodic.stop()
        try:
            async with self.store._session() as session, session.begin():
                now = utcnow()
                await session.execute(update(WorkerRow).where(WorkerRow.id == self.worker)
                                      .values(status="stopped", stopped_at=now, heartbeat_at=now))
        except Exception as exc:  # noqa: BLE001 - the database may be what is going down
            log.warning("could not mark worker {} stopped: {}", self.worker, exc)

    async def alive(self) -> list[dict[str, Any]]:
        """Workers that beat recently (for /status)."""
        cutoff = utcnow() - timedelta(seconds=self.dead_after_s)
        async with self.store._session() as session:
            rows = await session.scalars(select(WorkerRow).where(
                WorkerRow.status.in_(LIVE), WorkerRow.heartbeat_at >= cutoff))
            return [{"worker": r.id, "status": r.status, "started_at": _iso(r.started_at),
                     "heartbeat_at": _iso(r.heartbeat_at)} for r in rows]

    # --- recovery ---

    async def recover(self, at_start: bool = False) -> list[Recovered]:
        """Close every call of every dead worker. At start-up a row with this worker's own id is a
        dead predecessor (same host and pid: the old process is certainly gone)."""
        cutoff = utcnow() - timedelta(seconds=self.dead_after_s)
        silent = WorkerRow.heartbeat_at < cutoff
        async with self.store._session() as session:
            dead = list(await session.scalars(select(WorkerRow).where(
                WorkerRow.status.in_(LIVE), or_(silent, WorkerRow.id == self.worker) if at_start
                else silent & (WorkerRow.id != self.worker))))
        recovered = []
        for row in dead:
            calls = await self._reap(row.id, to_datetime(row.heartbeat_at) or utcnow(), cutoff, at_start)
            if calls is not None:
                recovered.append(Recovered(row.id, calls))
        if at_start:
            legacy = await self._close_unowned()
            if legacy:
                recovered.append(Recovered("", legacy))
        return recovered

    async def _reap(self, worker: str, last_beat: datetime, cutoff: datetime, at_start: bool) -> list[str] | None:
        async with self.store._session() as session, session.begin():
            claim = update(WorkerRow).where(WorkerRow.id == worker, WorkerRow.status.in_(LIVE))
            if not (at_start and worker == self.worker):
                claim = claim.where(WorkerRow.heartbeat_at < cutoff)  # it did not beat meanwhile
            result = await session.execute(claim.values(status="lost", stopped_at=last_beat))
            if not result.rowcount:
                return None  # another worker reaped it first, or it came back
            calls = await self._close_calls(session, CallRow.worker_id == worker, last_beat)
        (log.warning if calls else log.info)(
            "worker {} stopped beating at {}; closed {} of its calls as server_lost: {}",
            worker, last_beat.isoformat(), len(calls), ",".join(calls) or "-")
        return calls

    async def _close_unowned(self) -> list[str]:
        """Active calls written before workers recorded themselves (no owner) that started before
        every running worker did: no live process serves them."""
        async with self.store._session() as session, session.begin():
            oldest = await session.scalar(select(func.min(WorkerRow.started_at)).where(
                WorkerRow.status.in_(LIVE)))
            before = min(filter(None, (to_datetime(oldest), self.started_at)))
            calls = await self._close_calls(session, CallRow.worker_id.is_(None) & (CallRow.started_at < before),
                                            None)
        if calls:
            log.warning("closed {} active calls with no owning worker as server_lost: {}", len(calls),
                        ",".join(calls))
        return calls

    async def _close_calls(self, session: Any, owned: Any, last_beat: datetime | None) -> list[str]:
        rows = list(await session.scalars(select(CallRow).where(owned, CallRow.status == "active")))
        for call in rows:
            last_turn = await session.scalar(select(func.max(TurnRow.created_at)).where(
                TurnRow.call_id == call.id))
            # The line dropped between the last thing we know happened and the last heartbeat.
            known = [to_datetime(t) for t in (call.started_at, last_turn, last_beat) if t is not None]
            call.status, call.end_reason = status_for("server_lost"), "server_lost"
            call.ended_at = max(known) if known else utcnow()
            call.summary = {**(call.summary or {}), "end_reason": "server_lost", "end_estimated": True,
                            "closed_by": self.worker}
        ids = [call.id for call in rows]
        if ids:  # a reply still going out: the caller heard what its marks confirmed, no more
            await session.execute(update(TurnRow).where(TurnRow.call_id.in_(ids), TurnRow.playing.is_(True))
                                  .values(playing=False, interrupted=True,
                                          heard=func.coalesce(TurnRow.heard, "")))
        return ids

    async def _register(self) -> None:
        now = utcnow()
        async with self.store._session() as session, session.begin():
            row = await session.get(WorkerRow, self.worker)
            if row is None:
                row = WorkerRow(id=self.worker)
                session.add(row)
            row.host, row.pid = socket.gethostname(), os.getpid()
            row.status, row.started_at, row.heartbeat_at, row.stopped_at = "running", self.started_at, now, None


def _iso(value: datetime | None) -> str | None:
    moment = to_datetime(value)
    return None if moment is None else moment.isoformat()
