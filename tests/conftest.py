"""Fixtures shared by every test: users of each role and scratch vhosts on the real broker."""

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from django.contrib.auth.models import Group, User
from hypothesis import settings as hypothesis_settings

from rabbit.administration import Administration
from rabbit.brokers import default_broker
from rabbit.management_http import BrokerNotFound, ManagementHTTP
from tests.sick_management import sick_broker  # noqa: F401 - a fixture for every test

if TYPE_CHECKING:
    from playwright.sync_api import Browser

# Property and fuzz tests (Hypothesis). By hand they explore anew on every run and
# replay what failed before from .hypothesis/. In CI (CI=true) they are
# derandomized: the same inputs on every run, so a red run is red again and a
# green one is not luck. An input that ever failed stays as an @example on its
# test. HYPOTHESIS_PROFILE=ci picks CI's profile by hand.
hypothesis_settings.register_profile(
    "ci", derandomize=True, deadline=None, database=None, print_blob=True
)
# Hypothesis's own defaults (random, with its example database), whatever the
# environment: Hypothesis itself would derandomize when it sees CI set.
hypothesis_settings.register_profile(
    "dev", parent=hypothesis_settings.get_profile("default"), deadline=None
)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def hypothesis_profile() -> str:
    """The profile this run uses: HYPOTHESIS_PROFILE if given, else "ci" in CI, else "dev"."""
    return os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if _in_ci() else "dev")


hypothesis_settings.load_profile(hypothesis_profile())

# Capture's spool files of this run's taps (and their subprocesses) in a folder
# of their own, gone at the end: a spool never outlives the test database it
# was indexed into.
_SPOOL_DIR = tempfile.mkdtemp(prefix="warren-test-spool-")
os.environ["WARREN_SPOOL_DIR"] = _SPOOL_DIR


def pytest_unconfigure(config):
    shutil.rmtree(_SPOOL_DIR, ignore_errors=True)


# Tests that restart a broker, start their own cluster, or assert on timing run
# alone after the parallel run (`make test` runs `-m serial` without workers):
# beside other tests they would disturb them, or be disturbed.
SERIAL = (
    "tests/tracer/test_broker_restart.py",
    "tests/cluster/",
    "tests/replay/test_bulk.py",
    "tests/tracer/test_tap.py::test_it_measures_what_the_client_measures",
    "tests/live/test_browser_live.py",
    "tests/faults/test_broker_restart",
    "tests/tracer/test_wire_accuracy.py",
    # A niced tap beside eight busy workers waited more than 45 s for a core to start.
    "tests/tracer/test_tap_priority.py",
    # Keeps the machine busy on purpose, and needs it free before and after.
    "tests/tracer/test_index_pauses.py",
)


# Tests whose subject is not the database run in the SQLite run only: on
# PostgreSQL they would take minutes to check nothing that differs (`make test`).
# They are the serial tests of a broker cluster's nodes, the pages during a
# broker restart, Redis away, a slow management API, a supervisor stopping the
# tap, the tap's stamps against the wire and the client's socket, how the kernel
# schedules the tap, enabling a feature flag (once for both runs); and every
# test in a browser (BROWSER_FIXTURE): what it checks is what Chromium draws,
# while the data behind each page is checked on both databases by the page's
# and the API's own tests.
BROWSER_FIXTURE = "browser"
ONE_DATABASE = (
    "tests/cluster/",
    "tests/faults/test_broker_restart_pages.py",
    "tests/live/test_browser_live.py::test_it_says_the_live_feed_is_interrupted",
    "tests/console/test_broker_faults.py::test_it_keeps_every_page_up_with_a_banner[slow",
    "tests/tracer/test_tap_stop.py::test_ctrl_c_under_the_supervisor",
    "tests/tracer/test_tap_stop.py::test_its_stop_grace",
    # Stamps against the wire and the client's socket: the tap's clock, not its store.
    "tests/tracer/test_wire_accuracy.py",
    "tests/tracer/test_tap.py::test_it_measures_what_the_client_measures",
    # How the kernel schedules the tap's threads; indexing giving way to a busy machine.
    "tests/tracer/test_tap_priority.py",
    "tests/tracer/test_index_pauses.py",
    # A broker-wide change that cannot be undone: run once, so that the SQLite and
    # PostgreSQL runs, side by side, never race to enable the same flag.
    "tests/admin/test_feature_flags.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SERIAL):
            item.add_marker(pytest.mark.serial)
        if item.nodeid.startswith(ONE_DATABASE) or BROWSER_FIXTURE in item.fixturenames:
            item.add_marker(pytest.mark.one_database)


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Real hashing costs ~0.3 s a user; tests create hundreds of users."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def _user(username, group=None, superuser=False):
    user = User.objects.create_user(username=username, password="pw-" + uuid.uuid4().hex)
    if superuser:
        user.is_superuser = True
        user.is_staff = True
        user.save()
    if group:
        # get_or_create: a transactional test before this one may have emptied the
        # table the roles migration filled.
        user.groups.add(Group.objects.get_or_create(name=group)[0])
    return user


@pytest.fixture
def viewer(db):
    return _user("vera-viewer", "viewer")


@pytest.fixture
def operator(db):
    return _user("otto-operator", "operator")


@pytest.fixture
def superuser(db):
    return _user("sam-super", superuser=True)


@pytest.fixture
def roleless(db):
    return _user("nora-norole")


def _logged_in(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def viewer_client(client, viewer):
    return _logged_in(client, viewer)


@pytest.fixture
def operator_client(client, operator):
    return _logged_in(client, operator)


@pytest.fixture
def admin_client(client, superuser):
    return _logged_in(client, superuser)


@pytest.fixture
def mgmt():
    """The management API client of the environment's broker."""
    return default_broker().client()


def unique_name(prefix="warren-test"):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def scratch_vhost(mgmt):
    """A fresh vhost on the real broker, deleted after the test."""
    name = unique_name("warren-test-vhost")
    mgmt.create_vhost(name, description="Warren test scratch vhost")
    yield name
    mgmt.delete_vhost(name)


@pytest.fixture
def broker_admin(mgmt: ManagementHTTP) -> Administration:
    """The administration door (users, vhosts, limits, policies) of the environment's broker."""
    return Administration(mgmt)


@pytest.fixture
def new_names(broker_admin: Administration) -> Iterator[dict[str, list[str]]]:
    """Names a test creates through the pages: users and vhosts, removed afterwards."""
    made: dict[str, list[str]] = {"users": [], "vhosts": []}
    yield made
    for name in made["users"]:
        with contextlib.suppress(BrokerNotFound):
            broker_admin.delete_user(name)
    for name in made["vhosts"]:
        with contextlib.suppress(BrokerNotFound):
            broker_admin.delete_vhost(name)


# --- headless Chromium ---------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = __import__("pathlib").Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def async_unsafe_allowed() -> Iterator[None]:
    """Django's ORM allowed in a thread where an asyncio event loop is running.

    Playwright's sync API keeps its event loop running in the test thread from
    its start to its stop, and Django refuses database calls from such a thread
    (SynchronousOnlyOperation) although they are synchronous here and safe. Set
    for as long as the browser below is up, one test module, then restored.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        yield


@pytest.fixture(scope="module")
def browser(async_unsafe_allowed: None) -> Iterator["Browser"]:
    """Debian's Chromium driven by Playwright; never a downloaded browser.

    One a test module: when the module is done Playwright stops, and the tests
    after it run without an event loop in their thread.
    """
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs the Debian package chromium.")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page_as(browser, live_server):
    """page_as(user) -> a Playwright page logged in as user on the live server."""
    from django.conf import settings
    from django.test import Client

    contexts = []

    def open_page(user):
        client = Client()
        client.force_login(user)
        context = browser.new_context(viewport={"width": 1440, "height": 900})
        context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": client.cookies[settings.SESSION_COOKIE_NAME].value,
                    "url": live_server.url,
                }
            ]
        )
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(10_000)
        return page

    yield open_page
    for context in contexts:
        context.close()


def screenshot(page, name):
    """Saves a full-page screenshot under test-artifacts/ for a person to look at."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
