"""GET /api/health: anyone gets the status word; logged-in viewers get the details."""

from django.http import JsonResponse
from django.views.decorators.http import require_GET

from console import access
from rabbit.brokers import default_broker
from rabbit.management_http import BrokerError
from tracer.store.status import tap_health


def broker_health(broker):
    try:
        overview = broker.client().overview()
    except BrokerError as error:
        return {"reachable": False, "error": error.message}
    return {
        "reachable": True,
        "rabbitmq_version": overview.get("rabbitmq_version"),
        "cluster_name": overview.get("cluster_name"),
    }


def health_report():
    broker = broker_health(default_broker())
    tap = tap_health()
    # A tap that runs but cannot read one of its vhosts is not healthy either.
    tap_reading = tap.get("running", False) and all((tap.get("connected") or {}).values())
    healthy = broker["reachable"] and tap_reading and not tap.get("problems")
    return {"status": "ok" if healthy else "degraded", "broker": broker, "tap": tap}


@access.public
@require_GET
def health(request):
    report = health_report()
    if not access.can_view(request.user):
        return JsonResponse({"status": report["status"]})
    return JsonResponse(report)
