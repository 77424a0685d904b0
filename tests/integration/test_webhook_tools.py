"""Webhook tools declared in YAML, against a loopback HTTP server: the request the LLM's arguments
become, headers from the environment, error statuses and timeouts, and every config error at once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from sutradhar.agents.runs import run_tool_call
from sutradhar.agents.tools import ToolBox, ToolContext
from sutradhar.agents.webhooks import load_webhook_tools
from sutradhar.engines.base import ToolCall
from sutradhar.errors import ConfigError


class Shop:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.release = asyncio.Event()
        self.port = 0

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json() if request.can_read_body else None
        self.requests.append({"method": request.method, "path": request.path, "query": dict(request.query),
                              "headers": dict(request.headers), "json": body})
        if request.path == "/down":
            return web.json_response({"detail": "maintenance"}, status=503)
        if request.path == "/slow":
            await self.release.wait()
        return web.json_response({"status": "shipped", "echo": body or dict(request.query)})


@pytest.fixture
async def shop() -> AsyncIterator[Shop]:
    shop = Shop()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", shop.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    shop.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield shop
    shop.release.set()
    await runner.cleanup()


def write_tools(tmp_path, shop: Shop) -> str:
    base = f"http://127.0.0.1:{shop.port}"
    path = tmp_path / "tools.yaml"
    path.write_text(f"""
tools:
  - name: order_status
    description: Look up an order.
    url: {base}/orders
    headers: {{Authorization: "Bearer ${{SHOP_TOKEN}}"}}
    parameters:
      type: object
      properties: {{order_id: {{type: string}}, pin: {{type: string}}}}
      required: [order_id]
  - name: stock
    description: Check stock.
    url: {base}/stock
    method: GET
  - name: broken
    description: Always down.
    url: {base}/down
  - name: slow
    description: Too slow.
    url: {base}/slow
    timeout_s: 1  # /slow never answers; 100 ms could end before a loaded machine had sent the request
""", encoding="utf-8")
    return str(path)


async def test_webhook_tools_send_the_arguments_and_return_the_response(tmp_path, shop: Shop) -> None:
    box = ToolBox(load_webhook_tools(write_tools(tmp_path, shop), env={"SHOP_TOKEN": "tok-123"}))
    context = ToolContext("call-7", "hi-IN")
    posted = await run_tool_call(box, ToolCall("1", "order_status", '{"order_id": "4567", "pin": "99"}'), context)
    got = await run_tool_call(box, ToolCall("2", "stock", '{"sku": "A1"}'), context)
    assert json.loads(posted.content) == {"status": "shipped", "echo": {"order_id": "4567", "pin": "99"}}
    assert posted.record["arguments"] == {"order_id": "4567", "pin": "***"}
    first, second = shop.requests
    assert first["method"] == "POST" and first["headers"]["Authorization"] == "Bearer tok-123"
    assert first["headers"]["X-Sutradhar-Call-Id"] == "call-7"
    assert second["method"] == "GET" and second["query"] == {"sku": "A1"}
    assert json.loads(got.content)["echo"] == {"sku": "A1"}
    await box.aclose()


async def test_webhook_errors_and_timeouts_are_tool_errors(tmp_path, shop: Shop) -> None:
    box = ToolBox(load_webhook_tools(write_tools(tmp_path, shop), env={"SHOP_TOKEN": "t"}))
    context = ToolContext("c", "en-IN")
    down = await run_tool_call(box, ToolCall("1", "broken", "{}"), context)
    slow = await run_tool_call(box, ToolCall("2", "slow", "{}"), context)
    missing = await run_tool_call(box, ToolCall("3", "order_status", "{}"), context)
    assert down.error == "WebhookFailed: broken answered HTTP 503"
    assert slow.error == "timeout"
    assert missing.error is not None and "order_id" in missing.error
    assert [r["path"] for r in shop.requests] == ["/down", "/slow"]  # nothing sent without order_id
    await box.aclose()


def test_every_config_error_is_reported_at_once(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("""
tools:
  - name: "has spaces"
    description: x
    url: http://127.0.0.1/x
  - name: ok
    description: y
    url: ftp://nope
    method: DELETE
  - name: env
    description: z
    url: http://127.0.0.1/z
    headers: {X-Key: "${NOT_SET_ANYWHERE}"}
""", encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_webhook_tools(path, env={})
    message = str(caught.value)
    assert "tools[0].name" in message and "tools[1].url" in message and "tools[1].method" in message
    assert "NOT_SET_ANYWHERE" in message
