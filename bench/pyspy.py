"""Sample a running server with py-spy (if installed) and summarize where its CPU goes.

`py-spy record --format raw` writes collapsed stacks ("frame;frame;... count"); the summary counts
each function's own samples (the leaf) and its inclusive samples (anywhere on the stack), so the
per-frame path of the telephony code and the ASGI/WebSocket stack under it can be told apart.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any


def find_pyspy() -> str | None:
    here = Path(sys.executable).parent / "py-spy"
    return str(here) if here.exists() else shutil.which("py-spy")


def start(pid: int, seconds: float, out: Path, rate: int = 250) -> subprocess.Popen | None:
    exe = find_pyspy()
    if exe is None:
        return None
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([exe, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate),
                             "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


_FRAME = re.compile(r"^(?P<func>[^ ]+) \((?P<file>[^:]+)(?::(?P<line>\d+))?\)$")


def _name(frame: str) -> str:
    m = _FRAME.match(frame.strip())
    if not m:
        return frame.strip()
    path = m.group("file")
    for marker in ("site-packages/", "/src/", "lib/python3"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{path}:{m.group('func')}"


def summarize(raw: Path, top: int = 25) -> dict[str, Any]:
    own: Counter[str] = Counter()
    incl: Counter[str] = Counter()
    total = idle = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";")]
        total += n
        leaf = frames[-1]
        if any(k in leaf for k in ("select", "epoll", "_run_once", "poll")) and "selectors" in leaf or "run_forever" in leaf:
            idle += n
        own[leaf] += n
        for f in set(frames):
            incl[f] += n
    def pct(c: Counter[str], filt: Any = None) -> list[tuple[str, float]]:
        items = [(k, v) for k, v in c.most_common() if filt is None or filt(k)]
        return [(k, round(100 * v / max(1, total), 1)) for k, v in items[:top]]
    return {"samples": total, "own_percent": pct(own),
            "inclusive_percent_sutradhar": pct(incl, lambda k: k.startswith("sutradhar/")),
            "inclusive_percent_all": pct(incl)}
