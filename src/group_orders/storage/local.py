"""Files in a local directory: right for one machine, the embedded default."""

from __future__ import annotations

import uuid
from collections.abc import Generator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

from group_orders.storage.base import StoredKey, StoredObject, check_key

_CHUNK = 64 * 1024
PARTIAL_SUFFIX = ".partial"


def _read_chunks(path: Path) -> Generator[bytes]:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, key: str) -> Path:
        """The file of a storage key. Keys are made by the service, never by a client,
        but a key that would leave the root is refused all the same."""
        return self.root.joinpath(*check_key(key).parts)

    def write_bytes(self, key: str, data: bytes) -> None:
        temporary = self.temporary_path(key)
        temporary.write_bytes(data)
        self.publish(temporary, key)

    def exists(self, key: str) -> bool:
        return self.path_of(key).is_file()

    def temporary_path(self, key: str) -> Path:
        """A fresh path beside ``key`` to write into; ``publish`` makes it ``key``."""
        path = self.path_of(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")

    def publish(self, temporary: Path, key: str) -> None:
        """Replace ``key`` with the finished temporary file in one atomic rename."""
        temporary.replace(self.path_of(key))

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)

    def fetch(self, key: str) -> Path:
        path = self.path_of(key)
        if not path.is_file():
            raise FileNotFoundError(f"no stored file {key!r}")
        return path

    def release(self, path: Path) -> None:
        """Nothing to do: ``fetch`` handed out the stored file itself."""

    def open(self, key: str) -> StoredObject | None:
        path = self.path_of(key)
        if not path.is_file():
            return None
        # The file is opened when reading starts, so an object never read holds nothing.
        chunks = _read_chunks(path)
        return StoredObject(path.stat().st_size, chunks, chunks.close)

    def presigned_url(
        self, key: str, lifetime: timedelta, *, filename: str, media_type: str
    ) -> str | None:
        return None

    def list_keys(self) -> Iterator[StoredKey]:
        if not self.root.is_dir():
            return
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                modified = datetime.fromtimestamp(path.stat().st_mtime, UTC)
                yield StoredKey(path.relative_to(self.root).as_posix(), modified)
