"""Creating queues and exchanges (operator): a form each, checked before the broker sees it.

A name already taken is refused in words rather than redeclared: declaring an
existing queue again changes nothing yet would read as "created", and with
other arguments the broker answers only PRECONDITION_FAILED.
"""

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from console import access, queue_arguments
from console.admin_forms import ExchangeForm
from console.administration import act, door, fresh_vhost_names, refuse
from console.brokers import current_broker
from console.vhosts import selected_vhost
from console.views.common import form_errors
from rabbit.brokers import BrokerConfig
from rabbit.management_http import BrokerError

FALLBACK_EXCHANGE_TYPES = ["direct", "fanout", "headers", "topic"]


def _initial_vhost(request: HttpRequest, broker: BrokerConfig, names: list[str]) -> str:
    asked = request.GET.get("vhost") or selected_vhost(request, broker) or "/"
    return asked if asked in names or not names else names[0]


@access.page(access.OPERATOR)
@require_http_methods(["GET", "POST"])
def queue_new(request: HttpRequest) -> HttpResponse:
    broker = current_broker(request)
    names, broker_error = fresh_vhost_names(broker)
    values: dict[str, str] = {"queue_type": "classic", "durable": "on"}
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        values = {key: request.POST.get(key, "") for key in request.POST}
        vhost = values.get("vhost", "")
        spec, errors = queue_arguments.build_queue(values)
        if vhost not in names:
            errors["vhost"] = f"Vhost: “{vhost}” is not a vhost of this broker."
        target = f"queue {values.get('name', '')}"
        if spec is not None and not errors:
            try:
                taken = door(broker).queue_exists(vhost, spec.name)
            except BrokerError as error:
                taken = False
                errors[""] = error.message
            if taken:
                errors["name"] = f"Name: vhost “{vhost}” already has a queue “{spec.name}”."
        if spec is not None and not errors:
            outcome = act(
                request,
                broker,
                "create_queue",
                target,
                lambda admin: admin.declare_queue(
                    vhost, spec.name, spec.durable, spec.auto_delete, spec.arguments
                ),
                f"Queue '{spec.name}' ({spec.queue_type}) created.",
                vhost=vhost,
                detail=f"{spec.queue_type}, durable={spec.durable}, "
                f"auto_delete={spec.auto_delete}, arguments {spec.arguments}",
            )
            if outcome.ok:
                messages.success(request, outcome.message)
                return redirect(reverse("queue", args=[vhost, spec.name]))
            errors[""] = outcome.message
        else:
            refuse(request, broker, "create_queue", target, " ".join(errors.values()), vhost)
        status = 400
    else:
        values["vhost"] = _initial_vhost(request, broker, names)
    context = {
        "broker": broker,
        "broker_error": broker_error,
        "vhosts": names,
        "values": values,
        "errors": errors,
        "argument_rows": [
            {"field": f, "value": values.get(f.field, ""), "error": errors.get(f.field, "")}
            for f in queue_arguments.FIELDS
        ],
        "queue_types": queue_arguments.QUEUE_TYPES,
    }
    return render(request, "queue_new.html", context, status=status)


def _exchange_types(broker: BrokerConfig) -> tuple[list[str], BrokerError | None]:
    try:
        return door(broker).exchange_types(), None
    except BrokerError as error:
        return FALLBACK_EXCHANGE_TYPES, error


@access.page(access.OPERATOR)
@require_http_methods(["GET", "POST"])
def exchange_new(request: HttpRequest) -> HttpResponse:
    broker = current_broker(request)
    names, broker_error = fresh_vhost_names(broker)
    types, types_error = _exchange_types(broker)
    broker_error = broker_error or types_error
    status = 200
    if request.method == "POST":
        form = ExchangeForm(request.POST, vhosts=names, types=types)
        target = f"exchange {request.POST.get('name', '')}"
        vhost = request.POST.get("vhost", "")
        if form.is_valid():
            data = form.cleaned_data
            try:
                taken = door(broker).exchange_exists(data["vhost"], data["name"])
            except BrokerError as error:
                taken = False
                form.add_error(None, error.message)
            if taken:
                form.add_error(
                    "name", f"Vhost “{data['vhost']}” already has an exchange “{data['name']}”."
                )
        if form.is_valid():
            data = form.cleaned_data
            arguments = form.arguments()
            outcome = act(
                request,
                broker,
                "create_exchange",
                f"exchange {data['name']}",
                lambda admin: admin.declare_exchange(
                    data["vhost"],
                    data["name"],
                    data["type"],
                    data["durable"],
                    data["auto_delete"],
                    data["internal"],
                    arguments,
                ),
                f"Exchange '{data['name']}' ({data['type']}) created.",
                vhost=data["vhost"],
                detail=f"{data['type']}, durable={data['durable']}, "
                f"auto_delete={data['auto_delete']}, internal={data['internal']}, "
                f"arguments {arguments}",
            )
            if outcome.ok:
                messages.success(request, outcome.message)
                return redirect(reverse("exchange", args=[data["vhost"], data["name"]]))
            form.add_error(None, outcome.message)
        else:
            refuse(request, broker, "create_exchange", target, form_errors(form), vhost)
        status = 400
    else:
        form = ExchangeForm(
            initial={"vhost": _initial_vhost(request, broker, names), "type": "direct"},
            vhosts=names,
            types=types,
        )
    context = {"broker": broker, "form": form, "broker_error": broker_error, "types": types}
    return render(request, "exchange_new.html", context, status=status)
