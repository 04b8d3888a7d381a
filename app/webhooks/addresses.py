"""Where webhooks may be sent: public addresses only, unless `MOT_WEBHOOK_ALLOW_HOSTS` lists
others.

A `manage` key chooses the URL and reads the status each delivery got: without this rule
it could make the service probe the network it runs in (loopback admin ports, cloud
metadata, private APIs) and read the answers. The rule is applied when a webhook is
registered and again at every send, after resolving the name: a name may be pointed at an
internal address after its registration (DNS rebinding), so the sender connects to the
very address it checked rather than resolving again.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from app.config import IPNetwork, Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

RESOLVE_TIMEOUT = 5.0

_SHARED = ipaddress.ip_network("100.64.0.0/10")
"""Carrier-grade NAT (RFC 6598): neither private nor public, and inside some clouds."""
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
"""IPv6 addresses that a NAT64 gateway translates to the IPv4 address in their last bits."""


class AddressRefused(Exception):
    """A webhook host that is, or resolves to, an address webhooks may not reach."""

    def __init__(self, message: str, *, code: str, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        """Short enough to store with a delivery: says why, names no address."""


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts webhooks may reach although their addresses are not public."""

    names: Collection[str] = frozenset()
    networks: Sequence[IPNetwork] = ()

    @classmethod
    def of(cls, settings: Settings) -> "AllowList":
        return cls(settings.webhook_allowed_names, settings.webhook_allowed_networks)

    def allows(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)


def kind(address: IPAddress) -> str | None:
    """What kind of special-purpose address this is (`loopback`, `private`...), or None for
    a public one."""
    if isinstance(address, ipaddress.IPv6Address):
        # An IPv6 address that carries an IPv4 one reaches that IPv4 address.
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return kind(embedded)
    if address.is_unspecified:
        return "unspecified"
    if address.is_loopback:
        return "loopback"
    if address.is_link_local:
        return "link-local"
    if address.is_multicast:
        return "multicast"
    if address in _SHARED:
        return "shared"
    if address.is_reserved:
        return "reserved"
    # Site-local (fec0::/10) is the deprecated forerunner of unique local addresses.
    if address.is_private or (isinstance(address, ipaddress.IPv6Address) and address.is_site_local):
        return "private"
    if not address.is_global:  # documentation, benchmarking and other special ranges
        return "reserved"
    return None


def literal(host: str) -> IPAddress | None:
    """The address a URL's host spells, if it is one."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to, in the resolver's order; empty if none."""
    loop = asyncio.get_running_loop()
    try:
        async with asyncio.timeout(RESOLVE_TIMEOUT):
            found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, TimeoutError):  # socket.gaierror is an OSError
        return []
    addresses: list[IPAddress] = []
    for _family, _type, _proto, _name, socket_address in found:
        # An IPv6 socket address may carry a zone ("fe80::1%eth0"): the address is before it.
        address = ipaddress.ip_address(str(socket_address[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


async def checked_addresses(host: str, port: int, *, allowed: AllowList) -> list[IPAddress]:
    """The addresses `host` may be reached at; refused if it resolves to none, or if any
    of them is not public and not allowed (an answer that mixes public and internal
    addresses is how a rebinding attack gets past a check of the first one)."""
    host = host.lower().rstrip(".")
    address = literal(host)
    addresses = [address] if address is not None else await resolve(host, port)
    if not addresses:
        raise AddressRefused(
            f"{host} does not resolve to any address.",
            code="unresolvable_host",
            reason="name not resolved",
        )
    if host in allowed.names:
        return addresses
    for address in addresses:
        refused_kind = None if allowed.allows(address) else kind(address)
        if refused_kind is not None:
            shown = host if host == str(address) else f"{host} ({address})"
            raise AddressRefused(
                f"{shown} is a {refused_kind} address; webhooks are sent to public addresses "
                "only, unless MOT_WEBHOOK_ALLOW_HOSTS lists the host or its network.",
                code="address_not_allowed",
                reason=f"address not allowed ({refused_kind})",
            )
    return addresses
