"""The audit log page: every entry, filterable by user, action, result and date."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from console.models import AuditEntry


def _entry(username, action, result="ok", days_ago=0, target="queue q"):
    entry = AuditEntry.objects.create(
        username=username,
        action=action,
        result=result,
        target=target,
        vhost="v",
        detail="<b>detail</b>",
    )
    AuditEntry.objects.filter(pk=entry.pk).update(at=timezone.now() - timedelta(days=days_ago))


def _rows(client, **params):
    page = client.get(reverse("audit_log"), params).content.decode()
    body = page.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    return page, body.count("<tr>") if "empty-row" not in body else 0


def test_it_filters_by_user_action_result_and_date(viewer_client):
    _entry("ada", "purge_queue")
    _entry("ada", "delete_queue", "failed", days_ago=3)
    _entry("bob", "purge_queue", "denied", days_ago=10, target="queue <script>")
    page, count = _rows(viewer_client)
    assert count == 3
    assert "&lt;b&gt;detail&lt;/b&gt;" in page and "queue &lt;script&gt;" in page
    assert _rows(viewer_client, user="ADA")[1] == 2
    assert _rows(viewer_client, action="purge_queue")[1] == 2
    assert _rows(viewer_client, result="denied")[1] == 1
    since = (timezone.now() - timedelta(days=5)).date().isoformat()
    assert _rows(viewer_client, since=since)[1] == 2
    until = (timezone.now() - timedelta(days=2)).date().isoformat()
    assert _rows(viewer_client, until=until)[1] == 2
    assert _rows(viewer_client, q="script")[1] == 1
    assert _rows(viewer_client, vhost="v")[1] == 3 and _rows(viewer_client, vhost="w")[1] == 0
    assert _rows(viewer_client, user="nobody")[0].count("No entry matches these filters.") == 1


def test_it_pages_long_logs(viewer_client):
    AuditEntry.objects.bulk_create(
        AuditEntry(username="ada", action="peek", target=f"queue {n}") for n in range(120)
    )
    page, count = _rows(viewer_client, action="peek")
    assert count == 50
    assert "120 entries" in page and "page 1 of 3" in page
    assert "action=peek&amp;page=2" in page


def test_it_lists_the_denied_attempts_of_viewers(viewer_client, topology):
    viewer_client.post(reverse("queue_purge", args=[topology, "orders.new"]))
    page, count = _rows(viewer_client, result="denied")
    assert count == 1
    assert "queue_purge" in page and "needs operator" in page
