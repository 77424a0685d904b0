"""Admin HTTP API: /health, /status, /metrics, /calls, /calls/{id}.

Reads `app.state.services`. /status and /calls need `Authorization: Bearer <ADMIN_TOKEN>` when
ADMIN_TOKEN is set; /health and /metrics stay open for load balancers and Prometheus (restrict
them at the reverse proxy if they must not be public).
"""

from __future__ import annotations

import asyncio
import hmac
import time
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse, Response

from sutradhar import telemetry
from sutradhar.operations import store_of
from sutradhar.readiness import HealthMonitor
from sutradhar.shared_state import worker_id
from sutradhar.store.calls import to_datetime

router = APIRouter()
STARTED_AT = time.time()


def _services(request: Request) -> Any:
    services = getattr(request.app.state, "services", None)
    if services is None:
        raise HTTPException(503, "starting up")
    return services


def require_admin(request: Request) -> None:
    """401 unless the request carries the admin token (when one is configured)."""
    token = _services(request).settings.admin_token
    if not token:
        return
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise HTTPException(401, "admin token required", headers={"WWW-Authenticate": "Bearer"})


async def _monitor(services: Any) -> HealthMonitor:
    monitor = services.extras.get("health")
    if monitor is None:  # operations.start() was not run: check on demand from here on
        monitor = HealthMonitor(services.router, store=store_of(services),
                                interval_s=services.settings.health_interval_s,
                                timeout_s=services.settings.health_timeout_s)
        services.extras["health"] = monitor
        await monitor.start()
    if not monitor.checked.is_set():  # first probe after start: wait briefly for the first round
        try:
            async with asyncio.timeout(monitor.timeout_s + 0.5):
                await monitor.checked.wait()
        except TimeoutError:
            pass
    return monitor


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    """Liveness and readiness: 200 when calls can be served, 503 with reasons otherwise."""
    services = _services(request)
    ready, body = (await _monitor(services)).report()
    body.update(active_calls=len(services.calls), worker=worker_id(),
                uptime_s=round(time.time() - STARTED_AT, 1))
    return JSONResponse(body, status_code=200 if ready else 503)


@router.get("/status", dependencies=[Depends(require_admin)])
async def status(request: Request) -> dict[str, Any]:
    """Live calls with each orchestrator's status, cluster-wide count, aggregate latency report."""
    services = _services(request)
    calls = []
    for call_id, session in services.calls.items():
        entry: dict[str, Any] = {"call_id": call_id}
        orchestrator = getattr(session, "orchestrator", None)
        if orchestrator is not None:
            try:
                entry.update(orchestrator.get_status())
            except Exception as exc:  # noqa: BLE001 - one broken call must not hide the others
                entry["error"] = f"{type(exc).__name__}: {exc}"
        for key in ("transport", "state"):
            value = getattr(session, key, None)
            if isinstance(value, str):
                entry.setdefault(key, value)
        calls.append(entry)
    body: dict[str, Any] = {"worker": worker_id(), "active_calls": len(calls), "calls": calls}
    shared = services.extras.get("shared")
    if shared is not None and shared.shared:
        body["cluster_active_calls"] = await shared.calls.count()
        body["cluster_calls"] = await shared.calls.list()
    metrics = services.metrics
    body["metrics"] = metrics.as_dict() if hasattr(metrics, "as_dict") else {}
    body["report"] = metrics.generate_report()
    body["providers"] = services.router.provider_status()
    return body


@router.get("/metrics")
async def metrics() -> Response:
    return Response(telemetry.render(), media_type=telemetry.CONTENT_TYPE)


def _store(services: Any) -> Any:
    store = store_of(services)
    if store is None:
        raise HTTPException(503, "call records are not available (see /health)")
    return store


def _when(value: str | None, name: str) -> Any:
    try:
        return to_datetime(value)
    except ValueError:
        raise HTTPException(400, f"{name}: expected an ISO date or date-time, got {value!r}") from None


@router.get("/calls", dependencies=[Depends(require_admin)])
async def list_calls(
    request: Request,
    page: int = Query(1, ge=1),
    page_size: int = Query(50, ge=1, le=500),
    since: str | None = Query(None, description="ISO date or date-time (UTC unless offset given)"),
    until: str | None = None,
    language: str | None = None,
    status: str | None = Query(None, pattern="^(active|completed|failed)$"),
) -> dict[str, Any]:
    store = _store(_services(request))
    return await store.list_calls(page=page, page_size=page_size, since=_when(since, "since"),
                                  until=_when(until, "until"), language=language, status=status)


@router.get("/calls/{call_id}", dependencies=[Depends(require_admin)])
async def get_call(request: Request, call_id: str) -> dict[str, Any]:
    call = await _store(_services(request)).get_call(call_id)
    if call is None:
        raise HTTPException(404, f"no call {call_id}")
    return call
