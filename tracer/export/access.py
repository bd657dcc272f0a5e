"""Who may read /metrics: a valid API bearer token of a viewer, or a client
address inside WARREN_METRICS_ALLOW (default loopback).

Prometheus scrapes with `authorization: {credentials: <token>}` or from an
allowed address; anyone else gets 401 and no figures.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=4)
def _parse(entries: tuple[str, ...]) -> tuple[Network, ...]:
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"WARREN_METRICS_ALLOW: {entry!r} is not an address or a network "
                "(such as 127.0.0.1, 10.0.0.0/8 or ::1/128)."
            ) from None
    return tuple(networks)


def allowed_networks() -> tuple[Network, ...]:
    return _parse(tuple(settings.WARREN_METRICS_ALLOW))


def address_allowed(address: str | None) -> bool:
    """Whether a client address (REMOTE_ADDR) is inside an allowed network."""
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip.version == network.version and ip in network for network in allowed_networks())
