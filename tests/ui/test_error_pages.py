"""403, 404 and 500: Warren's own pages with the navigation, a sentence and a way back."""

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse

from console.views import errors


@pytest.fixture(autouse=True)
def _debug_off(settings):
    settings.DEBUG = False


def test_it_answers_an_unknown_address_with_a_styled_404(viewer_client):
    response = viewer_client.get("/no-such-page/")
    html = response.content.decode()
    assert response.status_code == 404
    assert '<h1 id="error-title">Page not found</h1>' in html
    assert "/no-such-page/" in html
    assert 'aria-label="Main"' in html and ">Queues</a>" in html
    assert "Back to the overview" in html


def test_it_offers_the_login_to_an_anonymous_404(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    assert "Page not found" in response.content.decode()
    assert ">Log in</a>" in response.content.decode()


def test_it_answers_a_missing_role_with_a_styled_403(viewer_client):
    response = viewer_client.post(reverse("queue_purge", args=["/", "any-queue"]))
    html = response.content.decode()
    assert response.status_code == 403
    assert "Not allowed" in html and "operator role" in html
    assert ">Queues</a>" in html and "Back to the overview" in html


def test_it_answers_a_stale_form_with_a_styled_403(viewer):
    client = Client(enforce_csrf_checks=True)
    client.force_login(viewer)
    response = client.post("/logout/")
    html = response.content.decode()
    assert response.status_code == 403
    assert "security token" in html and "Nothing was changed" in html
    assert ">Queues</a>" in html


@pytest.mark.urls("tests.ui.error_urls")
def test_it_answers_a_failing_view_with_a_styled_500(viewer):
    client = Client(raise_request_exception=False)
    client.force_login(viewer)
    response = client.get("/fail/")
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in html
    assert ">Queues</a>" in html and "Back to the overview" in html
    assert "RuntimeError" not in html


def test_it_draws_the_500_page_without_the_database():
    # No `db` fixture: pytest-django refuses any query here, so a page that
    # needed the database (session, user, brokers) would raise instead.
    response = errors.server_error(RequestFactory().get("/queues/"))
    html = response.content.decode()
    assert response.status_code == 500
    assert "Something went wrong" in html and ">Latency</a>" in html
    assert "Log out" not in html
