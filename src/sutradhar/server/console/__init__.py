"""The operator console at /console: live calls, call history with per-turn latency waterfalls,
provider health and latency at a glance. Server-rendered Jinja2 pages, one small script for the
live list (server-sent events), behind the admin token (see `auth`)."""

from __future__ import annotations

from fastapi import APIRouter

from sutradhar.server.console import assets, live, login, pages
from sutradhar.server.console.auth import COOKIE_PATH

router = APIRouter(include_in_schema=False)
for part in (assets, login, live, pages):
    router.include_router(part.router, prefix=COOKIE_PATH)

__all__ = ["router"]
