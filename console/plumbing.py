"""Warren's own plumbing in a traced vhost, told apart from the user's objects.

The tap declares, in every vhost it traces, its tap queue (WARREN_TAP_QUEUE,
`warren.tap`) bound to `amq.rabbitmq.trace` with `#`, a fanout exchange
`<tap queue>.drops` that receives what the bounded tap queue drops, and the
queue `<tap queue>.dropped` that counts them. Lists hide them unless asked;
pages mark them; purging, deleting or unbinding them is refused unless the
operator confirms, in the same request, that tracing breaks (checked here,
on the server, whatever the page sent).
"""

from collections.abc import Mapping

from django.conf import settings

TRACE_EXCHANGE = "amq.rabbitmq.trace"
CONFIRM_FIELD = "break_tracing"
CONFIRM_VALUE = "yes"


def tap_queue() -> str:
    return str(settings.WARREN_TAP_QUEUE)


def dropped_queue() -> str:
    return f"{tap_queue()}.dropped"


def drops_exchange() -> str:
    return f"{tap_queue()}.drops"


def is_warren_queue(name: str) -> bool:
    return name in (tap_queue(), dropped_queue())


def is_warren_exchange(name: str) -> bool:
    return name == drops_exchange()


def is_warren_binding(source: str, destination_type: str, destination: str) -> bool:
    """The tap queue's binding from the trace exchange, or the drop counter's."""
    to_queue = destination_type in ("q", "queue")
    return to_queue and (
        (source == TRACE_EXCHANGE and destination == tap_queue())
        or (source == drops_exchange() and destination == dropped_queue())
    )


def what_breaks(action: str, kind: str, name: str, vhost: str) -> str:
    """What purging, deleting or unbinding one piece of Warren's plumbing does, in words."""
    if kind == "queue" and name == tap_queue():
        if action == "purge":
            return (
                f"“{name}” is Warren's tap queue: purging it throws away the trace events "
                "waiting in it, and Live, Flows and Latency miss those messages of "
                f"vhost “{vhost}”."
            )
        return (
            f"“{name}” is Warren's tap queue: deleting it breaks tracing of vhost “{vhost}” "
            "(events are lost until the tap declares it again) and throws away what it holds."
        )
    if kind == "queue":
        return (
            f"“{name}” counts the trace events Warren's tap queue dropped: "
            f"{'purging' if action == 'purge' else 'deleting'} it loses that count "
            f"for vhost “{vhost}”."
        )
    if kind == "exchange":
        return (
            f"“{name}” carries what Warren's tap queue drops to its counter: deleting it "
            f"loses the count of dropped trace events in vhost “{vhost}”."
        )
    return (
        f"This binding feeds Warren's tracing: removing it stops trace events of vhost “{vhost}” "
        "from reaching the tap (Live, Flows and Latency go quiet) until the tap binds it again."
    )


def confirmed(post: Mapping[str, str]) -> bool:
    """Whether the form said, explicitly, that breaking tracing is meant."""
    return post.get(CONFIRM_FIELD) == CONFIRM_VALUE
