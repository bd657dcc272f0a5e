"""The management API's samples over time: what the charts draw.

Asked with `msg_rates_age`/`msg_rates_incr` (message counters) and
`lengths_age`/`lengths_incr` (queue lengths), every `*_details` of the answer
carries `samples`; how far back they go is the broker's sample retention
(by default about a day for the overview and vhosts, an hour for queues and
exchanges).
"""

from typing import cast

from rabbit.management_http import JSON, ManagementHTTP, QueryParams, exchange_segment, segment


def _window(age_s: int, incr_s: int) -> QueryParams:
    return {
        "msg_rates_age": age_s,
        "msg_rates_incr": incr_s,
        "lengths_age": age_s,
        "lengths_incr": incr_s,
    }


def overview(client: ManagementHTTP, age_s: int, incr_s: int) -> JSON:
    params = dict(_window(age_s, incr_s))
    params["columns"] = "message_stats,queue_totals,object_totals,churn_rates"
    return cast(JSON, client.get("overview", params=params))


def vhost(client: ManagementHTTP, name: str, age_s: int, incr_s: int) -> JSON:
    return cast(JSON, client.get(f"vhosts/{segment(name)}", params=_window(age_s, incr_s)))


def queue(client: ManagementHTTP, vhost: str, name: str, age_s: int, incr_s: int) -> JSON:
    path = f"queues/{segment(vhost)}/{segment(name)}"
    return cast(JSON, client.get(path, params=_window(age_s, incr_s)))


def exchange(client: ManagementHTTP, vhost: str, name: str, age_s: int, incr_s: int) -> JSON:
    path = f"exchanges/{segment(vhost)}/{exchange_segment(name)}"
    return cast(JSON, client.get(path, params=_window(age_s, incr_s)))
