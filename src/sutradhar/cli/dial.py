"""`sutradhar dial NUMBER [--language hi-IN]`: ask a running server to place an outbound call.

The server places it (it must take the call's media stream), so this is a thin client of
`POST /calls/outbound`, authenticated with ADMIN_TOKEN (from the environment or --admin-token).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx

from sutradhar.telephony.numbers import e164


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="sutradhar dial", description="Place an outbound call from a running server.")
    p.add_argument("number", help="the number to dial, E.164: +919876543210")
    p.add_argument("--language", default=None, help="the call's language, e.g. hi-IN (default DEFAULT_LANGUAGE)")
    p.add_argument("--carrier", default="twilio", help="carrier to place it on (default %(default)s)")
    p.add_argument("--url", default=os.environ.get("SUTRADHAR_URL", "http://127.0.0.1:8000"),
                   help="the server's base URL (default SUTRADHAR_URL or %(default)s)")
    p.add_argument("--admin-token", default=os.environ.get("ADMIN_TOKEN", ""), help="default: ADMIN_TOKEN")
    p.add_argument("--json", action="store_true", help="print the server's answer as JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        number = e164(args.number)
    except ValueError as exc:
        print(f"sutradhar dial: {exc}", file=sys.stderr)
        return 2
    headers = {"Authorization": f"Bearer {args.admin_token}"} if args.admin_token else {}
    body = {"to": number, "carrier": args.carrier, **({"language": args.language} if args.language else {})}
    try:
        response = httpx.post(f"{args.url.rstrip('/')}/calls/outbound", json=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        print(f"sutradhar dial: cannot reach {args.url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 201:
        try:
            detail = response.json().get("detail", response.text)
        except ValueError:
            detail = response.text
        print(f"sutradhar dial: HTTP {response.status_code}: {detail}", file=sys.stderr)
        return 1
    call = response.json()
    print(json.dumps(call, indent=2) if args.json else
          f"calling {call['to']} from {call['from']} on {call['carrier']} language={call['language']}: "
          f"call {call['call_id']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
