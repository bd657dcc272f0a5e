"""The audit log: who did (or tried) what, where, when, and how it ended."""

from django.core.paginator import Paginator
from django.shortcuts import render
from django.views.decorators.http import require_GET

from console import access, audit_links
from console.forms import AuditFilterForm
from console.models import AuditEntry

PAGE_SIZE = 50


@access.page(access.VIEWER)
@require_GET
def audit_log(request):
    actions = AuditEntry.objects.order_by("action").values_list("action", flat=True).distinct()
    form = AuditFilterForm(request.GET or None, actions=list(actions))
    entries = form.filter(AuditEntry.objects.all()) if request.GET else AuditEntry.objects.all()
    paginator = Paginator(entries, PAGE_SIZE)
    page = paginator.get_page(request.GET.get("page"))
    for entry in page.object_list:
        entry.related_url = audit_links.related_url(entry)
    params = request.GET.copy()
    params.pop("page", None)
    context = {
        "form": form,
        "page": page,
        "filters": params.urlencode(),
        "total": paginator.count,
    }
    return render(request, "audit_log.html", context)
