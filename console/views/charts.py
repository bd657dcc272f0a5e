"""The charts' data: rates and queued messages over time, as JSON for static/js/charts.js.

One endpoint per page that draws charts (Overview, a queue, an exchange); the
range (`?range=10m`) picks how far back and at which step the broker's samples
are asked for (console/charts.py). A broker that cannot answer is a 502 with
its words, which the page shows in place of the chart.
"""

from collections.abc import Callable
from functools import wraps

from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from console import access, charts
from console.brokers import current_broker
from console.vhosts import selected_vhost
from rabbit import history
from rabbit.management_http import BrokerNotFound


def _not_found_is_404(view: Callable[..., JsonResponse]) -> Callable[..., JsonResponse]:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: str, **kwargs: str) -> JsonResponse:
        try:
            return view(request, *args, **kwargs)
        except BrokerNotFound as error:
            return access.api_error(404, error.message)

    return wrapper


def _answer(chosen: charts.Range, drawn: dict[str, object]) -> JsonResponse:
    return JsonResponse({"range": chosen.key, "words": chosen.words, "charts": drawn})


@access.api(access.VIEWER)
@require_GET
@_not_found_is_404
def overview_charts(request: HttpRequest) -> JsonResponse:
    """The broker's charts, or the chosen vhost's (`?vhost=`, else the session's choice)."""
    broker = current_broker(request)
    chosen = charts.pick_range(request.GET.get("range"), charts.BROKER_WIDE)
    client = broker.client()
    vhost = selected_vhost(request, broker)
    if vhost:
        raw = history.vhost(client, vhost, chosen.age_s, chosen.incr_s)
        return _answer(chosen, charts.vhost_charts(raw))
    raw = history.overview(client, chosen.age_s, chosen.incr_s)
    return _answer(chosen, charts.overview_charts(raw))


@access.api(access.VIEWER)
@require_GET
@_not_found_is_404
def queue_charts(request: HttpRequest, vhost: str, name: str) -> JsonResponse:
    chosen = charts.pick_range(request.GET.get("range"), charts.PER_OBJECT)
    raw = history.queue(current_broker(request).client(), vhost, name, chosen.age_s, chosen.incr_s)
    return _answer(chosen, charts.queue_charts(raw))


@access.api(access.VIEWER)
@require_GET
@_not_found_is_404
def exchange_charts(request: HttpRequest, vhost: str, name: str) -> JsonResponse:
    chosen = charts.pick_range(request.GET.get("range"), charts.PER_OBJECT)
    client = current_broker(request).client()
    raw = history.exchange(client, vhost, name, chosen.age_s, chosen.incr_s)
    return _answer(chosen, charts.exchange_charts(raw))


def page_charts(
    request: HttpRequest,
    url: str,
    offered: tuple[str, ...],
    drawn: tuple[tuple[str, str, str], ...],
    title: str = "Over time",
) -> dict[str, object]:
    """The context of templates/partials/timecharts.html: the range asked (`?range=`),
    the picker's ranges, the data's URL and which charts to draw (key, title, empty words)."""
    chosen = charts.pick_range(request.GET.get("range"), offered)
    return {
        "chart_range": chosen,
        "chart_ranges": [charts.RANGES[key] for key in offered],
        "chart_url": f"{url}?range={chosen.key}",
        "charts": drawn,
        "charts_title": title,
    }


QUEUE_CHARTS = (
    ("rates", "Message rates (msg/s)", "Nothing published, delivered or acked in this range."),
    ("queued", "Queued messages", "No samples of the queue's length in this range yet."),
)
EXCHANGE_CHARTS = (
    ("rates", "Messages in and out (msg/s)", "Nothing published to this exchange in this range."),
)
OVERVIEW_CHARTS = (
    ("rates", "Message rates (msg/s)", "No messages published or delivered in this range."),
    ("queued", "Queued messages", "No queued messages in this range."),
    (
        "churn",
        "Connections and channels opened and closed (per s)",
        "No connection opened or closed in this range.",
    ),
)
VHOST_CHARTS = OVERVIEW_CHARTS[:2]
