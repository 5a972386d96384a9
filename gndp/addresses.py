"""The client's address, the one place the app reads it: the sign-in lockout and the API's
rate limit count by it.

`X-Forwarded-For` is written by whoever sends the request, so it is believed only as far as
it was written by proxies this deployment trusts (`GNDP_TRUSTED_PROXIES`: addresses and
CIDR networks, none by default). The client is the connection's peer (`REMOTE_ADDR`) unless
that peer is a trusted proxy; then it is the right-most address of `X-Forwarded-For` that is
not a trusted proxy: each trusted proxy appends the peer it saw, so everything to the left of
the first untrusted address is the client's own say. The ASGI server must not rewrite the
peer itself (uvicorn runs with `--no-proxy-headers`: by default it believes the header from
any client on 127.0.0.1).
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

UNKNOWN = "unknown"


def client_address(request) -> str:
    """The address of the client that sent `request` (see the module docstring)."""
    meta = getattr(request, "META", None) or {}
    peer = parse(meta.get("REMOTE_ADDR", ""))
    if peer is None:
        return (meta.get("REMOTE_ADDR") or UNKNOWN)[:64]
    networks = trusted_networks(tuple(settings.GNDP_TRUSTED_PROXIES))
    if not _within(peer, networks):
        return str(peer)
    nearest = peer
    for hop in reversed(meta.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        if not hop.strip():
            continue
        address = parse(hop)
        if address is None:
            # What a trusted proxy passed on is not an address: the proxy is the last hop
            # anyone vouches for.
            return str(nearest)
        if not _within(address, networks):
            return str(address)
        nearest = address
    return str(nearest)  # every hop is a trusted proxy: the farthest of them


def parse(value: str) -> Address | None:
    """An address as a header carries it: bare, IPv4 with a port, IPv6 in brackets with or
    without a port; an IPv4 address mapped into IPv6 is the IPv4 address."""
    value = (value or "").strip()
    if value.startswith("["):
        value = value[1:value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:  # IPv4 with a port
        value = value.split(":", 1)[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped if mapped is not None else address


@lru_cache(maxsize=8)
def trusted_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """`GNDP_TRUSTED_PROXIES` as networks (an address is a network of one)."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"GNDP_TRUSTED_PROXIES: {entry!r} is not an IP address or a CIDR network") from None
    return tuple(networks)


def check_trusted_proxies() -> None:
    """ImproperlyConfigured for a malformed `GNDP_TRUSTED_PROXIES` (also `manage.py check`,
    gndp.E002)."""
    trusted_networks(tuple(settings.GNDP_TRUSTED_PROXIES))


def _within(address: Address, networks: tuple[Network, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)
