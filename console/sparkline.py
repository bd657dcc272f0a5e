"""Small line charts drawn on the server as SVG points (no script needed).

The management API gives `samples` newest first: for queue lengths each sample
is the length at that moment, for message counters (publish, deliver, ack) it
is the running total, so rates are differences between neighbours.
"""

from dataclasses import dataclass


def series(samples):
    """[(timestamp_s, value)] oldest first, from the API's samples."""
    points = []
    for sample in samples or []:
        try:
            points.append((float(sample["timestamp"]) / 1000.0, float(sample["sample"])))
        except (KeyError, TypeError, ValueError):
            continue
    points.sort()
    return points


def rates(samples):
    """Per-second rates between neighbouring counter samples, oldest first.

    A counter that goes down (the queue was re-declared, stats were reset)
    is not a negative rate: that step counts as zero.
    """
    points = series(samples)
    out = []
    for (t0, v0), (t1, v1) in zip(points, points[1:], strict=False):
        if t1 <= t0:
            continue
        out.append((t1, max(0.0, (v1 - v0) / (t1 - t0))))
    return out


@dataclass(frozen=True)
class Line:
    name: str
    css: str
    points: str
    last: float
    peak: float


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    lines: list
    peak: float
    span_s: float

    @property
    def empty(self):
        return not self.lines


def chart(named_series, width=320, height=64, pad=3):
    """A Chart of several series on one shared scale.

    named_series: [(name, css_class, [(t, v), ...])]. Series with fewer than
    two points are left out (there is no line to draw yet).
    """
    usable = [(n, c, pts) for n, c, pts in named_series if len(pts) >= 2]
    if not usable:
        return Chart(width, height, [], 0.0, 0.0)
    t_min = min(pts[0][0] for _, _, pts in usable)
    t_max = max(pts[-1][0] for _, _, pts in usable)
    peak = max(v for _, _, pts in usable for _, v in pts)
    t_span = (t_max - t_min) or 1.0
    v_span = peak or 1.0
    inner_w = width - 2 * pad
    inner_h = height - 2 * pad
    lines = []
    for name, css, pts in usable:
        coords = " ".join(
            f"{pad + (t - t_min) / t_span * inner_w:.1f},{pad + inner_h - v / v_span * inner_h:.1f}"
            for t, v in pts
        )
        lines.append(Line(name, css, coords, pts[-1][1], max(v for _, v in pts)))
    return Chart(width, height, lines, peak, t_max - t_min)
