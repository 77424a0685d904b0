"""Liveness and readiness."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

router = APIRouter()


@router.get("/health")
async def health(request: Request) -> JSONResponse:
    services = request.app.state.services
    providers = services.router.provider_status()
    down = [p for p in providers if p["breaker"] == "open"]
    body = {"status": "ok" if not down else "degraded", "active_calls": len(services.calls),
            "providers": providers}
    return JSONResponse(body, status_code=200)
