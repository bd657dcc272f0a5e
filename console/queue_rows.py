"""The Queues page's rows, written in Python: the page's own cost at 100 or 500 rows.

A Django template spends about 75 variable lookups and filter calls on a
queue row, which came to most of the page's own time beside the management
API's answer (`manage.py bench_queues`). The same markup written here with
one escape per value costs a fraction of that. templates/queues.html keeps
the table's frame and headers; only the rows come from here.
"""

from collections.abc import Iterable
from html import escape

from django.utils.safestring import SafeString, mark_safe

from console.queues import QueueRow
from console.templatetags.warren_console import count, rate
from console.templatetags.warren_format import format_bytes

PLUMBING_PILL = (
    ' <span class="pill warn" title="Declared by Warren\'s tap for tracing this vhost">'
    "Warren's</span>"
)
NEW_PILL = (
    '<span class="pill" title="The broker reports figures on its next statistics round">new</span>'
)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def row_html(q: QueueRow, show_vhost: bool) -> str:
    warn = " warn-text" if q.backing_up else ""
    if q.stats_pending:
        state = NEW_PILL
    else:
        state = f'<span class="pill {q.state_kind}">{_e(q.state)}</span>'
    badges = "".join(
        f'<abbr class="badge" title="{_e(words)}">{_e(label)}</abbr>' for label, words in q.badges
    )
    utilisation = "–" if q.utilisation_percent is None else f"{q.utilisation_percent}%"
    memory = "–" if q.memory is None else format_bytes(q.memory)
    return "".join(
        (
            '<tr class="attention">' if q.backing_up else "<tr>",
            f'<td class="name"><a href="{_e(q.href)}">{_e(q.name)}</a>',
            PLUMBING_PILL if q.plumbing else "",
            "</td>",
            f'<td class="name mono">{_e(q.vhost)}</td>' if show_vhost else "",
            f"<td>{_e(q.type)}</td>",
            f"<td>{state}</td>",
            f'<td class="badges">{badges}</td>',
            f'<td class="num{warn}">{count(q.ready)}</td>',
            f'<td class="num">{count(q.unacked)}</td>',
            f'<td class="num strong">{count(q.messages)}</td>',
            f'<td class="num">{rate(q.publish_rate)}</td>',
            f'<td class="num">{rate(q.deliver_rate)}</td>',
            f'<td class="num">{rate(q.ack_rate)}</td>',
            f'<td class="num{warn}">{count(q.consumers)}</td>',
            f'<td class="num">{utilisation}</td>',
            f'<td class="num">{memory}</td>',
            f"<td>{_e(q.policy)}</td>",
            "</tr>",
        )
    )


def rows_html(rows: Iterable[QueueRow], show_vhost: bool) -> SafeString:
    """Every row of the page; each value escaped above, hence safe."""
    return mark_safe("\n".join(row_html(q, show_vhost) for q in rows))  # noqa: S308
