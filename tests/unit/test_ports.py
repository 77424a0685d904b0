"""free_port under pytest-xdist: every worker gets ports, and never one from another's share."""

from __future__ import annotations

import socket

import pytest

from sutradhar.testing.ports import free_port


@pytest.mark.parametrize("worker", range(4))
def test_each_of_four_workers_gets_free_ports_of_its_own_share(monkeypatch: pytest.MonkeyPatch,
                                                                worker: int) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "4")
    monkeypatch.setenv("PYTEST_XDIST_WORKER", f"gw{worker}")
    ports = [free_port() for _ in range(50)]
    assert {port // 2 % 4 for port in ports} == {worker}
    with socket.socket() as sock:  # and the port is really free
        sock.bind(("127.0.0.1", ports[-1]))


def test_without_xdist_any_free_port_will_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT", raising=False)
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", free_port()))
