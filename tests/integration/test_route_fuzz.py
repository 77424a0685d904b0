"""Every HTTP route fuzzed from the app's own OpenAPI schema (schemathesis): values that fit the
declared types and bounds and values that break them, in the query, the path and the form bodies
of the carriers' webhooks (their fields are declared, so they are in the schema), sent to the real
server on a loopback port. Whatever comes in, the answer is never a 5xx.

A second pass puts hostile values (unicode digits, 20-digit integers, 5,000-digit strings, 20 KB
ids) into every declared field one at a time: random text rarely draws the values that broke us.
The schema is read from the app itself, so a new route is fuzzed as soon as it exists.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from sutradhar.server.app import create_app
from tests.support.server import live_server, make_settings

APP = create_app(make_settings())
SCHEMA = schemathesis.openapi.from_dict(APP.openapi())
SCHEMA.config.generation.update(modes=[GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
EXAMPLES = 150  # per operation: 13 operations in about 20 s on the shared 2-core box


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    # A real call store (SQLite) under a temporary DATA_DIR, so /calls pages reach the database.
    with live_server(data_dir=tmp_path_factory.mktemp("fuzz")) as srv:
        yield srv


def test_the_carrier_webhooks_declare_their_form_fields() -> None:
    """Undeclared, a form field is read from `request.form()` unchecked, and never fuzzed."""
    spec = APP.openapi()
    for path, fields in {"/twilio/voice": {"CallSid"}, "/twilio/language": {"CallSid", "Digits"},
                         "/plivo/answer": {"CallUUID", "language"}}.items():
        body = spec["paths"][path]["post"]["requestBody"]["content"]["application/x-www-form-urlencoded"]
        name = body["schema"]["$ref"].rsplit("/", 1)[1]
        assert fields <= set(spec["components"]["schemas"][name]["properties"]), path


@SCHEMA.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_no_input_gets_a_server_error(case, server) -> None:
    response = case.call(base_url=server.url, timeout=15)
    assert response.status_code < 500, (
        f"{case.method} {case.formatted_path} query={case.query} body={case.body!r:.300} -> "
        f"{response.status_code} {response.text[:300]}")


# --- every declared field, one at a time, with the values that broke us before ---------------
# Random text rarely hits these, so they are drawn on purpose: digits that str.isdigit() accepts and
# int() refuses, integers past a 64-bit column, digit strings past int()'s 4300-digit limit, and
# ids far over 128 characters.
HOSTILE = st.one_of(
    st.text(st.characters(categories=("Nd", "No", "Nl")), min_size=1, max_size=6),
    st.integers(min_value=2**63 - 1).map(str),
    st.integers(min_value=4300, max_value=6000).map(lambda n: "1" * n),
    st.integers(min_value=129, max_value=20_000).map(lambda n: "C" * n),
)


def declared_fields() -> list[tuple[str, str, str, str]]:
    """(method, path, where, name) for every query, path and form field in the schema."""
    spec = APP.openapi()
    fields = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                fields.append((method.upper(), path, parameter["in"], parameter["name"]))
            form = operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded")
            if form:
                body = spec["components"]["schemas"][form["schema"]["$ref"].rsplit("/", 1)[1]]
                fields += [(method.upper(), path, "form", name) for name in body["properties"]]
    return fields


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=15) as client:
        yield client


@pytest.mark.parametrize("method,path,where,name", declared_fields(), ids=lambda v: str(v))
@given(value=HOSTILE)
@settings(max_examples=25, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
def test_no_hostile_value_in_any_field_gets_a_server_error(http, method, path, where, name, value) -> None:
    request: dict = {"params": {name: value}} if where == "query" else {}
    if where == "form":
        request = {"data": {name: value}}
    url = path.replace(f"{{{name}}}", quote(value, safe="")) if where == "path" else path
    url = re.sub(r"\{[^}]+\}", "CA1", url)  # any other path parameter: an ordinary id
    response = http.request(method, url, **request)
    assert response.status_code < 500, f"{method} {path} {where}.{name}={value!r:.80} -> {response.status_code}"
