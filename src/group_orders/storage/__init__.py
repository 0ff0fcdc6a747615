"""Where files live (a local directory, or an S3-compatible object store) and signed
links to them. ``create_storage`` picks the backend the settings name."""

from __future__ import annotations

from group_orders.settings import Settings
from group_orders.storage.base import Storage, StoredKey, StoredObject
from group_orders.storage.local import LocalStorage

__all__ = ["LocalStorage", "Storage", "StoredKey", "StoredObject", "create_storage"]


def create_storage(settings: Settings) -> Storage:
    """The backend ``GROUP_ORDERS_STORAGE`` names: ``local`` files under the data
    directory, or ``s3`` objects in a bucket (temporary files under the data directory)."""
    if settings.storage == "s3":
        # Imported here: boto3 costs a moment to import, and the local default needs none.
        from group_orders.storage.s3 import S3Storage

        return S3Storage(
            settings.s3_bucket or "",
            scratch=settings.data_dir / "scratch",
            prefix=settings.s3_prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            part_bytes=settings.s3_part_bytes,
        )
    return LocalStorage(settings.data_dir / "files")
