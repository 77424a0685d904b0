"""Campaign admin API (admin token): POST /campaigns, GET /campaigns[/{id}], pause and resume,
POST /do-not-call. The runner (campaigns/runner.py) is `app.state.campaigns`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request
from pydantic import BaseModel, Field, field_validator

from sutradhar.campaigns.runner import CampaignRunner
from sutradhar.campaigns.spec import CampaignSpec
from sutradhar.server.admin import require_admin
from sutradhar.telephony.numbers import e164

router = APIRouter(dependencies=[Depends(require_admin)])
CampaignId = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


def runner_of(request: Request) -> CampaignRunner:
    runner = getattr(request.app.state, "campaigns", None)
    if runner is None:
        raise HTTPException(503, "campaigns need the call store (see /health)")
    return runner


async def _campaign(runner: CampaignRunner, campaign_id: str, contacts: bool = False) -> dict[str, Any]:
    campaign = await runner.store.get(campaign_id)
    if campaign is None:
        raise HTTPException(404, f"no campaign {campaign_id}")
    if contacts:
        campaign["contacts"] = await runner.store.contacts(campaign_id)
    return campaign


@router.post("/campaigns", status_code=201)
async def create_campaign(request: Request, body: CampaignSpec) -> dict[str, Any]:
    runner = runner_of(request)
    try:
        campaign_id = await runner.create(body)
    except ValueError as exc:
        raise HTTPException(422, str(exc)) from None
    return await _campaign(runner, campaign_id)


@router.get("/campaigns")
async def list_campaigns(request: Request, limit: int = Query(50, ge=1, le=500)) -> dict[str, Any]:
    """The newest campaigns with their counts."""
    return {"campaigns": await runner_of(request).store.recent(limit)}


@router.get("/campaigns/{campaign_id}")
async def get_campaign(request: Request, campaign_id: CampaignId,
                       contacts: bool = Query(False, description="list every contact too")) -> dict[str, Any]:
    """The campaign with its contacts counted by status."""
    return await _campaign(runner_of(request), campaign_id, contacts)


@router.post("/campaigns/{campaign_id}/pause")
async def pause_campaign(request: Request, campaign_id: CampaignId) -> dict[str, Any]:
    """Dial no more numbers; the calls in progress go on and are still followed."""
    runner = runner_of(request)
    return await _moved(runner, campaign_id, await runner.pause(campaign_id), "running")


@router.post("/campaigns/{campaign_id}/resume")
async def resume_campaign(request: Request, campaign_id: CampaignId) -> dict[str, Any]:
    runner = runner_of(request)
    return await _moved(runner, campaign_id, await runner.resume(campaign_id), "paused")


async def _moved(runner: CampaignRunner, campaign_id: str, moved: bool, needed: str) -> dict[str, Any]:
    """The campaign after a pause or resume; 409 when it was not `needed` (running, paused)."""
    campaign = await _campaign(runner, campaign_id)
    if not moved:
        raise HTTPException(409, f"campaign {campaign_id} is {campaign['status']}, not {needed}")
    return campaign


class DoNotCall(BaseModel):
    numbers: list[str] = Field(min_length=1, max_length=10_000)
    reason: str | None = Field(None, max_length=255)

    @field_validator("numbers")
    @classmethod
    def _e164(cls, value: list[str]) -> list[str]:
        return [e164(n) for n in value]


@router.post("/do-not-call")
async def add_do_not_call(request: Request, body: DoNotCall) -> dict[str, Any]:
    """Numbers no campaign may dial, from now on (also checked just before each attempt)."""
    added = await runner_of(request).store.add_dnc(body.numbers, body.reason)
    return {"added": added, "numbers": len(body.numbers)}
