"""Small helpers the broker console's views share."""

from django.contrib import messages
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme

from console.listing import pager
from console.vhosts import forget_selection, selected_vhost
from rabbit.management_http import BrokerError, BrokerNotFound


def wants_partial(request):
    """An htmx refresh gets the fragment; a history restore needs the whole page."""
    htmx = getattr(request, "htmx", None)
    return bool(htmx) and not htmx.history_restore_request and not htmx.boosted


def safe_next(request, fallback):
    """Where to go after an action: the form's `next` when it is this site, else fallback."""
    target = request.POST.get("next") or request.GET.get("next") or ""
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return target
    return fallback


def report(request, outcome, fallback):
    """Show an operations.Outcome as a message and go back (Post/Redirect/Get)."""
    messages.add_message(request, _LEVELS[outcome.tag], outcome.message)
    return redirect(safe_next(request, fallback))


def report_done(request, outcome, done: str, fallback: str):
    """As `report`, but a success goes on to `done` (a list: the object is gone, or the
    page the change leads to) rather than back where the form was."""
    if outcome.ok:
        messages.success(request, outcome.message)
        return redirect(done)
    return report(request, outcome, fallback)


def form_errors(form):
    """A form's errors as one sentence for a message banner."""
    parts = []
    for field, errors in form.errors.items():
        label = form.fields[field].label if field in form.fields else ""
        label = label or field.replace("_", " ")
        for error in errors:
            parts.append(error if field == "__all__" else f"{label}: {error}")
    return " ".join(parts)


_LEVELS = {
    "success": messages.SUCCESS,
    "warning": messages.WARNING,
    "error": messages.ERROR,
    "info": messages.INFO,
}


PAGE_SIZES = (20, 50, 100, 200, 500)


SHOW_PLUMBING = "plumbing"


def render_list(
    request, broker, query, fetch, make_rows, template, fragment, sortable, is_plumbing=None
):
    """A list page (queues, exchanges, connections, channels) in the chosen vhost.

    fetch(client, vhost, query) -> (Page, query shown); make_rows(items) -> rows.
    A chosen vhost that no longer exists is forgotten and every vhost shown,
    with a word why; a filter the broker refuses is explained, not a banner.
    is_plumbing(row) marks Warren's own objects (console/plumbing.py): they are
    left out of the page unless `?plumbing=1`, and the page says how many.
    """
    show_plumbing = request.GET.get(SHOW_PLUMBING) == "1"
    vhost = selected_vhost(request, broker)
    context = {
        "broker": broker,
        "query": query,
        "rows": [],
        "page_sizes": PAGE_SIZES,
        "filter_error": query.regex_error,
    }
    if not query.regex_error:  # a bad pattern shows its error, not an unfiltered list
        try:
            client = broker.client()
            try:
                page, query = fetch(client, vhost, query)
            except BrokerNotFound:
                if not vhost:
                    raise
                forget_selection(request, broker)
                context["notice"] = (
                    f"Vhost “{vhost}” does not exist (any more): showing every vhost."
                )
                vhost = None
                page, query = fetch(client, None, query)
            rows = make_rows(page.items)
            if is_plumbing is not None:
                for row in rows:
                    row.plumbing = is_plumbing(row)
                if not show_plumbing:
                    kept = [row for row in rows if not row.plumbing]
                    context["plumbing_hidden"] = len(rows) - len(kept)
                    rows = kept
            context.update(rows=rows, pager=pager(query, page, _extra(vhost, show_plumbing)))
        except BrokerError as error:
            if error.status == 400 and query.name and query.regex:
                context["filter_error"] = f"The broker refused the filter: {error.message}"
            else:
                context["broker_error"] = error
    extra = _extra(vhost, show_plumbing)
    context.update(
        show_plumbing=show_plumbing,
        plumbing_toggle=request.path + query.query_string(_extra(vhost, not show_plumbing)),
        vhost=vhost,
        query=query,
        headers=query.sort_headers(sortable, extra),
        refresh_url=request.path + query.query_string(extra),
    )
    return render(request, fragment if wants_partial(request) else template, context)


def _extra(vhost, show_plumbing):
    extra = {"vhost": vhost or ""}
    if show_plumbing:
        extra[SHOW_PLUMBING] = "1"
    return extra
