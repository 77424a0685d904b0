"""Plivo's request signature, version 3: `X-Plivo-Signature-V3` over the URL, the parameters and
`X-Plivo-Signature-V3-Nonce`, HMAC-SHA256 with the account's auth token, base64.

What is signed (as Plivo's SDKs compute it, `plivo.utils.signature_v3`):
- GET: the URL without its query, then `?` and the query's parameters sorted by name (`k=v&k=v`).
- POST: the URL with its query sorted the same way, `?` before it; when there is both a query
  and a form, a `.` after it; then the form's fields sorted by name as `namevalue` with nothing
  between them.
then `.` and the nonce. The header may carry several signatures, comma-separated (a token being
rotated): any one of them matching is enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping, Sequence
from urllib.parse import parse_qs, urlsplit, urlunsplit

Params = Mapping[str, str | Sequence[str]]


def _values(value: str | Sequence[str]) -> list[str]:
    return [value] if isinstance(value, str) else sorted(value)


def _query(params: Params) -> str:
    return "&".join(f"{key}={v}" for key in sorted(params) for v in _values(params[key]))


def _form(params: Params) -> str:
    return "".join(f"{key}{v}" for key in sorted(params) for v in _values(params[key]))


def signed_text(method: str, url: str, params: Params, nonce: str) -> str:
    parts = urlsplit(url)
    base = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    in_url = parse_qs(parts.query, keep_blank_values=True)
    if method.upper() == "GET":
        # The URL's query wins over a same-named parameter (as Plivo's SDK merges them).
        query = _query({**{k: _values(v) for k, v in params.items()}, **in_url})
        text = f"{base}?{query}" if query else base
    else:
        query = _query(in_url)
        text = base + (f"?{query}" if query or params else "") + ("." if query and params else "")
        text += _form(params)
    return f"{text}.{nonce}"


def signature_v3(auth_token: str, method: str, url: str, params: Params, nonce: str) -> str:
    # Plivo's SDK turns the URL's UTF-8 bytes into characters one byte each before signing;
    # the same here, so a non-ASCII value signs identically.
    text = signed_text(method, url, params, nonce).encode().decode("latin-1")
    digest = hmac.new(auth_token.encode(), text.encode(), hashlib.sha256).digest()
    return base64.b64encode(digest).decode()


def valid_v3(auth_token: str, method: str, url: str, params: Params, nonce: str | None,
             header: str | None) -> bool:
    if not nonce or not header:
        return False
    expected = signature_v3(auth_token, method, url, params, nonce).encode()
    return any(hmac.compare_digest(expected, given.strip().encode()) for given in header.split(","))
