"""Vhosts as an administrator sees them (admin): create with description, tags and
default queue type; limits; delete after typing the vhost's name.

The Vhosts page (console/views/vhosts.py) shows every vhost's traffic to every
role; these pages change them.
"""

from typing import Any

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console import access
from console.admin_forms import ConfirmNameForm, VhostForm, VhostLimitsForm
from console.administration import (
    act,
    bring_limits_to,
    door,
    limits_words,
    refuse,
    split_tags,
)
from console.brokers import current_broker
from console.vhosts import forget_selection, forget_vhost_names, selected_vhost
from console.views.common import form_errors, report, report_done
from rabbit.administration import VHOST_LIMITS, Administration
from rabbit.brokers import BrokerConfig
from rabbit.management_http import BrokerError, BrokerNotFound


def _tags(vhost: dict[str, Any]) -> list[str]:
    tags = vhost.get("tags") or (vhost.get("metadata") or {}).get("tags") or []
    return tags if isinstance(tags, list) else split_tags(str(tags))


def _queue_type(vhost: dict[str, Any]) -> str:
    kind = vhost.get("default_queue_type") or (vhost.get("metadata") or {}).get(
        "default_queue_type"
    )
    return "" if kind in (None, "undefined") else str(kind)


def _rows(broker: BrokerConfig) -> list[dict[str, Any]]:
    admin = door(broker)
    limits = admin.all_vhost_limits()
    return [
        {
            "name": v.get("name", ""),
            "description": v.get("description") or "",
            "tags": _tags(v),
            "default_queue_type": _queue_type(v),
            "tracing": bool(v.get("tracing")),
            "limits": limits.get(v.get("name", ""), {}),
        }
        for v in sorted(admin.vhosts(), key=lambda v: v.get("name", ""))
    ]


@access.page(access.ADMIN)
@require_http_methods(["GET", "POST"])
def admin_vhost_list(request: HttpRequest) -> HttpResponse:
    broker = current_broker(request)
    status = 200
    if request.method == "POST":
        form = VhostForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            tags = split_tags(data["tags"])

            def create(admin: Administration) -> None:
                admin.create_vhost(
                    data["name"], data["description"], tags, data["default_queue_type"]
                )
                if data["grant_warren"]:
                    admin.set_permissions(data["name"], broker.username, ".*", ".*", ".*")

            outcome = act(
                request,
                broker,
                "create_vhost",
                f"vhost {data['name']}",
                create,
                f"Vhost '{data['name']}' created.",
                vhost=data["name"],
                detail=f"description {data['description']!r}, tags {tags}, "
                f"default queue type {data['default_queue_type'] or '(broker default)'}"
                + (f", permissions for {broker.username}" if data["grant_warren"] else ""),
            )
            if outcome.ok:
                forget_vhost_names(broker)
                messages.success(request, outcome.message)
                return redirect(reverse("admin_vhost", args=[data["name"]]))
            form.add_error(None, outcome.message)
        else:
            refuse(
                request,
                broker,
                "create_vhost",
                f"vhost {request.POST.get('name', '')}",
                form_errors(form),
            )
        status = 400
    else:
        form = VhostForm()
    context: dict[str, Any] = {"broker": broker, "form": form, "rows": []}
    try:
        context["rows"] = _rows(broker)
    except BrokerError as error:
        context["broker_error"] = error
    return render(request, "admin_vhosts.html", context, status=status)


def _render_vhost(
    request: HttpRequest, name: str, status: int = 200, **bound: forms.Form
) -> HttpResponse:
    broker = current_broker(request)
    context: dict[str, Any] = {"broker": broker, "vhost_name": name}
    try:
        admin = door(broker)
        vhost = admin.vhost(name)
        limits = admin.vhost_limits(name)
        context.update(
            description=vhost.get("description") or "",
            tags=_tags(vhost),
            default_queue_type=_queue_type(vhost),
            tracing=bool(vhost.get("tracing")),
            limits=limits,
            permissions=sorted(admin.vhost_permissions(name), key=lambda p: p.get("user", "")),
        )
    except BrokerNotFound:
        context["missing"] = True
        return render(request, "admin_vhost.html", context, status=404)
    except BrokerError as error:
        context["broker_error"] = error
        return render(request, "admin_vhost.html", context, status=status)
    context["limits_form"] = bound.get("limits_form") or VhostLimitsForm(
        initial={
            "max_connections": limits.get("max-connections"),
            "max_queues": limits.get("max-queues"),
        }
    )
    context["delete_form"] = bound.get("delete_form") or ConfirmNameForm(expected=name)
    return render(request, "admin_vhost.html", context, status=status)


@access.page(access.ADMIN)
@require_GET
def admin_vhost_detail(request: HttpRequest, name: str) -> HttpResponse:
    return _render_vhost(request, name)


@access.page(access.ADMIN)
@require_POST
def admin_vhost_limits(request: HttpRequest, name: str) -> HttpResponse:
    broker = current_broker(request)
    form = VhostLimitsForm(request.POST)
    if not form.is_valid():
        refuse(request, broker, "set_vhost_limits", f"vhost {name}", form_errors(form), name)
        return _render_vhost(request, name, status=400, limits_form=form)
    wanted = form.limits()

    def apply(admin: Administration) -> None:
        bring_limits_to(
            wanted,
            VHOST_LIMITS,
            admin.vhost_limits(name),
            lambda limit, value: admin.set_vhost_limit(name, limit, value),
            lambda limit: admin.clear_vhost_limit(name, limit),
        )

    outcome = act(
        request,
        broker,
        "set_vhost_limits",
        f"vhost {name}",
        apply,
        f"Limits of vhost '{name}' set: {limits_words(wanted)}.",
        vhost=name,
    )
    return report(request, outcome, reverse("admin_vhost", args=[name]))


@access.page(access.ADMIN)
@require_POST
def admin_vhost_delete(request: HttpRequest, name: str) -> HttpResponse:
    broker = current_broker(request)
    form = ConfirmNameForm(request.POST, expected=name)
    if not form.is_valid():
        refuse(request, broker, "delete_vhost", f"vhost {name}", form_errors(form), name)
        return _render_vhost(request, name, status=400, delete_form=form)
    outcome = act(
        request,
        broker,
        "delete_vhost",
        f"vhost {name}",
        lambda admin: admin.delete_vhost(name),
        f"Vhost '{name}' deleted with everything in it.",
        vhost=name,
    )
    if outcome.ok:
        forget_vhost_names(broker)
        if selected_vhost(request, broker) == name:
            forget_selection(request, broker)
    return report_done(
        request, outcome, reverse("admin_vhosts"), reverse("admin_vhost", args=[name])
    )
