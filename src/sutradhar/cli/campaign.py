"""`sutradhar campaign run FILE` and `sutradhar campaign status ID`: outbound campaigns on a running
server (POST /campaigns, GET /campaigns/{id}), authenticated with ADMIN_TOKEN.

`run` reads the CSV/JSON list here (every bad row reported before anything is sent), creates the
campaign and follows it with a one-line progress bar until it completes; Ctrl-C stops following,
not the campaign (the server runs it; `status` shows it later, `pause`/`resume` steer it).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

import httpx

from sutradhar.campaigns.spec import load_contacts

BAR = 30


def _parser() -> argparse.ArgumentParser:
    server = argparse.ArgumentParser(add_help=False)
    server.add_argument("--url", default=os.environ.get("SUTRADHAR_URL", "http://127.0.0.1:8000"),
                        help="the server's base URL (default SUTRADHAR_URL or %(default)s)")
    server.add_argument("--admin-token", default=os.environ.get("ADMIN_TOKEN", ""), help="default: ADMIN_TOKEN")
    p = argparse.ArgumentParser(prog="sutradhar campaign", description="Outbound campaigns on a running server.")
    sub = p.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", parents=[server], help="create a campaign from a CSV or JSON list and follow it")
    run.add_argument("file", help="number,name,due_amount,...[,language][,timezone] (.csv or .json)")
    run.add_argument("--concurrency", type=int, default=None, help="calls at once (default CAMPAIGN_CONCURRENCY)")
    run.add_argument("--agent", default=None, metavar="FILE",
                     help="an agent.yaml whose per-language greeting and system prompt (with {variables}) "
                          "the calls use")
    run.add_argument("--name", default=None)
    run.add_argument("--carrier", default="twilio")
    run.add_argument("--language", default=None, help="for rows without one (default DEFAULT_LANGUAGE)")
    run.add_argument("--max-attempts", type=int, default=None)
    run.add_argument("--retry-delay", type=float, default=None, metavar="SECONDS")
    run.add_argument("--hours", default=None, metavar="HH:MM-HH:MM", help="calling hours (default 09:00-21:00)")
    run.add_argument("--timezone", default=None, help="for rows without one (default Asia/Kolkata)")
    run.add_argument("--detach", action="store_true", help="print the campaign id and return")
    run.add_argument("--poll", type=float, default=1.0, help=argparse.SUPPRESS)
    for action in ("status", "pause", "resume"):
        one = sub.add_parser(action, parents=[server], help=f"{action} a campaign")
        one.add_argument("campaign_id")
        if action == "status":
            one.add_argument("--json", action="store_true")
    return p


def progress_line(campaign: dict[str, Any]) -> str:
    """`[#####.....] 3/6 done  completed=2 busy=1 dialing=1 ... running`"""
    total, done = campaign["total"], campaign["done"]
    filled = BAR * done // total if total else BAR
    counts = " ".join(f"{k}={v}" for k, v in campaign["counts"].items())
    retrying = f" retrying={campaign['retrying']}" if campaign["retrying"] else ""
    return f"[{'#' * filled}{'.' * (BAR - filled)}] {done}/{total} done  {counts}{retrying}  {campaign['status']}"


def _body(args: argparse.Namespace) -> dict[str, Any]:
    contacts = load_contacts(args.file)
    body: dict[str, Any] = {"contacts": [c.model_dump(exclude_none=True) for c in contacts], "carrier": args.carrier}
    for key, value in (("name", args.name), ("concurrency", args.concurrency), ("language", args.language),
                       ("max_attempts", args.max_attempts), ("retry_delay_s", args.retry_delay),
                       ("calling_hours", args.hours), ("timezone", args.timezone)):
        if value is not None:
            body[key] = value
    if args.agent:
        from sutradhar.agents.spec import load_agent

        body["prompts"] = {code: p.model_dump(exclude_none=True) for code, p in load_agent(args.agent).prompts.items()}
    return body


def _request(client: httpx.Client, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
    response = client.request(method, path, **kwargs)
    if response.status_code >= 400:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        raise RuntimeError(f"HTTP {response.status_code}: {detail}")
    return response.json()


def follow(client: httpx.Client, campaign_id: str, poll_s: float, out: Any = None) -> dict[str, Any]:
    """Redraw the progress line until the campaign completes (or pauses with an error)."""
    out = out or sys.stdout
    while True:
        campaign = _request(client, "GET", f"/campaigns/{campaign_id}")
        print("\r" + progress_line(campaign), end="", file=out, flush=True)
        if campaign["status"] == "completed" or (campaign["status"] == "paused" and campaign["last_error"]):
            print(file=out)
            return campaign
        time.sleep(poll_s)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    headers = {"Authorization": f"Bearer {args.admin_token}"} if args.admin_token else {}
    try:
        body = _body(args) if args.action == "run" else None
    except (OSError, ValueError) as exc:
        print(f"sutradhar campaign: {exc}", file=sys.stderr)
        return 2
    try:
        with httpx.Client(base_url=args.url.rstrip("/"), headers=headers, timeout=60) as client:
            if args.action == "run":
                campaign = _request(client, "POST", "/campaigns", json=body)
                print(f"campaign {campaign['id']}: {campaign['total']} numbers", flush=True)
                if args.detach:
                    return 0
                campaign = follow(client, campaign["id"], args.poll)
                if campaign["last_error"]:
                    print(f"campaign {campaign['id']} paused: {campaign['last_error']}", file=sys.stderr)
                    return 1
                return 0
            if args.action in ("pause", "resume"):
                campaign = _request(client, "POST", f"/campaigns/{args.campaign_id}/{args.action}")
            else:
                campaign = _request(client, "GET", f"/campaigns/{args.campaign_id}")
    except httpx.HTTPError as exc:
        print(f"sutradhar campaign: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    except RuntimeError as exc:
        print(f"sutradhar campaign: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nstopped following; the campaign goes on (sutradhar campaign status ID)", file=sys.stderr)
        return 130
    if getattr(args, "json", False):
        print(json.dumps(campaign, indent=2))
    else:
        print(f"campaign {campaign['id']} {campaign.get('name') or ''}".rstrip())
        print(progress_line(campaign))
        if campaign["last_error"]:
            print(f"last error: {campaign['last_error']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
