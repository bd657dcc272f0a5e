"""Tracing switched from the console: an operator chooses which vhosts the tap traces.

The choice is stored (tracer/store/traced.py) and the running tap follows it
within seconds. Only the default broker is traced (the tap reads the broker
of WARREN_AMQP_URL). Switching a vhost off also switches the broker's firehose
off for it on every node, so the broker stops paying for trace messages
nobody reads; what waits in its tap queue stays there (`manage.py untrace`
removes it).
"""

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from console import access
from console.models import AuditEntry
from console.views.common import safe_next
from rabbit import cluster
from rabbit.brokers import DEFAULT_SLUG, default_broker
from rabbit.management import ManagementClient
from rabbit.management_http import BrokerError, BrokerNotFound
from tracer.store import traced


def _vhost_words(vhost: str) -> str:
    return "every vhost" if vhost == traced.ALL_VHOSTS else f"vhost “{vhost}”"


@access.page(access.OPERATOR)
@require_POST
def tracing_switch(request: HttpRequest, vhost: str) -> HttpResponse:
    back = safe_next(request, reverse("vhosts"))
    wanted = request.POST.get("trace", "")
    target = f"tracing of {_vhost_words(vhost)}"
    if wanted not in ("on", "off"):
        AuditEntry.record(
            request, "tracing", AuditEntry.FAILED, DEFAULT_SLUG, vhost, target, "no on or off asked"
        )
        messages.error(request, "Nothing was changed: say whether tracing goes on or off.")
        return redirect(back)
    on = wanted == "on"
    action = "trace_on" if on else "trace_off"
    client = default_broker().client()
    try:
        if on and vhost != traced.ALL_VHOSTS:
            client.vhost(vhost)  # a vhost that does not exist is not stored
        changed = traced.choose(
            vhost, on, settings.WARREN_TRACE_VHOSTS, by=request.user.get_username()
        )
        nodes = "" if on or vhost == traced.ALL_VHOSTS else _firehose_off(client, vhost)
    except BrokerNotFound:
        AuditEntry.record(
            request, action, AuditEntry.FAILED, DEFAULT_SLUG, vhost, target, "no such vhost"
        )
        messages.error(request, f"Nothing was changed: the broker has no vhost “{vhost}”.")
        return redirect(back)
    except BrokerError as error:
        # The choice is stored; only switching the firehose off failed.
        AuditEntry.record(
            request, action, AuditEntry.FAILED, DEFAULT_SLUG, vhost, target, error.message
        )
        messages.warning(
            request,
            f"Warren no longer traces {_vhost_words(vhost)}, but the broker's firehose could not "
            f"be switched off: {error.message}",
        )
        return redirect(back)
    detail = ("switched on" if on else "switched off") + ("" if changed else " (already so)") + "."
    AuditEntry.record(request, action, AuditEntry.OK, DEFAULT_SLUG, vhost, target, detail + nodes)
    if on:
        messages.success(
            request,
            f"Warren traces {_vhost_words(vhost)}: the tap switches the firehose on and reads "
            "it within seconds.",
        )
    else:
        messages.success(request, f"Warren no longer traces {_vhost_words(vhost)}.{nodes}")
    return redirect(back)


def _firehose_off(client: ManagementClient, vhost: str) -> str:
    """The firehose off on every node; what each node says, in words for the message."""
    report = cluster.switch_tracing_off(client, vhost)
    still = [
        f"node {node.node} is {node.state}" + (f" ({node.reason})" if node.reason else "")
        for node in report.nodes
        if node.state != cluster.OFF
    ]
    if still:
        return " The firehose may still be on: " + "; ".join(still) + "."
    return " The broker's firehose is off on " + ", ".join(n.node for n in report.nodes) + "."
