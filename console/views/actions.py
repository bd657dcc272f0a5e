"""Operator actions: publish, purge, delete, bind, unbind, move, close a connection.

Each view is POST only (publish also shows its form on GET), for the operator
role, CSRF-checked by Django, and hands the work to console.operations, which
audits every attempt. The result comes back as a message on the page the
operator came from.
"""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST

from console import access, operations, plumbing
from console.brokers import current_broker
from console.forms import (
    BindForm,
    CloseConnectionForm,
    DeleteExchangeForm,
    DeleteQueueForm,
    MoveForm,
    PublishForm,
    UnbindForm,
)
from console.models import AuditEntry
from console.views.common import form_errors, report, report_done, safe_next


def _queue_url(vhost, name):
    return reverse("queue", args=[vhost, name])


def _plumbing_refused(request, action, broker, vhost, kind, name, verb, fallback):
    """Warren's own plumbing is touched only with the explicit confirmation that tracing
    breaks (console/plumbing.py); without it nothing is done, the attempt is audited and
    the operator is told what would break."""
    if plumbing.confirmed(request.POST):
        return None
    words = plumbing.what_breaks(verb, kind, name, vhost)
    AuditEntry.record(
        request,
        action,
        result=AuditEntry.FAILED,
        broker=broker.slug,
        vhost=vhost,
        target=f"{kind} {name}",
        detail="refused: Warren's plumbing, tracing-break not confirmed",
    )
    messages.error(request, f"Nothing was done. {words} Confirm that tracing breaks to go ahead.")
    return redirect(safe_next(request, fallback))


def _queue_plumbing_refused(request, action, broker, vhost, name, verb):
    """_plumbing_refused for a queue, when it is one of Warren's."""
    if not plumbing.is_warren_queue(name):
        return None
    return _plumbing_refused(
        request, action, broker, vhost, "queue", name, verb, _queue_url(vhost, name)
    )


def _invalid(request, action, broker, vhost, target, form, fallback):
    """A form that does not validate is a failed attempt: audited, explained, sent back."""
    words = form_errors(form)
    AuditEntry.record(
        request,
        action,
        result=AuditEntry.FAILED,
        broker=broker.slug,
        vhost=vhost,
        target=target,
        detail=f"invalid form: {words}",
    )
    messages.error(request, f"Nothing was done: {words}")
    return redirect(safe_next(request, fallback))


@access.page(access.OPERATOR)
@require_POST
def queue_purge(request, vhost, name):
    broker = current_broker(request)
    refused = _queue_plumbing_refused(request, "purge_queue", broker, vhost, name, "purge")
    if refused:
        return refused
    depth = request.POST.get("depth")
    outcome = operations.purge_queue(
        request, broker, vhost, name, depth=int(depth) if (depth or "").isdigit() else None
    )
    return report(request, outcome, _queue_url(vhost, name))


@access.page(access.OPERATOR)
@require_POST
def queue_delete(request, vhost, name):
    broker = current_broker(request)
    refused = _queue_plumbing_refused(request, "delete_queue", broker, vhost, name, "delete")
    if refused:
        return refused
    form = DeleteQueueForm(request.POST)
    form.is_valid()  # two optional check boxes: always valid
    outcome = operations.delete_queue(request, broker, vhost, name, **form.cleaned_data)
    listed = reverse("queues") + "?vhost=" + _quoted(vhost)
    return report_done(request, outcome, listed, _queue_url(vhost, name))


@access.page(access.OPERATOR)
@require_POST
def queue_move(request, vhost, name):
    broker = current_broker(request)
    form = MoveForm(request.POST, source=name)
    if not form.is_valid():
        return _invalid(
            request, "move_messages", broker, vhost, f"queue {name}", form, _queue_url(vhost, name)
        )
    return report(
        request, operations.move(request, broker, vhost, name, form), _queue_url(vhost, name)
    )


@access.page(access.OPERATOR)
@require_POST
def exchange_delete(request, vhost, name):
    broker = current_broker(request)
    form = DeleteExchangeForm(request.POST)
    form.is_valid()
    fallback = reverse("exchange", args=[vhost, name])
    if name == "" or name.startswith("amq."):
        outcome = operations.Outcome(False, "The default and amq.* exchanges cannot be deleted.")
        AuditEntry.record(
            request,
            "delete_exchange",
            result=AuditEntry.FAILED,
            broker=broker.slug,
            vhost=vhost,
            target=f"exchange {name}",
            detail="built-in exchange",
        )
        return report(request, outcome, fallback)
    if plumbing.is_warren_exchange(name):
        refused = _plumbing_refused(
            request, "delete_exchange", broker, vhost, "exchange", name, "delete", fallback
        )
        if refused:
            return refused
    outcome = operations.delete_exchange(request, broker, vhost, name, **form.cleaned_data)
    listed = reverse("exchanges") + "?vhost=" + _quoted(vhost)
    return report_done(request, outcome, listed, fallback)


@access.page(access.OPERATOR)
@require_http_methods(["GET", "POST"])
def exchange_publish(request, vhost, name):
    """GET: the publish form on its own page; POST: publish with confirms."""
    broker = current_broker(request)
    fallback = reverse("exchange", args=[vhost, name])
    if request.method == "POST":
        form = PublishForm(request.POST)
        if form.is_valid():
            outcome = operations.publish(request, broker, vhost, name, form)
            return report(request, outcome, fallback)
        AuditEntry.record(
            request,
            "publish",
            result=AuditEntry.FAILED,
            broker=broker.slug,
            vhost=vhost,
            target=f"exchange {name or '(AMQP default)'}",
            detail=f"invalid form: {form_errors(form)}",
        )
        status = 400
    else:
        form = PublishForm(initial={"routing_key": request.GET.get("routing_key", "")})
        status = 200
    context = {
        "broker": broker,
        "vhost": vhost,
        "name": name,
        "form": form,
        "next": safe_next(request, fallback),
    }
    return render(request, "publish.html", context, status=status)


@access.page(access.OPERATOR)
@require_POST
def binding_add(request, vhost):
    broker = current_broker(request)
    form = BindForm(request.POST)
    fallback = reverse("exchanges")
    if not form.is_valid():
        return _invalid(request, "bind", broker, vhost, "binding", form, fallback)
    data = form.cleaned_data
    outcome = operations.bind(
        request,
        broker,
        vhost,
        data["source"],
        data["destination_type"],
        data["destination"],
        data["routing_key"],
        data["arguments"],
    )
    return report(request, outcome, fallback)


@access.page(access.OPERATOR)
@require_POST
def binding_remove(request, vhost):
    broker = current_broker(request)
    form = UnbindForm(request.POST)
    fallback = reverse("exchanges")
    if not form.is_valid():
        return _invalid(request, "unbind", broker, vhost, "binding", form, fallback)
    data = form.cleaned_data
    if plumbing.is_warren_binding(data["source"], data["destination_type"], data["destination"]):
        binding = f"{data['source']} → {data['destination']}"
        refused = _plumbing_refused(
            request, "unbind", broker, vhost, "binding", binding, "unbind", fallback
        )
        if refused:
            return refused
    outcome = operations.unbind(
        request,
        broker,
        vhost,
        data["source"],
        data["destination_type"],
        data["destination"],
        data["properties_key"] or "~",
        routing_key=data["routing_key"],
    )
    return report(request, outcome, fallback)


@access.page(access.OPERATOR)
@require_POST
def connection_close(request, name):
    broker = current_broker(request)
    form = CloseConnectionForm(request.POST)
    form.is_valid()
    reason = form.cleaned_data.get("reason") or "Closed by an operator in Warren"
    outcome = operations.close_connection(
        request, broker, name, reason, vhost=request.POST.get("vhost", "")
    )
    return report_done(request, outcome, reverse("connections"), reverse("connection", args=[name]))


def _quoted(vhost):
    from urllib.parse import quote

    return quote(vhost, safe="")
