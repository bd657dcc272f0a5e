"""Operator actions on a broker; each one leaves an audit entry, whatever its end.

Views check the role and the form, then call one function here, which acts,
records who did what to which object with which result, and returns an
Outcome whose message the page shows.
"""

import time
from dataclasses import dataclass

from console.exchanges import display_name
from console.models import AuditEntry
from rabbit import amqp, moving
from rabbit.management_http import BrokerError


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str
    level: str = ""  # "success", "warning" or "error"; derived from ok when empty

    @property
    def tag(self):
        return self.level or ("success" if self.ok else "error")


def _record(request, action, broker, vhost, target, ok, detail):
    AuditEntry.record(
        request,
        action=action,
        result=AuditEntry.OK if ok else AuditEntry.FAILED,
        broker=broker.slug,
        vhost=vhost,
        target=target,
        detail=detail,
    )


def _amqp_words(error):
    """The broker's words from a pika error (reply code and text) or the error itself."""
    args = getattr(error, "args", ())
    if len(args) == 2 and isinstance(args[0], int):
        return f"{args[0]} {args[1]}"
    return str(error) or error.__class__.__name__


def purge_queue(request, broker, vhost, name, depth=None):
    target = f"queue {name}"
    try:
        broker.client().purge(vhost, name)
    except BrokerError as error:
        _record(request, "purge_queue", broker, vhost, target, False, error.message)
        return Outcome(False, f"Purge of queue '{name}' failed: {error.message}")
    about = f" (about {depth} per the last statistics)" if depth is not None else ""
    _record(request, "purge_queue", broker, vhost, target, True, f"purged{about}")
    return Outcome(True, f"Queue '{name}' purged{about}.")


def delete_queue(request, broker, vhost, name, if_empty=False, if_unused=False):
    conditions = [w for w, on in (("if empty", if_empty), ("if unused", if_unused)) if on]
    detail = "deleted" + (f" ({', '.join(conditions)})" if conditions else "")
    target = f"queue {name}"
    try:
        broker.client().delete_queue_when(vhost, name, if_empty=if_empty, if_unused=if_unused)
    except BrokerError as error:
        _record(request, "delete_queue", broker, vhost, target, False, error.message)
        return Outcome(False, f"Queue '{name}' was not deleted: {error.message}")
    _record(request, "delete_queue", broker, vhost, target, True, detail)
    return Outcome(True, f"Queue '{name}' deleted.")


def delete_exchange(request, broker, vhost, name, if_unused=False):
    target = f"exchange {name}"
    try:
        broker.client().delete_exchange_when(vhost, name, if_unused=if_unused)
    except BrokerError as error:
        _record(request, "delete_exchange", broker, vhost, target, False, error.message)
        return Outcome(False, f"Exchange '{name}' was not deleted: {error.message}")
    _record(request, "delete_exchange", broker, vhost, target, True, "deleted")
    return Outcome(True, f"Exchange '{name}' deleted.")


def _binding_words(source, destination_type, destination, routing_key):
    kind = "exchange" if destination_type == "e" else "queue"
    return f"exchange {display_name(source)} → {kind} {destination} (key '{routing_key}')"


def bind(request, broker, vhost, source, destination_type, destination, routing_key, arguments):
    words = _binding_words(source, destination_type, destination, routing_key)
    try:
        broker.client().bind(
            vhost,
            source,
            destination,
            destination_type=destination_type,
            routing_key=routing_key,
            arguments=arguments,
        )
    except BrokerError as error:
        _record(request, "bind", broker, vhost, words, False, error.message)
        return Outcome(False, f"Binding {words} failed: {error.message}")
    _record(request, "bind", broker, vhost, words, True, f"arguments {arguments or {}}")
    return Outcome(True, f"Bound {words}.")


def unbind(
    request, broker, vhost, source, destination_type, destination, properties_key, routing_key=""
):
    words = _binding_words(source, destination_type, destination, routing_key)
    try:
        broker.client().unbind(vhost, source, destination, destination_type, properties_key)
    except BrokerError as error:
        _record(request, "unbind", broker, vhost, words, False, error.message)
        return Outcome(False, f"Removing the binding {words} failed: {error.message}")
    _record(request, "unbind", broker, vhost, words, True, "removed")
    return Outcome(True, f"Removed the binding {words}.")


def publish(request, broker, vhost, exchange, form):
    """Publish the message of a valid PublishForm with confirms (and `mandatory`)."""
    data = form.cleaned_data
    routing_key = data["routing_key"]
    fields = form.properties()
    if data.get("stamp"):
        fields["timestamp"] = int(time.time())
    target = f"exchange {display_name(exchange)} key '{routing_key}'"
    size = len(data["body_bytes"])
    try:
        status, reason = amqp.publish_confirmed(
            broker.amqp_url(),
            vhost,
            exchange,
            routing_key,
            data["body_bytes"],
            amqp.properties(**fields),
            mandatory=data["mandatory"],
            name=f"warren-console publish by {request.user.username}",
        )
    except amqp.AMQPError as error:
        words = _amqp_words(error)
        _record(request, "publish", broker, vhost, target, False, words)
        return Outcome(False, f"Publish to {target} failed: {words}")
    if status == "confirmed":
        routed = "routed and confirmed" if data["mandatory"] else "confirmed"
        _record(request, "publish", broker, vhost, target, True, f"{size} bytes, {routed}")
        return Outcome(True, f"Message of {size} bytes {routed} by the broker ({target}).")
    detail = f"{size} bytes, {status}: {reason}"
    _record(request, "publish", broker, vhost, target, False, detail)
    if status == "returned":
        return Outcome(
            False,
            f"Message returned: no queue is bound for {target} ({reason}). Nothing was stored.",
            level="warning",
        )
    return Outcome(False, f"The broker refused the message ({reason}).")


def move(request, broker, vhost, source, form):
    """Move messages as a valid MoveForm asks; nothing is acked before it is confirmed."""
    arguments = form.move_arguments()
    how = {
        None: f"to queue {arguments['target_queue']}",
        "queue": "back to their x-death queue",
        "route": "re-routed by x-death exchange and key",
    }[arguments["x_death"]]
    target = f"queue {source} → {arguments['target_queue'] or 'x-death'}"
    try:
        result = moving.move_messages(
            broker.amqp_url(),
            vhost,
            source,
            name=f"warren-console move by {request.user.username}",
            **arguments,
        )
    except (amqp.AMQPError, moving.ConsoleMoveError) as error:
        words = _amqp_words(error)
        _record(request, "move_messages", broker, vhost, target, False, f"{how}: {words}")
        return Outcome(False, f"Nothing moved from '{source}': {words}")
    where = ", ".join(
        f"{count} to {display_name(exchange)}/{key}"
        for (exchange, key), count in sorted(result.destinations.items())
    )
    detail = f"{result.moved} of {result.available} moved {how}"
    if where:
        detail += f" ({where})"
    if result.stopped:
        detail += f"; stopped: {result.stopped}"
    ok = not result.stopped
    _record(request, "move_messages", broker, vhost, target, ok, detail)
    message = f"Moved {result.moved} of {result.available} messages from '{source}' {how}."
    if result.stopped:
        message += f" Stopped early: {result.stopped}."
        return Outcome(False, message, level="warning" if result.moved else "error")
    return Outcome(True, message)


def close_connection(request, broker, name, reason, vhost=""):
    target = f"connection {name}"
    try:
        broker.client().close_connection_because(name, reason)
    except BrokerError as error:
        _record(request, "close_connection", broker, vhost, target, False, error.message)
        return Outcome(False, f"Connection '{name}' was not closed: {error.message}")
    _record(request, "close_connection", broker, vhost, target, True, f"reason: {reason}")
    return Outcome(True, f"Connection '{name}' closed.")
