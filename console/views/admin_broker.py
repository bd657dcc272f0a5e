"""Broker-wide administration (admin): feature flags, and definitions export and import.

An import is never applied straight from the upload: the file is kept in the
session, its preview compares it with the broker's current definitions (what it
would create, change, and leave alone), and only the Apply button of that
preview, naming the file's digest, sends it.
"""

import hashlib
import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console import access, definitions_diff
from console.administration import act, door, fresh_vhost_names, refuse
from console.brokers import current_broker
from console.models import AuditEntry
from console.vhosts import forget_vhost_names
from console.views.common import report, report_done
from rabbit.management_http import BrokerError

PENDING_IMPORT = "warren_definitions_import"
IMPORT_MAX_BYTES = 20 * 1024 * 1024
PREVIEW_ROWS = 500  # per list; the counts are always whole


# --- the cluster's name ------------------------------------------------------------


@access.page(access.ADMIN)
@require_http_methods(["GET", "POST"])
def cluster(request: HttpRequest) -> HttpResponse:
    """The name the cluster shows to clients and in the management UI; rename it."""
    broker = current_broker(request)
    if request.method == "POST":
        name = request.POST.get("name", "").strip()
        if not name or len(name.encode()) > 255:
            outcome = refuse(
                request, broker, "rename_cluster", "cluster", "a cluster name is 1 to 255 bytes."
            )
        else:
            outcome = act(
                request,
                broker,
                "rename_cluster",
                "cluster",
                lambda admin: admin.set_cluster_name(name),
                f"The cluster is now named '{name}'.",
                detail=f"renamed to {name!r}",
            )
        return report(request, outcome, reverse("admin_cluster"))
    context: dict[str, Any] = {"broker": broker, "cluster_name": ""}
    try:
        admin = door(broker)
        context["cluster_name"] = admin.cluster_name()
        overview = admin.overview()
        context["version"] = overview.get("rabbitmq_version", "")
        context["erlang"] = overview.get("erlang_version", "")
        context["node"] = overview.get("node", "")
    except BrokerError as error:
        context["broker_error"] = error
    return render(request, "cluster.html", context)


# --- feature flags ---------------------------------------------------------------


@access.page(access.ADMIN)
@require_GET
def feature_flags(request: HttpRequest) -> HttpResponse:
    broker = current_broker(request)
    context: dict[str, Any] = {"broker": broker, "flags": []}
    try:
        flags = sorted(door(broker).feature_flags(), key=lambda f: f.get("name", ""))
        context["flags"] = flags
        context["disabled"] = sum(1 for f in flags if f.get("state") != "enabled")
    except BrokerError as error:
        context["broker_error"] = error
    return render(request, "feature_flags.html", context)


@access.page(access.ADMIN)
@require_POST
def feature_flag_enable(request: HttpRequest, name: str) -> HttpResponse:
    broker = current_broker(request)
    back = reverse("feature_flags")
    if request.POST.get("confirm") != "yes":
        outcome = refuse(
            request,
            broker,
            "enable_feature_flag",
            f"feature flag {name}",
            "tick the box that says a feature flag cannot be disabled again.",
        )
        return report(request, outcome, back)
    outcome = act(
        request,
        broker,
        "enable_feature_flag",
        f"feature flag {name}",
        lambda admin: admin.enable_feature_flag(name),
        f"Feature flag '{name}' enabled on every node.",
    )
    return report(request, outcome, back)


# --- definitions --------------------------------------------------------------------


def _definitions_context(request: HttpRequest, **extra: Any) -> dict[str, Any]:
    broker = current_broker(request)
    names, broker_error = fresh_vhost_names(broker)
    context: dict[str, Any] = {
        "broker": broker,
        "broker_error": broker_error,
        "vhosts": names,
        "pending": request.session.get(PENDING_IMPORT),
    }
    context.update(extra)
    return context


@access.page(access.ADMIN)
@require_GET
def definitions(request: HttpRequest) -> HttpResponse:
    return render(request, "definitions.html", _definitions_context(request))


@access.page(access.ADMIN)
@require_GET
def definitions_export(request: HttpRequest) -> HttpResponse:
    broker = current_broker(request)
    vhost = request.GET.get("vhost") or None
    target = f"vhost {vhost}" if vhost else "whole broker"
    try:
        data = door(broker).definitions(vhost)
    except BrokerError as error:
        AuditEntry.record(
            request,
            "export_definitions",
            result=AuditEntry.FAILED,
            broker=broker.slug,
            vhost=vhost or "",
            target=target,
            detail=error.message,
        )
        messages.error(request, f"The export failed: {error.message}")
        return redirect(reverse("definitions"))
    AuditEntry.record(
        request,
        "export_definitions",
        broker=broker.slug,
        vhost=vhost or "",
        target=target,
        detail=_counts_words(data),
    )
    stamp = timezone.now().strftime("%Y-%m-%d-%H%M%S")
    scope = "".join(c if c.isalnum() or c in "-_." else "_" for c in (vhost or "broker"))
    response = HttpResponse(
        json.dumps(data, indent=2, ensure_ascii=False), content_type="application/json"
    )
    response["Content-Disposition"] = (
        f'attachment; filename="definitions-{broker.slug}-{scope}-{stamp}.json"'
    )
    return response


def _counts_words(data: dict[str, Any]) -> str:
    parts = [
        f"{len(data.get(kind.key) or [])} {kind.key.replace('_', ' ')}"
        for kind in definitions_diff.KINDS
        if data.get(kind.key)
    ]
    return ", ".join(parts) or "nothing"


def _uploaded_text(request: HttpRequest) -> tuple[str, str, str]:
    """(text, file name, problem) from the upload or the pasted text."""
    upload = request.FILES.get("file")
    if upload is not None:
        if upload.size and upload.size > IMPORT_MAX_BYTES:
            return "", upload.name or "", f"The file is larger than {IMPORT_MAX_BYTES // 2**20} MB."
        raw = upload.read()
        try:
            return raw.decode("utf-8"), upload.name or "upload", ""
        except UnicodeDecodeError:
            return "", upload.name or "", "The file is not UTF-8 text."
    text = request.POST.get("text", "")
    if not text.strip():
        return "", "", "Choose a definitions file (JSON, as an export gives) or paste one."
    return text, "pasted text", ""


@access.page(access.ADMIN)
@require_http_methods(["GET", "POST"])
def definitions_import(request: HttpRequest) -> HttpResponse:
    """POST: check an upload and keep it for its preview. GET: the preview."""
    broker = current_broker(request)
    if request.method == "POST":
        vhost = request.POST.get("vhost") or ""
        text, filename, problem = _uploaded_text(request)
        if not problem:
            try:
                definitions_diff.parse(text)
            except definitions_diff.DefinitionsError as error:
                problem = str(error)
        if problem:
            refuse(request, broker, "import_definitions", filename or "upload", problem, vhost)
            return render(
                request,
                "definitions.html",
                _definitions_context(request, import_error=problem, chosen_vhost=vhost),
                status=400,
            )
        request.session[PENDING_IMPORT] = {
            "text": text,
            "filename": filename,
            "vhost": vhost,
            "digest": hashlib.sha256(text.encode()).hexdigest(),
            "at": timezone.now().isoformat(),
        }
        return redirect(reverse("definitions_import"))
    pending = request.session.get(PENDING_IMPORT)
    if not pending:
        messages.info(request, "No import is waiting: choose a file first.")
        return redirect(reverse("definitions"))
    imported = definitions_diff.parse(pending["text"])
    context: dict[str, Any] = {"broker": broker, "pending": pending}
    try:
        current = door(broker).definitions(pending["vhost"] or None)
        preview = definitions_diff.compare(imported, current, pending["vhost"] or None)
        context.update(
            preview=preview,
            create=preview.create[:PREVIEW_ROWS],
            change=preview.change[:PREVIEW_ROWS],
            unchanged=preview.unchanged[:PREVIEW_ROWS],
            shown_at_most=PREVIEW_ROWS,
        )
    except BrokerError as error:
        context["broker_error"] = error
    return render(request, "definitions_import.html", context)


@access.page(access.ADMIN)
@require_POST
def definitions_import_apply(request: HttpRequest) -> HttpResponse:
    broker = current_broker(request)
    pending = request.session.get(PENDING_IMPORT)
    if not pending or request.POST.get("digest") != pending.get("digest"):
        outcome = refuse(
            request,
            broker,
            "import_definitions",
            "upload",
            "the import previewed is no longer the one waiting; preview it again.",
        )
        return report(request, outcome, reverse("definitions"))
    imported = definitions_diff.parse(pending["text"])
    vhost = pending["vhost"] or None
    target = f"{pending['filename']} into " + (f"vhost {vhost}" if vhost else "the whole broker")
    outcome = act(
        request,
        broker,
        "import_definitions",
        target,
        lambda admin: admin.import_definitions(imported, vhost),
        f"Definitions from {pending['filename']} imported"
        + (f" into vhost '{vhost}'." if vhost else "."),
        vhost=vhost or "",
        detail=f"{_counts_words(imported)}; digest {pending['digest'][:16]}",
    )
    if outcome.ok:
        del request.session[PENDING_IMPORT]
        forget_vhost_names(broker)
    return report_done(request, outcome, reverse("definitions"), reverse("definitions_import"))


@access.page(access.ADMIN)
@require_POST
def definitions_import_discard(request: HttpRequest) -> HttpResponse:
    pending = request.session.pop(PENDING_IMPORT, None)
    if pending:
        messages.info(
            request, f"The import of {pending['filename']} was discarded: nothing changed."
        )
    return redirect(reverse("definitions"))
