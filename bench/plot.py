"""PNG of a load sweep: orchestration overhead (p50/p95/p99) and server CPU against N."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any


def plot_load(result: dict[str, Any], path: str | Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    levels = [r for r in result["levels"] if r["overhead_ms"]["count"]]
    n = [r["calls"] for r in levels]
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(15, 4.2))
    for q, style in (("p50", "o-"), ("p95", "s-"), ("p99", "^-")):
        ax1.plot(n, [r["overhead_ms"][q] for r in levels], style, label=f"overhead {q}")
    ax1.axhline(30, color="grey", ls="--", lw=0.8, label="target p95 at 100 calls")
    ax1.axhline(10, color="grey", ls=":", lw=0.8, label="target p95 at 1 call")
    ax1.set(xlabel="concurrent calls", ylabel="ms", title="orchestration overhead (client view)")
    ax1.legend(fontsize=8)
    ax2.plot(n, [r["cost"]["cpu_s_per_call_minute"] for r in levels], "o-", label="server CPU s / call-minute")
    ax2b = ax2.twinx()
    ax2b.plot(n, [100 * r["cost"]["server_cpu_util"] for r in levels], "s--", color="tab:red",
              label="server CPU % of one core")
    ax2.set(xlabel="concurrent calls", ylabel="CPU s per call-minute", title="server CPU")
    ax2b.set_ylabel("% of one core")
    ax2.legend(loc="upper left", fontsize=8)
    ax2b.legend(loc="lower right", fontsize=8)
    for q, style in (("p50", "o-"), ("p99", "^-")):
        ax3.plot(n, [r["pacing"]["jitter_ms"][q] for r in levels], style, label=f"frame jitter {q}")
    ax3.axhline(5, color="grey", ls="--", lw=0.8, label="target p99")
    ax3.set(xlabel="concurrent calls", ylabel="ms", title="outbound pacing jitter |gap - 20 ms|")
    ax3.legend(fontsize=8)
    for ax in (ax1, ax2, ax3):
        ax.set_xscale("log")
        ax.set_xticks(n)
        ax.set_xticklabels([str(x) for x in n], rotation=45, fontsize=8)
        ax.minorticks_off()
    machine = result.get("machine", {})
    fig.suptitle(f"Sutradhar load sweep - {machine.get('cpu_model', '')} x{machine.get('cpus', '?')} "
                 f"(shared machine), scripted engines, Twilio over loopback", fontsize=10)
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print("usage: sutradhar bench plot [RESULT.json [OUT.png]]  (default bench/results/load-latest.json)")
        return 0
    src = Path(argv[0]) if argv else Path(__file__).parent / "results" / "load-latest.json"
    out = Path(argv[1]) if len(argv) > 1 else src.parent / "load.png"
    print(plot_load(json.loads(src.read_text()), out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
