"""The Flow timeline's labels: events at one time get rows of their own, never overlap."""

import itertools

from tracer.web.display import LABEL_ROW, LABEL_TOP, label_extent, place_labels

STEPS = ["requested", "delivered to server", "replied", "reply delivered"]


def _marks(xs):
    return [
        {"x": x, "label": label, "offset_ms": round(x / 10, 3)}
        for x, label in zip(xs, STEPS, strict=True)
    ]


def _overlapping(marks):
    clashes = []
    for a, b in itertools.combinations(marks, 2):
        if a["label_y"] != b["label_y"]:
            continue
        (left_a, right_a), (left_b, right_b) = label_extent(a), label_extent(b)
        if left_a < right_b and left_b < right_a:
            clashes.append((a["label"], b["label"]))
    return clashes


def test_it_gives_labels_at_one_time_rows_of_their_own():
    marks = _marks([0, 0, 0, 0])
    rows = place_labels(marks)
    assert rows == 4
    assert sorted(m["label_y"] for m in marks) == [LABEL_TOP + i * LABEL_ROW for i in range(4)]
    assert _overlapping(marks) == []


def test_it_keeps_one_row_when_the_labels_are_far_apart():
    marks = _marks([0, 330, 660, 1000])
    assert place_labels(marks) == 1
    assert {m["label_y"] for m in marks} == {LABEL_TOP}
    assert [m["anchor"] for m in marks] == ["start", "middle", "middle", "end"]


def test_it_never_overlaps_whatever_the_times():
    for xs in [(0, 5, 990, 1000), (0, 500, 502, 1000), (0, 0, 1000, 1000), (0, 140, 150, 160)]:
        marks = _marks(list(xs))
        place_labels(marks)
        assert _overlapping(marks) == [], xs
