"""`sutradhar test PATH`: run an agent's scenarios through the real server and the call simulator.

PATH is an agent folder (agent.yaml + tests/*.yaml) or one scenario file. One server is started
for the run (`sutradhar serve --agent` on a free loopback port, offline engines by default) and
every scenario is one simulated call against it; the report says, per turn, what the caller said,
what the server heard, replied and called, and each expectation against what was seen.

Exit code: 0 when every scenario passed, 1 when one failed, 2 when the files are invalid or the
server could not start.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from sutradhar.agents.scenario_checks import ScenarioVerdict
from sutradhar.agents.scenario_report import render_scenario, summary, write_junit
from sutradhar.agents.scenario_run import Delivery, run_scenario, stt_languages
from sutradhar.agents.scenarios import discover, load_all
from sutradhar.agents.spec import load_agent
from sutradhar.errors import ConfigError
from sutradhar.testing.agent_server import ENGINE_CHAINS, AgentServer, ServerFailed


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sutradhar test", description=(
        "Run an agent's test scenarios, each a simulated call through the real server, and check "
        "what happened (tool calls, replies, flow state, how the call ended) against them. "
        "Exit 0: all passed; 1: one failed; 2: invalid files or the server did not start."))
    p.add_argument("path", type=Path, help="an agent folder (agent.yaml + tests/*.yaml) or a scenario file")
    p.add_argument("--engines", choices=sorted(ENGINE_CHAINS), default="offline",
                   help="offline: local Whisper, LLM and responder, Piper/espeak (default); scripted: "
                        "the responder and a tone voice, every turn typed (fast); env: the STT/LLM/TTS "
                        "chains of the environment (e.g. Sarvam)")
    p.add_argument("--typed", action="store_true",
                   help="type every turn over the browser socket instead of speaking it (skips STT)")
    p.add_argument("--junit", type=Path, default=None, metavar="FILE", help="also write JUnit XML here")
    p.add_argument("--reply-wait", type=float, default=45.0, metavar="SECONDS",
                   help="give up on an agent reply after this long (default %(default)s)")
    p.add_argument("--start-timeout", type=float, default=180.0, metavar="SECONDS",
                   help="give up on the server starting (and warming its models) after this long")
    return p


async def _run_all(server: AgentServer, scenarios: list, args: argparse.Namespace,
                   languages: frozenset[str] | None) -> list[ScenarioVerdict]:
    verdicts = []
    for scenario in scenarios:  # one call at a time: the scenarios share the server's cores
        delivery = Delivery.choose(scenario, args.engines, languages, typed=args.typed)
        verdict = await run_scenario(server, scenario, delivery, reply_wait_s=args.reply_wait)
        print(render_scenario(verdict) + "\n", flush=True)
        verdicts.append(verdict)
    return verdicts


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        agent_path, files = discover(args.path)
        agent = load_agent(agent_path)
        scenarios = load_all(files)
    except ConfigError as exc:
        print(f"sutradhar test: {exc}", file=sys.stderr)
        return 2
    print(f"agent {agent.name} ({agent_path}): {len(scenarios)} scenarios, engines {args.engines}\n",
          flush=True)
    try:
        with AgentServer(agent_path, args.engines, start_timeout_s=args.start_timeout) as server:
            languages = stt_languages(server)
            verdicts = asyncio.run(_run_all(server, scenarios, args, languages))
            if not all(v.passed for v in verdicts):
                print(f"server log (last lines):\n{server.log_tail()}\n")
    except (ServerFailed, ConfigError) as exc:
        print(f"sutradhar test: {exc}", file=sys.stderr)
        return 2
    print(summary(verdicts))
    if args.junit is not None:
        write_junit(verdicts, args.junit, suite=f"agent {agent.name}")
    return 0 if all(v.passed for v in verdicts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
