"""Login and Overview in real headless Chromium."""

import pytest

from tests.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_it_logs_in_through_the_form_and_shows_the_overview(browser, live_server, mgmt):
    from django.contrib.auth.models import User

    User.objects.create_superuser("ada", "", "a-long-password-1")
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(live_server.url + "/")
    assert page.url.startswith(live_server.url + "/login/")
    screenshot(page, "login")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", "a-long-password-1")
    page.click("button[type=submit]")
    page.wait_for_selector("#overview-stats")
    assert page.locator("h1").inner_text() == "Overview"
    assert mgmt.overview()["rabbitmq_version"] in page.content()
    screenshot(page, "overview")
    context.close()


def test_it_refreshes_the_overview_without_a_reload_and_no_csp_errors(
    page_as, superuser, live_server
):
    page = page_as(superuser)
    console_errors = []
    page.on("console", lambda msg: msg.type == "error" and console_errors.append(msg.text))
    page.goto(live_server.url + "/")
    page.wait_for_selector("#overview-stats")
    with page.expect_response(
        lambda response: response.request.headers.get("hx-request") == "true", timeout=8_000
    ) as refresh:
        pass
    assert refresh.value.status == 200
    assert page.locator("#overview-stats .tile").count() >= 6
    assert console_errors == []
