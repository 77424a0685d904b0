"""The cross-worker lock that lets timing tests run alone under pytest-xdist (tests/support/serial.py).

Threads stand in for workers: flock locks belong to an open file description, so two threads that
open the lock files separately exclude each other exactly as two processes do."""

from __future__ import annotations

import fcntl
import os
import threading
import time
from pathlib import Path

from tests.support.serial import turn

WAIT_S = 10.0


class Holder(threading.Thread):
    """Takes a turn, says so, and keeps it until released."""

    def __init__(self, lock_dir: Path, alone: bool, entered: list[str], name: str) -> None:
        super().__init__(daemon=True)
        self.lock_dir, self.alone, self.entered, self.label = lock_dir, alone, entered, name
        self.inside = threading.Event()
        self.release = threading.Event()

    def run(self) -> None:
        with turn(self.lock_dir, self.alone):
            self.entered.append(self.label)
            self.inside.set()
            self.release.wait(WAIT_S)


def gate_is_held(lock_dir: Path) -> bool:
    fd = os.open(lock_dir / "serial.gate", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def wait_until_gate_held(lock_dir: Path) -> None:
    # flock has no event for "a waiter is queued"; the serial holder shows it by holding the gate
    deadline = time.monotonic() + WAIT_S
    while not gate_is_held(lock_dir):
        assert time.monotonic() < deadline, "the serial test never reached the gate"
        time.sleep(0.01)


def test_ordinary_tests_share_the_room(tmp_path: Path) -> None:
    entered: list[str] = []
    first, second = (Holder(tmp_path, False, entered, n) for n in ("a", "b"))
    first.start()
    assert first.inside.wait(WAIT_S)
    second.start()
    assert second.inside.wait(WAIT_S)  # while the first still holds its turn
    for holder in (first, second):
        holder.release.set()
        holder.join(WAIT_S)


def test_a_serial_test_waits_for_running_tests_and_later_ones_wait_for_it(tmp_path: Path) -> None:
    entered: list[str] = []
    running = Holder(tmp_path, False, entered, "running")
    serial = Holder(tmp_path, True, entered, "serial")
    later = Holder(tmp_path, False, entered, "later")
    running.start()
    assert running.inside.wait(WAIT_S)
    serial.start()
    wait_until_gate_held(tmp_path)
    assert not serial.inside.is_set()  # the running test still holds the room
    later.start()
    # Without the turnstile the later test would share the room with the running one at once.
    assert not later.inside.wait(0.3)
    running.release.set()
    assert serial.inside.wait(WAIT_S)
    assert not later.inside.is_set()
    serial.release.set()
    assert later.inside.wait(WAIT_S)
    later.release.set()
    for holder in (running, serial, later):
        holder.join(WAIT_S)
    assert entered == ["running", "serial", "later"]
