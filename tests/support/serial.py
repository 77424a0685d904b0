"""Tests that assert wall-clock timing run alone, even when pytest-xdist runs the suite on several
workers: a cross-process readers-writer lock on two files that every worker can see.

Every test holds the room lock shared; a `@pytest.mark.serial` test holds it exclusive, so it
starts once the tests running on other workers have finished, and none start until it is done.
The gate lock is a turnstile: a serial test waiting for the room holds the gate, so new tests queue
behind it instead of keeping the room busy for ever (flock alone gives a waiting writer no priority).
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path


@contextmanager
def _flock(path: Path, mode: int) -> Iterator[None]:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, mode)  # the lock goes when the descriptor closes, also if the worker dies
        yield
    finally:
        os.close(fd)


@contextmanager
def turn(lock_dir: Path, alone: bool) -> Iterator[None]:
    """Hold the room for one test: shared for an ordinary test, exclusive for a serial one."""
    gate, room = lock_dir / "serial.gate", lock_dir / "serial.room"
    if alone:
        with _flock(gate, fcntl.LOCK_EX), _flock(room, fcntl.LOCK_EX):
            yield
        return
    with ExitStack() as held:
        with _flock(gate, fcntl.LOCK_EX):  # pass the turnstile: wait behind a serial test in line
            held.enter_context(_flock(room, fcntl.LOCK_SH))
        yield
