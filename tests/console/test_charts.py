"""Charts over time: samples to series, counters to rates, the ranges offered, and the
JSON the pages' script draws (against the real broker)."""

import pytest
from django.urls import reverse

from console import charts
from console.templatetags.warren_console import span
from tests.console.helpers import publish, wait_for_stats
from tests.polling import wait_until


def _samples(values, step_ms=5000):
    # The API lists samples newest first.
    return [{"sample": v, "timestamp": 1_000_000 + i * step_ms} for i, v in enumerate(values)][::-1]


def test_it_orders_samples_oldest_first():
    assert charts.series(_samples([1, 2, 3])) == [(1000.0, 1.0), (1005.0, 2.0), (1010.0, 3.0)]


def test_it_turns_counters_into_rates_and_never_goes_negative():
    assert [r for _, r in charts.rates(_samples([0, 10, 30, 5]))] == [2.0, 4.0, 0.0]


def test_it_puts_every_series_on_one_time_axis_with_gaps_as_null():
    drawn = charts.chart(
        "msg/s",
        [(charts.PUBLISH, [(10.0, 1.0), (15.0, 2.0)]), (charts.DELIVER, [(15.0, 3.0)])],
    )
    assert drawn["t"] == [10.0, 15.0] and not drawn["empty"]
    publish_line, deliver_line = drawn["series"]
    assert publish_line["values"] == [1.0, 2.0] and deliver_line["values"] == [None, 3.0]
    assert deliver_line["dash"] and not publish_line["dash"]  # told apart without colour
    assert deliver_line["colour"].startswith("--series-")  # the theme's colour


def test_it_leaves_out_empty_series_and_says_when_nothing_is_left():
    assert charts.chart("msg/s", [(charts.ACK, [])]) == {
        "unit": "msg/s",
        "empty": True,
        "t": [],
        "series": [],
    }


def test_it_offers_only_the_ranges_the_broker_keeps():
    assert charts.pick_range("8h", charts.PER_OBJECT).key == charts.DEFAULT_RANGE
    assert charts.pick_range("8h", charts.BROKER_WIDE).age_s == 28800
    assert charts.pick_range("nonsense", charts.BROKER_WIDE).key == "10m"


def test_it_gives_every_series_of_a_chart_its_own_look():
    for group in (charts.BROKER_RATES, charts.QUEUED, charts.EXCHANGE_RATES, charts.CHURN):
        looks = [(style.colour, style.dash) for style, _ in group]
        assert len(set(looks)) == len(looks)
        assert len({style.dash for style, _ in group}) == len(group)


def test_it_names_the_span_of_a_chart_in_words():
    assert (span(550), span(40), span(7200), span(None)) == ("9 min", "40 s", "2 h", "–")


@pytest.mark.django_db
def test_it_serves_a_queues_rates_and_depth_over_time(viewer_client, mgmt, scratch_vhost):
    mgmt.declare_queue(scratch_vhost, "charted")
    wait_for_stats(mgmt, scratch_vhost, "charted")
    publish(mgmt, scratch_vhost, "charted", count=3)
    url = reverse("queue_charts", args=[scratch_vhost, "charted"])

    def queued():
        answer = viewer_client.get(url + "?range=1m")
        assert answer.status_code == 200
        return answer.json()

    answer = wait_until(
        queued,
        check=lambda a: 3.0 in (a["charts"]["queued"]["series"] or [{}])[0].get("values", []),
        what="3 ready messages in the queued chart",
        timeout=20,
        interval=1,
    )
    assert answer["range"] == "1m" and answer["words"] == "last minute"
    labels = [line["label"] for line in answer["charts"]["queued"]["series"]]
    assert labels == ["ready", "unacked", "total"]
    assert answer["charts"]["rates"]["unit"] == "msg/s"


@pytest.mark.django_db
def test_it_answers_a_missing_queues_chart_with_a_404_in_words(viewer_client, scratch_vhost):
    answer = viewer_client.get(reverse("queue_charts", args=[scratch_vhost, "nope"]))
    assert answer.status_code == 404
    assert answer.json()["error"]


@pytest.mark.django_db
def test_it_serves_an_exchanges_chart_and_the_overviews(viewer_client, mgmt, scratch_vhost):
    answer = viewer_client.get(reverse("exchange_charts", args=[scratch_vhost, "amq.direct"]))
    assert answer.status_code == 200
    assert set(answer.json()["charts"]) == {"rates"}
    overview = viewer_client.get(reverse("overview_charts") + "?range=1h&vhost=")
    assert overview.status_code == 200
    assert overview.json()["range"] == "1h"
    assert set(overview.json()["charts"]) == {"rates", "queued", "churn"}
    one_vhost = viewer_client.get(reverse("overview_charts") + f"?vhost={scratch_vhost}")
    assert set(one_vhost.json()["charts"]) == {"rates", "queued"}


@pytest.mark.django_db
def test_it_asks_for_a_login_before_any_chart(client):
    assert client.get(reverse("overview_charts")).status_code == 401


def test_it_draws_a_counter_the_broker_left_out_as_zero_beside_the_others():
    stats = {"publish_details": {"samples": _samples([0, 10, 20])}}
    drawn = charts.queue_charts({"message_stats": stats})["rates"]
    labels = [line["label"] for line in drawn["series"]]
    assert labels == ["publish", "deliver", "ack", "redeliver"]
    assert drawn["series"][1]["values"] == [0.0, 0.0]
    assert charts.queue_charts({})["rates"]["empty"]  # no samples at all: nothing to draw
