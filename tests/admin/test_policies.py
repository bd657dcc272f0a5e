"""Policies and operator policies through the editor: saved as typed, refused in words when
a key does not fit, edited and deleted; checked on the broker; audited."""

from django.urls import reverse

from tests.admin.conftest import last_entry


def _rows(*pairs):
    data = {}
    for index, (key, value) in enumerate(pairs):
        data[f"key_{index}"] = key
        data[f"value_{index}"] = value
    return data


def _save(client, vhost, kind="policies", **fields):
    data = {"kind": kind, "vhost": vhost, "priority": "1", "apply_to": "queues", **fields}
    return client.post(reverse("policy_new") + f"?kind={kind}", data)


def test_it_creates_a_policy(admin_group_client, administrator, broker_admin, scratch_vhost):
    response = _save(
        admin_group_client,
        scratch_vhost,
        name="cap-orders",
        pattern="^orders\\.",
        **_rows(("max-length", "1000"), ("overflow", "reject-publish"), ("", "")),
    )
    assert response.status_code == 302
    policy = broker_admin.policy("policies", scratch_vhost, "cap-orders")
    assert policy["definition"] == {"max-length": 1000, "overflow": "reject-publish"}
    assert (policy["pattern"], policy["apply-to"], policy["priority"]) == (
        "^orders\\.",
        "queues",
        1,
    )
    entry = last_entry("create_policy")
    assert (entry.username, entry.result, entry.vhost) == (
        administrator.username,
        "ok",
        scratch_vhost,
    )
    page = admin_group_client.get(reverse("policies") + f"?vhost={scratch_vhost}").content.decode()
    assert "cap-orders" in page and "reject-publish" in page


def test_it_refuses_a_definition_that_does_not_fit(admin_group_client, broker_admin, scratch_vhost):
    response = _save(
        admin_group_client,
        scratch_vhost,
        name="bad",
        pattern=".*",
        **_rows(("alternate-exchange", "ae"), ("message-ttl", "soon"), ("ha-mode", "exactly")),
    )
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was saved." in page
    assert "message-ttl: “soon” is not a whole number." in page
    assert broker_admin.policies("policies", scratch_vhost) == []
    response = _save(
        admin_group_client,
        scratch_vhost,
        name="bad",
        pattern=".*",
        **_rows(("alternate-exchange", "ae"), ("ha-mode", "exactly")),
    )
    page = response.content.decode()
    assert "alternate-exchange: applies to exchanges, not to queues (every type)." in page
    assert "ha-params: ha-mode exactly needs ha-params." in page
    assert 'value="alternate-exchange"' in page  # the rows typed are kept
    assert broker_admin.policies("policies", scratch_vhost) == []
    assert last_entry("create_policy").result == "failed"


def test_it_refuses_a_pattern_that_is_not_a_regex(admin_group_client, broker_admin, scratch_vhost):
    response = _save(
        admin_group_client, scratch_vhost, name="p", pattern="(", **_rows(("max-length", "1"))
    )
    assert "Pattern: not a valid regular expression" in response.content.decode()
    assert broker_admin.policies("policies", scratch_vhost) == []


def test_it_creates_an_operator_policy_with_its_keys_only(
    admin_group_client, broker_admin, scratch_vhost
):
    response = _save(
        admin_group_client,
        scratch_vhost,
        kind="operator-policies",
        name="caps",
        pattern=".*",
        **_rows(("dead-letter-exchange", "dlx")),
    )
    assert response.status_code == 400
    assert "dead-letter-exchange: an operator policy may set only" in response.content.decode()
    response = _save(
        admin_group_client,
        scratch_vhost,
        kind="operator-policies",
        name="caps",
        pattern=".*",
        **_rows(("max-length-bytes", "1048576"), ("message-ttl", "3600000")),
    )
    assert response.status_code == 302
    policy = broker_admin.policy("operator-policies", scratch_vhost, "caps")
    assert policy["definition"] == {"max-length-bytes": 1048576, "message-ttl": 3600000}


def test_it_edits_and_deletes_a_policy(admin_group_client, broker_admin, scratch_vhost):
    broker_admin.put_policy(
        "policies", scratch_vhost, "ae", "^in$", {"alternate-exchange": "unrouted"}, 0, "exchanges"
    )
    url = reverse("policy_edit", args=["policies", scratch_vhost, "ae"])
    page = admin_group_client.get(url).content.decode()
    assert 'value="alternate-exchange"' in page and 'value="unrouted"' in page
    response = admin_group_client.post(
        url,
        {"pattern": "^in\\.", "apply_to": "exchanges", "priority": "5"}
        | _rows(("alternate-exchange", "lost")),
    )
    assert response.status_code == 302
    policy = broker_admin.policy("policies", scratch_vhost, "ae")
    assert (policy["pattern"], policy["priority"], policy["definition"]) == (
        "^in\\.",
        5,
        {"alternate-exchange": "lost"},
    )
    assert last_entry("edit_policy").result == "ok"
    admin_group_client.post(reverse("policy_delete", args=["policies", scratch_vhost, "ae"]))
    assert broker_admin.policies("policies", scratch_vhost) == []
    assert last_entry("delete_policy").target == "policy ae"


def test_it_answers_404_for_an_unknown_kind(admin_group_client, scratch_vhost):
    url = reverse("policy_edit", args=["rules", scratch_vhost, "x"])
    assert admin_group_client.get(url).status_code == 404
