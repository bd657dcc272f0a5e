"""A stream queue's browser: its messages from first, last, an offset or a time, page by
page, read without taking anything away (console/streams.py, rabbit/streams.py)."""

from urllib.parse import urlencode

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from console import access, peek, streams
from console.brokers import current_broker
from console.views.common import wants_partial
from console.views.queues import full_queue_context
from rabbit import amqp
from rabbit import streams as stream_reader
from rabbit.management_http import BrokerError, BrokerNotFound


@access.page(access.VIEWER)
@require_GET
def stream_browse(request: HttpRequest, vhost: str, name: str) -> HttpResponse:
    broker = current_broker(request)
    context: dict[str, object] = {"broker": broker, "vhost": vhost, "name": name}
    status = 200
    try:
        browse = streams.parse(request.GET)
        context["browse"] = browse
        queue_type = broker.client().queue(vhost, name).get("type")
        if queue_type != "stream":
            # Any other queue would hand its messages over for good.
            raise streams.BadStart(f"“{name}” is a {queue_type} queue, not a stream: use Peek.")
        read = stream_reader.read(
            broker.amqp_url(), vhost, name, browse.argument, browse.count, peek.body_limit()
        )
        shown = streams.entries(read.messages)
        context.update(stream_entries=shown, stream_waited_out=read.waited_out)
        after = streams.next_offset(shown)
        if after is not None:
            params = {"from": "offset", "offset": after, "count": browse.count}
            context["stream_next"] = f"{request.path}?{urlencode(params)}"
    except streams.BadStart as error:
        context["stream_error"], status = str(error), 400
    except BrokerNotFound:
        context["stream_error"] = f"Queue “{name}” no longer exists in vhost “{vhost}”."
        status = 404
    except BrokerError as error:
        context["stream_error"] = error.message
    except amqp.AMQPError as error:
        context["stream_error"] = f"The broker refused the read: {error!r}"
    if wants_partial(request):
        return render(request, "queue.html#stream-results", context, status=status)
    full = full_queue_context(request, broker, vhost, name)
    full.update(context)
    full["stream_url"] = reverse("queue_stream", args=[vhost, name])
    return render(request, "queue.html", full, status=status)
