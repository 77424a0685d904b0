"""What a dialled number's call came to, and when it is tried again.

A contact's outcome is read from the call record (the carrier's status callbacks land there), the
same rule live and after a restart:

  - the carrier reported busy / no-answer / failed / canceled and the call was never answered:
    busy / no_answer / failed, tried again after a backoff while attempts remain;
  - answered (an in-progress status, or a turn was stored): `answered` while the call lasts, then
    `completed` when the carrier says completed or the call record is closed. Never dialled again;
  - no final status yet: still `dialing` (ringing), unless CAMPAIGN_CALL_TIMEOUT_S passed: `unknown`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# Carrier states (Twilio's names; Exotel and Plivo are stored in them) -> the contact's status.
NOT_CONNECTED = {"busy": "busy", "no-answer": "no_answer", "failed": "failed", "canceled": "failed"}
RETRYABLE = frozenset(NOT_CONNECTED.values())
IN_FLIGHT = ("dialing", "answered")  # holding one of the campaign's concurrency slots
# Never dialled again: done, refused by the do-not-call list, or not provably unconnected.
FINAL = frozenset({"completed", "skipped_dnc", "unknown", "invalid"})


@dataclass(frozen=True)
class CallView:
    """What the call record says of one attempt."""

    carrier_status: str | None
    carrier_statuses: tuple[str, ...]  # every status callback, in order
    turn_count: int
    ended: bool  # the record is closed (by the session, a final callback or crash recovery)


def outcome(current: str, call: CallView | None) -> str | None:
    """The contact's next status given its call record, or None while it stays as it is."""
    if call is None:
        return None
    answered = current == "answered" or "in-progress" in call.carrier_statuses or call.turn_count > 0
    if answered:
        done = call.carrier_status in NOT_CONNECTED or call.carrier_status == "completed" or call.ended
        status = "completed" if done else "answered"
        return None if status == current else status
    if call.carrier_status in NOT_CONNECTED:
        return NOT_CONNECTED[call.carrier_status]
    if call.carrier_status == "completed":  # connected and over before any stream
        return "completed"
    return None


def retry_at(now: datetime, attempts: int, max_attempts: int, delay_s: float,
             backoff: float) -> datetime | None:
    """When a number not reached after `attempts` tries is tried again; None: no attempts left.
    The n-th retry waits delay_s * backoff**(n-1)."""
    if attempts >= max_attempts:
        return None
    return now + timedelta(seconds=delay_s * backoff ** max(0, attempts - 1))
