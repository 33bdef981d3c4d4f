"""What the kernel says about TCP sockets, read from /proc/net/tcp and /proc/net/tcp6.

No `ss`/`netstat` needed, and nothing the tested processes could influence: the kernel's own table.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from pathlib import Path

ESTABLISHED = "01"
LISTEN = "0A"


@dataclass(frozen=True)
class TcpSocket:
    local_address: str
    local_port: int
    remote_address: str
    remote_port: int
    state: str
    inode: int


def _address(hex_address: str) -> str:
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    # IPv6: four 32-bit words, each in host (little-endian) byte order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    return str(address.ipv4_mapped or address)


def tcp_sockets() -> list[TcpSocket]:
    sockets = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state = fields[1], fields[2], fields[3]
            local_address, local_port = local.rsplit(":", 1)
            remote_address, remote_port = remote.rsplit(":", 1)
            sockets.append(
                TcpSocket(
                    _address(local_address),
                    int(local_port, 16),
                    _address(remote_address),
                    int(remote_port, 16),
                    state,
                    int(fields[9]),
                )
            )
    return sockets


def listening_addresses(port: int) -> set[str]:
    """Addresses with a listening socket on `port` (IPv4 and IPv6 tables)."""
    return {s.local_address for s in tcp_sockets() if s.state == LISTEN and s.local_port == port}


def socket_inodes(pid: int) -> set[int]:
    """Inodes of the sockets process `pid` holds open."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = fd.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[8:-1]))
    return inodes


def established_connections(pid: int, remote_port: int) -> int:
    """Open (ESTABLISHED) connections from process `pid` to `remote_port` on loopback."""
    owned = socket_inodes(pid)
    return sum(
        1
        for s in tcp_sockets()
        if s.state == ESTABLISHED and s.remote_port == remote_port and s.inode in owned
    )
