"""Free loopback ports for test and benchmark servers."""

from __future__ import annotations

import os
import socket

_TRIES = 10_000


def free_port() -> int:
    """A loopback port nobody listens on.

    Under pytest-xdist each worker takes only its own share of the ports: the port is released
    before the server binds it, and in that gap another worker's bind(0) could be handed the same
    number. The share is (port // 2) % workers, not port % workers, because Linux hands bind(0)
    ports of one parity (even or odd, by kernel) while the other is free, so a plain residue
    would leave half the workers without a port."""
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")) % count
    for _ in range(_TRIES):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port // 2 % count == index:
            return port
    raise RuntimeError(f"no free loopback port in worker {index}'s share after {_TRIES} tries")
