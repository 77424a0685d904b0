"""The tables of call records: one row per call, one row per turn, one row per worker process.

The Alembic migrations in `sutradhar/migrations` create these tables; this module is what the
queries use. Change both together: a new column here needs a new migration there.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, DateTime, Float, ForeignKey, Integer, String, Text
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
    # Relative to DATA_DIR/recordings (telephony/recording.py); None: not recorded.
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

    call: Mapped[CallRow] = relationship(back_populates="turns")


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
