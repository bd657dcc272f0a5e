"""The Queues page's rows written in Python: escaped, marked, and the same cells as before."""

from console.queue_rows import row_html, rows_html
from console.queues import queue_row


def _row(**raw):
    row = queue_row({"name": "q", "vhost": "v", "messages": 0, "messages_ready": 0, **raw})
    row.href = "/queues/v/q/"
    return row


def test_it_escapes_every_name_it_writes():
    row = _row(name='<script>alert("x")</script>', vhost="<b>v</b>", policy="p&q")
    html = row_html(row, show_vhost=True)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "&lt;b&gt;v&lt;/b&gt;" in html and "p&amp;q" in html


def test_it_marks_a_queue_backing_up_and_warrens_own():
    row = _row(messages=5, messages_ready=5, consumers=0)
    row.plumbing = True
    html = row_html(row, show_vhost=False)
    assert html.startswith('<tr class="attention">')
    assert '<td class="num warn-text">5</td>' in html and "Warren's</span>" in html
    assert '<td class="name mono">' not in html  # no vhost column within one vhost


def test_it_writes_the_same_cells_as_the_list_shows():
    row = _row(
        messages=1234,
        messages_ready=1000,
        messages_unacknowledged=234,
        consumers=2,
        consumer_utilisation=0.5,
        memory=2048,
        message_stats={"publish_details": {"rate": 12.345}},
    )
    html = str(rows_html([row], show_vhost=True))
    for cell in ("1,000", "234", "1,234", "12.3", "50%", "2.0 KiB"):
        assert f">{cell}</td>" in html
    assert html.count("<td") == 15
