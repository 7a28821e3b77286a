"""Who is asking, for one purpose only: the key a rate limiter counts a request under.

Without a reverse proxy the client is the TCP peer. Behind one, every person's connection comes
from the proxy, so the peer would put everyone in one bucket: the proxy's X-Forwarded-For names
the client instead. That header is believed only when the peer is a proxy the operator trusts
(KALKAN_TRUSTED_PROXIES, addresses and networks, as uvicorn's --forwarded-allow-ips); anyone
else could write any address into it and get a fresh bucket for every request.

Each proxy appends the address it saw to the header, so the entries on the right are the ones a
trusted proxy wrote, and anything further left may be the client's own invention. The client is
the rightmost entry that is not a trusted proxy. An entry that is not an address stops the walk:
the request then counts against the trusted proxy that passed it on (more limiting, never less).

IPv6 clients are keyed by their /64: a single home or phone is routinely given a whole /64 and
may pick any address in it, so one address per bucket would let one person have 2^64 buckets.

The address is never stored or logged: the limiters hash the key with a salt that changes daily
and is kept only in memory (server/ratelimit.py). The per-client connection cap counts open
connections by the same key (`connection_key`: the TCP peer only, a trusted proxy never), in
memory, and forgets a key when its last connection closes.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

from starlette.requests import HTTPConnection

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network
IPV6_BUCKET_PREFIX = 64
FORWARDED_FOR = "x-forwarded-for"


def parse_trusted_proxies(text: str) -> tuple[IPNetwork, ...]:
    """`10.0.0.0/8, 192.0.2.7, 2001:db8::/32` as networks (a lone address is its own network);
    ValueError naming the first entry that is neither."""
    networks = []
    for entry in text.split(","):
        entry = entry.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise ValueError(f"{entry!r} is not an IP address or network: list the proxies' addresses "
                             "or networks, comma-separated (e.g. 10.0.0.0/8, 192.0.2.7, 2001:db8::/32)") from None
    return tuple(networks)


def parse_address(text: str) -> IPAddress | None:
    """An address as peers and X-Forwarded-For entries spell it (192.0.2.7, 192.0.2.7:443,
    2001:db8::1, [2001:db8::1]:443); an IPv4 address written as IPv6 (::ffff:192.0.2.7) is that
    IPv4 address. None if it is not an address."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:  # IPv4 with a port; IPv6 has at least two colons
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _trusted(address: IPAddress, proxies: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == network.version and address in network for network in proxies)


def client_address(peer: str | None, forwarded_for: Iterable[str],
                   proxies: tuple[IPNetwork, ...]) -> IPAddress | str | None:
    """The client of a request from `peer` carrying these X-Forwarded-For header values: the peer
    unless it is a trusted proxy, else the rightmost entry that is not one (see the module doc)."""
    if peer is None:
        return None
    address = parse_address(peer)
    if address is None:
        return peer  # not an IP peer (a test transport, a Unix socket): its name is all we have
    if not _trusted(address, proxies):
        return address
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    for hop in reversed(hops):
        hop_address = parse_address(hop)
        if hop_address is None:
            return address  # unreadable: count it against the trusted proxy that passed it on
        address = hop_address
        if not _trusted(address, proxies):
            return address
    return address  # every hop a trusted proxy (or no header): the leftmost, or the peer itself


def bucket(address: IPAddress | str | None) -> str:
    """The rate-limit key of a client address: the address, or its /64 for IPv6."""
    if isinstance(address, IPv6Address):
        return str(IPv6Network((address, IPV6_BUCKET_PREFIX), strict=False))
    return "" if address is None else str(address)


def connection_key(peer: str | None, proxies: tuple[IPNetwork, ...]) -> str | None:
    """The key the per-client connection cap (server/http_limits.py) counts a connection from
    `peer` under: its address, or its /64 for IPv6. None, never capped, for a trusted proxy, since
    every client arrives through it and X-Forwarded-For is not read yet when a connection opens,
    and for a peer that is not an IP address (a Unix socket)."""
    address = parse_address(peer) if peer is not None else None
    if address is None or _trusted(address, proxies):
        return None
    return bucket(address)


def rate_limit_key(request: HTTPConnection) -> str:
    """The key every rate limiter counts `request` under (the case API, the case page, the
    partner API's failed authentications): the client's address or IPv6 /64, seen through the
    trusted proxies in the app's settings. Hash it at once; never store or log it."""
    proxies: tuple[IPNetwork, ...] = request.app.state.settings.trusted_proxies
    peer = request.client.host if request.client else None
    return bucket(client_address(peer, request.headers.getlist(FORWARDED_FOR), proxies))
