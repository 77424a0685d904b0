"""The SQLite file behind a demo backend (agents/demo_orders.py, agents/demo_appointments.py):
created with its table and seed rows on first use, never overwritten after."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any


class DemoDatabase:
    schema: str = ""  # CREATE TABLE IF NOT EXISTS ...
    seed: str = ""  # INSERT OR IGNORE ... (one row of `rows` at a time)
    rows: Sequence[Sequence[Any]] = ()

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ready = False

    def _connect(self) -> sqlite3.Connection:
        if not self._ready:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(self.path) as db:
                db.execute(self.schema)
                db.executemany(self.seed, self.rows)
            self._ready = True
        return sqlite3.connect(self.path)
