"""The host names a server answers to when ALLOWED_HOSTS is not set.

Loopback always (and `testserver`, Django's test client). `make run` binds HOST: a named
address is added as it is; a wildcard (0.0.0.0, ::) means "every address of this machine",
so the machine's own names and addresses are added, never `*` (a server that answers to any
Host header builds links, in emails, to whatever host a client claimed).
"""

from __future__ import annotations

import socket

LOOPBACK = ["127.0.0.1", "localhost", "[::1]", "testserver"]
WILDCARDS = {"0.0.0.0", "::", "[::]"}


def default_allowed_hosts(bound: str) -> list[str]:
    hosts = list(LOOPBACK)
    bound = bound.strip()
    if bound in WILDCARDS:
        hosts += _this_machine()
    elif bound:
        hosts.append(f"[{bound}]" if ":" in bound and not bound.startswith("[") else bound)
    return list(dict.fromkeys(hosts))


def _this_machine() -> list[str]:
    names = [socket.gethostname(), socket.getfqdn()]
    addresses = []
    for name in names:
        try:
            infos = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
        except OSError:
            continue
        for family, *_, sockaddr in infos:
            address = sockaddr[0]
            addresses.append(f"[{address}]" if family == socket.AF_INET6 else address)
    return [name for name in names if name] + addresses
