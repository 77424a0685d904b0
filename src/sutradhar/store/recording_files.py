"""Where call recordings live on disk: DATA_DIR/recordings/DAY/NAME.wav, named on the call record.

The call record keeps the name relative to the recordings directory, so a data directory moved
whole (a new volume, a restore) keeps its recordings reachable. Once uploaded to RECORDINGS_BUCKET
the record holds the object's `s3://` URL instead (store/recording_bucket.py).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

from loguru import logger


def recordings_dir(data_dir: Path) -> Path:
    return data_dir / "recordings"


def recording_name(call_id: str, day: str) -> str:
    """`DAY/ID-HASH.wav`. Call ids may hold any visible ASCII (`/`, `..`), so the file name keeps
    only safe characters, plus a hash of the whole id so two ids never share a file."""
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", call_id)[:80]
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:10]
    return f"{day}/{safe}-{digest}.wav"


def resolve_recording(root: Path, name: str) -> Path | None:
    """The file a stored recording name points to, or None when it would leave `root`."""
    base = root.resolve()
    path = (base / name).resolve()
    return path if path.is_relative_to(base) else None


def delete_recordings(root: Path, names: Iterable[str]) -> int:
    """Remove these recordings (retention); return how many files were deleted."""
    removed = 0
    for name in names:
        path = resolve_recording(root, name)
        if path is None:
            continue
        try:
            path.unlink()
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:  # the records are gone either way; say which file stayed
            logger.bind(call_id="-", stage="retention").error("recording {} not deleted: {}", name, exc)
    return removed
