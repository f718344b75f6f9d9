"""Server-side request forgery guard for webhook targets.

An office registers a URL and the exchange POSTs to it, so a URL naming the cloud metadata
service, a database on the private network or the exchange's own loopback would turn the
webhook worker into a proxy into the exchange's network (Standard Webhooks 1.0.0, "Server
side request forgery"). :func:`check_url` runs at registration and again before each
delivery; it refuses loopback, link-local, private, carrier-grade NAT, multicast, reserved
and unspecified addresses (also when wrapped in IPv6: IPv4-mapped, 6to4, NAT64), unless the
operator listed the host or a range in ``EXCHANGE_WEBHOOK_ALLOW_HOSTS``. A host with several
addresses is refused when any one of them is refused.

Checking the name and then letting the HTTP client resolve it again leaves a gap: DNS
rebinding answers the check with a public address and the connection with 127.0.0.1. So
the delivery never resolves again. :class:`PinnedTransport` is an ``httpx`` transport
whose httpcore network backend opens every TCP connection to one of the addresses that
:func:`check_url` approved, while the URL keeps its host name, so the ``Host`` header, TLS
SNI and certificate verification still use the name. A request for any other origin
through that transport is refused. :func:`pinned_client` puts the two together, with
redirects off and proxies from the environment ignored (a proxy would do its own lookup).
"""

from __future__ import annotations

import ipaddress
import re
import socket
import ssl
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from urllib.parse import urlsplit

import httpcore
import httpx

from .errors import WebhookTargetRefused, WebhookTargetUnresolvable

__all__ = [
    "PinnedTransport",
    "check_url",
    "pinned_client",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?", re.ASCII)
# A last label that is all digits (or hex) is not a DNS name: it is one of the numeric host
# forms ("127.1", "0x7f.1", "2130706433", "0177.0.0.1") that inet_aton reads as an address.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)", re.ASCII)
_UNSAFE_CHARS = re.compile(r"[\x00-\x20\x7f\\]")

_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_SITE_LOCAL = ipaddress.IPv6Network("fec0::/10")


def _normalise_host(host: str) -> str:
    return host.lower().rstrip(".")


def _as_ip(text: str) -> IPAddress | None:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.scope_id is not None:
            return None
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
    return address


def _refusal(address: IPAddress) -> str | None:
    """Why an address may not be called without an allow-list entry, or None if it may."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded: IPAddress | None = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            # The packet ends at the embedded IPv4 address, so that address decides (and a
            # DNS64 resolver on an IPv6-only host answers every public name with 64:ff9b::).
            inner = _refusal(embedded)
            return None if inner is None else f"wraps {embedded}, {inner}"
        if address in _NAT64_LOCAL:
            return "a local-use NAT64 address"
        if address in _SITE_LOCAL:
            return "a site-local address"
    if address.is_unspecified:
        return "the unspecified address"
    if address.is_loopback:
        return "a loopback address"
    if address.is_link_local:
        return "a link-local address (cloud metadata lives there)"
    if address.is_multicast:
        return "a multicast address"
    if isinstance(address, ipaddress.IPv4Address) and address in _CGNAT:
        return "a carrier-grade NAT address"
    if address.is_private:
        return "a private address"
    if address.is_reserved:
        return "a reserved address"
    if not address.is_global:
        return "not a globally routable address"
    return None


@lru_cache(maxsize=64)
def _parse_allow(entries: tuple[str, ...]) -> tuple[frozenset[str], tuple[IPNetwork, ...]]:
    hosts: set[str] = set()
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        if "/" in entry or ":" in entry or _as_ip(entry) is not None:
            try:
                # strict: "10.1.2.3/8" is a typo or a misunderstanding, never silently 10/8.
                networks.append(ipaddress.ip_network(entry, strict=True))
            except ValueError:
                raise ValueError(f"webhook allow-list entry {entry!r} is not a valid CIDR range") from None
            continue
        host = _normalise_host(entry)
        if not _is_host_name(host):
            raise ValueError(f"webhook allow-list entry {entry!r} is neither a host name nor a CIDR range")
        hosts.add(host)
    return frozenset(hosts), tuple(networks)


def _is_host_name(host: str) -> bool:
    labels = host.split(".")
    return (
        0 < len(host) <= 253
        and all(_LABEL.fullmatch(label) for label in labels)
        and not _NUMERIC_LABEL.fullmatch(labels[-1])
    )


def _target(url: str) -> tuple[str, str, int]:
    """(scheme, host, port) of a URL that may be called at all, before any resolution."""
    if not isinstance(url, str) or not url:
        raise WebhookTargetRefused(str(url), "not a URL")
    # Spaces, controls and backslashes are read differently by different URL parsers; a
    # URL that needs them is not one an office has to register.
    if _UNSAFE_CHARS.search(url) or not url.isascii():
        raise WebhookTargetRefused(url, "the URL holds whitespace, control characters, backslashes or non-ASCII text "
                                 "(write an international host name in its xn-- form)")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS:
        raise WebhookTargetRefused(url, "only http and https URLs are called")
    if "@" in parts.netloc:
        raise WebhookTargetRefused(url, "credentials in the URL (user:password@) are not accepted")
    host = parts.hostname
    if not host:
        raise WebhookTargetRefused(url, "the URL names no host")
    try:
        port = parts.port
    except ValueError:
        raise WebhookTargetRefused(url, "the port is not a number from 1 to 65535") from None
    if port is None:
        port = _DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise WebhookTargetRefused(url, "the port is not a number from 1 to 65535")
    host = _normalise_host(host)
    if _as_ip(host) is None and not _is_host_name(host):
        raise WebhookTargetRefused(url, f"{host!r} is neither a DNS host name nor an IP address")
    return scheme, host, port


Resolver = Callable[..., Iterable[tuple]]


def check_url(url: str, allow: Sequence[str] = (), *, resolve: Resolver = socket.getaddrinfo) -> list[str]:
    """The addresses a webhook to ``url`` may connect to, or :class:`~dossiers.errors.WebhookTargetRefused`.

    ``allow`` holds the operator's exceptions (``EXCHANGE_WEBHOOK_ALLOW_HOSTS``): host names,
    matched exactly and case-insensitively, which approve every address they resolve to, and
    CIDR ranges or single addresses ("127.0.0.0/8", "::1/128", "10.1.2.3"), which approve
    the addresses inside them. Every address of the host is checked; one refused address
    refuses the URL. ``resolve`` has the signature of :func:`socket.getaddrinfo`.
    Raises :class:`ValueError` for a malformed allow-list entry.
    """
    if isinstance(allow, str):
        raise TypeError("allow is a list of host names and CIDR ranges, not one string")
    allowed_hosts, allowed_networks = _parse_allow(tuple(allow))
    _, host, port = _target(url)

    literal = _as_ip(host)
    if literal is not None:
        addresses = [literal]
    else:
        try:
            answers = list(resolve(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as exc:
            raise WebhookTargetUnresolvable(url, f"{host!r} does not resolve ({exc})") from None
        addresses = []
        for family, *_, sockaddr in answers:
            text = str(sockaddr[0]).split("%", 1)[0] if family in (socket.AF_INET, socket.AF_INET6) else ""
            address = _as_ip(text)
            if address is None:
                raise WebhookTargetRefused(url, f"{host!r} resolves to something that is not an IP address")
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise WebhookTargetUnresolvable(url, f"{host!r} resolves to no address")

    if host in allowed_hosts:
        return [str(address) for address in addresses]
    for address in addresses:
        reason = _refusal(address)
        if reason is None or any(address in network for network in allowed_networks):
            continue
        named = "" if literal is not None else f"{host!r} resolves to "
        raise WebhookTargetRefused(url, f"{named}{address}, {reason}; "
                                 "the operator may allow it in EXCHANGE_WEBHOOK_ALLOW_HOSTS")
    return [str(address) for address in addresses]


class _PinnedBackend(httpcore.NetworkBackend):
    """Connects to the approved addresses whatever name httpcore asks for, in order, so a
    second DNS answer never reaches the socket."""

    def __init__(self, host: str, addresses: Sequence[str]):
        self._host = host
        self._addresses = tuple(addresses)
        self._inner = httpcore.SyncBackend()

    def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        if _normalise_host(host.strip("[]")) != self._host:
            raise WebhookTargetRefused(host, "the connection is not to the host that was checked")
        last: Exception | None = None
        for address in self._addresses:
            try:
                return self._inner.connect_tcp(address, port, timeout=timeout, local_address=local_address,
                                               socket_options=socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last = exc
        assert last is not None
        raise last

    def connect_unix_socket(self, path, timeout=None, socket_options=None):
        raise httpcore.ConnectError("a pinned webhook transport connects over TCP only")

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class PinnedTransport(httpx.HTTPTransport):
    """An ``httpx`` transport for one origin whose connections go to approved addresses only.

    ``url`` gives the origin (scheme, host, port); ``approved_ips`` are the addresses
    :func:`check_url` returned for it. Requests for another origin raise
    :class:`WebhookTargetRefused`. Keyword arguments ``verify`` (an SSL context or a bool),
    ``http1``, ``http2``, ``limits``, ``retries`` and ``socket_options`` mean what they mean
    to :class:`httpx.HTTPTransport`; proxies and Unix sockets are not offered.
    """

    def __init__(
        self,
        url: str,
        approved_ips: Sequence[str],
        *,
        verify: ssl.SSLContext | bool = True,
        http1: bool = True,
        http2: bool = False,
        limits: httpx.Limits = httpx.Limits(max_connections=10, max_keepalive_connections=5),
        retries: int = 0,
        socket_options=None,
    ) -> None:
        scheme, host, port = _target(url)
        if isinstance(approved_ips, str):
            raise TypeError("approved_ips is a list of addresses, not one string")
        addresses = []
        for text in approved_ips:
            address = _as_ip(text)
            if address is None:
                raise ValueError(f"{text!r} is not an IP address")
            addresses.append(str(address))
        if not addresses:
            raise ValueError("a pinned transport needs at least one approved address")
        self._origin = (scheme, host, port)
        ssl_context = httpx.create_ssl_context(verify=verify, trust_env=False)
        super().__init__(verify=ssl_context, trust_env=False, http1=http1, http2=http2, limits=limits)
        # The pool httpx builds, with the network backend replaced: only the TCP connect
        # changes; TLS (SNI, certificate host name) and the Host header keep the URL's name.
        self._pool.close()
        self._pool = httpcore.ConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            http1=http1,
            http2=http2,
            retries=retries,
            socket_options=socket_options,
            network_backend=_PinnedBackend(host, addresses),
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        scheme = request.url.scheme.lower()
        origin = (scheme, _normalise_host(request.url.host), request.url.port or _DEFAULT_PORTS.get(scheme, 0))
        if origin != self._origin:
            raise WebhookTargetRefused(str(request.url), "this transport was approved for another origin")
        return super().handle_request(request)


def pinned_client(
    url: str,
    allow: Sequence[str] = (),
    *,
    resolve: Resolver = socket.getaddrinfo,
    timeout: float = 15.0,
    verify: ssl.SSLContext | bool = True,
) -> httpx.Client:
    """A client for one delivery to ``url``: checked now, pinned to the approved addresses.

    Raises :class:`WebhookTargetRefused` as :func:`check_url` does. The client follows no
    redirects (a 3xx is a failed delivery, and its target was never checked) and ignores
    proxy settings from the environment. Close it (``with pinned_client(...) as client``).
    """
    approved = check_url(url, allow, resolve=resolve)
    return httpx.Client(
        transport=PinnedTransport(url, approved, verify=verify),
        timeout=timeout,
        follow_redirects=False,
        trust_env=False,
    )
