"""Outbound campaigns: a list of numbers dialled under a concurrency limit, calling hours and a
do-not-call list, retried when busy or unanswered, with progress kept in the call store.

spec.py (the list and the API body), hours.py, outcomes.py (the rules), dnc.py, prompts.py (the
per-number greeting and prompt), store.py (claims and settling), runner.py (the service).
"""
