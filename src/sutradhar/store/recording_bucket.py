"""Recordings in an S3-compatible bucket (RECORDINGS_BUCKET=s3://bucket/prefix): AWS S3, MinIO, R2.

boto3 is synchronous: every method here blocks and is called through `asyncio.to_thread`. The
client takes its credentials the standard AWS way (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, AWS_PROFILE, an instance role); RECORDINGS_S3_ENDPOINT_URL points it at a
non-AWS server. An uploaded recording's call record holds `s3://BUCKET/KEY`, so retention and the
admin route find the object even after the prefix setting changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sutradhar.errors import ConfigError

SCHEME = "s3://"
CHUNK_BYTES = 64 * 1024
DELETE_BATCH = 1000  # S3's DeleteObjects limit


def is_object_url(recording_path: str) -> bool:
    """True when a call record's recording_path names an object, not a file under DATA_DIR."""
    return recording_path.startswith(SCHEME)


def split_object_url(url: str) -> tuple[str, str]:
    """`s3://bucket/key` -> (bucket, key)."""
    bucket, _, key = url.removeprefix(SCHEME).partition("/")
    return bucket, key


@dataclass(frozen=True)
class ObjectRead:
    """An object being read: its body in chunks and what the HTTP answer needs to say about it."""

    chunks: Iterator[bytes]
    length: int
    content_range: str | None  # set when a byte range was asked for and served
    close: Callable[[], None]  # releases the connection (also when a client goes away mid-stream)


class RecordingBucket:
    def __init__(self, url: str, *, endpoint_url: str = "", region: str = "",
                 connect_timeout_s: float = 5.0, read_timeout_s: float = 30.0) -> None:
        if not is_object_url(url) or not split_object_url(url)[0]:
            raise ConfigError(f"RECORDINGS_BUCKET={url!r}: expected s3://bucket or s3://bucket/prefix")
        self.bucket, prefix = split_object_url(url)
        self.prefix = prefix.strip("/")
        try:
            import boto3
            from botocore.config import Config
        except ImportError as exc:
            raise ConfigError("RECORDINGS_BUCKET needs boto3: pip install 'sutradhar[s3]'") from exc
        # Retries are ours (RecordingArchive, with backoff across minutes); botocore's own few
        # quick ones only cover a dropped connection.
        config = Config(connect_timeout=connect_timeout_s, read_timeout=read_timeout_s,
                        retries={"max_attempts": 2, "mode": "standard"})
        self._client = boto3.client("s3", endpoint_url=endpoint_url or None, region_name=region or None,
                                    config=config)

    def key_for(self, name: str) -> str:
        """The object key of a recording stored locally as `name` (`DAY/ID-HASH.ogg`)."""
        return f"{self.prefix}/{name}" if self.prefix else name

    def url_for(self, name: str) -> str:
        return f"{SCHEME}{self.bucket}/{self.key_for(name)}"

    def upload(self, path: Path, name: str, content_type: str) -> str:
        """Upload the file and confirm the bucket holds all of it; return its `s3://` URL."""
        key = self.key_for(name)
        size = path.stat().st_size
        with open(path, "rb") as body:
            self._client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=content_type,
                                    ContentLength=size)
        stored = self._client.head_object(Bucket=self.bucket, Key=key)["ContentLength"]
        if stored != size:
            raise OSError(f"s3://{self.bucket}/{key} holds {stored} bytes, the file {size}")
        return f"{SCHEME}{self.bucket}/{key}"

    def read(self, url: str, byte_range: str | None = None) -> ObjectRead:
        """Open an object for streaming; `byte_range` is an HTTP Range header value."""
        bucket, key = split_object_url(url)
        extra = {"Range": byte_range} if byte_range else {}
        answer = self._client.get_object(Bucket=bucket, Key=key, **extra)
        body = answer["Body"]
        return ObjectRead(chunks=body.iter_chunks(CHUNK_BYTES), length=int(answer["ContentLength"]),
                          content_range=answer.get("ContentRange"), close=body.close)

    def delete(self, urls: Iterable[str]) -> tuple[int, list[str]]:
        """Delete these objects; return how many went and the errors for those that did not."""
        by_bucket: dict[str, list[str]] = {}
        for url in urls:
            bucket, key = split_object_url(url)
            by_bucket.setdefault(bucket, []).append(key)
        deleted, errors = 0, []
        for bucket, keys in by_bucket.items():
            for start in range(0, len(keys), DELETE_BATCH):
                batch = [{"Key": key} for key in keys[start:start + DELETE_BATCH]]
                answer = self._client.delete_objects(Bucket=bucket, Delete={"Objects": batch, "Quiet": True})
                failed = answer.get("Errors", [])
                deleted += len(batch) - len(failed)
                errors += [f"s3://{bucket}/{e.get('Key')}: {e.get('Code')}" for e in failed]
        return deleted, errors

    @staticmethod
    def error_status(exc: Exception) -> int:
        """The HTTP status that `exc` (from `read`) means for the client: 404 when the object is
        not there, 416 for a range past its end, else 502 (the bucket failed us)."""
        code = str(getattr(exc, "response", {}).get("Error", {}).get("Code", ""))
        if code in {"NoSuchKey", "404", "NoSuchBucket"}:
            return 404
        return 416 if code == "InvalidRange" else 502


def bucket_from_settings(settings: Any) -> RecordingBucket | None:
    if not settings.recordings_bucket:
        return None
    return RecordingBucket(settings.recordings_bucket, endpoint_url=settings.recordings_s3_endpoint_url,
                           region=settings.recordings_s3_region)
