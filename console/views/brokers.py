"""Brokers: the environment's default and the ones added here; passwords never shown."""

from concurrent.futures import ThreadPoolExecutor

from django.contrib import messages
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from console import access
from console.brokers import SESSION_KEY, all_brokers, current_broker, get_broker
from console.forms import BrokerForm
from console.models import AuditEntry, Broker
from console.vhosts import forget_vhost_names
from console.views.common import form_errors
from rabbit.brokers import DEFAULT_SLUG
from rabbit.management_http import BrokerError

PROBE_TIMEOUT = 2.0


def _probe(broker):
    """{"ok", "version", "cluster", "error"} from one quick overview call."""
    try:
        overview = broker.client(timeout=PROBE_TIMEOUT).overview()
    except BrokerError as error:
        return {"ok": False, "error": error.message, "banner": error.banner}
    return {
        "ok": True,
        "version": overview.get("rabbitmq_version", "?"),
        "cluster": overview.get("cluster_name", ""),
        "queues": (overview.get("object_totals") or {}).get("queues"),
    }


def _audit(request, action, broker_slug, result, detail):
    AuditEntry.record(
        request,
        action,
        result=result,
        broker=broker_slug,
        target=f"broker {broker_slug}",
        detail=detail,
    )


@access.page(access.VIEWER)
@require_GET
def broker_list(request):
    brokers = all_brokers()
    with ThreadPoolExecutor(max_workers=min(8, len(brokers))) as pool:
        probes = list(pool.map(_probe, brokers))
    stored = {b.slug: b for b in Broker.objects.all()}
    rows = [
        {"broker": broker, "probe": probe, "stored": stored.get(broker.slug)}
        for broker, probe in zip(brokers, probes, strict=True)
    ]
    context = {
        "rows": rows,
        "current": current_broker(request),
        "form": BrokerForm() if access.can_operate(request.user) else None,
        "default_slug": DEFAULT_SLUG,
    }
    return render(request, "brokers.html", context)


@access.page(access.OPERATOR)
@require_POST
def broker_add(request):
    form = BrokerForm(request.POST)
    if form.is_valid():
        broker = form.save()
        _audit(
            request,
            "add_broker",
            broker.slug,
            AuditEntry.OK,
            f"{broker.name} at {broker.management_url}",
        )
        messages.success(request, f"Broker '{broker.name}' added. Switch to it from the list.")
        return redirect("brokers")
    _audit(
        request,
        "add_broker",
        request.POST.get("slug", ""),
        AuditEntry.FAILED,
        f"invalid form: {form_errors(form)}",
    )
    context = {"form": form, "editing": None}
    return render(request, "broker_form.html", context, status=400)


@access.page(access.OPERATOR)
@require_http_methods(["GET", "POST"])
def broker_edit(request, slug):
    stored = get_object_or_404(Broker, slug=slug)
    if request.method == "POST":
        form = BrokerForm(request.POST, instance=stored)
        if form.is_valid():
            broker = form.save()
            forget_vhost_names(get_broker(broker.slug))
            changed = ", ".join(f for f in form.changed_data if f != "password")
            if "password" in form.changed_data and request.POST.get("password"):
                changed = (changed + ", password").lstrip(", ")
            _audit(
                request,
                "edit_broker",
                broker.slug,
                AuditEntry.OK,
                f"changed: {changed or 'nothing'}",
            )
            messages.success(request, f"Broker '{broker.name}' saved.")
            return redirect("brokers")
        _audit(
            request, "edit_broker", slug, AuditEntry.FAILED, f"invalid form: {form_errors(form)}"
        )
        status = 400
    else:
        form = BrokerForm(instance=stored)
        status = 200
    return render(request, "broker_form.html", {"form": form, "editing": stored}, status=status)


@access.page(access.OPERATOR)
@require_POST
def broker_delete(request, slug):
    stored = Broker.objects.filter(slug=slug).first()
    if stored is None:
        _audit(request, "remove_broker", slug, AuditEntry.FAILED, "no such broker")
        messages.error(request, "There is no such broker (the default broker cannot be removed).")
        return redirect("brokers")
    name = stored.name
    stored.delete()
    if request.session.get(SESSION_KEY) == slug:
        request.session.pop(SESSION_KEY, None)
    _audit(request, "remove_broker", slug, AuditEntry.OK, f"removed {name}")
    messages.success(request, f"Broker '{name}' removed.")
    return redirect("brokers")
