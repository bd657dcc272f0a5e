"""Warren's URLs plus one view that fails, to see the 500 page (tests only)."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from console import urls as warren_urls


def failing_view(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("a failure for the 500 page test")


urlpatterns = [*warren_urls.urlpatterns, path("fail/", failing_view)]

handler403 = warren_urls.handler403
handler404 = warren_urls.handler404
handler500 = warren_urls.handler500
