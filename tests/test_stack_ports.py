"""Free ports for the local stack: never handed out twice, never in the kernel's ephemeral range."""

from __future__ import annotations

import socket
from pathlib import Path

from voice_otel.stack import free_port


def test_free_ports_are_distinct_bindable_and_below_the_ephemeral_range() -> None:
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(300)]

    assert len(set(ports)) == len(ports)  # bind(0) alone hands a just-released port out again
    if low > 10000:
        assert all(10000 <= port < low for port in ports)
    for port in ports[:20]:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", port))
