"""Who may do what, checked first by every view.

Levels: "viewer" reads, "operator" may also change things (publish, purge,
delete, replay), "admin" may also administer the broker (users, permissions,
vhosts, policies, feature flags, definitions); superusers may all. Each role
includes the ones before it. Each view is wrapped by exactly one of
`page`, `api` or `public`, which records the level on the view function
(`warren_access`) so a test can walk the URL configuration and find any route
left unprotected.
"""

import functools

from django.contrib.auth.views import redirect_to_login
from django.http import Http404, JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt

from console.models import ApiToken, AuditEntry
from rabbit.management_http import BrokerError

VIEWER = "viewer"
OPERATOR = "operator"
ADMIN = "admin"
LEVELS = (VIEWER, OPERATOR, ADMIN)
# Who holds each level: a role includes every level before it.
_HOLDERS = {
    VIEWER: ("superuser", ADMIN, OPERATOR, VIEWER),
    OPERATOR: ("superuser", ADMIN, OPERATOR),
    ADMIN: ("superuser", ADMIN),
}
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def role_of(user):
    """'superuser', 'admin', 'operator', 'viewer' or None for this user."""
    if user is None or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return "superuser"
    groups = {group.name for group in user.groups.all()}
    if ADMIN in groups:
        return ADMIN
    if OPERATOR in groups:
        return OPERATOR
    if VIEWER in groups:
        return VIEWER
    return None


def allows(user, level):
    return role_of(user) in _HOLDERS[level]


def can_view(user):
    return allows(user, VIEWER)


def can_operate(user):
    return allows(user, OPERATOR)


def can_administer(user):
    return allows(user, ADMIN)


def _record_denied(request, level):
    if level != VIEWER or request.method not in SAFE_METHODS:
        match = request.resolver_match
        AuditEntry.record(
            request,
            action=match.url_name if match and match.url_name else "request",
            result=AuditEntry.DENIED,
            target=f"{request.method} {request.path}"[:1000],
            detail=f"needs {level}",
        )


def _call_audited(view, request, level, args, kwargs):
    """Runs the view; an operator's change it left unrecorded (a 404, a refused
    form, an error) is recorded here, so that the audit log misses no attempt."""
    if level == VIEWER or request.method in SAFE_METHODS:
        return view(request, *args, **kwargs)
    try:
        response = view(request, *args, **kwargs)
    except Exception as error:
        if not getattr(request, "warren_audited", False):
            _record_unaudited(request, AuditEntry.FAILED, f"{type(error).__name__}: {error}")
        raise
    if not getattr(request, "warren_audited", False):
        result = AuditEntry.FAILED if response.status_code >= 400 else AuditEntry.OK
        _record_unaudited(request, result, f"HTTP {response.status_code}")
    return response


def _record_unaudited(request, result, detail):
    match = request.resolver_match
    AuditEntry.record(
        request,
        action=match.url_name if match and match.url_name else "request",
        result=result,
        target=f"{request.method} {request.path}"[:1000],
        detail=detail[:1000],
    )


def _denied_message(level):
    if level == OPERATOR:
        return "This action needs the operator role."
    if level == ADMIN:
        return "Administration needs the admin role (or a superuser)."
    return "Your account has no role yet: ask an administrator to add you to viewer or operator."


def page(level=VIEWER):
    """For HTML views: login first, then the role; a denial is a 403 page."""
    if level not in LEVELS:
        raise ValueError(f"unknown access level {level!r}")

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not allows(request.user, level):
                _record_denied(request, level)
                return render(
                    request,
                    "403.html",
                    {"message": _denied_message(level)},
                    status=403,
                )
            return _call_audited(view, request, level, args, kwargs)

        wrapper.warren_access = level
        wrapper.warren_kind = "page"
        return wrapper

    return decorate


def api_error(status, message):
    return JsonResponse({"error": message}, status=status)


def _bearer_user(request):
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return ApiToken.objects.user_for(token.strip())


def _csrf_failure(request):
    """Session-authenticated changes must carry the CSRF token; tokens need not."""
    check = CsrfViewMiddleware(lambda req: None)
    check.process_request(request)
    return check.process_view(request, None, (), {})


def api(level=VIEWER):
    """For JSON views: session or bearer token; 401/403/502 as JSON errors."""
    if level not in LEVELS:
        raise ValueError(f"unknown access level {level!r}")

    def decorate(view):
        @functools.wraps(view)
        def wrapper(request, *args, **kwargs):
            has_bearer = "Authorization" in request.headers
            if has_bearer:
                user = _bearer_user(request)
                if user is None:
                    return api_error(401, "The bearer token is not valid.")
                request.user = user
            elif not request.user.is_authenticated:
                return api_error(401, "Log in or send an Authorization: Bearer token.")
            elif request.method not in SAFE_METHODS and _csrf_failure(request):
                return api_error(403, "CSRF token missing or wrong.")
            if not allows(request.user, level):
                _record_denied(request, level)
                return api_error(403, _denied_message(level))
            try:
                response = _call_audited(view, request, level, args, kwargs)
            except BrokerError as error:
                return api_error(502, error.message)
            except Http404 as error:
                # JSON callers get JSON errors, not Django's HTML page.
                return api_error(404, str(error) or "Not found.")
            if response.status_code == 405 and "Allow" in response:
                allowed = response["Allow"]
                response = api_error(405, f"{request.method} is not allowed here: use {allowed}.")
                response["Allow"] = allowed
            return response

        wrapper.warren_access = level
        wrapper.warren_kind = "api"
        return csrf_exempt(wrapper)

    return decorate


def public(view):
    """Marks a view that anyone may call (login, health)."""
    view.warren_access = "public"
    return view
