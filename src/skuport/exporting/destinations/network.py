"""The one network guard: every outbound address a user configures is checked here.

Loopback, private, link-local (cloud metadata), shared, reserved, unspecified and multicast
addresses — IPv4 and IPv6, mapped forms, and the decimal, octal and hex spellings of IPv4 that the
resolver accepts — are refused unless the operator allows them (``SKUPORT_ALLOW_PRIVATE_NETWORKS``,
or hosts and CIDRs in ``SKUPORT_NETWORK_ALLOW_LIST``; the webhook-only settings of earlier versions
still work). Checked when a destination is created or replaced (a name that does not resolve yet is
accepted), and again right before connecting. Every connection is then opened to the address that was
checked: the webhook and SFTP clients connect to it directly; boto3 (S3) and azure-storage-blob connect
by name themselves, so their connection classes re-check the name at each connect and open the socket to
the checked address while TLS keeps the name (:func:`pinned_pool`). A refusal says no more than "refused
by the network policy": it must not tell an open port from a closed one.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Any
from urllib.parse import urlsplit

from pydantic import ValidationInfo
from urllib3.connection import HTTPConnection

from skuport.config import get_settings
from skuport.exporting.destinations.base import DeliveryError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
POLICY = "refused by the network policy"
HINT = (
    "internal addresses (loopback, private, link-local, metadata) are refused; an operator can allow "
    "them with SKUPORT_ALLOW_PRIVATE_NETWORKS=true or by listing the host or its network in "
    "SKUPORT_NETWORK_ALLOW_LIST"
)


class NetworkRefused(DeliveryError):
    """The destination's address is refused by the network policy (never retried)."""

    status_code = 422
    code = "network_refused"


def is_internal(ip: IPAddress) -> bool:
    """Private, loopback, link-local (cloud metadata), shared, reserved, unspecified or multicast."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global or ip.is_multicast


def allowed(host: str, ip: IPAddress) -> bool:
    """True when the operator allows this internal address (everything, or the host or its network)."""
    settings = get_settings()
    if settings.allow_private_networks or settings.webhook_allow_private:
        return True
    entries = f"{settings.network_allow_list},{settings.webhook_allow_list}".split(",")
    for entry in (e.strip().lower() for e in entries):
        if not entry:
            continue
        try:
            if ip in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            if host == entry or (entry.startswith(".") and host.endswith(entry)):
                return True
    return False


def _addresses(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _refused(host: str, addresses: list[str]) -> bool:
    for address in addresses:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if is_internal(ip) and not allowed(host, ip):
            return True
    return False


def at_create(info: ValidationInfo) -> bool:
    """True while a config is validated for create or PUT (not when a delivery rebuilds it)."""
    return bool(info.context and info.context.get("check_network"))


def check_host(host: str | None, port: int = 443) -> None:
    """At create and PUT: raise ValueError when ``host`` resolves to a refused address.

    A name that does not resolve (yet) is accepted: it is checked again when connecting.
    """
    if not host:
        return
    host = host.lower().strip("[]")
    try:
        addresses = _addresses(host, port)
    except (socket.gaierror, UnicodeError, OSError):
        return
    if _refused(host, addresses):
        raise ValueError(f"{POLICY}: {HINT}")


def check_url(url: str | None) -> None:
    """:func:`check_host` for the host of ``url``."""
    if not url:
        return
    parts = urlsplit(url)
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        return  # a bad port is the URL validator's to report
    check_host(parts.hostname, port)


def resolve_checked(host: str, port: int, *, what: str) -> str:
    """Right before connecting: one checked address to connect to; NetworkRefused or a transient error."""
    host = host.lower().strip("[]")
    try:
        addresses = _addresses(host, port)
    except (socket.gaierror, UnicodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise DeliveryError(
            f"{what}: could not resolve {host} ({reason}). Check the host name; the run can be retried.",
            transient=True,
        ) from None
    if _refused(host, addresses):
        raise NetworkRefused(f"{what}: {host} is {POLICY} ({HINT}).")
    return addresses[0]


def check_connect_url(url: str, *, what: str) -> None:
    """:func:`resolve_checked` for the host of ``url`` (clients that connect by name themselves)."""
    parts = urlsplit(url)
    resolve_checked(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80), what=what)


def pinned_pool(pool_cls: type[Any], *, what: str) -> type[Any]:
    """An urllib3 connection-pool class whose every new connection passes the guard and goes to the
    address that was checked (for SDKs that connect by name: boto3, azure-storage-blob).

    The host name stays the connection's ``host``, so TLS still sends it (SNI) and verifies the
    certificate against it; only the socket is opened to the checked address. A name that now resolves
    to a refused address (DNS rebinding) never gets a connection.
    """
    base: type[HTTPConnection] = pool_cls.ConnectionCls

    def _new_conn(connection: Any) -> Any:
        name = connection._dns_host
        connection._dns_host = resolve_checked(name, connection.port, what=what)
        try:
            return base._new_conn(connection)
        finally:
            connection._dns_host = name

    pinned = type(f"Pinned{base.__name__}", (base,), {"_new_conn": _new_conn})
    return type(f"Pinned{pool_cls.__name__}", (pool_cls,), {"ConnectionCls": pinned})


def delivery_error_in(exc: BaseException) -> DeliveryError | None:
    """The guard's refusal (or its resolution failure) behind an SDK's wrapping of it, if that is what
    ``exc`` is (botocore keeps it in ``kwargs['error']``, others as the cause)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, DeliveryError):
            return seen
        wrapped = getattr(seen, "kwargs", None)
        inner = wrapped.get("error") if isinstance(wrapped, dict) else None
        seen = inner if isinstance(inner, BaseException) else (seen.__cause__ or seen.__context__)
    return None
