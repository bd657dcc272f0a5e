"""The audit log misses no attempt to change anything.

Every operator route of the URL configuration is POSTed to: by a viewer (each
leaves one DENIED entry naming the viewer, from a page or through the API with
a bearer token) and by an operator (each leaves an OK or FAILED entry, even
when the target does not exist or the form is empty).
"""

import pytest

from console.models import ApiToken, AuditEntry
from tests.security.test_access_matrix import ROUTES, _sample_path

OPERATOR_ROUTES = [param for param in ROUTES if param.values[2] == "operator"]


def _new_entries(before):
    return list(AuditEntry.objects.filter(id__gt=before).order_by("id"))


def _last_id():
    last = AuditEntry.objects.order_by("-id").first()
    return last.id if last else 0


def test_it_finds_operator_routes_to_walk():
    assert len(OPERATOR_ROUTES) >= 15


@pytest.mark.parametrize(("route", "pattern", "level"), OPERATOR_ROUTES)
def test_it_records_a_viewers_attempt_as_denied(client, viewer, route, pattern, level):
    path = _sample_path(route, pattern)
    client.force_login(viewer)
    before = _last_id()
    assert client.post(path, {"name": "x"}).status_code == 403
    (entry,) = _new_entries(before)
    assert (entry.username, entry.result) == ("vera-viewer", AuditEntry.DENIED)
    assert entry.action == pattern.name and entry.target == f"POST {path}"


@pytest.mark.parametrize(("route", "pattern", "level"), OPERATOR_ROUTES)
def test_it_records_a_viewers_api_attempt_as_denied(client, viewer, route, pattern, level):
    if not route.startswith("api/"):
        return
    path = _sample_path(route, pattern)
    before = _last_id()
    token = ApiToken.issue(viewer)
    response = client.post(
        path, "{}", content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}"
    )
    assert response.status_code == 403
    (entry,) = _new_entries(before)
    assert (entry.username, entry.result) == ("vera-viewer", AuditEntry.DENIED)


@pytest.mark.parametrize(("route", "pattern", "level"), OPERATOR_ROUTES)
def test_it_records_every_operator_attempt_ok_or_failed(operator_client, route, pattern, level):
    path = _sample_path(route, pattern)
    before = _last_id()
    response = operator_client.post(path)
    assert response.status_code < 500
    entries = _new_entries(before)
    assert entries, f"POST {path} ({response.status_code}) left no audit entry"
    assert all(e.username == "otto-operator" for e in entries)
    assert all(e.result in (AuditEntry.OK, AuditEntry.FAILED) for e in entries)
    if response.status_code >= 400:
        assert entries[-1].result == AuditEntry.FAILED, f"POST {path}: {entries[-1]}"


def test_it_records_one_entry_when_the_view_records_its_own(operator_client):
    before = _last_id()
    operator_client.post("/brokers/x/delete")
    (entry,) = _new_entries(before)
    assert (entry.action, entry.result, entry.detail) == (
        "remove_broker",
        "failed",
        "no such broker",
    )
