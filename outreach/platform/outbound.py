"""Outbound webhook HTTP: the signature, the SSRF guard (an address is refused when it, or
the IPv4 address a 6to4, Teredo, mapped or NAT64 address carries, is loopback, private,
link-local or reserved) and one POST with a total deadline to the address that was checked
(no DNS rebinding between the check and the connection)."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import threading
from urllib.parse import urlsplit

from outreach.errors import Invalid


def sign(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries to a host: IPv4-mapped and -compatible,
    6to4 (2002::/16), Teredo (2001::/32: server and client) and NAT64 (64:ff9b::/96)."""
    out = []
    if ip.ipv4_mapped:
        out.append(ip.ipv4_mapped)
    if ip.sixtofour:
        out.append(ip.sixtofour)
    if ip.teredo:
        out.extend(ip.teredo)
    if int(ip) >> 32 == 0 or any(ip in net for net in _NAT64):
        out.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return out


def _refused(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    return (ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def blocked(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if ip.ipv4_mapped:  # the IPv4 address it is, judged as such
            return _refused(ip.ipv4_mapped)
        if any(_refused(v4) for v4 in embedded):
            return True
    return _refused(ip)


def resolve(url: str, allow_private: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, address to connect to) of an acceptable URL; else ``Invalid``
    on ``url``."""
    def bad(message: str) -> Invalid:
        return Invalid("Validation failed.", {"url": [message]})

    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise bad("Not a valid URL.") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise bad("Only http and https URLs are allowed.")
    if parts.username or parts.password:
        raise bad("Credentials in the URL are not allowed; use the secret.")
    host = parts.hostname
    port = port or (443 if parts.scheme == "https" else 80)
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise bad(f"The host {host!r} does not resolve.") from exc
    addresses = [info[4][0] for info in infos]
    if not addresses:
        raise bad(f"The host {host!r} does not resolve.")
    if not allow_private:
        refused = [a for a in addresses if blocked(a.split("%")[0])]
        if refused:
            raise bad(f"The host resolves to a loopback, private or link-local address "
                      f"({refused[0]}); not allowed.")
    return parts.scheme, host, port, addresses[0]


def post(url: str, body: bytes, headers: dict[str, str], timeout: float,
          allow_private: bool) -> int:
    """POST to the checked address of ``url``; the HTTP status code."""
    scheme, host, port, address = resolve(url, allow_private)
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    # ``timeout`` bounds the whole exchange, not each read: a receiver that drips a byte
    # every few seconds would otherwise hold the worker for as long as it likes
    sock = socket.create_connection((address, port), timeout=timeout)
    raw, cut = sock, threading.Event()

    def _cut() -> None:
        cut.set()
        with contextlib.suppress(OSError):
            raw.shutdown(socket.SHUT_RDWR)

    timer = threading.Timer(timeout, _cut)
    timer.daemon = True
    timer.start()
    try:
        if scheme == "https":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
        conn.sock = sock
        try:
            conn.request("POST", target, body=body, headers={
                **headers, "Host": host if port in (80, 443) else f"{host}:{port}"})
            response = conn.getresponse()
            response.read(64 * 1024)
        except (OSError, http.client.HTTPException):
            if cut.is_set():
                raise TimeoutError(f"no complete response within {timeout:g} s") from None
            raise
        if cut.is_set():
            raise TimeoutError(f"no complete response within {timeout:g} s")
        return response.status
    finally:
        timer.cancel()
        sock.close()
