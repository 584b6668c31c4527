"""Whether a TCP address can be bound, asked before gRPC binds it.

grpcio's own bind failure logs a C++ line ("E... add_port.cc: Failed to add port
...") on stderr before Python sees the error, so a taken port printed that line
ahead of `mtrec serve`'s one-line error. Binding a plain socket first, the way
gRPC's does (SO_REUSEADDR on, SO_REUSEPORT off), finds the usual causes without
that noise; gRPC's own failure stays the fallback for anything this misses (a
port taken in between).
"""

from __future__ import annotations

import errno
import socket


def bind_problem(host: str, port: int) -> str | None:
    """Why `host:port` cannot be bound for listening, or None when it can (or port 0)."""
    if port == 0:
        return None
    try:
        addresses = socket.getaddrinfo(host.strip("[]"), port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        return f"the host does not resolve ({err.strerror})"
    for family, kind, proto, _, address in addresses:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    return "the port is in use (another server?)"
                if err.errno == errno.EADDRNOTAVAIL:
                    return "the address is not this host's"
                return err.strerror or str(err)
    return None
