"""Latency statistics per service (DESIGN §7 /api/flows/stats).

Flows are rolled up per service and minute of request as they are written
(tracer/storage.py): calls, timeouts (no reply in time, or a late one),
answered calls with latency sum and max, and a log-scale latency histogram of
16 buckets per doubling (each bucket spans 4.4 %). A window with few answered
calls is computed exactly from the flows; a large one from the roll-ups, its
percentiles within about 2 % of the exact value and its bounds on whole minutes.
"""

import math

BUCKETS_PER_DOUBLING = 16


def bucket_of(latency_ms):
    """Histogram bucket of a latency: 0 for 1 µs or less, 16 per doubling after."""
    microseconds = max(float(latency_ms) * 1000.0, 1.0)
    return int(math.floor(math.log2(microseconds) * BUCKETS_PER_DOUBLING))


def bucket_value_ms(bucket):
    """The geometric middle of a bucket, in milliseconds."""
    return 2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING) / 1000.0
