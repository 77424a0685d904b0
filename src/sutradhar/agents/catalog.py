"""Which tools the agent offers: TOOLS names built-in and packaged tools, TOOL_WEBHOOKS_PATH (and
an agent file's own webhook tools) add webhook tools. Built once at start; an unknown name fails the
start, not a call."""

from __future__ import annotations

from collections.abc import Sequence

from sutradhar.agents.builtin import BUILTIN_TOOLS
from sutradhar.agents.demo_appointments import DemoAppointments, book_appointment_tool
from sutradhar.agents.demo_orders import DemoOrders, order_status_tool
from sutradhar.agents.tools import Tool, ToolBox
from sutradhar.agents.webhooks import (
    WebhookToolConfig,
    load_webhook_tools,
    webhook_tool,
)
from sutradhar.config import Settings
from sutradhar.errors import ConfigError

PACKAGED = ("order_status", "book_appointment")  # the demo backends' tools


def packaged_tool(name: str, settings: Settings) -> Tool | None:
    if name in BUILTIN_TOOLS:
        return BUILTIN_TOOLS[name]
    if name == "order_status":
        return order_status_tool(DemoOrders(settings.data_dir / "demo_orders.db"))
    if name == "book_appointment":
        return book_appointment_tool(DemoAppointments(settings.data_dir / "demo_appointments.db"))
    return None


def build_toolbox(settings: Settings, declared_webhooks: Sequence[WebhookToolConfig] = ()) -> ToolBox:
    webhooks = load_webhook_tools(settings.tool_webhooks_path) if settings.tool_webhooks_path else []
    webhooks += [webhook_tool(config) for config in declared_webhooks]
    declared = {t.name for t in webhooks}
    box = ToolBox(default_timeout_s=settings.tool_timeout_s)
    unknown = []
    for name in settings.tools:
        if name in declared:
            continue  # a webhook of the same name replaces the packaged tool (a real shop's API)
        item = packaged_tool(name, settings)
        if item is None:
            unknown.append(name)
        else:
            box.add(item)
    if unknown:
        known = sorted({*BUILTIN_TOOLS, *PACKAGED})
        raise ConfigError(f"TOOLS: unknown tool(s) {', '.join(unknown)}; packaged: {', '.join(known)} "
                          "(webhook tools come from TOOL_WEBHOOKS_PATH)")
    for item in webhooks:
        box.add(item)
    return box
