"""CSRF on every form and every htmx or JSON request made with a session.

Every route of the URL configuration is POSTed to by a logged-in superuser
(who may do everything, so only the CSRF check can refuse) without a token:
each answer is 403, whether the request comes from a form, from htmx or as
JSON. Every POST form in the templates carries the token, and htmx requests
carry it in the X-CSRFToken header that base.html puts on <body>.
"""

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

from tests.security.test_access_matrix import ROUTES, _sample_path

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"


@pytest.fixture
def strict_client(superuser):
    client = Client(enforce_csrf_checks=True)
    client.force_login(superuser)
    return client


@pytest.mark.parametrize(("route", "pattern", "level"), ROUTES)
def test_it_refuses_every_post_without_a_csrf_token(strict_client, route, pattern, level):
    path = _sample_path(route, pattern)
    form = strict_client.post(path, {"name": "x", "vhost": "/"})
    htmx = strict_client.post(path, {"name": "x"}, HTTP_HX_REQUEST="true")
    as_json = strict_client.post(path, '{"message_ids": [1]}', content_type="application/json")
    for kind, response in (("form", form), ("htmx", htmx), ("json", as_json)):
        assert response.status_code == 403, f"{kind} POST {path}: {response.status_code}"


def test_it_accepts_the_same_post_with_the_token(strict_client, operator):
    """The refusals above come from the missing token, not from the route."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    page = client.get("/brokers/")
    token = client.cookies[settings.CSRF_COOKIE_NAME].value
    assert '"X-CSRFToken": "' in page.content.decode()
    response = client.post(
        "/brokers/add", {"slug": "bad slug!", "csrfmiddlewaretoken": token}, HTTP_X_CSRFTOKEN=token
    )
    assert response.status_code == 400  # the form's own verdict, past the CSRF check
    refused = client.post("/brokers/add", {"slug": "bad slug!"})
    assert refused.status_code == 403


def _post_forms(text):
    return re.findall(r"<form\b[^>]*method=\"post\"[^>]*>.*?</form>", text, re.S | re.I)


@pytest.mark.parametrize(
    "template", sorted(TEMPLATES.rglob("*.html")), ids=lambda p: str(p.relative_to(TEMPLATES))
)
def test_it_puts_the_token_in_every_post_form(template):
    text = template.read_text()
    for form in _post_forms(text):
        assert "{% csrf_token %}" in form, f"{template.name}: a POST form without csrf_token"


def test_it_finds_post_forms_to_check():
    found = sum(len(_post_forms(p.read_text())) for p in TEMPLATES.rglob("*.html"))
    assert found >= 15


def test_it_gives_htmx_the_token_on_every_page(viewer_client):
    page = viewer_client.get("/messages/").content.decode()
    token = re.search(r'<body hx-headers=\'\{"X-CSRFToken": "([^"]+)"\}\'', page)
    assert token, "base.html must give htmx the CSRF header"
    assert len(token.group(1)) >= 32


def test_it_renders_a_post_form_with_its_hidden_token(operator_client):
    page = operator_client.get("/brokers/").content.decode()
    forms = _post_forms(page)
    assert forms
    assert all('name="csrfmiddlewaretoken"' in form for form in forms)
