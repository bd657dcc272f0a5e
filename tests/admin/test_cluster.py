"""The cluster's name: shown, renamed through the page (then put back), audited.

Serial: the name is the broker's own, which other tests' pages may show."""

import pytest
from django.urls import reverse

from tests.admin.conftest import last_entry, unique

pytestmark = pytest.mark.serial


def test_it_renames_the_cluster(admin_group_client, administrator, broker_admin):
    original = broker_admin.cluster_name()
    page = admin_group_client.get(reverse("admin_cluster")).content.decode()
    assert f'value="{original}"' in page
    name = unique("cluster")
    try:
        response = admin_group_client.post(reverse("admin_cluster"), {"name": name}, follow=True)
        assert f"The cluster is now named &#x27;{name}&#x27;." in response.content.decode()
        assert broker_admin.cluster_name() == name
        entry = last_entry("rename_cluster")
        assert (entry.result, entry.username) == ("ok", administrator.username)
    finally:
        broker_admin.set_cluster_name(original)


def test_it_refuses_an_empty_name(admin_group_client, broker_admin):
    original = broker_admin.cluster_name()
    page = admin_group_client.post(reverse("admin_cluster"), {"name": " "}, follow=True)
    assert "a cluster name is 1 to 255 bytes" in page.content.decode()
    assert broker_admin.cluster_name() == original
    assert last_entry("rename_cluster").result == "failed"
