"""Files in a local directory: right for one machine, the embedded default."""

from __future__ import annotations

import uuid
from pathlib import Path, PurePosixPath


class LocalStorage:
    def __init__(self, root: Path) -> None:
        self.root = root

    def path_of(self, key: str) -> Path:
        """The file of a storage key. Keys are made by the service, never by a client,
        but a key that would leave the root is refused all the same."""
        relative = PurePosixPath(key)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ValueError(f"storage key {key!r} is not a relative path")
        return self.root.joinpath(*relative.parts)

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
        return path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")

    def publish(self, temporary: Path, key: str) -> None:
        """Replace ``key`` with the finished temporary file in one atomic rename."""
        temporary.replace(self.path_of(key))

    def delete(self, key: str) -> None:
        self.path_of(key).unlink(missing_ok=True)
