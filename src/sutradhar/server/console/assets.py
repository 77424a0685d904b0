"""The console's own script and stylesheet, served from the package (no CDN, no build step).
Open like the login page that needs them: they hold no data."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse

from sutradhar.server.console.templating import HERE

router = APIRouter()

ASSETS = {"console.js": "text/javascript", "console.css": "text/css"}


@router.get("/static/{name}")
async def asset(name: str) -> FileResponse:
    if name not in ASSETS:  # a fixed list: no path from the request ever reaches the filesystem
        raise HTTPException(404, "no such file")
    return FileResponse(HERE / "static" / name, media_type=ASSETS[name],
                        headers={"Cache-Control": "public, max-age=300", "X-Content-Type-Options": "nosniff"})
