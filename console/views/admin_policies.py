"""Policies and operator policies (admin): the list, and one editor for both kinds that
knows the keys, checks each against the policy's apply-to and its value's type,
and reports every problem before anything is sent.
"""

import re
from typing import Any, cast
from urllib.parse import quote

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console import access, policy_definitions
from console.administration import act, door, fresh_vhost_names, refuse
from console.brokers import current_broker
from console.vhosts import selected_vhost
from console.views.common import report
from rabbit.administration import POLICY_KINDS, PolicyKind
from rabbit.brokers import BrokerConfig
from rabbit.management_http import BrokerError, BrokerNotFound

KIND_LABELS = {"policies": "policy", "operator-policies": "operator policy"}
BLANK_ROWS = 3
MIN_ROWS = 5


def _kind(kind: str) -> PolicyKind:
    if kind not in POLICY_KINDS:
        raise Http404("No such kind of policy.")
    return cast(PolicyKind, kind)


def _broker_version(broker: BrokerConfig) -> str:
    try:
        return str(door(broker).overview().get("rabbitmq_version") or "3.10")
    except BrokerError:
        return "3.10"


def _summary(policy: dict[str, Any], kind: str) -> dict[str, Any]:
    definition = policy.get("definition") or {}
    return {
        "kind": kind,
        "kind_label": KIND_LABELS[kind],
        "vhost": policy.get("vhost", ""),
        "name": policy.get("name", ""),
        "pattern": policy.get("pattern", ""),
        "apply_to": policy.get("apply-to", ""),
        "priority": policy.get("priority", 0),
        "definition": [(k, policy_definitions.as_text(v)) for k, v in sorted(definition.items())],
    }


@access.page(access.ADMIN)
@require_GET
def policy_list(request: HttpRequest) -> HttpResponse:
    broker = current_broker(request)
    vhost = selected_vhost(request, broker)
    context: dict[str, Any] = {"broker": broker, "vhost": vhost, "rows": []}
    try:
        admin = door(broker)
        rows = [
            _summary(policy, kind)
            for kind in POLICY_KINDS
            for policy in admin.policies(kind, vhost)
        ]
        rows.sort(key=lambda r: (r["vhost"], r["kind"], -int(r["priority"] or 0), r["name"]))
        context["rows"] = rows
    except BrokerNotFound:
        context["notice"] = f"Vhost “{vhost}” does not exist (any more)."
    except BrokerError as error:
        context["broker_error"] = error
    return render(request, "policies.html", context)


def _rows_from(values: dict[str, Any]) -> list[tuple[str, str]]:
    rows = []
    index = 0
    while f"key_{index}" in values or f"value_{index}" in values:
        rows.append((str(values.get(f"key_{index}", "")), str(values.get(f"value_{index}", ""))))
        index += 1
    return rows


def _editor_rows(rows: list[tuple[str, str]]) -> list[dict[str, Any]]:
    filled = [r for r in rows if r[0].strip() or r[1].strip()]
    count = max(len(filled) + BLANK_ROWS, MIN_ROWS)
    padded = filled + [("", "")] * (count - len(filled))
    return [{"index": i, "key": k, "value": v} for i, (k, v) in enumerate(padded)]


def _check(
    values: dict[str, str], kind: PolicyKind, version: str, vhosts: list[str]
) -> tuple[dict[str, Any], list[str]]:
    problems = []
    name = values.get("name", "").strip()
    if not name:
        problems.append("Name: a policy needs a name.")
    if values.get("vhost", "") not in vhosts:
        problems.append(f"Vhost: “{values.get('vhost', '')}” is not a vhost of this broker.")
    pattern = values.get("pattern", "")
    if not pattern:
        problems.append("Pattern: a regular expression over names, e.g. ^orders\\. (.* for all).")
    else:
        try:
            re.compile(pattern)
        except re.error as error:
            problems.append(f"Pattern: not a valid regular expression: {error}.")
    priority = values.get("priority", "0").strip() or "0"
    if not re.fullmatch(r"-?\d+", priority):
        problems.append(f"Priority: “{priority}” is not a whole number.")
    operator = kind == "operator-policies"
    definition, row_problems = policy_definitions.parse_rows(_rows_from(values))
    problems.extend(row_problems)
    if not row_problems:
        problems.extend(
            policy_definitions.validate(definition, values.get("apply_to", ""), operator, version)
        )
    return definition, problems


def _editor(
    request: HttpRequest, kind: PolicyKind, vhost: str | None, name: str | None
) -> HttpResponse:
    broker = current_broker(request)
    operator = kind == "operator-policies"
    version = _broker_version(broker)
    vhosts, broker_error = fresh_vhost_names(broker)
    editing = name is not None
    problems: list[str] = []
    status = 200
    if request.method == "POST":
        values = {k: request.POST.get(k, "") for k in request.POST}
        if editing:
            values["name"], values["vhost"] = name or "", vhost or ""
        definition, problems = _check(values, kind, version, vhosts)
        target = f"{KIND_LABELS[kind]} {values.get('name', '')}"
        if not problems:
            policy_name, policy_vhost = values["name"].strip(), values["vhost"]
            priority = int(values.get("priority", "0").strip() or "0")
            apply_to = values["apply_to"]
            outcome = act(
                request,
                broker,
                "edit_policy" if editing else "create_policy",
                target,
                lambda admin: admin.put_policy(
                    kind,
                    policy_vhost,
                    policy_name,
                    values["pattern"],
                    definition,
                    priority,
                    apply_to,
                ),
                f"{KIND_LABELS[kind].capitalize()} '{policy_name}' saved "
                f"in vhost '{policy_vhost}'.",
                vhost=policy_vhost,
                detail=f"pattern {values['pattern']!r}, apply-to {apply_to}, "
                f"priority {priority}, definition {definition}",
            )
            if outcome.ok:
                messages.success(request, outcome.message)
                return redirect(reverse("policies") + "?vhost=" + quote(policy_vhost, safe=""))
            problems = [outcome.message]
        else:
            refuse(
                request,
                broker,
                "edit_policy" if editing else "create_policy",
                target,
                " ".join(problems),
                values.get("vhost", ""),
            )
        status = 400
        rows = _rows_from(values)
    elif editing:
        try:
            policy = door(broker).policy(kind, vhost or "", name or "")
        except BrokerNotFound:
            raise Http404(f"No {KIND_LABELS[kind]} {name!r} in vhost {vhost!r}.") from None
        except BrokerError as error:
            return render(
                request,
                "policy_form.html",
                {"broker": broker, "broker_error": error, "kind": kind, "editing": True},
            )
        values = {
            "name": policy.get("name", ""),
            "vhost": policy.get("vhost", ""),
            "pattern": policy.get("pattern", ""),
            "apply_to": policy.get("apply-to", "queues"),
            "priority": str(policy.get("priority", 0)),
        }
        rows = [
            (k, policy_definitions.as_text(v))
            for k, v in sorted((policy.get("definition") or {}).items())
        ]
    else:
        values = {
            "vhost": request.GET.get("vhost") or selected_vhost(request, broker) or "/",
            "apply_to": "queues",
            "priority": "0",
            "pattern": "",
        }
        rows = []
    apply_to_choices = policy_definitions.apply_to_choices(version, operator)
    context = {
        "broker": broker,
        "kind": kind,
        "kind_label": KIND_LABELS[kind],
        "operator": operator,
        "editing": editing,
        "values": values,
        "vhosts": vhosts,
        "problems": problems,
        "rows": _editor_rows(rows),
        "apply_to_choices": [
            (a, policy_definitions.APPLY_TO_LABELS[a], policy_definitions.reach_attr(a))
            for a in apply_to_choices
        ],
        "keys": [k for k in policy_definitions.KEYS if k.operator or not operator],
        "version": version,
        "broker_error": broker_error,
    }
    return render(request, "policy_form.html", context, status=status)


@access.page(access.ADMIN)
@require_http_methods(["GET", "POST"])
def policy_new(request: HttpRequest) -> HttpResponse:
    kind = _kind(request.GET.get("kind") or request.POST.get("kind") or "policies")
    return _editor(request, kind, None, None)


@access.page(access.ADMIN)
@require_http_methods(["GET", "POST"])
def policy_edit(request: HttpRequest, kind: str, vhost: str, name: str) -> HttpResponse:
    return _editor(request, _kind(kind), vhost, name)


@access.page(access.ADMIN)
@require_POST
def policy_delete(request: HttpRequest, kind: str, vhost: str, name: str) -> HttpResponse:
    broker = current_broker(request)
    policy_kind = _kind(kind)
    label = KIND_LABELS[policy_kind]
    outcome = act(
        request,
        broker,
        "delete_policy",
        f"{label} {name}",
        lambda admin: admin.delete_policy(policy_kind, vhost, name),
        f"{label.capitalize()} '{name}' deleted from vhost '{vhost}'.",
        vhost=vhost,
    )
    return report(request, outcome, reverse("policies"))
