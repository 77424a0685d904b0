"""The HTTP error answers: a bug in a route is one log line and a JSON 500 (never a stack trace on
the wire), and a 422 names the broken field without echoing what was sent."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI, Query
from loguru import logger

from sutradhar.server import http_errors


def app_with_bugs() -> FastAPI:
    app = FastAPI()
    http_errors.install(app)

    @app.get("/boom")
    async def boom() -> dict:
        return {"ratio": 1 / 0}

    @app.get("/bounded")
    async def bounded(name: str = Query(max_length=8)) -> dict:
        return {"name": name}

    return app


@pytest.fixture
def errors():
    records: list[dict] = []
    sink = logger.add(lambda message: records.append(message.record), level="ERROR")
    yield records
    logger.remove(sink)


async def test_an_exception_in_a_route_is_one_logged_line_and_a_json_500(errors):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app_with_bugs()), base_url="http://t") as c:
        response = await c.get("/boom")
        assert (await c.get("/bounded", params={"name": "ok"})).status_code == 200  # still serving
    assert response.status_code == 500 and response.json() == {"detail": "internal server error"}
    assert "Traceback" not in response.text and "ZeroDivisionError" not in response.text
    [record] = errors
    # (other tests may have set up logging, which adds its own defaults to every record)
    assert {"call_id": "-", "stage": "http"}.items() <= record["extra"].items()
    assert "\n" not in record["message"] and record["exception"] is None
    assert record["message"].startswith("GET /boom failed with a 500: ZeroDivisionError")
    assert "test_http_errors.py:" in record["message"]  # where, without a traceback


async def test_a_422_names_the_field_and_does_not_echo_the_input(errors):
    sent = "y" * 10_000
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app_with_bugs()), base_url="http://t") as c:
        response = await c.get("/bounded", params={"name": sent})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["query", "name"] and error["type"] == "string_too_long"
    assert sent[:20] not in response.text
    assert errors == []  # bad input is the caller's problem, not an error of ours
