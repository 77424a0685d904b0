"""Post-call results in the store: written once per call, then delivered to the agent's webhook.

A row with a webhook starts `pending`. A worker claims a due row by moving its `next_attempt_at`
a lease ahead in one conditional UPDATE (two workers never send the same attempt), then records
the outcome: `sent`, or another attempt after a backoff, or `failed` after the last one. Pending
rows outlive the process: the next worker to start picks them up.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sutradhar.store.schema import CallResultRow, CallRow


def _aware(value: datetime | None) -> datetime | None:
    from datetime import timezone

    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)  # SQLite hands back naive datetimes
    return value


async def write_results(session: AsyncSession, call_id: str, results: dict[str, Any],
                        webhook_url: str | None, at: datetime) -> None:
    if await session.get(CallRow, call_id) is None:  # call_ended was lost; keep the results anyway
        session.add(CallRow(id=call_id, started_at=at, turn_count=0, status="completed"))
        await session.flush()
    row = await session.get(CallResultRow, call_id)
    if row is None:
        row = CallResultRow(call_id=call_id, created_at=at, attempts=0)
        session.add(row)
    row.summary = results.get("summary")
    row.extracted = results.get("extracted")
    row.source = results.get("source")
    row.payload = results.get("payload")
    row.webhook_url = webhook_url
    row.delivery = "pending" if webhook_url else "none"
    row.next_attempt_at = at if webhook_url else None


async def claim_due(session: AsyncSession, now: datetime, lease_s: float, limit: int) -> list[dict[str, Any]]:
    """Pending rows due by `now`, each claimed for `lease_s` (its next attempt moved past the send)."""
    rows = (await session.scalars(
        select(CallResultRow).where(CallResultRow.delivery == "pending",
                                    CallResultRow.next_attempt_at <= now)
        .order_by(CallResultRow.next_attempt_at).limit(limit))).all()
    claimed = []
    lease = now + timedelta(seconds=lease_s)
    for row in rows:
        result = await session.execute(
            update(CallResultRow)
            .where(CallResultRow.call_id == row.call_id, CallResultRow.delivery == "pending",
                   CallResultRow.next_attempt_at == row.next_attempt_at)
            .values(next_attempt_at=lease))
        if result.rowcount == 1:
            claimed.append({"call_id": row.call_id, "url": row.webhook_url, "payload": row.payload,
                            "attempts": row.attempts})
    return claimed


async def record_attempt(session: AsyncSession, call_id: str, at: datetime, error: str | None,
                         next_at: datetime | None) -> None:
    """One delivery attempt: sent (`error` None), retried at `next_at`, or failed for good (None)."""
    row = await session.get(CallResultRow, call_id)
    if row is None:
        return
    row.attempts = (row.attempts or 0) + 1
    row.last_error = error[:300] if error else None
    if error is None:
        row.delivery, row.sent_at, row.next_attempt_at = "sent", at, None
    elif next_at is None:
        row.delivery, row.next_attempt_at = "failed", None
    else:
        row.next_attempt_at = next_at


def result_dict(row: CallResultRow | None) -> dict[str, Any] | None:
    if row is None:
        return None
    iso = (lambda v: _aware(v).isoformat() if v is not None else None)  # noqa: E731
    return {"summary": row.summary, "extracted": row.extracted, "source": row.source,
            "created_at": iso(row.created_at),
            "webhook": {"url": row.webhook_url, "delivery": row.delivery, "attempts": row.attempts,
                        "next_attempt_at": iso(row.next_attempt_at), "last_error": row.last_error,
                        "sent_at": iso(row.sent_at)} if row.webhook_url else None}
