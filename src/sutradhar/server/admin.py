"""Admin HTTP API: /health, /status, /metrics, /calls, /calls/{id}, /calls/{id}/recording,
POST /calls/outbound, /telephony/calls/{id}.

Reads `app.state.services`. /status, /calls and the live-call summary need
`Authorization: Bearer <ADMIN_TOKEN>` when ADMIN_TOKEN is set; /health and /metrics stay open for
load balancers and Prometheus (restrict them at the reverse proxy if they must not be public).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from loguru import logger
from pydantic import BaseModel, Field

from sutradhar.ids import ID_PATTERN, MAX_ID_CHARS
from sutradhar.ops.prometheus import CONTENT_TYPE
from sutradhar.ops.shared_state import worker_id
from sutradhar.services import Services
from sutradhar.store import CallStore
from sutradhar.store.calls import MAX_PAGE, MAX_PAGE_SIZE, to_datetime
from sutradhar.store.recording_bucket import is_object_url
from sutradhar.store.recording_files import recordings_dir, resolve_recording
from sutradhar.telephony.dialing import OutboundError
from sutradhar.telephony.outbound import place_call

router = APIRouter()
STARTED_AT = time.time()
CallId = Annotated[str, Path(min_length=1, max_length=MAX_ID_CHARS, pattern=ID_PATTERN)]


def services_of(request: Request) -> Services:
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise HTTPException(503, "starting up")
    return services


def has_admin_bearer(request: Request, token: str) -> bool:
    """The request's `Authorization: Bearer` header carries `token` (compared in constant time)."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


async def require_admin(request: Request) -> None:
    """401 unless the request carries the admin token (when one is configured). A coroutine,
    like the console's guards: FastAPI runs a plain function dependency on a worker thread, a
    thread hop per request for a header comparison (and, on a worker's first such request, an
    import of anyio's thread machinery on the event loop in the middle of its live calls)."""
    token = services_of(request).settings.admin_token
    if token and not has_admin_bearer(request, token):
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Liveness and readiness: 200 when calls can be served, 503 with reasons otherwise."""
    services = services_of(request)
    await services.health.first_round()
    ready, body = services.health.report()
    if services.calls.draining:  # load balancers stop sending calls; the live ones finish
        ready = False
        body["status"] = "draining"
        body["reasons"] = ["draining: finishing live calls, taking no new ones", *body["reasons"]]
    body.update(active_calls=len(services.calls), worker=worker_id(),
                uptime_s=round(time.time() - STARTED_AT, 1))
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/status", dependencies=[Depends(require_admin)])
async def status(request: Request) -> dict[str, Any]:
    """Live calls with each orchestrator's status, cluster-wide count, aggregate latency report."""
    services = services_of(request)
    calls = []
    for call_id, call in services.calls.items():
        entry: dict[str, Any] = {"call_id": call_id}
        try:
            entry.update(call.orchestrator.get_status())
        except Exception as exc:  # noqa: BLE001 - one broken call must not hide the others
            entry["error"] = f"{type(exc).__name__}: {exc}"
        entry.update(call.live_info())  # the call's state (listening/thinking/speaking) wins
        calls.append(entry)
    body: dict[str, Any] = {"worker": worker_id(), "active_calls": len(calls), "calls": calls}
    if services.shared.shared:
        body["cluster_active_calls"] = await services.calls.count_all()
        body["cluster_calls"] = await services.calls.list_all()
        body["cluster_workers"] = await services.calls.workers_alive()
    metrics = services.metrics
    body["metrics"] = metrics.as_dict()
    body["report"] = metrics.generate_report()
    body["providers"] = services.router.provider_status()
    return body


@router.get("/metrics")
async def metrics(request: Request) -> Response:
    return Response(services_of(request).telemetry.render(), media_type=CONTENT_TYPE)


def _store(services: Services) -> CallStore:
    store = services.store
    if store is None:
        raise HTTPException(503, "call records are not available (see /health)")
    return store


def _when(value: str | None, name: str) -> datetime | None:
    try:
        return to_datetime(value)
    except ValueError:
        raise HTTPException(400, f"{name}: expected an ISO date or date-time, got {value!r}") from None


@router.get("/calls", dependencies=[Depends(require_admin)])
async def list_calls(
    request: Request,
    page: int = Query(1, ge=1, le=MAX_PAGE),
    page_size: int = Query(50, ge=1, le=MAX_PAGE_SIZE),
    since: str | None = Query(None, max_length=64,
                              description="ISO date or date-time (UTC unless offset given)"),
    until: str | None = Query(None, max_length=64),
    language: str | None = Query(None, max_length=16),
    status: str | None = Query(None, pattern="^(active|completed|failed)$"),
) -> dict[str, Any]:
    store = _store(services_of(request))
    return await store.list_calls(page=page, page_size=page_size, since=_when(since, "since"),
                                  until=_when(until, "until"), language=language, status=status)


class OutboundCall(BaseModel):
    to: str = Field(max_length=32, description="the number to dial, E.164 (+919876543210)")
    language: str | None = Field(None, max_length=16, description="one of LANGUAGES; default DEFAULT_LANGUAGE")
    carrier: str = Field("twilio", max_length=16)


@router.post("/calls/outbound", dependencies=[Depends(require_admin)], status_code=201)
async def outbound_call(request: Request, body: OutboundCall) -> dict[str, Any]:
    """Dial a number; the call streams like an inbound one once answered (telephony/outbound.py)."""
    try:
        return await place_call(services_of(request), body.to, body.language, body.carrier)
    except OutboundError as exc:
        raise HTTPException(exc.status, str(exc)) from None


@router.get("/calls/{call_id}", dependencies=[Depends(require_admin)])
async def get_call(request: Request, call_id: CallId) -> dict[str, Any]:
    call = await _store(services_of(request)).get_call(call_id)
    if call is None:
        raise HTTPException(404, f"no call {call_id}")
    return call


@router.get("/calls/{call_id}/recording", dependencies=[Depends(require_admin)])
async def get_recording(request: Request, call_id: CallId) -> Response:
    """The call's stereo recording (caller left, agent right): WAV or OGG on disk, or streamed
    from RECORDINGS_BUCKET. A live call's WAV is served as far as its header declares (at most a
    second behind)."""
    return await recording_response(services_of(request), call_id, request.headers.get("range"))


async def recording_response(services: Services, call_id: str, byte_range: str | None) -> Response:
    """The call's recording (this route and the console's player), or a 404. Byte ranges work on
    both kinds, so the console's player can seek."""
    call = await _store(services).get_call(call_id)
    if call is None:
        raise HTTPException(404, f"no call {call_id}")
    name = call.get("recording_path")
    if name and is_object_url(name):
        return await recording_stream(services, call_id, name, byte_range)
    path = resolve_recording(recordings_dir(services.settings.data_dir), name) if name else None
    if path is None or not path.is_file():
        raise HTTPException(404, f"call {call_id} has no recording")
    return FileResponse(path, media_type=media_type_of(name), filename=path.name)


def media_type_of(name: str) -> str:
    return "audio/ogg" if name.endswith(".ogg") else "audio/wav"


async def recording_stream(services: Services, call_id: str, url: str,
                           byte_range: str | None) -> Response:
    """Streamed through this server rather than redirected to a presigned URL: the bucket may be
    private to the servers' network, the admin token stays the one credential, and the console's
    player stays on its own origin."""
    bucket = _store(services).bucket
    if bucket is None:
        raise HTTPException(503, "the recording is in a bucket and RECORDINGS_BUCKET is not set")
    try:
        read = await asyncio.to_thread(bucket.read, url, byte_range)
    except Exception as exc:  # noqa: BLE001 - boto3 raises several families
        status = bucket.error_status(exc)
        logger.bind(call_id=call_id, stage="recording").warning(
            "recording not read from the bucket: {}: {}", type(exc).__name__, exc)
        raise HTTPException(status, f"call {call_id}: recording {'not found' if status == 404 else 'unavailable'}"
                            ) from None

    async def body() -> AsyncIterator[bytes]:
        try:
            while chunk := await asyncio.to_thread(next, read.chunks, b""):
                yield chunk
        finally:
            read.close()

    headers = {"Content-Length": str(read.length), "Accept-Ranges": "bytes",
               "Content-Disposition": f'attachment; filename="{url.rsplit("/", 1)[-1]}"'}
    if read.content_range:
        headers["Content-Range"] = read.content_range
    return StreamingResponse(body(), status_code=206 if read.content_range else 200,
                             media_type=media_type_of(url), headers=headers)


@router.get("/telephony/calls/{call_id}", dependencies=[Depends(require_admin)])
async def live_call(call_id: CallId, request: Request) -> dict[str, Any]:
    """A live call's state, turns and context status (for operators, the simulator and tests).

    Calls never span workers: a call another worker serves is summed up by that worker, asked
    through Redis; if it does not answer in time, the answer is what it mirrors into Redis
    (carrier, language, state, turn count, last voice-to-voice, its worker) and `"partial": true`,
    in the summary's own keys (the turns and context are then in `/calls/{id}` once stored)."""
    calls = services_of(request).calls
    call = calls.get(call_id)
    if call is not None:
        return call.summary()
    elsewhere = await calls.find_elsewhere(call_id)
    if elsewhere is None:
        raise HTTPException(status_code=404, detail="no live call with this id")
    worker = elsewhere.get("worker")
    if isinstance(worker, str) and (whole := await calls.summary_elsewhere(call_id, worker)) is not None:
        return whole
    return {"call_id": call_id, "carrier": elsewhere.get("transport"), "language": elsewhere.get("language"),
            "state": elsewhere.get("state"), "turn_count": elsewhere.get("turns"),
            "last_v2v_ms": elsewhere.get("last_v2v_ms"), "worker": worker,
            "partial": True}
