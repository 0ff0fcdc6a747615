"""Files in an S3-compatible object store (AWS S3, MinIO, Ceph, R2, ...): right when API
processes and workers run on several machines.

The client is boto3, run in threads by the async callers. It is the reference client
of S3: its transfer manager (s3transfer) uploads a large file as a multipart upload,
parts in parallel, and aborts the upload when a part fails; it presigns URLs without a
round trip; it reads credentials, region and profiles from the usual places
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN``, ``AWS_PROFILE``,
instance roles), and it is maintained by AWS. The S3-compatible test server (moto) is
built on it too.

Publishing: a file is written to a local temporary file, then uploaded under its key.
An S3 object appears only once its upload is complete (a multipart upload once
``CompleteMultipartUpload`` succeeds), so a reader never sees half a file; an upload cut
short by a crash leaves parts that are invisible and that a bucket lifecycle rule
(``AbortIncompleteMultipartUpload``) removes.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import ClientError

from group_orders.storage.base import StoredKey, StoredObject, check_key

if TYPE_CHECKING:
    from types_boto3_s3 import S3Client

_CHUNK = 64 * 1024
# S3's smallest part (except the last) is 5 MiB.
MIN_PART_BYTES = 5 * 1024 * 1024
_NOT_FOUND = frozenset({"404", "NoSuchKey", "NotFound"})


def _is_not_found(error: ClientError) -> bool:
    return str(error.response.get("Error", {}).get("Code")) in _NOT_FOUND


class S3Storage:
    """Keys live in ``bucket`` under ``prefix``; temporary files in ``scratch``."""

    def __init__(
        self,
        bucket: str,
        *,
        scratch: Path,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        part_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        if not bucket:
            raise ValueError("an S3 storage needs a bucket")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url
        self.region = region
        self.scratch = scratch
        self.part_bytes = max(part_bytes, MIN_PART_BYTES)
        self._client: S3Client | None = None
        self._lock = threading.Lock()

    # The writer process gets this object pickled: it makes its own client.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_client"] = None
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def client(self) -> S3Client:
        with self._lock:
            if self._client is None:
                # A custom endpoint (MinIO, a test server) is addressed by path; AWS by
                # virtual host, as it prefers.
                style: Literal["path", "auto"] = "path" if self.endpoint_url else "auto"
                self._client = boto3.session.Session().client(
                    "s3",
                    endpoint_url=self.endpoint_url,
                    region_name=self.region,
                    config=Config(
                        signature_version="s3v4",
                        s3={"addressing_style": style},
                        retries={"mode": "standard"},
                    ),
                )
            return self._client

    @property
    def _transfer(self) -> TransferConfig:
        return TransferConfig(
            multipart_threshold=self.part_bytes,
            multipart_chunksize=self.part_bytes,
            max_concurrency=4,
        )

    def object_key(self, key: str) -> str:
        """The object's name in the bucket: the key under the prefix."""
        parts = check_key(key).as_posix()
        return f"{self.prefix}/{parts}" if self.prefix else parts

    def temporary_path(self, key: str) -> Path:
        check_key(key)
        self.scratch.mkdir(parents=True, exist_ok=True)
        return self.scratch / f"{uuid.uuid4().hex}.partial"

    def publish(self, temporary: Path, key: str) -> None:
        """Upload the finished file (as a multipart upload past ``part_bytes``); the
        object appears only when the upload is complete. The temporary is removed."""
        try:
            self.client.upload_file(
                str(temporary), self.bucket, self.object_key(key), Config=self._transfer
            )
        finally:
            temporary.unlink(missing_ok=True)

    def write_bytes(self, key: str, data: bytes) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.object_key(key), Body=data)

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if _is_not_found(error):
                return False
            raise
        return True

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    def fetch(self, key: str) -> Path:
        """Download ``key`` to a temporary file (in parts, in parallel, when large)."""
        path = self.temporary_path(key)
        try:
            self.client.download_file(
                self.bucket, self.object_key(key), str(path), Config=self._transfer
            )
        except ClientError as error:
            path.unlink(missing_ok=True)
            if _is_not_found(error):
                raise FileNotFoundError(f"no stored file {key!r}") from None
            raise
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return path

    def release(self, path: Path) -> None:
        path.unlink(missing_ok=True)

    def open(self, key: str) -> StoredObject | None:
        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if _is_not_found(error):
                return None
            raise
        body = response["Body"]

        def chunks() -> Iterator[bytes]:
            try:
                yield from body.iter_chunks(_CHUNK)
            finally:
                body.close()

        return StoredObject(response["ContentLength"], chunks(), body.close)

    def presigned_url(
        self, key: str, lifetime: timedelta, *, filename: str, media_type: str
    ) -> str | None:
        url: str = self.client.generate_presigned_url(
            "get_object",
            Params={
                "Bucket": self.bucket,
                "Key": self.object_key(key),
                "ResponseContentDisposition": f'attachment; filename="{filename}"',
                "ResponseContentType": media_type,
            },
            ExpiresIn=int(lifetime.total_seconds()),
        )
        return url

    def list_keys(self) -> Iterator[StoredKey]:
        start = f"{self.prefix}/" if self.prefix else ""
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=start
        )
        for page in pages:
            for item in page.get("Contents", []):
                name = item.get("Key")
                modified = item.get("LastModified")
                if name is not None and modified is not None:
                    yield StoredKey(name[len(start) :], modified)
