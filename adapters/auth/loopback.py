"""Whether a listening address is loopback: the servers serve plaintext only there (``onestop
serve``, ``serve-http``). Its own module, on the standard library alone, so that a server
command refuses a non-loopback address without TLS before it imports gRPC or the service."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    h = host.strip("[]")
    if h == "localhost":
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        return False
