"""Whether this machine can listen on host:port, found by binding once before a program does.

`start` checks every port of the stack this way, and `proxy` its own, so a port in use or an
address that is not this machine's is one line naming the setting (exit 2), never a server's
log lines and traceback.
"""

from __future__ import annotations

import errno
import socket

from app.errors import ConfigError


class ListenError(ConfigError):
    """The address cannot be listened on; one line naming the setting at fault."""


def check_can_listen(setting: str, host: str, port: int, host_setting: str | None = None) -> None:
    """Bind `host`:`port` once and let it go; ListenError saying which problem it is: the host
    does not resolve or is not this machine's (`host_setting`), or the port is taken (`setting`).
    """
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            bare, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
    except (OSError, UnicodeError):
        raise ListenError(
            f"{host_setting or setting}: {host} does not resolve to an address"
        ) from None
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ListenError(f"{setting}: {host}:{port} is already in use") from None
            if exc.errno == errno.EADDRNOTAVAIL:
                raise ListenError(
                    f"{host_setting or setting}: cannot listen on {host}:{port}: "
                    "not an address of this machine"
                ) from None
            raise ListenError(
                f"{setting}: cannot listen on {host}:{port} ({exc.strerror})"
            ) from None
