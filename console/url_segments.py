"""A URL converter for broker object names (vhosts, queues, exchanges, connections).

Those names may hold `/`, `%`, spaces, `<script>` or unicode. A path segment is
made with quote(name, safe="") so it never contains a `/`; Django's reverse()
then escapes the `%` once more, which survives the server decoding the path
once. The view receives the name exactly as the broker knows it.

A name made only of dots ("." or "..") would be read by browsers as a relative
path step, so its dots are escaped too.
"""

from urllib.parse import quote, unquote

from django.urls import register_converter

DEFAULT_EXCHANGE_SEGMENT = "amq.default"


def encode(name):
    """One path segment for a broker name."""
    segment = quote(str(name), safe="")
    if segment and set(segment) == {"."}:
        segment = segment.replace(".", "%2E")
    return segment


def decode(segment):
    return unquote(segment)


class NameConverter:
    """`<name:queue>`: any broker name, encoded as one path segment."""

    regex = r"[^/]+"

    def to_python(self, value):
        return decode(value)

    def to_url(self, value):
        return encode(value)


class ExchangeConverter(NameConverter):
    """Like `name`, but the default exchange (named "") travels as amq.default."""

    def to_python(self, value):
        name = decode(value)
        return "" if name == DEFAULT_EXCHANGE_SEGMENT else name

    def to_url(self, value):
        return encode(value or DEFAULT_EXCHANGE_SEGMENT)


register_converter(NameConverter, "name")
register_converter(ExchangeConverter, "exchange")


def href_segment(name):
    """The segment as it appears in an href: what reverse() makes, without its cost.

    encode() leaves only unreserved characters and %XX; reverse() then
    escapes each % once more. A list page links hundreds of rows.
    """
    return encode(name).replace("%", "%25")
