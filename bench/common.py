"""Shared helpers of the benchmark suite: percentiles, the machine description, JSON results.

Every figure the suite publishes goes through `summarize` (count, mean, p50/p95/p99, max) and is
written by `write_result` as JSON under `bench/results/`, stamped with the machine it ran on, so a
number in the README can always be traced back to the run that produced it.
"""

from __future__ import annotations

import json
import math
import os
import platform
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
REPO_DIR = BENCH_DIR.parent


class LagTicker:
    """A process's event-loop lag: how late a ticker due every `step_s` woke, in ms (the bench
    server's probe and the bench provider both keep one)."""

    def __init__(self, step_s: float = 0.010, keep: int = 500_000) -> None:
        self.step_s = step_s
        self.keep = keep
        self.lags: list[float] = []
        self._task: Any = None

    @property
    def running(self) -> bool:
        return self._task is not None

    def start(self) -> None:
        import asyncio

        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def _run(self) -> None:
        import asyncio

        step = self.step_s
        due = time.monotonic() + step
        while True:
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            now = time.monotonic()
            if len(self.lags) < self.keep:
                self.lags.append((now - due) * 1000)
            due = max(due + step, now)


def ensure_src_on_path() -> None:
    """Make `import sutradhar` work from a checkout without installing the package."""
    src = str(REPO_DIR / "src")
    if src not in sys.path:
        sys.path.insert(0, src)
    bench_parent = str(REPO_DIR)
    if bench_parent not in sys.path:
        sys.path.insert(0, bench_parent)


def summarize(values: Iterable[float | None], digits: int = 2) -> dict[str, float | int | None]:
    """count, mean, p50, p95, p99, min and max of the non-None values (None fields when empty)."""
    from sutradhar.pipeline.metrics import (
        percentile,  # the package's own, once ensure_src_on_path() ran
    )

    data = sorted(float(v) for v in values if v is not None and not math.isnan(float(v)))
    if not data:
        return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "min": None, "max": None}

    def r(x: float) -> float:
        return round(x, digits)

    return {"count": len(data), "mean": r(sum(data) / len(data)), "p50": r(percentile(data, 50)),
            "p95": r(percentile(data, 95)), "p99": r(percentile(data, 99)), "min": r(data[0]),
            "max": r(data[-1])}


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on. The load average shows how shared the machine was."""
    cpu_model = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info: dict[str, Any] = {
        "cpu_model": cpu_model,
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        info["loadavg_1m"] = round(os.getloadavg()[0], 2)
    except OSError:
        pass
    try:
        import psutil

        info["memory_gb"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    try:
        import uvloop  # noqa: F401

        info["uvloop"] = True
    except ImportError:
        info["uvloop"] = False
    return info


def git_revision() -> str | None:
    import subprocess

    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_DIR, capture_output=True,
                             text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_result(name: str, payload: dict[str, Any], out_dir: Path | None = None) -> Path:
    """Write `payload` as bench/results/<name>-<timestamp>.json and <name>-latest.json."""
    out = Path(out_dir) if out_dir else RESULTS_DIR
    out.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    doc = {"benchmark": name, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "git": git_revision(),
           "machine": machine_info(), **payload}
    text = json.dumps(doc, indent=2, ensure_ascii=False, default=_json_default)
    path = out / f"{name}-{stamp}.json"
    path.write_text(text)
    (out / f"{name}-latest.json").write_text(text)
    return path


def _json_default(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def fmt(value: Any, width: int = 8) -> str:
    if value is None:
        return "-".rjust(width)
    if isinstance(value, float):
        return f"{value:.1f}".rjust(width)
    return str(value).rjust(width)


def table(rows: list[list[Any]], header: list[str]) -> str:
    """A GitHub-flavoured Markdown table."""
    def cell(v: Any) -> str:
        if v is None:
            return "-"
        if isinstance(v, float):
            return f"{v:.1f}" if abs(v) >= 1 or v == 0 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def use_uvloop() -> bool:
    """Install uvloop's event loop policy when available (the server does the same)."""
    try:
        import uvloop
    except ImportError:
        return False
    import asyncio

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True
