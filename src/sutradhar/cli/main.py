"""The `sutradhar` command: serve, call (the call simulator), dial (an outbound call), campaign
(outbound campaigns), bench, calls (call records), test (an agent's scenarios)."""

from __future__ import annotations

import argparse
import runpy
import sys
from pathlib import Path

from sutradhar.config import ConfigError, load_settings


def _serve(args: argparse.Namespace) -> int:
    from sutradhar.ops.logs import setup_logging
    from sutradhar.server.runner import serve
    from sutradhar.server.workers import Supervisor, default_workers

    overrides = {k: v for k, v in (("host", args.host), ("port", args.port), ("workers", args.workers),
                                   ("agent_path", args.agent)) if v is not None}
    try:
        settings = load_settings(**overrides)
        if settings.agent_path:
            from sutradhar.agents.spec import load_agent

            load_agent(settings.agent_path)  # every problem of the file now, not in each worker
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    setup_logging(settings)
    count = settings.workers or default_workers()
    if count > 1:
        return Supervisor(settings, count, overrides).run()
    serve(settings)
    return 0


def _delegate(module: str, argv: list[str]) -> int:
    import importlib

    return int(importlib.import_module(module).main(argv) or 0)


def _bench(argv: list[str]) -> int:
    # The benchmark suite lives in the repository's bench/ folder, next to the package sources.
    for base in (Path.cwd(), Path(__file__).resolve().parents[3]):
        script = base / "bench" / "run.py"
        if script.exists():
            sys.argv = [str(script), *argv]
            runpy.run_path(str(script), run_name="__main__")
            return 0
    print("sutradhar bench: bench/run.py not found (run from a checkout of the repository)", file=sys.stderr)
    return 2


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="sutradhar", description="Real-time voice-agent orchestrator.")
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the HTTP/WebSocket server (configuration from env/.env)")
    serve.add_argument("--host", default=None)
    serve.add_argument("--port", type=int, default=None)
    serve.add_argument("--workers", type=int, default=None,
                       help="server processes sharing the port (default: WORKERS, 0 = one per core)")
    serve.add_argument("--agent", default=None, metavar="FILE",
                       help="an agent.yaml: its languages, prompts and tools (default: AGENT_PATH)")
    sub.add_parser("call", help="simulate a phone call against a running server", add_help=False)
    sub.add_parser("bench", help="run the benchmark suite", add_help=False)
    sub.add_parser("calls", help="list and show stored call records", add_help=False)
    sub.add_parser("dial", help="place an outbound call from a running server", add_help=False)
    sub.add_parser("test", help="run an agent's test scenarios through the real server", add_help=False)
    sub.add_parser("campaign", help="run an outbound campaign from a CSV/JSON list, or show one",
                   add_help=False)
    if argv and argv[0] in ("call", "bench", "calls", "dial", "campaign", "test"):
        command, rest = argv[0], argv[1:]
        if command == "call":
            return _delegate("sutradhar.testing.simulator", rest)
        if command == "dial":
            return _delegate("sutradhar.cli.dial", rest)
        if command == "campaign":
            return _delegate("sutradhar.cli.campaign", rest)
        if command == "calls":
            return _delegate("sutradhar.cli.calls", rest)
        if command == "test":
            return _delegate("sutradhar.cli.agent_test", rest)
        return _bench(rest)
    args = parser.parse_args(argv)
    return _serve(args)


if __name__ == "__main__":
    raise SystemExit(main())
