"""Every route × anonymous / roleless / viewer / operator / superuser.

The routes come from the URL configuration itself, so a route added without an
access decorator, or with the wrong one, fails here before it ships.
"""

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

SAMPLE_BY_CONVERTER = {"int": "1", "slug": "x", "str": "x", "path": "x/y", "uuid": None}


def _walk(patterns, prefix=""):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern))
        elif isinstance(entry, URLPattern):
            yield prefix + str(entry.pattern), entry


def _sample_path(route, pattern):
    import re

    def fill(match):
        converter = match.group(1) or "str"
        return SAMPLE_BY_CONVERTER.get(converter) or "00000000-0000-0000-0000-000000000001"

    path = re.sub(r"<(?:(\w+):)?\w+>", fill, route)
    return "/" + path


def _routes():
    routes = []
    for route, pattern in _walk(get_resolver().url_patterns):
        if route.startswith("static/"):
            continue
        level = getattr(pattern.callback, "warren_access", None)
        routes.append(pytest.param(route, pattern, level, id=route or "/"))
    return routes


ROUTES = _routes()


def _is_api(pattern):
    """JSON endpoints answer 401; pages redirect to the login page."""
    return getattr(pattern.callback, "warren_kind", None) == "api"


def test_it_finds_routes_to_check():
    assert len(ROUTES) >= 4


@pytest.mark.parametrize(("route", "pattern", "level"), ROUTES)
def test_it_has_an_access_level_on_every_route(route, pattern, level):
    assert level in ("public", "viewer", "operator", "admin"), (
        f"/{route} ({pattern.name}) has no access decorator: wrap it in "
        "access.page, access.api or access.public"
    )


@pytest.mark.parametrize(("route", "pattern", "level"), ROUTES)
def test_it_keeps_anonymous_out(client, db, route, pattern, level):
    if level == "public":
        return
    path = _sample_path(route, pattern)
    for method in ("get", "post"):
        response = getattr(client, method)(path)
        if _is_api(pattern):
            assert response.status_code == 401, f"{method.upper()} {path}"
        else:
            assert response.status_code == 302, f"{method.upper()} {path}"
            assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(("route", "pattern", "level"), ROUTES)
def test_it_keeps_users_without_a_role_out(client, roleless, route, pattern, level):
    if level == "public":
        return
    client.force_login(roleless)
    path = _sample_path(route, pattern)
    for method in ("get", "post"):
        assert getattr(client, method)(path).status_code == 403, f"{method.upper()} {path}"


@pytest.mark.parametrize(("route", "pattern", "level"), ROUTES)
def test_it_refuses_viewers_every_operator_route(viewer_client, route, pattern, level):
    path = _sample_path(route, pattern)
    response = viewer_client.post(path)
    if level in ("operator", "admin"):
        assert response.status_code == 403, f"POST {path}"
    else:
        assert response.status_code != 403 or level == "public", f"POST {path}"


@pytest.mark.parametrize(("route", "pattern", "level"), ROUTES)
def test_it_lets_viewers_read_and_operators_act(client, viewer, operator, route, pattern, level):
    path = _sample_path(route, pattern)
    if level == "viewer":
        client.force_login(viewer)
        response = client.get(path)
        assert response.status_code not in (401, 403), f"GET {path}"
        assert response.status_code < 500, f"GET {path}"
    if level == "operator":
        client.force_login(operator)
        response = client.post(path)
        assert response.status_code not in (401, 403), f"POST {path}"
        assert response.status_code < 500, f"POST {path}"


# --- WebSockets ------------------------------------------------------------------
# The routes come from console.routing, so a new stream is checked as soon as it
# exists: anonymous and roleless users are closed, another origin is refused even
# with a valid session, viewers and above are let in.

from console.routing import websocket_urlpatterns  # noqa: E402

WS_ROUTES = [pytest.param("/" + str(p.pattern), id=str(p.pattern)) for p in websocket_urlpatterns]
SAME_ORIGIN = b"http://127.0.0.1"


def _ws_cookie(user):
    from django.conf import settings
    from django.test import Client

    client = Client()
    client.force_login(user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    return (b"cookie", f"{settings.SESSION_COOKIE_NAME}={session}".encode())


def _ws_connects(path, origin, cookie=None):
    """True when the ASGI application accepts a WebSocket at path (then closed again)."""
    from channels.testing import WebsocketCommunicator

    from console.asgi import application
    from tests.live.conftest import run_async

    headers = [(b"host", b"127.0.0.1"), (b"origin", origin)]
    if cookie:
        headers.append(cookie)

    async def scenario():
        socket = WebsocketCommunicator(application, path, headers=headers)
        connected, _ = await socket.connect(timeout=5)
        await socket.disconnect()
        return connected

    return run_async(scenario, timeout=20)


@pytest.fixture
def ws_roles(transactional_db):
    """The role groups (a transactional test's flush removes them with every table)."""
    from django.contrib.auth.models import Group

    for name in ("viewer", "operator"):
        Group.objects.get_or_create(name=name)


def test_it_finds_websocket_routes_to_check():
    assert len(WS_ROUTES) >= 2


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", WS_ROUTES)
def test_it_closes_websockets_to_anonymous_and_roleless_users(ws_roles, path):
    from tests.conftest import _user

    assert not _ws_connects(path, SAME_ORIGIN)
    assert not _ws_connects(path, SAME_ORIGIN, _ws_cookie(_user("ws-roleless")))


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", WS_ROUTES)
def test_it_lets_every_role_in_but_refuses_another_origin(ws_roles, path):
    from tests.conftest import _user

    users = [
        _user("ws-viewer", "viewer"),
        _user("ws-operator", "operator"),
        _user("ws-super", superuser=True),
    ]
    for user in users:
        cookie = _ws_cookie(user)
        assert _ws_connects(path, SAME_ORIGIN, cookie), f"{user.username} on {path}"
        assert not _ws_connects(path, b"http://evil.example", cookie), f"{path} cross-origin"
        assert not _ws_connects(path, b"null", cookie), f"{path} origin null"


# --- administration: the admin group or a superuser, nobody else ---------------------


def _admin_user(db):
    import uuid

    from django.contrib.auth.models import Group, User

    user = User.objects.create_user(username="adam-admin", password="pw-" + uuid.uuid4().hex)
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    return user


ADMIN_ROUTES = [r for r in ROUTES if r.values[2] == "admin"]


def test_it_has_administration_routes():
    assert len(ADMIN_ROUTES) >= 10


@pytest.mark.parametrize(("route", "pattern", "level"), ADMIN_ROUTES)
def test_it_refuses_administration_to_viewers_and_operators(
    client, viewer, operator, route, pattern, level
):
    path = _sample_path(route, pattern)
    for user in (viewer, operator):
        client.force_login(user)
        for method in ("get", "post"):
            response = getattr(client, method)(path)
            assert response.status_code == 403, f"{user.username} {method.upper()} {path}"


@pytest.mark.parametrize(("route", "pattern", "level"), ADMIN_ROUTES)
def test_it_lets_admins_administer(client, db, superuser, route, pattern, level):
    path = _sample_path(route, pattern)
    for user in (_admin_user(db), superuser):
        client.force_login(user)
        response = client.get(path)
        assert response.status_code not in (401, 403), f"{user.username} GET {path}"
        assert response.status_code < 500, f"{user.username} GET {path}"
