"""CampaignStore: campaigns and their contacts in the call store, moved only by conditional UPDATEs.

No number is dialled twice, whatever crashes:

  - claim: one UPDATE ... WHERE id = ? AND status = <as read> AND attempts = <as read> moves a
    contact to `dialing` (attempts + 1) before the carrier is asked; two runners (workers, or a
    restarted process and a slow old one) cannot both win it. The concurrency count and the claim
    share one transaction, under a row lock on the campaign in PostgreSQL (SQLite has one writer).
  - the carrier's call id is written the moment its REST API answers; the status callbacks land on
    the call record, and `settle` reads the contact's outcome from there (campaigns/outcomes.py),
    the same rule live and after a restart.
  - a contact left `dialing` by a process that died: with a call id, its callbacks still settle it
    (busy / no-answer / failed: retried, the carrier said it never connected); no final status
    within CAMPAIGN_CALL_TIMEOUT_S: `unknown`. Without a call id (killed between the claim and the
    carrier's answer), the carrier may have placed the call: `unknown` once the claiming worker is
    known dead (or has this process's id but no dial here: a predecessor with the same pid).
    `unknown` is never dialled again automatically.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from loguru import logger
from sqlalchemy import func, insert, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import aliased

from sutradhar.campaigns.dnc import DncFile
from sutradhar.campaigns.hours import CallingHours, zone
from sutradhar.campaigns.outcomes import (
    IN_FLIGHT,
    RETRYABLE,
    CallView,
    outcome,
    retry_at,
)
from sutradhar.campaigns.prompts import CallScript
from sutradhar.campaigns.spec import CampaignSpec
from sutradhar.store.calls import CallStore, to_datetime, utcnow
from sutradhar.store.schema import (
    CallRow,
    CampaignRow,
    ContactRow,
    DoNotCallRow,
    WorkerRow,
)

LIVE_WORKERS = ("running", "draining")
OPEN = ("running", "paused")  # campaigns whose contacts the runner still settles
CANDIDATES = 50  # contacts looked at per claim: the due ones outside their hours are deferred


def log_for(campaign_id: str, call_id: str | None = None) -> Any:
    return logger.bind(call_id=call_id or "-", stage="campaign", campaign_id=campaign_id)


@dataclass(frozen=True)
class Claim:
    """A contact this runner won the right to dial (once)."""

    contact_id: int
    seq: int  # its row in the uploaded list (what logs and operators name it by)
    campaign_id: str
    number: str
    language: str | None
    carrier: str
    attempt: int
    prior_status: str  # what a released claim goes back to


@dataclass(frozen=True)
class Rules:
    """A campaign's settings: the spec's, else the CAMPAIGN_* defaults."""

    concurrency: int
    max_attempts: int
    retry_delay_s: float
    retry_backoff: float
    calling_hours: str
    timezone: str


class CampaignStore:
    def __init__(self, store: CallStore, dnc_file: str = "", worker_id: str | None = None) -> None:
        self.store = store
        self.dnc_file = DncFile(dnc_file)
        self.worker_id = worker_id or store.worker_id or "-"

    def _session(self) -> Any:
        return self.store._session()

    @property
    def _lock(self) -> bool:
        return self.store.dialect != "sqlite"

    # --- creating and steering ---

    async def create(self, spec: CampaignSpec, rules: Rules, carrier: str, language: str | None) -> str:
        campaign_id = "cmp_" + uuid.uuid4().hex[:16]
        now = utcnow()
        numbers = [c.number for c in spec.contacts]
        async with self._session() as session, session.begin():
            dnc = await self._dnc(session, numbers)
            session.add(CampaignRow(
                id=campaign_id, name=spec.name, status="running", carrier=carrier, language=language,
                concurrency=rules.concurrency, max_attempts=rules.max_attempts,
                retry_delay_s=rules.retry_delay_s, retry_backoff=rules.retry_backoff,
                calling_hours=rules.calling_hours, timezone=rules.timezone,
                prompts={code: p.model_dump(exclude_none=True) for code, p in spec.prompts.items()} or None,
                created_at=now, updated_at=now))
            await session.flush()
            await session.execute(insert(ContactRow), [
                {"campaign_id": campaign_id, "seq": n, "number": c.number, "language": c.language,
                 "timezone": c.timezone, "variables": c.variables or None, "attempts": 0,
                 "status": "skipped_dnc" if c.number in dnc else "pending",
                 "next_attempt_at": None if c.number in dnc else now, "updated_at": now}
                for n, c in enumerate(spec.contacts, start=1)])
        log_for(campaign_id).info("campaign {} created: {} numbers, {} on the do-not-call list, carrier={} "
                                  "concurrency={}", campaign_id, len(numbers), len(dnc), carrier,
                                  rules.concurrency)
        return campaign_id

    async def set_status(self, campaign_id: str, status: str, from_: Iterable[str]) -> bool:
        """Pause or resume: True when the campaign was in one of `from_`."""
        now = utcnow()
        async with self._session() as session, session.begin():
            result = await session.execute(update(CampaignRow).where(
                CampaignRow.id == campaign_id, CampaignRow.status.in_(tuple(from_)))
                .values(status=status, updated_at=now,
                        last_error=None if status == "running" else CampaignRow.last_error))
        changed = bool(result.rowcount)
        if changed:
            log_for(campaign_id).info("campaign {} {}", campaign_id, status)
        return changed

    async def pause_with_error(self, campaign_id: str, error: str) -> None:
        async with self._session() as session, session.begin():
            await session.execute(update(CampaignRow).where(
                CampaignRow.id == campaign_id, CampaignRow.status == "running")
                .values(status="paused", last_error=error[:1000], updated_at=utcnow()))
        log_for(campaign_id).error("campaign {} paused: {}", campaign_id, error)

    async def open_campaigns(self) -> list[tuple[str, str]]:
        """(id, status) of every running or paused campaign."""
        async with self._session() as session:
            rows = await session.execute(select(CampaignRow.id, CampaignRow.status)
                                         .where(CampaignRow.status.in_(OPEN)).order_by(CampaignRow.created_at))
            return [(r.id, r.status) for r in rows]

    # --- the do-not-call list ---

    async def _dnc(self, session: Any, numbers: list[str]) -> set[str]:
        listed = set(self.dnc_file.numbers()) & set(numbers)
        for start in range(0, len(numbers), 500):
            chunk = numbers[start:start + 500]
            listed |= set(await session.scalars(select(DoNotCallRow.number).where(DoNotCallRow.number.in_(chunk))))
        return listed

    async def add_dnc(self, numbers: Iterable[str], reason: str | None = None) -> int:
        """Put E.164 numbers on the list; return how many were new."""
        now = utcnow()
        added = 0
        async with self._session() as session, session.begin():
            for number in dict.fromkeys(numbers):
                if await session.get(DoNotCallRow, number) is None:
                    session.add(DoNotCallRow(number=number, reason=reason, added_at=now))
                    added += 1
        logger.bind(call_id="-", stage="campaign").info("do-not-call list: {} numbers added", added)
        return added

    # --- dialling ---

    async def claim(self, campaign_id: str, now: datetime | None = None) -> Claim | None:
        """Win one due contact of a running campaign with a free concurrency slot, or None."""
        now = now or utcnow()
        try:
            return await self._claim(campaign_id, now)
        except OperationalError as exc:  # another writer's transaction won (SQLite): next tick
            log_for(campaign_id).debug("claim lost a race: {}", exc)
            return None

    async def _claim(self, campaign_id: str, now: datetime) -> Claim | None:
        async with self._session() as session, session.begin():
            campaign = await session.get(CampaignRow, campaign_id, with_for_update=self._lock)
            if campaign is None or campaign.status != "running":
                return None
            busy = await session.scalar(select(func.count()).where(
                ContactRow.campaign_id == campaign_id, ContactRow.status.in_(IN_FLIGHT)))
            if (busy or 0) >= campaign.concurrency:
                return None
            due = list(await session.scalars(select(ContactRow).where(
                ContactRow.campaign_id == campaign_id, ContactRow.status.in_(("pending", *RETRYABLE)),
                ContactRow.next_attempt_at <= now, ContactRow.attempts < campaign.max_attempts)
                .order_by(ContactRow.next_attempt_at, ContactRow.seq).limit(CANDIDATES)))
            if not due:
                return None
            hours = CallingHours.parse(campaign.calling_hours)
            dnc = await self._dnc(session, [c.number for c in due])
            # The slot count is part of the claiming UPDATE itself: SQLite evaluates it under the
            # write lock (its driver runs the SELECTs above outside the transaction), PostgreSQL
            # after the campaign row lock, so two claimers never both take the last slot.
            other = aliased(ContactRow)  # not correlated with the row being updated
            in_flight = (select(func.count()).select_from(other).where(
                other.campaign_id == campaign_id, other.status.in_(IN_FLIGHT)).scalar_subquery())
            running = (select(CampaignRow.status).where(CampaignRow.id == campaign_id).scalar_subquery())
            for contact in due:
                status, attempts = contact.status, contact.attempts  # as read: the UPDATEs' condition
                same = (ContactRow.id == contact.id, ContactRow.status == status, ContactRow.attempts == attempts)
                if contact.number in dnc:  # listed after the campaign was created
                    await session.execute(update(ContactRow).where(*same).values(
                        status="skipped_dnc", next_attempt_at=None, updated_at=now))
                    log_for(campaign_id).info("campaign {} contact {} skipped: on the do-not-call list",
                                              campaign_id, contact.seq)
                    continue
                opens = hours.next_open(now, zone(contact.timezone or campaign.timezone))
                if opens > now:  # outside its calling hours: wait for them to open
                    await session.execute(update(ContactRow).where(*same).values(next_attempt_at=opens))
                    continue
                won = await session.execute(
                    update(ContactRow).where(*same, in_flight < campaign.concurrency, running == "running")
                    .values(status="dialing", attempts=attempts + 1, call_id=None, claimed_by=self.worker_id,
                            claimed_at=now, last_error=None, updated_at=now)
                    .execution_options(synchronize_session=False))
                if won.rowcount == 1:
                    return Claim(contact.id, contact.seq, campaign_id, contact.number,
                                 contact.language or campaign.language, campaign.carrier, attempts + 1, status)
                return None  # lost to another claimer, or the slots filled meanwhile: next tick
        return None

    async def placed(self, claim: Claim, call_id: str) -> None:
        """The carrier accepted the call: from now on its status callbacks settle the contact."""
        async with self._session() as session, session.begin():
            await session.execute(update(ContactRow).where(
                ContactRow.id == claim.contact_id, ContactRow.status == "dialing", ContactRow.call_id.is_(None))
                .values(call_id=call_id, updated_at=utcnow()))

    async def release(self, claim: Claim, retry_s: float) -> None:
        """Undo a claim the carrier was never asked about (this worker at capacity, carrier unset)."""
        async with self._session() as session, session.begin():
            await session.execute(update(ContactRow).where(
                ContactRow.id == claim.contact_id, ContactRow.status == "dialing", ContactRow.call_id.is_(None))
                .values(status=claim.prior_status, attempts=claim.attempt - 1, claimed_by=None,
                        next_attempt_at=utcnow() + timedelta(seconds=retry_s), updated_at=utcnow()))

    async def not_placed(self, claim: Claim, error: str, *, maybe_placed: bool) -> str:
        """The attempt failed before a call id: `failed` and retried when the carrier refused it,
        `unknown` when it may have placed the call anyway. Returns the new status."""
        now = utcnow()
        async with self._session() as session, session.begin():
            campaign = await session.get(CampaignRow, claim.campaign_id)
            status, next_at = "unknown", None
            if not maybe_placed and campaign is not None:
                status = "failed"
                next_at = retry_at(now, claim.attempt, campaign.max_attempts, campaign.retry_delay_s,
                                   campaign.retry_backoff)
            await session.execute(update(ContactRow).where(
                ContactRow.id == claim.contact_id, ContactRow.status == "dialing", ContactRow.call_id.is_(None))
                .values(status=status, next_attempt_at=next_at, last_error=error[:1000], updated_at=now))
        return status

    async def invalid(self, claim: Claim, error: str) -> None:
        async with self._session() as session, session.begin():
            await session.execute(update(ContactRow).where(
                ContactRow.id == claim.contact_id, ContactRow.status == "dialing")
                .values(status="invalid", next_attempt_at=None, last_error=error[:1000], updated_at=utcnow()))

    # --- following the calls ---

    async def settle(self, campaign_id: str, *, call_timeout_s: float, dead_after_s: float,
                     dialing_here: Iterable[int] = (), now: datetime | None = None) -> list[tuple[int, str, str]]:
        """Move each in-flight contact on by its call record (the module docstring's rule);
        return (seq, old, new) per change. `dialing_here`: contacts whose dial is still waiting
        for the carrier's answer in this process."""
        dialing_here = set(dialing_here)
        now = now or utcnow()
        changes = []
        async with self._session() as session, session.begin():
            campaign = await session.get(CampaignRow, campaign_id)
            if campaign is None:
                return []
            rows = (await session.execute(
                select(ContactRow, CallRow).outerjoin(CallRow, CallRow.id == ContactRow.call_id)
                .where(ContactRow.campaign_id == campaign_id, ContactRow.status.in_(IN_FLIGHT)))).all()
            live = None
            for contact, call in rows:
                status, attempts = contact.status, contact.attempts
                new: str | None
                if contact.call_id is None:
                    if contact.id in dialing_here:
                        continue  # our own dial is still waiting for the carrier's answer
                    if live is None:
                        live = await self._live_workers(session, now, dead_after_s)
                    # Our own id without our dial: a predecessor with the same host and pid.
                    if contact.claimed_by in live and contact.claimed_by != self.worker_id:
                        continue
                    new = "unknown"  # its worker died between the claim and the carrier's answer
                else:
                    new = outcome(status, _view(call) if call is not None else None)
                    claimed = to_datetime(contact.claimed_at) or now
                    if new is None and status == "dialing" and now - claimed > timedelta(seconds=call_timeout_s):
                        new = "unknown"  # the carrier never said how it ended
                if new is None:
                    continue
                next_at = None
                if new in RETRYABLE:
                    next_at = retry_at(now, attempts, campaign.max_attempts, campaign.retry_delay_s,
                                       campaign.retry_backoff)
                result = await session.execute(
                    update(ContactRow).where(ContactRow.id == contact.id, ContactRow.status == status,
                                             ContactRow.attempts == attempts)
                    .values(status=new, next_attempt_at=next_at, updated_at=now)
                    .execution_options(synchronize_session=False))
                if result.rowcount:
                    changes.append((contact.seq, status, new))
                    retry = f" retry at {next_at.isoformat()}" if next_at else ""
                    log_for(campaign_id, contact.call_id).info(
                        "campaign {} contact {} {} -> {} attempt {}/{}{}", campaign_id, contact.seq,
                        status, new, attempts, campaign.max_attempts, retry)
        return changes

    async def finish_if_done(self, campaign_id: str) -> bool:
        """Mark a running campaign completed when no contact has anything left to do."""
        async with self._session() as session, session.begin():
            left = await session.scalar(select(func.count()).where(
                ContactRow.campaign_id == campaign_id,
                ContactRow.status.in_(("pending", *IN_FLIGHT))
                | (ContactRow.status.in_(RETRYABLE) & ContactRow.next_attempt_at.is_not(None))))
            if left:
                return False
            now = utcnow()
            result = await session.execute(update(CampaignRow).where(
                CampaignRow.id == campaign_id, CampaignRow.status == "running")
                .values(status="completed", completed_at=now, updated_at=now))
        if result.rowcount:
            log_for(campaign_id).info("campaign {} completed", campaign_id)
        return bool(result.rowcount)

    async def _live_workers(self, session: Any, now: datetime, dead_after_s: float) -> set[str]:
        cutoff = now - timedelta(seconds=dead_after_s)
        return set(await session.scalars(select(WorkerRow.id).where(
            WorkerRow.status.in_(LIVE_WORKERS), WorkerRow.heartbeat_at >= cutoff)))

    # --- reading ---

    async def get(self, campaign_id: str) -> dict[str, Any] | None:
        """The campaign, its rules and its contacts counted by status (GET /campaigns/{id})."""
        async with self._session() as session:
            campaign = await session.get(CampaignRow, campaign_id)
            if campaign is None:
                return None
            by_status = dict((await session.execute(
                select(ContactRow.status, func.count()).where(ContactRow.campaign_id == campaign_id)
                .group_by(ContactRow.status))).tuples().all())
            retrying = await session.scalar(select(func.count()).where(
                ContactRow.campaign_id == campaign_id, ContactRow.status.in_(RETRYABLE),
                ContactRow.next_attempt_at.is_not(None)))
            dials = await session.scalar(select(func.coalesce(func.sum(ContactRow.attempts), 0)).where(
                ContactRow.campaign_id == campaign_id))
        total = sum(by_status.values())
        waiting = by_status.get("pending", 0) + sum(by_status.get(s, 0) for s in IN_FLIGHT) + (retrying or 0)
        return {
            "id": campaign.id, "name": campaign.name, "status": campaign.status, "carrier": campaign.carrier,
            "language": campaign.language, "concurrency": campaign.concurrency,
            "max_attempts": campaign.max_attempts, "retry_delay_s": campaign.retry_delay_s,
            "retry_backoff": campaign.retry_backoff, "calling_hours": campaign.calling_hours,
            "timezone": campaign.timezone, "last_error": campaign.last_error,
            "created_at": _iso(campaign.created_at), "completed_at": _iso(campaign.completed_at),
            "total": total, "done": total - waiting, "retrying": retrying or 0, "dials": dials or 0,
            "counts": dict(sorted(by_status.items())),
        }

    async def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest campaigns, each with its counts."""
        async with self._session() as session:
            ids = list(await session.scalars(select(CampaignRow.id).order_by(CampaignRow.created_at.desc())
                                              .limit(limit)))
        return [c for c in [await self.get(i) for i in ids] if c is not None]

    async def contacts(self, campaign_id: str) -> list[dict[str, Any]]:
        async with self._session() as session:
            rows = await session.scalars(select(ContactRow).where(ContactRow.campaign_id == campaign_id)
                                         .order_by(ContactRow.seq))
            return [{"seq": r.seq, "number": r.number, "status": r.status, "attempts": r.attempts,
                     "next_attempt_at": _iso(r.next_attempt_at), "call_id": r.call_id,
                     "last_error": r.last_error} for r in rows]

    async def script_for(self, call_ids: list[str]) -> CallScript | None:
        """The variables and prompts of the campaign contact dialled as one of `call_ids`."""
        if not call_ids:
            return None
        async with self._session() as session:
            row = (await session.execute(
                select(ContactRow.variables, CampaignRow.prompts)
                .join(CampaignRow, CampaignRow.id == ContactRow.campaign_id)
                .where(ContactRow.call_id.in_(call_ids)).limit(1))).first()
        if row is None:
            return None
        prompts = row.prompts or {}
        return CallScript(variables=dict(row.variables or {}),
                          greetings={k: v["greeting"] for k, v in prompts.items() if v.get("greeting")},
                          system_prompts={k: v["system"] for k, v in prompts.items() if v.get("system")})


def _view(call: CallRow) -> CallView:
    return CallView(carrier_status=call.carrier_status,
                    carrier_statuses=tuple(e.get("status", "") for e in call.carrier_events or []),
                    turn_count=call.turn_count or 0, ended=call.ended_at is not None)


def _iso(value: Any) -> str | None:
    moment = to_datetime(value)
    return None if moment is None else moment.isoformat()

