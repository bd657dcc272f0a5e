"""Small helpers the broker console's views share."""

from django.contrib import messages
from django.shortcuts import redirect
from django.utils.http import url_has_allowed_host_and_scheme


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
