"""RecordingArchive: a call's recording finished after the call, in the background.

The call records a WAV under DATA_DIR/recordings while it runs (telephony/recording.py). When it
ends, `submit` returns at once and a task here, when configured:
1. RECORDING_FORMAT=ogg: encodes it as Opus/OGG beside the WAV (audio/ogg_opus.py);
2. RECORDINGS_BUCKET: uploads it, retried with doubling backoff, and confirms the bucket holds
   every byte;
3. points the call record at the result (the OGG's name, or `s3://bucket/key`), and only then
   removes the local files it replaces.
Every step leaves the previous state whole, so a crash or a bucket that stays down leaves a local
recording the call record still names; `sweep` (at start-up and every RECORDINGS_SWEEP_S) finishes
those of calls that have ended. Two processes sharing DATA_DIR never work on one file at once
(an flock on it).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from loguru import logger

from sutradhar.audio.ogg_opus import wav_to_ogg_opus
from sutradhar.engines.resilience import RetryPolicy
from sutradhar.ops.periodic import Periodic
from sutradhar.ops.prometheus import Telemetry
from sutradhar.store.calls import CallStore
from sutradhar.store.recording_bucket import RecordingBucket, is_object_url
from sutradhar.store.recording_files import resolve_recording

if TYPE_CHECKING:
    from loguru import Logger

T = TypeVar("T")
MAX_BACKOFF_S = 300.0
CONTENT_TYPES = {".wav": "audio/wav", ".ogg": "audio/ogg"}


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0]


class RecordingArchive:
    def __init__(self, root: Path, store: CallStore, bucket: RecordingBucket | None, *,
                 fmt: str = "wav", opus_kbps: int = 32, attempts: int = 5, backoff_s: float = 2.0,
                 sweep_s: float = 300.0, telemetry: Telemetry | None = None) -> None:
        self.root, self.store, self.bucket = root, store, bucket
        self.telemetry = telemetry
        self.ogg = fmt == "ogg"
        self.opus_kbps = opus_kbps
        # Only its attempts and backoff: boto3's own timeouts bound each try (recording_bucket.py).
        self.retry = RetryPolicy(attempts=attempts, backoff=backoff_s, max_backoff=MAX_BACKOFF_S)
        self._tasks: set[asyncio.Task[None]] = set()
        self._busy: set[str] = set()  # stems being finished in this process
        self._unconvertible: set[str] = set()  # stems whose OGG failed: not tried again each sweep
        self._sweep = Periodic("recording-sweep", self.sweep, sweep_s)
        self.uploaded = 0
        self.upload_failures = 0  # uploads given up on (after every attempt); the sweep retries them

    def start(self) -> None:
        self._sweep.start()  # its first run finishes what an earlier process left behind

    def submit(self, call_id: str, name: str) -> None:
        """Finish this ended call's recording (`name`, as on its record) in the background."""
        self._busy.add(_stem(name))  # before the record says ended: a sweep cannot take it first
        task = asyncio.create_task(self._finish_once(call_id, name), name=f"recording-finish-{call_id}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _finish_once(self, call_id: str, name: str) -> None:
        try:
            await self.finish(call_id, name)
        except Exception as exc:  # noqa: BLE001 - the file stays; the sweep tries again
            logger.bind(call_id=call_id, stage="recording").opt(exception=exc).error(
                "recording not finished: {}: {}", type(exc).__name__, exc)
        finally:
            self._busy.discard(_stem(name))

    async def finish(self, call_id: str, name: str) -> bool:
        """Convert, upload and re-point one recording; True when the record names the result."""
        log = logger.bind(call_id=call_id, stage="recording")
        stem = _stem(name)
        with self._locked(name) as locked:
            if not locked:
                log.info("recording {} is being finished by another process", name)
                return False
            local = name
            if self.ogg and name.endswith(".wav"):
                local = await self._to_ogg(name, log)
                if self.bucket is None:
                    if local == name:
                        return False
                    return await self._repoint(call_id, name, local, log)
            if self.bucket is None:
                return False
            url = await self._upload(local, log)
            if url is None:
                return False
            return await self._repoint(call_id, name, url, log, extra=(f"{stem}.wav", f"{stem}.ogg"))

    async def _to_ogg(self, name: str, log: Logger) -> str:
        """The OGG's name, or the WAV's when it cannot be made (that is kept, and logged)."""
        ogg_name = f"{_stem(name)}.ogg"
        wav, ogg = self._path(name), self._path(ogg_name)
        if ogg.is_file():  # made before a crash: renamed into place only when complete
            return ogg_name
        if _stem(name) in self._unconvertible or not wav.is_file():
            return name
        try:
            await asyncio.to_thread(wav_to_ogg_opus, wav, ogg, self.opus_kbps)
        except Exception as exc:  # noqa: BLE001 - a WAV is still a recording
            self._unconvertible.add(_stem(name))
            log.error("recording kept as WAV, OGG failed: {}: {}", type(exc).__name__, exc)
            return name
        log.info("recording encoded as OGG wav_bytes={} ogg_bytes={}", wav.stat().st_size, ogg.stat().st_size)
        return ogg_name

    async def _upload(self, name: str, log: Logger) -> str | None:
        """The object's URL, or None when the bucket never took it (the file stays)."""
        assert self.bucket is not None
        bucket, path = self.bucket, self._path(name)
        content_type = CONTENT_TYPES.get(path.suffix, "application/octet-stream")

        async def once() -> str:
            return await asyncio.to_thread(bucket.upload, path, name, content_type)

        try:
            url = await self._retrying("recording upload", once, log, on_retry=lambda: self._count("retry"))
        except FileNotFoundError:
            log.warning("recording {} is no longer on disk", name)
            return None
        if url is None:
            self.upload_failures += 1
            self._count("failed")
            return None
        self.uploaded += 1
        self._count("uploaded")
        log.info("recording uploaded url={}", url)
        return url

    async def _repoint(self, call_id: str, old: str, new: str, log: Logger,
                       extra: tuple[str, ...] = ()) -> bool:
        """Point the record at `new`, then remove the local files it replaces. A record not yet
        written (its call_started still queued) is waited for like a failed upload."""

        async def once() -> bool | None:
            if await self.store.move_recording(call_id, old, new):
                return True
            call = await self.store.get_call(call_id)
            return True if call is not None and call.get("recording_path") == new else None  # another process

        if await self._retrying("recording record update", once, log) is None:
            log.error("recording record still names {}; the local file stays", old)
            return False
        for name in {old, *extra} - {new}:
            with contextlib.suppress(FileNotFoundError):
                self._path(name).unlink()
        log.info("recording record now names {}", new)
        return True

    async def _retrying(self, what: str, once: Callable[[], Awaitable[T | None]], log: Logger,
                        on_retry: Callable[[], None] | None = None) -> T | None:
        """`once()` until it returns a value, RECORDINGS_UPLOAD_ATTEMPTS times at most with the
        backoff between; None when it never did. FileNotFoundError ends it at once."""
        error = ""
        for attempt in range(1, self.retry.attempts + 1):
            try:
                result = await once()
                if result is not None:
                    return result
                error = "not yet"
            except FileNotFoundError:
                raise
            except Exception as exc:  # noqa: BLE001 - boto3 and the database raise several families
                error = f"{type(exc).__name__}: {exc}"
            if attempt == self.retry.attempts:
                break
            delay = self.retry.delay(attempt)
            log.warning("{} failed attempt={} error={} retry_in_s={:.1f}", what, attempt, error, delay)
            if on_retry is not None:
                on_retry()
            await asyncio.sleep(delay)
        log.error("{} failed attempts={} error={}", what, self.retry.attempts, error)
        return None

    # --- leftovers -------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Finish the recordings on disk whose call has ended; return how many were finished."""
        stems = {_stem(name) for name in await asyncio.to_thread(self._on_disk)} - self._busy
        if not stems:
            return 0
        keys: dict[str, str] = {}  # a name the record may hold -> the stem it belongs to
        for stem in stems:
            for name in (f"{stem}.wav", f"{stem}.ogg"):
                keys[name] = stem
                if self.bucket is not None:
                    keys[self.bucket.url_for(name)] = stem
        ended = await self.store.recordings_of_ended_calls(list(keys))
        finished = 0
        for path, call_id in ended.items():
            stem = keys[path]
            if stem in self._busy:
                continue
            self._busy.add(stem)
            try:
                if is_object_url(path) or (path.endswith(".ogg") and self.bucket is None):
                    # Finished and on record before a crash: only the files it replaced stayed.
                    for name in {f"{stem}.wav", f"{stem}.ogg"} - {path}:
                        with contextlib.suppress(FileNotFoundError):
                            self._path(name).unlink()
                    finished += 1
                elif await self.finish(call_id, path):
                    finished += 1
            finally:
                self._busy.discard(stem)
        if finished:
            logger.bind(call_id="-", stage="recording").info("recording sweep finished {} recordings", finished)
        return finished

    def _on_disk(self) -> list[str]:
        if not self.root.is_dir():
            return []
        suffixes = {".wav", ".ogg"} if self.bucket is not None else {".wav"}
        return [path.relative_to(self.root).as_posix() for path in self.root.rglob("*")
                if path.suffix in suffixes and path.is_file()]

    # --- helpers ---------------------------------------------------------------------------------

    def _count(self, outcome: str) -> None:
        if self.telemetry is not None:
            self.telemetry.recording_upload(outcome)

    def _path(self, name: str) -> Path:
        path = resolve_recording(self.root, name)
        if path is None:
            raise ValueError(f"recording name {name!r} leaves the recordings directory")
        return path

    @contextlib.contextmanager
    def _locked(self, name: str) -> Iterator[bool]:
        """Hold an exclusive flock on the recording's stem (a lock file beside it) for the block."""
        lock_path = self._path(f"{_stem(name)}.lock")
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        except FileNotFoundError:  # its day's directory is gone: nothing left to finish
            yield False
            return
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                # Removed while held: a process that opened it before then fails its own flock or
                # finds the files already gone.
                with contextlib.suppress(FileNotFoundError):
                    lock_path.unlink()
        finally:
            os.close(fd)

    async def drain(self, timeout_s: float = 30.0) -> None:
        """Wait for the recordings being finished (tests, shutdown)."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout_s)

    async def aclose(self, timeout_s: float = 10.0) -> None:
        """Stop the sweep; give finishing recordings `timeout_s`, then leave them to the next start."""
        await self._sweep.stop()
        await self.drain(timeout_s)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
