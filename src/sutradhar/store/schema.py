"""The tables of call records: one row per call, one row per turn, one row per worker process,
a call's post-call results; and the outbound campaigns with their contacts and the do-not-call list.

The Alembic migrations in `sutradhar/migrations` create these tables; this module is what the
queries use. Change both together: a new column here needs a new migration there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship


class Base(DeclarativeBase):
    pass


class CallRow(Base):
    __tablename__ = "calls"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    transport: Mapped[str | None] = mapped_column(String(32))
    from_number: Mapped[str | None] = mapped_column(String(64))
    to_number: Mapped[str | None] = mapped_column(String(64))
    carrier_call_id: Mapped[str | None] = mapped_column(String(128))
    language: Mapped[str | None] = mapped_column(String(16), index=True)  # chosen at the start (IVR)
    final_language: Mapped[str | None] = mapped_column(String(16), index=True)  # after any switch
    status: Mapped[str] = mapped_column(String(16), default="active", index=True)
    end_reason: Mapped[str | None] = mapped_column(String(64))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    turn_count: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[dict | None] = mapped_column(JSON)
    worker_id: Mapped[str | None] = mapped_column(String(128), index=True)  # the process serving it
    # Relative to DATA_DIR/recordings (telephony/recording.py), or `s3://bucket/key` once uploaded
    # (store/recording_archive.py); None: not recorded.
    recording_path: Mapped[str | None] = mapped_column(String(255))
    direction: Mapped[str] = mapped_column(String(16), default="inbound")  # or outbound (we dialled)
    carrier_status: Mapped[str | None] = mapped_column(String(32))  # the last status callback's
    carrier_events: Mapped[list | None] = mapped_column(JSON)  # every status callback, in order
    answered_by: Mapped[str | None] = mapped_column(String(16))  # human | machine | unknown (outbound)
    amd: Mapped[dict | None] = mapped_column(JSON)  # source (detector, twilio) -> its verdict

    turns: Mapped[list[TurnRow]] = relationship(
        back_populates="call", cascade="all, delete-orphan", passive_deletes=True,
        order_by="TurnRow.seq",
    )


class TurnRow(Base):
    __tablename__ = "turns"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("calls.id", ondelete="CASCADE"), index=True
    )
    seq: Mapped[int] = mapped_column(Integer)
    turn_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    text: Mapped[str | None] = mapped_column(Text)
    reply: Mapped[str | None] = mapped_column(Text)
    heard: Mapped[str | None] = mapped_column(Text)
    interrupted: Mapped[bool] = mapped_column(Boolean, default=False)
    # The reply was still going out when this was written; `heard` is what the marks confirmed.
    playing: Mapped[bool] = mapped_column(Boolean, default=False)
    language: Mapped[str | None] = mapped_column(String(16))
    detected_language: Mapped[str | None] = mapped_column(String(16))
    switched_to: Mapped[str | None] = mapped_column(String(16))
    intent: Mapped[str | None] = mapped_column(String(64))
    stt_ms: Mapped[float | None] = mapped_column(Float)
    llm_ttft_ms: Mapped[float | None] = mapped_column(Float)
    llm_ms: Mapped[float | None] = mapped_column(Float)
    tts_ttfb_ms: Mapped[float | None] = mapped_column(Float)
    tts_ms: Mapped[float | None] = mapped_column(Float)
    v2v_ms: Mapped[float | None] = mapped_column(Float)  # first agent audio ready (TTS)
    v2v_wire_ms: Mapped[float | None] = mapped_column(Float)  # first agent frame on the wire
    stt_provider: Mapped[str | None] = mapped_column(String(64))
    llm_provider: Mapped[str | None] = mapped_column(String(64))
    tts_provider: Mapped[str | None] = mapped_column(String(64))
    errors: Mapped[list | None] = mapped_column(JSON)
    # The tools the LLM called: name, arguments (secrets redacted), result_chars, duration_ms, error.
    tool_calls: Mapped[list | None] = mapped_column(JSON)
    state: Mapped[str | None] = mapped_column(String(64))  # the agent flow's state after the turn

    call: Mapped[CallRow] = relationship(back_populates="turns")


class CallResultRow(Base):
    """A call's post-call results (agents/results.py) and their webhook delivery: `pending` rows
    are retried with backoff by every worker until `sent`, or `failed` after the last attempt."""

    __tablename__ = "call_results"

    call_id: Mapped[str] = mapped_column(
        String(128), ForeignKey("calls.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    summary: Mapped[str | None] = mapped_column(Text)
    extracted: Mapped[dict | None] = mapped_column(JSON)
    source: Mapped[str | None] = mapped_column(String(16))  # llm | slots
    payload: Mapped[dict | None] = mapped_column(JSON)  # the webhook body, fixed when made
    webhook_url: Mapped[str | None] = mapped_column(String(1000))
    delivery: Mapped[str] = mapped_column(String(16), default="none", index=True)  # none|pending|sent|failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    last_error: Mapped[str | None] = mapped_column(String(300))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class WorkerRow(Base):
    """A server process: its heartbeat tells the others whether its `active` calls are still live."""

    __tablename__ = "workers"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    host: Mapped[str | None] = mapped_column(String(255))
    pid: Mapped[int | None] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="running")  # running|draining|stopped|lost
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    heartbeat_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


TIMING_KEYS = ("stt_ms", "llm_ttft_ms", "llm_ms", "tts_ttfb_ms", "tts_ms", "v2v_ms", "v2v_wire_ms")


class CampaignRow(Base):
    """An outbound campaign (campaigns/): its rules, and whether the runner works on it."""

    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str | None] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), default="running", index=True)  # running|paused|completed
    carrier: Mapped[str] = mapped_column(String(16))
    language: Mapped[str | None] = mapped_column(String(16))  # rows may carry their own
    concurrency: Mapped[int] = mapped_column(Integer)
    max_attempts: Mapped[int] = mapped_column(Integer)
    retry_delay_s: Mapped[float] = mapped_column(Float)
    retry_backoff: Mapped[float] = mapped_column(Float)
    calling_hours: Mapped[str] = mapped_column(String(16))  # "09:00-21:00", local to each contact
    timezone: Mapped[str] = mapped_column(String(64))  # rows may carry their own
    prompts: Mapped[dict | None] = mapped_column(JSON)  # {language: {greeting, system}} templates
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ContactRow(Base):
    """One number of a campaign and how far it got. `status` moves only by conditional UPDATEs."""

    __tablename__ = "campaign_contacts"
    __table_args__ = (UniqueConstraint("campaign_id", "number", name="uq_campaign_contacts_number"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(
        String(64), ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)  # the row's place in the uploaded list
    number: Mapped[str] = mapped_column(String(32))  # E.164
    language: Mapped[str | None] = mapped_column(String(16))
    timezone: Mapped[str | None] = mapped_column(String(64))
    variables: Mapped[dict | None] = mapped_column(JSON)  # {name}, {due_amount}, ... for the prompts
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)
    call_id: Mapped[str | None] = mapped_column(String(128), index=True)  # the latest attempt's
    claimed_by: Mapped[str | None] = mapped_column(String(128))  # the worker that dialled it
    claimed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class DoNotCallRow(Base):
    """A number that must never be dialled by a campaign (E.164)."""

    __tablename__ = "do_not_call"

    number: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str | None] = mapped_column(String(255))
    added_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
