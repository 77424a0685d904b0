"""The console's pages: live calls with latency at a glance, call history, one call, health."""

from __future__ import annotations

import platform
import time
from datetime import timedelta
from importlib import metadata
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from sutradhar.ops.logs import Redactor
from sutradhar.ops.shared_state import worker_id
from sutradhar.server.admin import STARTED_AT, CallId, recording_response, services_of
from sutradhar.server.console.auth import require_console_page
from sutradhar.server.console.latency import charts
from sutradhar.server.console.live import live_snapshot
from sutradhar.server.console.masking import settings_in_force
from sutradhar.server.console.templating import render
from sutradhar.server.console.timeline import waterfall
from sutradhar.store.calls import to_datetime, utcnow

router = APIRouter(dependencies=[Depends(require_console_page)])

PAGE_SIZE = 25
CARRIERS = ("twilio", "exotel", "plivo", "browser")  # the transports under sutradhar/telephony
LATENCY_WINDOW = timedelta(hours=1)
VERSIONS = ("sutradhar", "fastapi", "uvicorn", "sqlalchemy", "pydantic", "jinja2")


@router.get("")
async def live_calls(request: Request) -> Response:
    services = services_of(request)
    turns = await services.store.turn_timings(utcnow() - LATENCY_WINDOW) if services.store else []
    return render(request, "live.html", {
        "calls": await live_snapshot(services), "now": time.time(), "charts": charts(turns),
        "turn_count": len(turns), "records": services.store is not None, "section": "live"})


def _filters(request: Request) -> dict[str, str]:
    """The history form's values as given (strings; empty ones dropped), for the form and links."""
    names = ("since", "until", "language", "carrier", "status", "end_reason", "errors", "slow")
    return {name: value.strip() for name in names
            if (value := request.query_params.get(name, "")).strip()}


@router.get("/calls")
async def history(request: Request) -> Response:
    services = services_of(request)
    if services.store is None:
        return render(request, "calls.html", {"records": False, "section": "calls", "filters": {}})
    filters = _filters(request)
    try:
        page = min(max(1, int(request.query_params.get("page", "1"))), 100_000)  # SQL OFFSET stays small
        since, until = to_datetime(filters.get("since")), to_datetime(filters.get("until"))
    except ValueError:
        raise HTTPException(400, "page must be a number and the dates ISO dates or date-times") from None
    if filters.get("status") not in (None, "active", "completed", "failed"):
        raise HTTPException(400, "status is active, completed or failed")
    slow_ms = services.settings.console_slow_turn_ms
    result = await services.store.list_calls(
        page=page, page_size=PAGE_SIZE, since=since, until=until, language=filters.get("language"),
        status=filters.get("status"), carrier=filters.get("carrier"),
        end_reason=filters.get("end_reason"), had_errors="errors" in filters,
        slow_ms=slow_ms if "slow" in filters else None)
    pages = max(1, -(-result["total"] // PAGE_SIZE))

    def link(number: int) -> str:
        """Another page of the same search."""
        return "?" + urlencode({**filters, "page": number})

    return render(request, "calls.html", {
        "records": True, "section": "calls", "filters": filters, "result": result, "pages": pages,
        "page": page, "link": link, "languages": services.settings.languages, "carriers": CARRIERS,
        "slow_ms": slow_ms, "redact": _numbers(services.settings)})


def _numbers(settings: Any) -> Redactor:
    """Caller numbers as the logs show them (masked when REDACT_PHONE_NUMBERS is on)."""
    return Redactor((), phone_numbers=settings.redact_phone_numbers)


@router.get("/calls/{call_id}")
async def call_detail(request: Request, call_id: str) -> Response:
    services = services_of(request)
    if services.store is None:
        raise HTTPException(503, "call records are not available (see /health)")
    call = await services.store.get_call(call_id)
    if call is None:
        return render(request, "missing.html", {"call_id": call_id, "section": "calls"}, status_code=404)
    started = to_datetime(call["started_at"])
    turns = [{**turn, "waterfall": waterfall(turn["timings"]), "at_s": _reply_at(started, turn)}
             for turn in call["turns"]]
    return render(request, "call.html", {
        "call": call, "turns": turns, "section": "calls", "live": call_id in services.calls,
        "slow_ms": services.settings.console_slow_turn_ms, "redact": _numbers(services.settings)})


def _reply_at(started: Any, turn: dict[str, Any]) -> float | None:
    """Seconds into the call's recording where this turn's reply began: the turn is stored once
    its first frame is on the wire, so its creation time marks it (to the recording's ~1 s)."""
    created = to_datetime(turn.get("created_at"))
    if started is None or created is None:
        return None
    return round(max(0.0, (created - started).total_seconds()), 2)


def _versions() -> list[tuple[str, str]]:
    found = [("python", platform.python_version())]
    for name in VERSIONS:
        try:
            found.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            found.append((name, "not installed"))
    return found


@router.get("/calls/{call_id}/recording")
async def call_recording(request: Request, call_id: CallId) -> Response:
    """The recording for the detail page's player (the console's session, not a Bearer header)."""
    return await recording_response(services_of(request), call_id, request.headers.get("range"))


@router.get("/health")
async def health(request: Request) -> Response:
    services = services_of(request)
    await services.health.first_round()
    ready, report = services.health.report()
    turns = await services.store.turn_timings(utcnow() - LATENCY_WINDOW) if services.store else []
    return render(request, "health.html", {
        "section": "health", "ready": ready, "report": report, "draining": services.calls.draining,
        "charts": {chart.key: chart for chart in charts(turns)},
        "redis_configured": services.shared.shared, "workers": await services.calls.workers_alive(),
        "worker": worker_id(), "uptime_s": time.time() - STARTED_AT, "versions": _versions(),
        "settings": settings_in_force(services.settings), "now": time.time()})
