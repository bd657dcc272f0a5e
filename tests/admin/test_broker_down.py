"""A broker that fails: every creating and administration page answers 200 with the
broker's words in a banner; a change reports the failure and is audited; never a 500."""

import pytest
from django.urls import reverse

from console.models import AuditEntry

PAGES = [
    ("queue_new", []),
    ("exchange_new", []),
    ("users", []),
    ("user", ["someone"]),
    ("admin_vhosts", []),
    ("admin_vhost", ["/"]),
    ("policies", []),
    ("policy_new", []),
    ("policy_edit", ["policies", "/", "cap"]),
    ("feature_flags", []),
    ("definitions", []),
]


@pytest.mark.parametrize(("mode", "words"), [("500", "boom from the broker"), ("html", "not JSON")])
def test_it_keeps_every_page_up_with_a_banner(admin_group_client, sick_broker, mode, words):
    sick_broker.mode = mode
    for name, args in PAGES:
        response = admin_group_client.get(reverse(name, args=args))
        assert response.status_code == 200, name
        page = response.content.decode()
        assert "banner-error" in page and words in page, name


def test_it_reports_failed_changes_and_audits_them(admin_group_client, sick_broker):
    sick_broker.mode = "503"
    page = admin_group_client.post(
        reverse("user_delete", args=["someone"]), follow=True
    ).content.decode()
    assert "Delete user failed for user someone: The management API failed (503)" in page
    response = admin_group_client.get(reverse("definitions_export"), follow=True)
    assert "The export failed: The management API failed (503)" in response.content.decode()
    page = admin_group_client.post(
        reverse("admin_vhost_limits", args=["/"]), {"max_queues": "5"}, follow=True
    ).content.decode()
    assert "node is booting" in page
    assert set(AuditEntry.objects.values_list("result", flat=True)) == {"failed"}
