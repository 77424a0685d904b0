"""`sutradhar calls`: list, show and purge stored call records.

    sutradhar calls [list] [--since 2025-03-01] [--until ...] [--language hi-IN] [--status failed]
                           [--page 2] [--page-size 50] [--json]
    sutradhar calls show CALL_ID [--json]
    sutradhar calls purge --older-than DAYS

Reads DATABASE_URL (or the SQLite file under DATA_DIR) like the server does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import Any

from sutradhar.config import ConfigError, load_settings
from sutradhar.store import CallStore
from sutradhar.store.calls import MAX_PAGE, MAX_PAGE_SIZE
from sutradhar.store.recording_bucket import bucket_from_settings
from sutradhar.store.recording_files import recordings_dir


def _bounded(low: int, high: int) -> Callable[[str], int]:
    """An argparse type: an integer in [low, high], else a usage error (not an overflow later)."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r:.40}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be between {low} and {high}")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sutradhar calls", description="Stored call records.")
    sub = parser.add_subparsers(dest="action")
    listing = sub.add_parser("list", help="list calls, newest first (the default)")
    for p in (parser, listing):
        p.add_argument("--since", help="ISO date or date-time; calls that started at or after it")
        p.add_argument("--until", help="ISO date or date-time; calls that started before it")
        p.add_argument("--language", help="e.g. hi-IN")
        p.add_argument("--status", choices=("active", "completed", "failed"))
        p.add_argument("--page", type=_bounded(1, MAX_PAGE), default=1)
        p.add_argument("--page-size", type=_bounded(1, MAX_PAGE_SIZE), default=50)
        p.add_argument("--json", action="store_true", help="print JSON")
    show = sub.add_parser("show", help="one call with every turn")
    show.add_argument("call_id")
    show.add_argument("--json", action="store_true", help="print JSON")
    purge = sub.add_parser("purge", help="delete calls older than N days")
    purge.add_argument("--older-than", type=float, required=True, metavar="DAYS")
    purge.add_argument("--json", action="store_true", help="print JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["calls"]:
        argv = argv[1:]
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        bucket = bucket_from_settings(settings)  # the purge deletes uploaded recordings too
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        return asyncio.run(_run(args, CallStore(settings.database, recordings=recordings_dir(settings.data_dir),
                                                 bucket=bucket)))
    except ValueError as exc:
        print(f"sutradhar calls: {exc}", file=sys.stderr)
        return 2


async def _run(args: argparse.Namespace, store: CallStore) -> int:
    await store.start()
    try:
        if args.action == "show":
            call = await store.get_call(args.call_id)
            if call is None:
                print(f"no call {args.call_id}", file=sys.stderr)
                return 1
            print(json.dumps(call, indent=2, ensure_ascii=False) if args.json else _call_text(call))
        elif args.action == "purge":
            removed = await store.delete_older_than(args.older_than)
            print(json.dumps({"deleted": removed}) if args.json else
                  f"deleted {removed} calls older than {args.older_than:g} days")
        else:
            page = await store.list_calls(page=args.page, page_size=args.page_size, since=args.since,
                                          until=args.until, language=args.language,
                                          status=args.status)
            print(json.dumps(page, indent=2, ensure_ascii=False) if args.json else _table(page))
        return 0
    finally:
        await store.aclose()


def _table(page: dict[str, Any]) -> str:
    header = f"{'CALL':<36} {'STARTED (UTC)':<19} {'SECS':>6} {'LANG':<6} {'STATUS':<9} {'TURNS':>5} " \
             f"{'VIA':<8} FROM"
    rows = [header]
    for c in page["calls"]:
        started = (c["started_at"] or "")[:19].replace("T", " ")
        secs = f"{c['duration_s']:.0f}" if c["duration_s"] is not None else "-"
        rows.append(f"{c['call_id'][:36]:<36} {started:<19} {secs:>6} {c['language'] or '-':<6} "
                    f"{c['status']:<9} {c['turn_count']:>5} {c['transport'] or '-':<8} "
                    f"{c['from_number'] or '-'}")
    last = (page["page"] - 1) * page["page_size"] + len(page["calls"])
    rows.append(f"{len(page['calls'])} shown ({last} of {page['total']}), page {page['page']}")
    return "\n".join(rows)


def _call_text(call: dict[str, Any]) -> str:
    lines = [
        f"call {call['call_id']}  {call['status']}"
        + (f" ({call['end_reason']})" if call["end_reason"] else ""),
        f"  via {call['transport'] or '-'}  from {call['from_number'] or '-'}  to "
        f"{call['to_number'] or '-'}  carrier id {call['carrier_call_id'] or '-'}",
        f"  started {call['started_at']}  ended {call['ended_at'] or '-'}  "
        f"language {call['language'] or '-'}  turns {call['turn_count']}",
    ]
    if call.get("summary"):
        lines.append(f"  summary {json.dumps(call['summary'], ensure_ascii=False)}")
    for t in call["turns"]:
        timing = t["timings"]
        v2v = f"{timing['v2v_ms']:.0f} ms" if timing.get("v2v_ms") is not None else "-"
        lang = t["language"] or "-"
        if t["switched_to"]:
            lang += f" -> {t['switched_to']}"
        lines.append(f"  #{t['seq']} [{lang}] v2v {v2v}  stt {timing.get('stt_ms')}  "
                     f"llm ttft {timing.get('llm_ttft_ms')}  tts ttfb {timing.get('tts_ttfb_ms')}  "
                     f"via {t['providers']['stt']}/{t['providers']['llm']}/{t['providers']['tts']}")
        lines.append(f"     caller: {t['text'] or ''}")
        lines.append(f"     agent:  {t['reply'] or ''}")
        if t["interrupted"]:
            lines.append(f"     heard:  {t['heard'] or ''}  (interrupted)")
        for e in t["errors"]:
            lines.append(f"     error:  {e.get('stage')} {e.get('provider')} {e.get('kind')}: "
                         f"{e.get('message')}")
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
