"""Feature flags: listed as the broker says; enabled only with the confirmation ticked.

Enabling a flag cannot be undone, so the test enables only one of the broker's
statistics flags (they change what the management API counts, nothing else),
or, once they are all on, shows that enabling an enabled flag is harmless."""

from django.urls import reverse

from tests.admin.conftest import last_entry

HARMLESS = ("empty_basic_get_metric", "drop_unroutable_metric")


def _state(broker_admin, name):
    return {f["name"]: f["state"] for f in broker_admin.feature_flags()}[name]


def test_it_lists_every_flag_with_its_state(admin_group_client, broker_admin):
    page = admin_group_client.get(reverse("feature_flags")).content.decode()
    for flag in broker_admin.feature_flags():
        assert flag["name"] in page
    disabled = [f["name"] for f in broker_admin.feature_flags() if f["state"] == "disabled"]
    assert page.count("cannot be undone</label>") == len(disabled)


def test_it_enables_a_flag_only_when_confirmed(admin_group_client, administrator, broker_admin):
    flag = next((f for f in HARMLESS if _state(broker_admin, f) == "disabled"), HARMLESS[0])
    before = _state(broker_admin, flag)
    url = reverse("feature_flag_enable", args=[flag])
    page = admin_group_client.post(url, {}, follow=True).content.decode()
    assert "cannot be disabled again" in page
    assert _state(broker_admin, flag) == before
    assert last_entry("enable_feature_flag").result == "failed"
    page = admin_group_client.post(url, {"confirm": "yes"}, follow=True).content.decode()
    assert f"Feature flag &#x27;{flag}&#x27; enabled on every node." in page
    assert _state(broker_admin, flag) == "enabled"
    entry = last_entry("enable_feature_flag")
    assert (entry.result, entry.username) == ("ok", administrator.username)


def test_it_reports_a_flag_the_broker_does_not_know(admin_group_client):
    url = reverse("feature_flag_enable", args=["no_such_flag"])
    page = admin_group_client.post(url, {"confirm": "yes"}, follow=True).content.decode()
    assert "Enable feature flag failed for feature flag no_such_flag: " in page
    assert last_entry("enable_feature_flag").result == "failed"
