"""Every parameter of every JSON API operation fuzzed, from the project's OpenAPI schema.

docs/openapi.json describes the JSON API (docs/architecture.md, JSON API). For each operation,
hypothesis draws query parameters (valid, out of range, malformed, repeated,
unknown, hostile text), path ids (zero to absurdly large) and request bodies
(near-valid objects with wrongly typed fields, any JSON, not JSON at all) and
sends them in-process through the Django application with an operator's
bearer token. Every answer is below 500, and every 4xx is {"error": words}.
The schema is checked against the URL configuration, so an API route added
without being described fails here.
"""

import base64
import json
import re
from pathlib import Path

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from console.models import ApiToken
from tests.replay.helpers import capture
from tests.security.test_access_matrix import ROUTES

SCHEMA = json.loads((Path(__file__).resolve().parents[2] / "docs" / "openapi.json").read_text())
FUZZ = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

OPERATIONS = [
    (path, method, operation)
    for path, methods in SCHEMA["paths"].items()
    for method, operation in methods.items()
]

# --- values ------------------------------------------------------------------------

TRICKY = [
    "",
    " ",
    "\x00",
    "%00",
    "a\x00b",
    "-1",
    "0",
    "1e309",
    "-1e309",
    "nan",
    "inf",
    "9" * 40,
    "2024-13-45T99:99:99Z",
    "0001-01-01T00:00:00Z",
    "0001-01-01T00:00:00.000001Z",
    "0001-01-01",
    "0001-01-01T00:00:00+01:00",
    "9999-12-31T23:59:59.999999+14:00",
    "9999-12-31T23:59:59.999999-14:00",
    "15m",
    "99999999999999d",
    "1e6d",
    "P1D",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "x" * 1001,
    "\u202e\U0001f600",
    "amq.default",
]
hostile_text = st.one_of(st.sampled_from(TRICKY), st.text(max_size=40))
huge_ints = st.one_of(st.integers(-(2**70), 2**70), st.sampled_from([2**63 - 1, 2**63, 2**64]))


def _b64(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _cursor_like():
    edges = ["9" * 30 + ":1", "-" + "9" * 30 + ":1", "1:" + "9" * 30, "1:-1", ":", "1:2:3"]
    return st.one_of(
        st.sampled_from([_b64(edge) for edge in edges]),
        st.builds(lambda a, b: _b64(f"{a}:{b}"), huge_ints, huge_ints),
    )


def _value_for(schema, name):
    choices = [hostile_text, huge_ints.map(str), st.floats().map(str)]
    if "enum" in schema:
        choices.append(st.sampled_from(schema["enum"]))
    if schema.get("type") in ("integer", "number"):
        low, high = schema.get("minimum", -(10**6)), schema.get("maximum", 10**6)
        choices.append(st.integers(int(low), int(min(high, 2**63))).map(str))
    if name == "cursor":
        return st.one_of(_cursor_like(), *choices)
    return st.one_of(*choices)


def _query(operation):
    params = [p for p in operation.get("parameters", []) if p["in"] == "query"]
    if not params:
        return st.just([])
    pairs = [
        st.lists(st.tuples(st.just(p["name"]), _value_for(p["schema"], p["name"])), max_size=2)
        for p in params
    ]
    strays = st.tuples(st.sampled_from(["zzz", "LIMIT", "q[]"]), hostile_text)
    unknown = st.lists(strays, max_size=1)
    return st.tuples(*pairs, unknown).map(lambda lists: [pair for each in lists for pair in each])


def _path(template):
    names = re.findall(r"{(\w+)}", template)
    if not names:
        return st.just(template)
    return st.fixed_dictionaries({name: st.integers(0, 10**25) for name in names}).map(
        lambda ids: template.format(**ids)
    )


json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        huge_ints,
        st.floats(allow_nan=False),
        hostile_text,
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)


def _body(operation, known_ids):
    request = operation.get("requestBody")
    if request is None:
        return st.just(None)
    schema = request["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = SCHEMA["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    fields = schema.get("properties", {})
    field_values = {
        name: st.one_of(
            json_values,
            st.lists(st.one_of(st.sampled_from(known_ids), huge_ints), min_size=1, max_size=3),
            st.sampled_from(field.get("enum", [True, False, "x"])),
        )
        for name, field in fields.items()
    }
    near_valid = st.fixed_dictionaries({}, optional=field_values).map(json.dumps)
    return st.one_of(
        near_valid,
        json_values.map(json.dumps),
        st.binary(max_size=60).map(lambda b: b.decode("latin-1")),
        st.just(""),
    )


# Queries that once answered 500, tried first on every run: {path: [query, ...]}.
FAILED_BEFORE = {
    # The statistics' default day before an 'until' in year 1 (PostgreSQL and SQLite).
    "/api/flows/stats": [
        [("until", "0001-01-01T00:00:00Z")],
        [("until", "0001-01-01T00:00:00.000001Z")],
        [("until", "0001-01-01")],
        [("since", "9999-12-31T23:59:59.999999-14:00")],
    ],
    # A time past the year 9999 once in UTC (SQLite).
    "/api/messages": [[("until", "9999-12-31T23:59:59.999999-14:00")]],
    "/api/flows": [[("since", "9999-12-31T23:59:59.999999-14:00")]],
}


# --- the test ------------------------------------------------------------------------


def test_it_describes_every_json_route():
    described = {path for path, _, _ in OPERATIONS}
    for param in ROUTES:
        route, pattern, _ = param.values
        if getattr(pattern.callback, "warren_kind", None) != "api":
            continue
        as_openapi = "/" + re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", route)
        assert as_openapi in described, f"/{route} is missing from docs/openapi.json"


@pytest.fixture
def api_client(operator, settings):
    settings.WARREN_REPLAY_QUEUE = "warren-fuzz-never-consumed"
    return Client(HTTP_AUTHORIZATION=f"Bearer {ApiToken.issue(operator)}")


@pytest.fixture
def known_ids(db):
    return [capture("fuzz", body=b'{"n": 1}', props={"reply_to": "r"}).id for _ in range(3)]


def _cases():
    """Each operation once with everything fuzzed together, and once per query
    parameter fuzzed alone (so that a check deep in the list is reached too)."""
    for path, method, operation in OPERATIONS:
        name = f"{method.upper()} {path}"
        yield pytest.param(path, method, operation, None, id=name)
        for param in operation.get("parameters", []):
            if param["in"] == "query":
                yield pytest.param(path, method, operation, param, id=f"{name} ?{param['name']}")


def _alone(param):
    value = _value_for(param["schema"], param["name"])
    return st.lists(st.tuples(st.just(param["name"]), value), min_size=1, max_size=2)


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "method", "operation", "param"), list(_cases()))
def test_it_answers_fuzzed_input_with_a_4xx_in_words_never_a_5xx(
    api_client, known_ids, path, method, operation, param
):
    query = _query(operation) if param is None else _alone(param)

    @FUZZ
    @given(path=_path(path), query=query, body=_body(operation, known_ids))
    def fuzz(path, query, body):
        from urllib.parse import urlencode

        url = path + ("?" + urlencode(query) if query else "")
        if method == "get":
            response = api_client.get(url)
        else:
            response = api_client.post(
                url, body if body is not None else "", content_type="application/json"
            )
        assert response.status_code < 500, f"{method.upper()} {url} {body!r}: 5xx"
        if response.status_code >= 400:
            data = response.json()
            assert isinstance(data.get("error"), str) and data["error"], (url, data)

    for failed in FAILED_BEFORE.get(path, []):
        if param is None or param["name"] in {name for name, _ in failed}:
            fuzz = example(path=path, query=failed, body=None)(fuzz)
    fuzz()
