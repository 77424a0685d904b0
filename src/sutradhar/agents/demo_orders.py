"""The demo order backend: a small SQLite file under DATA_DIR, and the `order_status` tool on it.

It exists so that a fresh offline `serve` answers "where is order 4567?" from a real lookup, and
so the example agent has something to call. Replace it with a webhook tool for a real shop.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sutradhar.agents.demo_db import DemoDatabase
from sutradhar.agents.prefetch import spoken_number_rule
from sutradhar.agents.tools import Tool, tool
from sutradhar.text.spoken_numbers import spoken_number

# order_id, status, eta_days (None once delivered or cancelled), items
DEMO_ORDERS: tuple[tuple[str, str, int | None, str], ...] = (
    ("4567", "shipped", 2, "headphones"),
    ("1234", "delivered", None, "a kurta"),
    ("7890", "processing", 5, "a pressure cooker"),
    ("2468", "cancelled", None, "a phone cover"),
)
STATUSES = ("processing", "shipped", "delivered", "cancelled")
# "Order" in the four languages: with a number read out, the lookup starts with the turn.
ORDER_WORDS = ("order", "orders", "ऑर्डर", "आर्डर", "ఆర్డర్", "ઓર્ડર")


class DemoOrders(DemoDatabase):
    """The demo orders table; created and filled on first use, never overwritten after."""

    schema = ("CREATE TABLE IF NOT EXISTS orders (order_id TEXT PRIMARY KEY, "
              "status TEXT NOT NULL, eta_days INTEGER, items TEXT NOT NULL)")
    seed = "INSERT OR IGNORE INTO orders VALUES (?, ?, ?, ?)"
    rows = DEMO_ORDERS

    def _lookup(self, order_id: str) -> dict[str, Any] | None:
        db = self._connect()
        try:
            row = db.execute("SELECT order_id, status, eta_days, items FROM orders WHERE order_id = ?",
                             (order_id,)).fetchone()
        finally:
            db.close()
        if row is None:
            return None
        return {"order_id": row[0], "status": row[1], "eta_days": row[2], "items": row[3]}

    async def lookup(self, order_id: str) -> dict[str, Any] | None:
        # sqlite3 blocks; a thread keeps the event loop (and every other call) moving.
        return await asyncio.to_thread(self._lookup, order_id)


def order_status_tool(orders: DemoOrders) -> Tool:
    # A read-only lookup: safe to start before the LLM asks for it (agents/prefetch.py).
    @tool(name="order_status", timeout_s=3.0, idempotent=True,
          prefetch=spoken_number_rule("order_id", ORDER_WORDS))
    async def order_status(order_id: str) -> dict[str, Any]:
        """Look up an order by its number: its status (processing, shipped, delivered or
        cancelled), the days until delivery and the items."""
        digits = spoken_number(order_id, min_digits=1)  # "4567", "४५६७" or "four five six seven"
        found = await orders.lookup(digits) if digits else None
        if found is None:
            return {"found": False, "order_id": digits or order_id}
        return {"found": True, **found}

    return order_status
