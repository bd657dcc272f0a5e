"""Broker passwords and API tokens are never rendered, logged or returned.

A superuser adds a broker with a distinctive password through the Brokers page
and gets an API token; then every page reachable from the navigation and from
samples of every route, and every API route, is read — with the default broker
and with the new one chosen — and each response body, and everything logged
meanwhile, is searched for either secret.
"""

import logging
import re
import uuid
from urllib.parse import urlsplit

import pytest
from django.conf import settings

from console.models import ApiToken, AuditEntry, Broker
from tests.security.test_access_matrix import ROUTES, _sample_path

MAX_PAGES = 150
SKIPPED = ("/logout/", "/static/")


def _links(html):
    for href in re.findall(r'href="([^"#]+)"', html):
        href = href.replace("&amp;", "&")
        if href.startswith("/") and not href.startswith(SKIPPED):
            yield href


def _crawl(client, start, headers=None):
    seen, bodies = set(), []
    todo = list(start)
    while todo and len(seen) < MAX_PAGES:
        path = todo.pop(0)
        key = urlsplit(path).path + "?" + urlsplit(path).query
        if key in seen:
            continue
        seen.add(key)
        response = client.get(path, **(headers or {}))
        body = b"".join(response) if response.streaming else response.content
        bodies.append((path, response.status_code, body))
        if "html" in response.get("Content-Type", ""):
            todo.extend(_links(body.decode("utf-8", "replace")))
    return bodies


@pytest.fixture
def secrets(admin_client, superuser):
    password = "Pw-" + uuid.uuid4().hex + "-never-shown"
    response = admin_client.post(
        "/brokers/add",
        {
            "name": "Second cluster",
            "slug": "second",
            "management_url": settings.WARREN_MANAGEMENT_URL,
            "amqp_url": "amqp://127.0.0.1:5672/%2F",
            "username": "guest",
            "password": password,
        },
    )
    assert response.status_code == 302, response.content[:2000]
    assert Broker.objects.get(slug="second").password == password
    token = ApiToken.issue(superuser)
    return password, token


def _routes():
    return [_sample_path(route, pattern) for route, pattern, _ in (p.values for p in ROUTES)]


def test_it_never_shows_a_password_or_token_anywhere(admin_client, secrets, caplog):
    password, token = secrets
    caplog.set_level(logging.DEBUG)
    start = ["/", *_routes(), "/brokers/second/edit"]
    bearer = {"HTTP_AUTHORIZATION": f"Bearer {token}"}
    responses = _crawl(admin_client, start)
    # The same again looking at the second broker (whose password the broker refuses).
    admin_client.get("/?broker=second")
    responses += _crawl(admin_client, start)
    api = [path for path in _routes() if path.startswith("/api/")]
    responses += _crawl(admin_client.__class__(), api, bearer)
    # A broker form sent back with a mistake does not echo the password either.
    failed = admin_client.post(
        "/brokers/add", {"name": "x", "slug": "default", "password": password + "-2"}
    )
    responses.append(("/brokers/add (invalid)", failed.status_code, failed.content))

    assert len(responses) > 60
    assert any(b"Second cluster" in body for _, _, body in responses)
    assert any(status == 200 and path.startswith("/api/") for path, status, _ in responses)
    for path, status, body in responses:
        # 502 is the JSON answer for "the broker refused" (the second broker's login).
        assert status < 500 or (status == 502 and body.startswith(b'{"error"')), f"{path}"
        for secret in (password, token, token.removeprefix("wrn_")):
            assert secret.encode() not in body, f"{path} shows a secret"
    logged = caplog.text + "".join(str(r.args) for r in caplog.records)
    assert password not in logged and token not in logged
    audited = " ".join(AuditEntry.objects.values_list("detail", flat=True))
    assert password not in audited and token not in audited
