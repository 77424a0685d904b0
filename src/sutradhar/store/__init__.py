"""Call records: what each call and turn did, kept in SQLite or PostgreSQL."""

from sutradhar.store.calls import CallStore, status_for
from sutradhar.store.recorder import NullRecorder, Recorder

__all__ = ["CallStore", "NullRecorder", "Recorder", "status_for"]
