"""Every page htmx refreshes answers its fragment to htmx, and the whole page otherwise.

htmx asks for a page again when the history cache misses on back-navigation
(HX-History-Restore-Request: true, beside HX-Request: true) and swaps what comes
back into the body: that answer must be the whole page, or the body becomes a
bare results table. A boosted link (HX-Boosted) also loads a whole page. The
pages decide through console.views.common.wants_partial.
"""

import pytest

from replay.models import ReplayJob

HTMX = {"HX-Request": "true"}
HISTORY_RESTORE = {"HX-Request": "true", "HX-History-Restore-Request": "true"}
BOOSTED = {"HX-Request": "true", "HX-Boosted": "true"}

# (path, a mark of the fragment htmx swaps in)
PAGES = [
    ("/", 'id="overview-stats"'),
    ("/queues/", 'id="queue-list"'),
    ("/exchanges/", 'id="exchange-list"'),
    ("/exchanges/%252F/amq.direct/", 'id="exchange-figures"'),
    ("/connections/", 'id="connection-list"'),
    ("/channels/", 'id="channel-list"'),
    ("/vhosts/", 'id="vhost-table"'),
    ("/messages/", 'id="message-results"'),
    ("/messages/?vhost=nowhere", 'id="message-results"'),
    ("/flows/", 'id="flow-results"'),
    ("/flows/?status=complete", 'id="flow-results"'),
    ("/live/", 'class="live-empty"'),
    ("/live/messages/", 'class="live-empty"'),
    ("/latency/", 'id="service-table"'),
    ("/replays/", 'id="replay-jobs"'),
    ("/replays/{job}/", 'id="replay-items"'),
]


def _whole(html: str) -> bool:
    return html.lstrip().lower().startswith("<!doctype html>") and 'class="mainnav"' in html


@pytest.fixture
def job(operator) -> ReplayJob:
    return ReplayJob.objects.create(
        created_by=operator, username=operator.username, status="done", description="a test job"
    )


@pytest.mark.django_db
@pytest.mark.parametrize(("path", "fragment"), PAGES, ids=[path for path, _ in PAGES])
def test_htmx_gets_the_fragment_and_a_history_restore_the_whole_page(
    viewer_client, job, path, fragment
):
    url = path.format(job=job.id)

    def page(headers: dict[str, str]) -> str:
        response = viewer_client.get(url, headers=headers)
        assert response.status_code == 200, (url, headers, response.status_code)
        return response.content.decode()

    plain, partial, restored, boosted = (page(h) for h in ({}, HTMX, HISTORY_RESTORE, BOOSTED))
    for whole in (plain, restored, boosted):
        assert _whole(whole) and fragment in whole and "<title>" in whole
    assert fragment in partial
    assert not _whole(partial) and "<html" not in partial and 'class="mainnav"' not in partial


@pytest.mark.django_db
def test_a_broker_error_shows_once_on_a_restored_page_and_in_a_refreshed_fragment(
    viewer_client, sick_broker
):
    sick_broker.mode = "500"
    restored = viewer_client.get("/queues/", headers=HISTORY_RESTORE).content.decode()
    refreshed = viewer_client.get("/queues/", headers=HTMX).content.decode()
    assert restored.count("boom from the broker") == 1  # the page's banner, not the fragment's
    assert refreshed.count("boom from the broker") == 1
    assert _whole(restored) and not _whole(refreshed)
