"""A delivery as the tap's reader hands it on, and one being assembled from its frames."""

from dataclasses import dataclass

from rabbit.field_tables import FieldTable


class Delivery:
    """One message: delivery tag, redelivered, routing key, headers, body, and `raw`:
    the content header's property flags and encoded properties as they came
    (they identify the message again on a redelivery). `header_error` says why
    `headers` is None when the broker sent a header table that cannot be read:
    the message is still delivered (and acked once stored), so one unreadable
    table can never stop the tap."""

    __slots__ = (
        "tag",
        "redelivered",
        "routing_key",
        "headers",
        "body",
        "raw",
        "header_error",
        "arrived_us",
        "stamp_error_us",
    )

    tag: int
    redelivered: bool
    routing_key: bytes
    headers: FieldTable | None
    body: bytes
    raw: bytes
    header_error: str | None
    arrived_us: int  # when its last bytes arrived (TraceConsumer.read_each)
    stamp_error_us: int  # how late that stamp may be (0: read as it came)

    def __init__(
        self,
        tag: int,
        redelivered: bool,
        routing_key: bytes,
        headers: FieldTable | None,
        body: bytes,
        raw: bytes,
        header_error: str | None = None,
    ) -> None:
        self.tag = tag
        self.redelivered = redelivered
        self.routing_key = routing_key
        self.headers = headers
        self.body = body
        self.raw = raw
        self.header_error = header_error
        self.arrived_us = 0
        self.stamp_error_us = 0


@dataclass(slots=True)
class PartialDelivery:
    """A delivery being assembled from its method, header and body frames.

    Slots, and every field passed positionally: one is made for every message
    on the tap's hot path, so it must cost no more than a list would.
    """

    tag: int
    redelivered: bool
    routing_key: bytes
    headers: FieldTable | None
    size: int  # of the body, from the content header
    parts: list[bytes]  # the body frames so far
    got: int  # bytes of body so far
    raw: bytes  # the encoded properties, as they came
    header_error: str | None  # why `headers` could not be read
