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


def _is_api(route):
    return route.startswith("api/")


def test_it_finds_routes_to_check():
    assert len(ROUTES) >= 4


@pytest.mark.parametrize(("route", "pattern", "level"), ROUTES)
def test_it_has_an_access_level_on_every_route(route, pattern, level):
    assert level in ("public", "viewer", "operator"), (
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
        if _is_api(route):
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
    if level == "operator":
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
