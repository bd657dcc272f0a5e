"""Creating and administration pages in headless Chromium: each action done through the
page, the broker's state checked through its API afterwards; every page light and dark,
390 and 1440 px wide, without serious axe-core violations or sideways scrolling, with a
screenshot in test-artifacts/ to look at."""

import contextlib
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.contrib.auth.models import Group, User
from django.test import Client
from django.urls import reverse

from rabbit.brokers import default_broker
from rabbit.management_http import BrokerNotFound
from tests.conftest import ARTIFACTS, _user

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

AXE = Path(__file__).resolve().parents[2] / "node_modules" / "axe-core" / "axe.min.js"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}

SERIOUS = """async () => {
  const result = await window.axe.run(document, { resultTypes: ["violations"] });
  return result.violations
    .filter((v) => v.impact === "serious" || v.impact === "critical")
    .map((v) => v.id + ": " + v.nodes.slice(0, 3).map((n) => n.target.join(" ")).join(", "));
}"""
# How far the page itself scrolls sideways, and the elements that reach past the edge.
SIDEWAYS = """() => {
  const width = window.innerWidth;
  const wide = [];
  for (const el of document.body.querySelectorAll("*")) {
    const box = el.getBoundingClientRect();
    if (box.right > width + 1 && box.width > 0 && !el.closest(".table-scroll")) {
      wide.push(el.tagName.toLowerCase() + "." + el.className + " right=" + Math.round(box.right));
    }
    if (wide.length > 4) break;
  }
  return { by: document.scrollingElement.scrollWidth - width, wide };
}"""


@pytest.fixture
def admin_user(db) -> User:
    user = User.objects.create_user("ada-browser", password="pw-" + uuid.uuid4().hex)
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    return user


@pytest.fixture
def tab(browser, live_server):
    context = browser.new_context(viewport=DESKTOP, bypass_csp=True)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.on("dialog", lambda dialog: dialog.accept())  # data-confirm questions: yes
    yield page
    context.close()


def _log_in(tab, live_server, user: User) -> None:
    client = Client()
    client.force_login(user)
    tab.context.clear_cookies()
    tab.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": live_server.url,
            }
        ]
    )


@pytest.fixture
def broker_user_name(broker_admin) -> Iterator[str]:
    name = f"warren-test-browser-user-{uuid.uuid4().hex[:8]}"
    broker_admin.create_user(name, "pw-one-1", ["monitoring"])
    yield name
    with contextlib.suppress(BrokerNotFound):
        broker_admin.delete_user(name)


def _can_log_in(name: str, password: str) -> bool:
    url = default_broker().management_url.rstrip("/") + "/api/whoami"
    return httpx.get(url, auth=(name, password), timeout=5).status_code == 200


def _submit(tab, form_selector: str) -> None:
    with tab.expect_navigation():
        tab.locator(f"{form_selector} button[type=submit]").first.click()


def test_it_creates_a_quorum_queue_through_the_page(tab, live_server, mgmt, scratch_vhost):
    _log_in(tab, live_server, _user("otto-browser", "operator"))
    tab.goto(live_server.url + reverse("queues") + f"?vhost={scratch_vhost}")
    with tab.expect_navigation():
        tab.get_by_role("link", name="New queue").click()
    tab.fill("input[name=name]", "payments")
    tab.select_option("select[name=queue_type]", "quorum")
    # Fields a quorum queue does not take are hidden; its own are there.
    assert not tab.locator("input[name=max_priority]").is_visible()
    assert not tab.locator("input[name=max_age]").is_visible()
    tab.fill("input[name=delivery_limit]", "4")
    tab.fill("input[name=message_ttl]", "30000")
    tab.fill("input[name=dead_letter_exchange]", "payments.dlx")
    _submit(tab, "form[data-queue-form]")
    assert "Queue 'payments' (quorum) created." in tab.content().replace("&#x27;", "'")
    queue = mgmt.queue(scratch_vhost, "payments")
    assert queue["type"] == "quorum"
    assert queue["arguments"] == {
        "x-queue-type": "quorum",
        "x-delivery-limit": 4,
        "x-message-ttl": 30000,
        "x-dead-letter-exchange": "payments.dlx",
    }


def test_it_creates_an_exchange_through_the_page(tab, live_server, mgmt, scratch_vhost):
    _log_in(tab, live_server, _user("otto-browser", "operator"))
    tab.goto(live_server.url + reverse("exchange_new") + f"?vhost={scratch_vhost}")
    tab.fill("input[name=name]", "events")
    tab.select_option("select[name=type]", "headers")
    tab.fill("input[name=alternate_exchange]", "events.unrouted")
    tab.check("input[name=internal]")
    _submit(tab, "main form")
    exchange = mgmt.exchange(scratch_vhost, "events")
    assert (exchange["type"], exchange["internal"], exchange["arguments"]) == (
        "headers",
        True,
        {"alternate-exchange": "events.unrouted"},
    )


def test_it_administers_a_user_through_the_pages(
    tab, live_server, admin_user, broker_admin, scratch_vhost, new_names
):
    name = f"warren-test-browser-user-{uuid.uuid4().hex[:8]}"
    new_names["users"].append(name)
    _log_in(tab, live_server, admin_user)
    tab.goto(live_server.url + reverse("users"))
    form = "#new-user form"
    tab.fill(f"{form} input[name=name]", name)
    tab.fill(f"{form} input[name=password]", "pw-one-1")
    tab.fill(f"{form} input[name=password_again]", "pw-one-1")
    tab.check(f"{form} input[name=tags][value=monitoring]")
    _submit(tab, form)
    assert tab.locator("h1").inner_text() == f"User {name}"
    assert broker_admin.user(name)["tags"] == ["monitoring"]
    permission_form = f"form[action='{reverse('user_permission_set', args=[name])}']"
    tab.select_option(f"{permission_form} select[name=vhost]", scratch_vhost)
    tab.fill(f"{permission_form} input[name=configure]", "^$")
    _submit(tab, permission_form)
    [permission] = broker_admin.user_permissions(name)
    assert (permission["vhost"], permission["configure"], permission["read"]) == (
        scratch_vhost,
        "^$",
        ".*",
    )
    limits_form = f"form[action='{reverse('user_limits', args=[name])}']"
    tab.fill(f"{limits_form} input[name=max_connections]", "3")
    _submit(tab, limits_form)
    assert broker_admin.user_limits(name) == {"max-connections": 3}
    _submit(tab, ".danger-zone form")
    with pytest.raises(BrokerNotFound):
        broker_admin.user(name)


def test_it_changes_tags_password_and_topic_permissions_through_the_page(
    tab, live_server, admin_user, broker_admin, broker_user_name, scratch_vhost
):
    _log_in(tab, live_server, admin_user)
    tab.goto(live_server.url + reverse("user", args=[broker_user_name]))
    update_form = f"form[action='{reverse('user_update', args=[broker_user_name])}']"
    tab.uncheck(f"{update_form} input[name=tags][value=monitoring]")
    tab.check(f"{update_form} input[name=tags][value=policymaker]")
    tab.fill(f"{update_form} input[name=other_tags]", "team-b")
    tab.fill(f"{update_form} input[name=password]", "pw-two-2")
    tab.fill(f"{update_form} input[name=password_again]", "pw-two-2")
    _submit(tab, update_form)
    assert sorted(broker_admin.user(broker_user_name)["tags"]) == ["policymaker", "team-b"]
    assert _can_log_in(broker_user_name, "pw-two-2")
    topic_form = f"form[action='{reverse('user_topic_permission_set', args=[broker_user_name])}']"
    tab.select_option(f"{topic_form} select[name=vhost]", scratch_vhost)
    tab.fill(f"{topic_form} input[name=write]", "^sports\\.")
    _submit(tab, topic_form)
    [topic] = broker_admin.user_topic_permissions(broker_user_name)
    assert (topic["vhost"], topic["exchange"], topic["write"]) == (
        scratch_vhost,
        "amq.topic",
        "^sports\\.",
    )
    with tab.expect_navigation():
        tab.get_by_role("button", name="Remove (vhost)").click()
    assert broker_admin.user_topic_permissions(broker_user_name) == []


def test_it_sets_vhost_limits_through_the_page(
    tab, live_server, admin_user, broker_admin, scratch_vhost
):
    _log_in(tab, live_server, admin_user)
    tab.goto(live_server.url + reverse("admin_vhost", args=[scratch_vhost]))
    limits_form = f"form[action='{reverse('admin_vhost_limits', args=[scratch_vhost])}']"
    tab.fill(f"{limits_form} input[name=max_connections]", "25")
    tab.fill(f"{limits_form} input[name=max_queues]", "400")
    _submit(tab, limits_form)
    assert broker_admin.vhost_limits(scratch_vhost) == {"max-connections": 25, "max-queues": 400}


def test_it_creates_and_deletes_an_operator_policy_through_the_pages(
    tab, live_server, admin_user, broker_admin, scratch_vhost
):
    _log_in(tab, live_server, admin_user)
    tab.goto(live_server.url + reverse("policies") + f"?vhost={scratch_vhost}")
    with tab.expect_navigation():
        tab.get_by_role("link", name="New operator policy").click()
    tab.fill("input[name=name]", "caps")
    tab.fill("input[name=pattern]", ".*")
    tab.fill("input[name=key_0]", "max-length")
    tab.fill("input[name=value_0]", "100000")
    _submit(tab, "main form")
    policy = broker_admin.policy("operator-policies", scratch_vhost, "caps")
    assert policy["definition"] == {"max-length": 100000}
    with tab.expect_navigation():
        tab.locator("tr", has_text="caps").get_by_role("button", name="Delete").click()
    assert broker_admin.policies("operator-policies", scratch_vhost) == []


def test_it_downloads_an_export(tab, live_server, admin_user, mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "in-the-export")
    _log_in(tab, live_server, admin_user)
    tab.goto(live_server.url + reverse("definitions"))
    export_form = f"form[action='{reverse('definitions_export')}']"
    tab.select_option(f"{export_form} select[name=vhost]", scratch_vhost)
    with tab.expect_download() as download:
        tab.get_by_role("button", name="Download JSON").click()
    assert download.value.suggested_filename.endswith(".json")
    data = json.loads(Path(download.value.path()).read_text())
    assert [q["name"] for q in data["queues"]] == ["in-the-export"]


def test_it_deletes_a_vhost_after_its_name_is_typed(
    tab, live_server, admin_user, broker_admin, new_names
):
    name = f"warren-test-browser-vhost-{uuid.uuid4().hex[:8]}"
    new_names["vhosts"].append(name)
    _log_in(tab, live_server, admin_user)
    tab.goto(live_server.url + reverse("admin_vhosts"))
    tab.fill("#new-vhost input[name=name]", name)
    tab.fill("#new-vhost input[name=description]", "made in the browser")
    tab.select_option("#new-vhost select[name=default_queue_type]", "stream")
    _submit(tab, "#new-vhost form")
    assert broker_admin.vhost(name)["default_queue_type"] == "stream"
    tab.fill(".danger-zone input[name=confirm]", "not the name")
    _submit(tab, ".danger-zone form")
    assert "exactly to confirm" in tab.content()
    assert broker_admin.vhost(name)["name"] == name
    tab.fill(".danger-zone input[name=confirm]", name)
    _submit(tab, ".danger-zone form")
    with pytest.raises(BrokerNotFound):
        broker_admin.vhost(name)


def test_it_edits_a_policy_with_errors_first(
    tab, live_server, admin_user, broker_admin, scratch_vhost
):
    _log_in(tab, live_server, admin_user)
    tab.goto(live_server.url + reverse("policy_new") + f"?kind=policies&vhost={scratch_vhost}")
    # The key list follows what the policy applies to.
    ttl_row = tab.locator("tr[data-targets]", has_text="message-ttl")
    alternate_row = tab.locator("tr[data-targets]", has_text="alternate-exchange")
    assert ttl_row.is_visible() and not alternate_row.is_visible()
    tab.select_option("select[name=apply_to]", "exchanges")
    assert alternate_row.is_visible() and not ttl_row.is_visible()
    tab.select_option("select[name=apply_to]", "queues")
    tab.fill("input[name=name]", "dlx-all")
    tab.fill("input[name=pattern]", ".*")
    tab.fill("input[name=key_0]", "dead-letter-exchange")
    tab.fill("input[name=value_0]", "dlx")
    tab.fill("input[name=key_1]", "delivery-limit")
    tab.fill("input[name=value_1]", "three")
    _submit(tab, "main form")
    assert "delivery-limit: “three” is not a whole number." in tab.content()
    assert broker_admin.policies("policies", scratch_vhost) == []
    tab.fill("input[name=value_1]", "3")
    _submit(tab, "main form")
    policy = broker_admin.policy("policies", scratch_vhost, "dlx-all")
    assert policy["definition"] == {"dead-letter-exchange": "dlx", "delivery-limit": 3}


def test_it_imports_definitions_after_a_preview(
    tab, live_server, admin_user, broker_admin, mgmt, scratch_vhost, tmp_path
):
    mgmt.declare_queue(scratch_vhost, "kept")
    definitions = {
        "queues": [
            {"name": "kept", "durable": True, "auto_delete": False, "arguments": {}},
            {"name": "imported", "durable": True, "auto_delete": False, "arguments": {}},
        ]
    }
    path = tmp_path / "definitions.json"
    path.write_text(json.dumps(definitions))
    _log_in(tab, live_server, admin_user)
    tab.goto(live_server.url + reverse("definitions"))
    tab.set_input_files("input[name=file]", str(path))
    tab.select_option("form[enctype] select[name=vhost]", scratch_vhost)
    _submit(tab, "form[enctype]")
    assert tab.locator("[data-count=create]").inner_text() == "1"
    assert tab.locator("[data-count=unchanged]").inner_text() == "1"
    assert not broker_admin.queue_exists(scratch_vhost, "imported")
    with tab.expect_navigation():
        tab.get_by_role("button", name="Apply the import").click()
    assert broker_admin.queue_exists(scratch_vhost, "imported")


def _pages(scratch_vhost: str, user_name: str) -> list[tuple[str, str]]:
    return [
        ("queue-new", reverse("queue_new") + f"?vhost={scratch_vhost}"),
        ("exchange-new", reverse("exchange_new") + f"?vhost={scratch_vhost}"),
        ("users", reverse("users")),
        ("user", reverse("user", args=[user_name])),
        ("admin-vhosts", reverse("admin_vhosts")),
        ("admin-vhost", reverse("admin_vhost", args=[scratch_vhost])),
        ("policies", reverse("policies") + "?vhost="),
        ("policy-new", reverse("policy_new") + f"?kind=policies&vhost={scratch_vhost}"),
        ("cluster", reverse("admin_cluster")),
        ("feature-flags", reverse("feature_flags")),
        ("definitions", reverse("definitions")),
        ("definitions-import", reverse("definitions_import")),
    ]


def test_it_draws_every_page_light_and_dark_phone_and_desktop(
    tab, live_server, admin_user, broker_admin, mgmt, scratch_vhost
):
    user_name = f"warren-test-shot-{uuid.uuid4().hex[:6]}"
    broker_admin.create_user(user_name, "pw-" + uuid.uuid4().hex, ["monitoring"])
    try:
        broker_admin.set_permissions(scratch_vhost, user_name, "", ".*", ".*")
        broker_admin.put_policy(
            "policies", scratch_vhost, "cap", "^orders\\.", {"max-length": 1000}, 1, "queues"
        )
        mgmt.declare_queue(scratch_vhost, "orders.in")
        _log_in(tab, live_server, admin_user)
        # An import waiting for its preview, so that page has lists to show.
        tab.goto(live_server.url + reverse("definitions"))
        tab.fill(
            "textarea[name=text]",
            json.dumps(
                {
                    "queues": [
                        {
                            "name": "orders.in",
                            "durable": True,
                            "auto_delete": False,
                            "arguments": {},
                        },
                        {
                            "name": "orders.new",
                            "durable": True,
                            "auto_delete": False,
                            "arguments": {},
                        },
                    ],
                    "policies": [
                        {
                            "name": "cap",
                            "pattern": "^orders\\.",
                            "apply-to": "queues",
                            "priority": 1,
                            "definition": {"max-length": 5000},
                        }
                    ],
                }
            ),
        )
        tab.select_option("form[enctype] select[name=vhost]", scratch_vhost)
        _submit(tab, "form[enctype]")
        problems = []
        for label, url in _pages(scratch_vhost, user_name):
            for theme in ("light", "dark"):
                for viewport in (PHONE, DESKTOP):
                    tab.set_viewport_size(viewport)
                    tab.emulate_media(color_scheme=theme)
                    response = tab.goto(live_server.url + url)
                    where = f"{label} {theme} {viewport['width']}"
                    if response is None or response.status != 200:
                        problems.append(f"{where}: HTTP {response and response.status}")
                        continue
                    tab.add_script_tag(path=str(AXE))
                    problems += [f"{where}: {v}" for v in tab.evaluate(SERIOUS)]
                    sideways = tab.evaluate(SIDEWAYS)
                    if sideways["by"] > 0:
                        problems.append(f"{where}: scrolls sideways by {sideways}")
                    ARTIFACTS.mkdir(exist_ok=True)
                    tab.screenshot(
                        path=str(ARTIFACTS / f"admin-{label}-{theme}-{viewport['width']}.png"),
                        full_page=True,
                    )
        assert problems == [], "\n".join(problems)
    finally:
        broker_admin.delete_user(user_name)
