"""Login, roles and tokens: nobody reaches a page or the API without them."""

import io
import json

import pytest
from django.core.management import call_command
from django.http import JsonResponse
from django.test import RequestFactory
from django.urls import reverse

from console import access
from console.models import ApiToken, AuditEntry


def test_it_redirects_anonymous_pages_to_login(client, db):
    response = client.get(reverse("overview"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login") + "?next=/")


def test_it_answers_anonymous_health_with_the_status_alone(client, db):
    response = client.get("/api/health")
    assert response.status_code == 200
    assert set(response.json()) == {"status"}
    assert response.json()["status"] in ("ok", "degraded")


def test_it_gives_viewers_the_health_details(viewer_client):
    body = viewer_client.get("/api/health").json()
    assert body["broker"]["reachable"] is True
    assert "running" in body["tap"]


def test_it_logs_in_with_the_form_and_lands_on_the_overview(client, db):
    from django.contrib.auth.models import User

    User.objects.create_superuser("ada", "", "a-long-password-1")
    response = client.post(reverse("login"), {"username": "ada", "password": "a-long-password-1"})
    assert response.status_code == 302
    assert response["Location"] == reverse("overview")
    assert client.get(reverse("overview")).status_code == 200


def test_it_refuses_a_redirect_to_another_site_after_login(client, db):
    from django.contrib.auth.models import User

    User.objects.create_superuser("ada", "", "a-long-password-1")
    response = client.post(
        reverse("login"),
        {"username": "ada", "password": "a-long-password-1", "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("overview")


def test_it_throttles_repeated_failed_logins(client, db):
    from django.contrib.auth.models import User

    User.objects.create_superuser("ada", "", "a-long-password-1")
    statuses = [
        client.post(reverse("login"), {"username": "ada", "password": f"wrong-{i}"}).status_code
        for i in range(6)
    ]
    assert statuses[:4] == [200, 200, 200, 200]
    assert statuses[-1] == 429
    # Even the right password is refused while locked out.
    locked = client.post(reverse("login"), {"username": "ada", "password": "a-long-password-1"})
    assert locked.status_code == 429
    assert b"Too many failed log-ins" in locked.content


def test_it_shows_a_roleless_user_a_403_page(client, roleless):
    client.force_login(roleless)
    response = client.get(reverse("overview"))
    assert response.status_code == 403
    assert b"no role yet" in response.content


def test_it_logs_out_only_by_post(viewer_client):
    assert viewer_client.get(reverse("logout")).status_code == 405
    assert viewer_client.post(reverse("logout")).status_code == 302
    assert viewer_client.get(reverse("overview")).status_code == 302


@access.api(access.OPERATOR)
def _operator_action(request):
    return JsonResponse({"done": True})


@access.api(access.VIEWER)
def _viewer_read(request):
    return JsonResponse({"read": True})


def _issued_token(username):
    out = io.StringIO()
    call_command("api_token", username, stdout=out)
    return out.getvalue().strip()


def test_it_prints_a_token_the_api_accepts(viewer):
    token = _issued_token(viewer.username)
    assert token.startswith("wrn_")
    assert ApiToken.objects.filter(user=viewer).count() == 1
    assert token not in str(list(ApiToken.objects.values_list("token_hash", flat=True)))
    request = RequestFactory().get("/api/x", HTTP_AUTHORIZATION=f"Bearer {token}")
    request.user = None
    response = _viewer_read(request)
    assert response.status_code == 200


def test_it_refuses_a_viewer_token_an_operator_action_and_audits_it(viewer):
    token = _issued_token(viewer.username)
    request = RequestFactory().post("/api/x", HTTP_AUTHORIZATION=f"Bearer {token}")
    response = _operator_action(request)
    assert response.status_code == 403
    assert b"operator" in response.content
    entry = AuditEntry.objects.get()
    assert (entry.username, entry.result) == (viewer.username, AuditEntry.DENIED)


def test_it_lets_an_operator_token_act(operator):
    token = _issued_token(operator.username)
    request = RequestFactory().post("/api/x", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert _operator_action(request).status_code == 200


@pytest.mark.parametrize("header", ["Bearer wrn_not-a-real-token", "Bearer ", "Basic abc"])
def test_it_answers_401_for_a_bad_token(db, header):
    request = RequestFactory().get("/api/x", HTTP_AUTHORIZATION=header)
    response = _viewer_read(request)
    assert response.status_code == 401
    assert "error" in json.loads(response.content)


def test_it_answers_401_to_anonymous_api_calls(db):
    from django.contrib.auth.models import AnonymousUser

    request = RequestFactory().get("/api/x")
    request.user = AnonymousUser()
    response = _viewer_read(request)
    assert response.status_code == 401
    assert json.loads(response.content)["error"].startswith("Log in")


def test_it_requires_csrf_for_session_changes(operator):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(operator)
    request = RequestFactory().post("/api/x")
    request.user = operator
    request.COOKIES = client.cookies
    request._dont_enforce_csrf_checks = False
    response = _operator_action(request)
    assert response.status_code == 403
    assert "CSRF" in json.loads(response.content)["error"]


def test_it_creates_the_admin_once_and_prints_a_generated_password(db, monkeypatch):
    from django.contrib.auth.models import User

    monkeypatch.delenv("WARREN_ADMIN_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("ensure_admin", stdout=out)
    printed = out.getvalue()
    password = printed.split("password: ")[1].split()[0]
    assert User.objects.get(username="admin").check_password(password)
    again = io.StringIO()
    call_command("ensure_admin", stdout=again)
    assert "exists already" in again.getvalue()
    assert User.objects.filter(is_superuser=True).count() == 1


def test_it_reports_degraded_health_while_the_tap_cannot_read_a_vhost(viewer_client):
    from django.utils import timezone

    from tracer.models import TapSession

    now = timezone.now()
    session = TapSession.objects.create(
        pid=1, vhosts=["a", "b"], started_at=now, heartbeat_at=now, connected={"a": True, "b": True}
    )
    assert viewer_client.get("/api/health").json()["status"] == "ok"
    session.connected = {"a": True, "b": False}
    session.save()
    body = viewer_client.get("/api/health").json()
    assert body["status"] == "degraded"
    assert body["tap"]["connected"] == {"a": True, "b": False}
