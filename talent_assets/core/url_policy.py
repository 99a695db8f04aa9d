"""Which URLs the pipeline may fetch or call: the server-side request forgery (SSRF) rules.

Pure: the caller resolves the host and hands every address here; ``infra/url_fetch.py`` then
connects to exactly the address that was checked (so a DNS answer that changes between the
check and the connection cannot slip a private address through). A URL is refused when its
scheme is not http/https, it carries credentials, or any address its host resolves to is
loopback, link-local (which holds the cloud metadata service, 169.254.169.254), private,
shared (100.64/10), multicast, reserved or unspecified — unless ``TALENT_URL_ALLOW`` lists
the host name or a network containing the address.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

ALLOWED_SCHEMES = ("http", "https")
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class UrlRefusedError(ValueError):
    """A URL the policy does not let the pipeline fetch or call."""


@dataclass(frozen=True)
class UrlAllowList:
    """Host names and networks that are allowed although not public (``TALENT_URL_ALLOW``)."""

    hosts: frozenset[str] = frozenset()
    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, raw: str | None) -> UrlAllowList:
        """``"localhost, 10.0.0.0/8, 127.0.0.1"``: names, addresses or CIDR networks."""
        hosts: set[str] = set()
        networks: list[Network] = []
        for item in (raw or "").split(","):
            item = item.strip().lower()
            if not item:
                continue
            try:
                networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                hosts.add(item.rstrip("."))
        return cls(frozenset(hosts), tuple(networks))

    def allows(self, host: str, address: Address) -> bool:
        return host.lower().rstrip(".") in self.hosts or any(
            address in network for network in self.networks
        )


@dataclass(frozen=True)
class UrlTarget:
    """A checked URL's parts: what to connect to and what to say in the request."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as sent in the request line


def split_url(url: str) -> UrlTarget:
    """The URL's parts; refuses other schemes, user:password@ and hosts that are missing."""
    try:
        parts: SplitResult = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise UrlRefusedError(f"not a valid URL: {url[:200]!r}") from None
    scheme = parts.scheme.lower()
    if scheme not in ALLOWED_SCHEMES:
        raise UrlRefusedError(f"only http and https URLs are accepted, not {scheme or 'no'} scheme")
    if parts.username or parts.password:
        raise UrlRefusedError("URLs with a user name or password are refused")
    if not parts.hostname:
        raise UrlRefusedError(f"the URL has no host: {url[:200]!r}")
    path = parts.path or "/"
    if parts.query:
        path = f"{path}?{parts.query}"
    return UrlTarget(scheme, parts.hostname, port or (443 if scheme == "https" else 80), path)


def address_problem(address: Address) -> str | None:
    """Why ``address`` is not a public internet address (None when it is)."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address_problem(address.ipv4_mapped)
    checks = (
        ("loopback", address.is_loopback),
        ("link-local (cloud metadata)", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("shared (carrier-grade NAT)", address in ipaddress.ip_network("100.64.0.0/10")),
    )
    return next((f"a {name} address" for name, hit in checks if hit), None)


def check_addresses(host: str, addresses: list[str], allow: UrlAllowList) -> Address:
    """The address to connect to, once every address ``host`` resolves to has passed."""
    if not addresses:
        raise UrlRefusedError(f"{host} does not resolve to any address")
    parsed = [ipaddress.ip_address(a.split("%", 1)[0]) for a in addresses]
    for address in parsed:
        problem = address_problem(address)
        if problem and not allow.allows(host, address):
            raise UrlRefusedError(
                f"refused {host}: {address} is {problem} (list it in TALENT_URL_ALLOW to allow)"
            )
    return parsed[0]


def display_url(url: str) -> str:
    """``url`` for messages, tags and metadata: without its query string and fragment
    (signed URLs carry credentials there), at most 200 characters."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return url.split("?", 1)[0][:200]
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"[:200]
