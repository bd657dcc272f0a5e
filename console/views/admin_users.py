"""Users of the broker (admin): the list, creating one, and one user's page with its
tags, password, permissions, topic permissions and limits.

A password hash never reaches a page: the list says only whether a user has a
password. A form that does not validate is shown again with what was typed
(passwords excepted) and its errors, and the attempt is audited.
"""

from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console import access
from console.admin_forms import (
    KNOWN_TAGS,
    PermissionForm,
    TopicPermissionForm,
    UserCreateForm,
    UserLimitsForm,
    UserUpdateForm,
)
from console.administration import act, bring_limits_to, door, limits_words, refuse
from console.brokers import current_broker
from console.views.common import form_errors, report, report_done
from rabbit.administration import USER_LIMITS, Administration
from rabbit.brokers import BrokerConfig
from rabbit.management_http import BrokerError, BrokerNotFound

# The list names a user's first vhosts and counts the rest (its page has them all).
VHOSTS_SHOWN = 4


def _tags(user: dict[str, Any]) -> list[str]:
    tags = user.get("tags") or []
    return tags if isinstance(tags, list) else [t for t in str(tags).split(",") if t]


def _user_rows(broker: BrokerConfig) -> list[dict[str, Any]]:
    admin = door(broker)
    permissions: dict[str, list[str]] = {}
    for permission in admin.permissions():
        permissions.setdefault(permission.get("user", ""), []).append(permission.get("vhost", ""))
    rows = []
    for user in sorted(admin.users(), key=lambda u: u.get("name", "")):
        name = user.get("name", "")
        rows.append(
            {
                "name": name,
                "tags": _tags(user),
                "has_password": bool(user.get("password_hash")),
                "limits": user.get("limits") or {},
                "vhosts": sorted(permissions.get(name, []))[:VHOSTS_SHOWN],
                "more_vhosts": max(0, len(permissions.get(name, [])) - VHOSTS_SHOWN),
                "is_warren": name == broker.username,
            }
        )
    return rows


@access.page(access.ADMIN)
@require_http_methods(["GET", "POST"])
def user_list(request: HttpRequest) -> HttpResponse:
    broker = current_broker(request)
    status = 200
    if request.method == "POST":
        form = UserCreateForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            tags = form.chosen_tags()
            outcome = act(
                request,
                broker,
                "create_user",
                f"user {data['name']}",
                lambda admin: admin.create_user(data["name"], data["password"] or "", tags),
                f"User '{data['name']}' created.",
                detail=f"tags {tags or '(none)'}, "
                + ("no password" if data["no_password"] else "with a password"),
            )
            if outcome.ok:
                messages.success(request, outcome.message)
                return redirect(reverse("user", args=[data["name"]]))
            form.add_error(None, outcome.message)
        else:
            refuse(
                request,
                broker,
                "create_user",
                f"user {request.POST.get('name', '')}",
                form_errors(form),
            )
        status = 400
    else:
        form = UserCreateForm()
    context: dict[str, Any] = {"broker": broker, "form": form, "rows": []}
    try:
        context["rows"] = _user_rows(broker)
    except BrokerError as error:
        context["broker_error"] = error
    return render(request, "users.html", context, status=status)


def _user_context(broker: BrokerConfig, name: str) -> dict[str, Any]:
    admin = door(broker)
    user = admin.user(name)
    vhosts = sorted(v.get("name", "") for v in admin.vhosts())
    return {
        "user_name": name,
        "tags": _tags(user),
        "has_password": bool(user.get("password_hash")),
        "is_warren": name == broker.username,
        "permissions": sorted(admin.user_permissions(name), key=lambda p: p.get("vhost", "")),
        "topic_permissions": sorted(
            admin.user_topic_permissions(name),
            key=lambda p: (p.get("vhost", ""), p.get("exchange", "")),
        ),
        "limits": admin.user_limits(name),
        "vhosts": vhosts,
    }


def _render_user(
    request: HttpRequest, name: str, status: int = 200, **bound: forms.Form
) -> HttpResponse:
    broker = current_broker(request)
    context: dict[str, Any] = {"broker": broker, "user_name": name}
    try:
        context.update(_user_context(broker, name))
    except BrokerNotFound:
        context["missing"] = True
        return render(request, "user.html", context, status=404)
    except BrokerError as error:
        context["broker_error"] = error
        return render(request, "user.html", context, status=status)
    tags = context["tags"]
    limits = context["limits"]
    vhosts = context["vhosts"]
    context["update_form"] = bound.get("update_form") or UserUpdateForm(
        initial={
            "tags": [t for t in tags if t in KNOWN_TAGS],
            "other_tags": ", ".join(t for t in tags if t not in KNOWN_TAGS),
        }
    )
    context["permission_form"] = bound.get("permission_form") or PermissionForm(vhosts=vhosts)
    context["topic_form"] = bound.get("topic_form") or TopicPermissionForm(vhosts=vhosts)
    context["limits_form"] = bound.get("limits_form") or UserLimitsForm(
        initial={
            "max_connections": limits.get("max-connections"),
            "max_channels": limits.get("max-channels"),
        }
    )
    return render(request, "user.html", context, status=status)


@access.page(access.ADMIN)
@require_GET
def user_detail(request: HttpRequest, name: str) -> HttpResponse:
    return _render_user(request, name)


def _back(name: str) -> str:
    return reverse("user", args=[name])


@access.page(access.ADMIN)
@require_POST
def user_update(request: HttpRequest, name: str) -> HttpResponse:
    broker = current_broker(request)
    form = UserUpdateForm(request.POST)
    if not form.is_valid():
        refuse(request, broker, "update_user", f"user {name}", form_errors(form))
        return _render_user(request, name, status=400, update_form=form)
    tags = form.chosen_tags()
    password = form.cleaned_data.get("password") or None
    outcome = act(
        request,
        broker,
        "update_user",
        f"user {name}",
        lambda admin: admin.update_user(name, tags, password),
        f"User '{name}' updated" + (" with a new password." if password else "."),
        detail=f"tags {tags or '(none)'}" + (", new password" if password else ""),
    )
    return report(request, outcome, _back(name))


@access.page(access.ADMIN)
@require_POST
def user_delete(request: HttpRequest, name: str) -> HttpResponse:
    broker = current_broker(request)
    if name == broker.username:
        outcome = refuse(
            request,
            broker,
            "delete_user",
            f"user {name}",
            f"Warren itself connects to the broker as '{name}'; deleting it would lock Warren out.",
        )
        return report(request, outcome, _back(name))
    outcome = act(
        request,
        broker,
        "delete_user",
        f"user {name}",
        lambda admin: admin.delete_user(name),
        f"User '{name}' deleted.",
    )
    return report_done(request, outcome, reverse("users"), _back(name))


def _vhost_names(broker: BrokerConfig) -> list[str]:
    try:
        return sorted(v.get("name", "") for v in door(broker).vhosts())
    except BrokerError:
        return []


@access.page(access.ADMIN)
@require_POST
def user_permission_set(request: HttpRequest, name: str) -> HttpResponse:
    broker = current_broker(request)
    form = PermissionForm(request.POST, vhosts=_vhost_names(broker))
    vhost = request.POST.get("vhost", "")
    if not form.is_valid():
        refuse(request, broker, "set_permissions", f"user {name}", form_errors(form), vhost)
        return _render_user(request, name, status=400, permission_form=form)
    data = form.cleaned_data
    outcome = act(
        request,
        broker,
        "set_permissions",
        f"user {name}",
        lambda admin: admin.set_permissions(
            data["vhost"], name, data["configure"], data["write"], data["read"]
        ),
        f"Permissions of '{name}' in vhost '{data['vhost']}' set.",
        vhost=data["vhost"],
        detail=f"configure {data['configure']!r}, write {data['write']!r}, read {data['read']!r}",
    )
    return report(request, outcome, _back(name))


def _clear(
    request: HttpRequest,
    name: str,
    action: str,
    clear: Callable[[Administration, str, str], None],
    what: str,
) -> HttpResponse:
    """Remove the user's permissions of one kind (`what`) in the vhost the form names:
    clear(admin, vhost, user)."""
    broker = current_broker(request)
    vhost = request.POST.get("vhost", "")
    outcome = act(
        request,
        broker,
        action,
        f"user {name}",
        lambda admin: clear(admin, vhost, name),
        f"{what} of '{name}' in vhost '{vhost}' removed.",
        vhost=vhost,
    )
    return report(request, outcome, _back(name))


@access.page(access.ADMIN)
@require_POST
def user_permission_clear(request: HttpRequest, name: str) -> HttpResponse:
    return _clear(
        request, name, "clear_permissions", Administration.clear_permissions, "Permissions"
    )


@access.page(access.ADMIN)
@require_POST
def user_topic_permission_set(request: HttpRequest, name: str) -> HttpResponse:
    broker = current_broker(request)
    form = TopicPermissionForm(request.POST, vhosts=_vhost_names(broker))
    vhost = request.POST.get("vhost", "")
    if not form.is_valid():
        refuse(request, broker, "set_topic_permissions", f"user {name}", form_errors(form), vhost)
        return _render_user(request, name, status=400, topic_form=form)
    data = form.cleaned_data
    outcome = act(
        request,
        broker,
        "set_topic_permissions",
        f"user {name}",
        lambda admin: admin.set_topic_permissions(
            data["vhost"], name, data["exchange"], data["write"], data["read"]
        ),
        f"Topic permissions of '{name}' on exchange '{data['exchange']}' "
        f"in vhost '{data['vhost']}' set.",
        vhost=data["vhost"],
        detail=f"exchange {data['exchange']!r}, write {data['write']!r}, read {data['read']!r}",
    )
    return report(request, outcome, _back(name))


@access.page(access.ADMIN)
@require_POST
def user_topic_permission_clear(request: HttpRequest, name: str) -> HttpResponse:
    return _clear(
        request,
        name,
        "clear_topic_permissions",
        Administration.clear_topic_permissions,
        "Topic permissions",
    )


@access.page(access.ADMIN)
@require_POST
def user_limits(request: HttpRequest, name: str) -> HttpResponse:
    broker = current_broker(request)
    form = UserLimitsForm(request.POST)
    if not form.is_valid():
        refuse(request, broker, "set_user_limits", f"user {name}", form_errors(form))
        return _render_user(request, name, status=400, limits_form=form)
    wanted = form.limits()

    def apply(admin: Administration) -> None:
        bring_limits_to(
            wanted,
            USER_LIMITS,
            admin.user_limits(name),
            lambda limit, value: admin.set_user_limit(name, limit, value),
            lambda limit: admin.clear_user_limit(name, limit),
        )

    outcome = act(
        request,
        broker,
        "set_user_limits",
        f"user {name}",
        apply,
        f"Limits of '{name}' set: {limits_words(wanted)}.",
    )
    return report(request, outcome, _back(name))
