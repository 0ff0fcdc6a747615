"""What a storage backend does: the interface every backend implements.

A *key* is a relative, slash-separated name made by the service (``uploads/<id>/source``,
``<id>/accepted.xlsx``), never by a client. Files are written to a local temporary file
first (the readers and xlsxwriter need a file) and ``publish`` makes the finished file
visible under its key in one step: a rename on a local directory, a completed
(multipart) upload on an object store. A crash before ``publish`` leaves nothing
visible under the key.

The methods block; async callers run them in a thread.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Protocol


def check_key(key: str) -> PurePosixPath:
    """The parts of a key, or ``ValueError`` for one that would leave its root."""
    relative = PurePosixPath(key)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise ValueError(f"storage key {key!r} is not a relative path")
    return relative


@dataclass(frozen=True, slots=True)
class StoredObject:
    """A stored file opened for reading: its size, its content in chunks, and ``close``
    (which ends the reading early; reading to the end closes it too)."""

    size: int
    chunks: Iterator[bytes]
    close: Callable[[], None]


@dataclass(frozen=True, slots=True)
class StoredKey:
    """A key found by ``list_keys``, with when it was last written."""

    key: str
    modified: datetime


class Storage(Protocol):
    def temporary_path(self, key: str) -> Path:
        """A fresh local file to write ``key``'s content into; ``publish`` makes it ``key``."""
        ...

    def publish(self, temporary: Path, key: str) -> None:
        """Make the finished temporary file ``key`` in one step, and remove the temporary."""
        ...

    def write_bytes(self, key: str, data: bytes) -> None: ...

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None:
        """Remove ``key``; a key that is not there is no error."""
        ...

    def fetch(self, key: str) -> Path:
        """A local file with ``key``'s content, to read; hand it to ``release`` when done.
        Raises ``FileNotFoundError`` when there is no such key."""
        ...

    def release(self, path: Path) -> None:
        """Done with a file from ``fetch`` (a downloaded copy is removed)."""
        ...

    def open(self, key: str) -> StoredObject | None:
        """``key``'s content in chunks, for streaming it; None when there is no such key."""
        ...

    def presigned_url(
        self, key: str, lifetime: timedelta, *, filename: str, media_type: str
    ) -> str | None:
        """A URL of the store itself that serves ``key`` for ``lifetime``; None for a
        backend that has no such URLs."""
        ...

    def list_keys(self) -> Iterator[StoredKey]:
        """Every stored key, for the retention sweep."""
        ...
