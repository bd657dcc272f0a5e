"""Server-drawn charts: samples to series, counters to rates, series to SVG points."""

from console.sparkline import chart, rates, series


def _samples(values, step_ms=5000):
    # The API lists samples newest first.
    return [{"sample": v, "timestamp": 1_000_000 + i * step_ms} for i, v in enumerate(values)][::-1]


def test_it_orders_samples_oldest_first():
    assert series(_samples([1, 2, 3])) == [(1000.0, 1.0), (1005.0, 2.0), (1010.0, 3.0)]


def test_it_turns_counters_into_rates_and_never_goes_negative():
    assert [r for _, r in rates(_samples([0, 10, 30, 5]))] == [2.0, 4.0, 0.0]


def test_it_draws_lines_on_one_scale():
    drawn = chart(
        [("ready", "ready", [(0, 0), (10, 10)]), ("unacked", "unacked", [(0, 5), (10, 5)])],
        width=100,
        height=50,
        pad=0,
    )
    ready, unacked = drawn.lines
    assert ready.points == "0.0,50.0 100.0,0.0"
    assert unacked.points == "0.0,25.0 100.0,25.0"
    assert drawn.peak == 10 and drawn.span_s == 10


def test_it_draws_nothing_without_two_points():
    assert chart([("ready", "ready", [(0, 1)])]).empty


def test_it_names_the_span_of_a_chart_in_words():
    from console.templatetags.warren_console import span

    assert (span(550), span(40), span(7200), span(None)) == ("9 min", "40 s", "2 h", "–")
