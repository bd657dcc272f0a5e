"""Request guards every view shares: hostile query strings and an unavailable database.

- A NUL character in the query string is refused with a 400 before any view
  runs: no parameter has a use for it, and PostgreSQL refuses it in text (a
  500 wherever a parameter reaches a query).
- When the database does not answer (stopped, or a lock held past
  WARREN_DB_LOCK_TIMEOUT), a page shows a banner and a JSON endpoint answers
  {"error": ...}, both with 503: never Django's 500 page, never a worker held
  for as long as the lock lasts.
"""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render

log = logging.getLogger("console.middleware")


def _wants_json(request):
    match = getattr(request, "resolver_match", None)
    if match is not None and getattr(match.func, "warren_kind", None) == "api":
        return True
    return request.path.startswith("/api/") or request.path.endswith(".json")


class RequestGuards:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        query = request.META.get("QUERY_STRING", "")
        if "\x00" in query or "%00" in query.lower() or "\x00" in request.path:
            words = "A NUL character is not allowed in the address or its parameters."
            if _wants_json(request):
                return JsonResponse({"error": words}, status=400)
            return HttpResponse(words, status=400, content_type="text/plain; charset=utf-8")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        log.warning(
            "the database did not answer %s %s: %s", request.method, request.path, exception
        )
        reason = str(exception).strip().splitlines()[0][:300] if str(exception).strip() else ""
        if _wants_json(request):
            return JsonResponse(
                {"error": f"The database is not answering ({reason}); try again shortly."},
                status=503,
            )
        try:
            return render(request, "unavailable.html", {"reason": reason}, status=503)
        except Exception:  # noqa: BLE001 - the page itself may need the database
            return HttpResponse(
                "Warren: the database is not answering; try again shortly.",
                status=503,
                content_type="text/plain; charset=utf-8",
            )
