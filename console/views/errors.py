"""Warren's own 403, 404 and 500 pages (handler403/404/500 in console/urls.py, and
the CSRF failure view): the navigation, one plain sentence and a way back.

The 500 page is drawn from its template and the URL configuration alone: no
database, no session, no broker, since any of them may be why the request failed.
"""

import logging

from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseForbidden,
    HttpResponseServerError,
)
from django.shortcuts import render
from django.template.loader import render_to_string

from console.context import navigation_links

log = logging.getLogger("console.errors")


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "404.html", {"path": request.path}, status=404)


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(
        request,
        "403.html",
        {"message": "You are not allowed to see this page or take this action."},
        status=403,
    )


CSRF_REFUSED = (
    "The form was refused because its security token was missing or out of date "
    "(an old tab, or cookies blocked). Nothing was changed: reload the page and try again."
)


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    log.info("CSRF check refused %s %s: %s", request.method, request.path, reason)
    if not hasattr(request, "session"):
        # Asked outside the middleware (the JSON API runs the check itself and
        # answers in JSON): no session to draw the navigation's context from.
        html = render_to_string(
            "403.html", {"message": CSRF_REFUSED, "nav_links": navigation_links(None)}
        )
        return HttpResponseForbidden(html)
    return render(request, "403.html", {"message": CSRF_REFUSED}, status=403)


def server_error(request: HttpRequest) -> HttpResponse:
    # No request in the template's context: context processors would read the
    # session and the broker list from the database.
    html = render_to_string("500.html", {"nav_links": navigation_links(None)})
    return HttpResponseServerError(html)
