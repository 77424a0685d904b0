"""Every telephony endpoint in one router, included by `sutradhar.server.create_app`."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request

from sutradhar.admin import require_admin
from sutradhar.telephony import browser, exotel, plivo, twilio

router = APIRouter()
for carrier in (twilio, exotel, plivo, browser):
    router.include_router(carrier.router)


@router.get("/telephony/calls/{call_id}", dependencies=[Depends(require_admin)])
async def live_call(call_id: str, request: Request) -> dict:
    """A live call's state, turns and context status (for operators, the simulator and tests)."""
    services = request.app.state.services
    session = services.calls.get(call_id)
    if session is None:
        raise HTTPException(status_code=404, detail="no live call with this id")
    return session.summary()
