"""The storage backends, side by side: a local directory and an S3-compatible server
(moto's, over HTTP on loopback). Each behaviour is asserted on both."""

from __future__ import annotations

import os
import pickle
from datetime import timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

import s3server
from group_orders.settings import Settings
from group_orders.storage import LocalStorage, Storage, create_storage
from group_orders.storage.s3 import MIN_PART_BYTES, S3Storage


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return LocalStorage(tmp_path / "files")
    endpoint: str = request.getfixturevalue("s3_server")
    bucket: str = request.getfixturevalue("s3_bucket")
    return S3Storage(
        bucket,
        scratch=tmp_path / "scratch",
        prefix="stored/here",
        endpoint_url=endpoint,
        region=s3server.REGION,
    )


def stored_content(storage: Storage, key: str) -> bytes | None:
    stored = storage.open(key)
    if stored is None:
        return None
    return b"".join(stored.chunks)


def written(storage: Storage, key: str, content: bytes) -> Path:
    temporary = storage.temporary_path(key)
    temporary.write_bytes(content)
    return temporary


def test_a_file_is_visible_under_its_key_only_once_published(storage: Storage) -> None:
    # given: a finished temporary file
    temporary = written(storage, "one/result.csv", b"a,b\n1,2\n")

    # then: nothing is stored under the key before it is published
    assert not storage.exists("one/result.csv")
    assert stored_content(storage, "one/result.csv") is None

    # when
    storage.publish(temporary, "one/result.csv")

    # then: the key has the content, and the temporary is gone
    assert storage.exists("one/result.csv")
    assert stored_content(storage, "one/result.csv") == b"a,b\n1,2\n"
    assert not temporary.exists()


def test_publishing_again_replaces_the_file_whole(storage: Storage) -> None:
    storage.write_bytes("one/result.csv", b"first version, longer than the second\n")

    storage.publish(written(storage, "one/result.csv", b"second\n"), "one/result.csv")

    assert stored_content(storage, "one/result.csv") == b"second\n"


def test_a_fetched_copy_has_the_content_and_release_keeps_the_stored_file(
    storage: Storage,
) -> None:
    storage.write_bytes("uploads/x/source", b"header\nrow\n")

    path = storage.fetch("uploads/x/source")
    content = path.read_bytes()
    storage.release(path)

    assert content == b"header\nrow\n"
    assert stored_content(storage, "uploads/x/source") == b"header\nrow\n"


def test_a_missing_key_is_file_not_found_none_or_nothing_to_delete(storage: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        storage.fetch("uploads/missing/source")
    assert storage.open("uploads/missing/source") is None
    assert not storage.exists("uploads/missing/source")
    storage.delete("uploads/missing/source")  # no error


def test_a_deleted_key_is_gone(storage: Storage) -> None:
    storage.write_bytes("a/b.xlsx", b"content")

    storage.delete("a/b.xlsx")

    assert not storage.exists("a/b.xlsx")
    assert stored_content(storage, "a/b.xlsx") is None


@pytest.mark.parametrize("key", ["../outside", "/etc/passwd", "a/../../b", ""])
def test_a_key_that_would_leave_the_root_is_refused(storage: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="not a relative path"):
        storage.write_bytes(key, b"x")
    with pytest.raises(ValueError, match="not a relative path"):
        storage.temporary_path(key)


def test_list_keys_names_every_stored_file_by_its_key(storage: Storage) -> None:
    storage.write_bytes("uploads/x/source", b"1")
    storage.write_bytes("x/normalized.csv", b"2")

    assert sorted(found.key for found in storage.list_keys()) == [
        "uploads/x/source",
        "x/normalized.csv",
    ]


def test_an_abandoned_temporary_file_is_never_visible_under_the_key(storage: Storage) -> None:
    temporary = written(storage, "one/result.csv", b"half a fi")

    temporary.unlink()  # the writer gave up (or crashed) before publishing

    assert not storage.exists("one/result.csv")


def test_a_large_file_goes_to_the_bucket_as_a_multipart_upload(
    tmp_path: Path, s3_server: str, s3_bucket: str
) -> None:
    # given: a file of just over two parts
    storage = S3Storage(
        s3_bucket,
        scratch=tmp_path / "scratch",
        endpoint_url=s3_server,
        region=s3server.REGION,
        part_bytes=MIN_PART_BYTES,
    )
    content = os.urandom(2 * MIN_PART_BYTES + 1_000)
    temporary = written(storage, "big/accepted.xlsx", content)

    # when
    storage.publish(temporary, "big/accepted.xlsx")

    # then: S3 names a multipart object's ETag by its part count, and the whole file
    # comes back, downloaded in parts too
    assert s3server.object_keys(s3_server, s3_bucket)["big/accepted.xlsx"].endswith('-3"')
    path = storage.fetch("big/accepted.xlsx")
    try:
        assert path.read_bytes() == content
    finally:
        storage.release(path)
    assert not path.exists()
    assert list((tmp_path / "scratch").iterdir()) == []


def test_keys_live_under_the_prefix_in_the_bucket(
    tmp_path: Path, s3_server: str, s3_bucket: str
) -> None:
    storage = S3Storage(
        s3_bucket,
        scratch=tmp_path,
        prefix="/stored/here/",
        endpoint_url=s3_server,
        region=s3server.REGION,
    )

    storage.write_bytes("x/normalized.csv", b"1")

    assert list(s3server.object_keys(s3_server, s3_bucket)) == ["stored/here/x/normalized.csv"]
    assert [found.key for found in storage.list_keys()] == ["x/normalized.csv"]


def test_a_presigned_url_serves_the_file_for_the_lifetime_it_was_given(
    storage: Storage,
) -> None:
    storage.write_bytes("x/normalized.csv", b"a,b\n")

    url = storage.presigned_url(
        "x/normalized.csv",
        timedelta(seconds=900),
        filename="group-order-x-normalized.csv",
        media_type="text/csv; charset=utf-8",
    )

    if isinstance(storage, LocalStorage):
        assert url is None  # a directory has no URLs of its own
        return
    assert url is not None
    assert parse_qs(urlsplit(url).query)["X-Amz-Expires"] == ["900"]
    response = httpx.get(url)
    assert response.status_code == 200
    assert response.content == b"a,b\n"
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == (
        'attachment; filename="group-order-x-normalized.csv"'
    )


def test_the_storage_crosses_to_another_process_pickled(storage: Storage) -> None:
    # The result-file writer process receives the storage this way.
    storage.write_bytes("x/normalized.csv", b"content")

    copy: Storage = pickle.loads(pickle.dumps(storage))  # noqa: S301

    assert stored_content(copy, "x/normalized.csv") == b"content"


def test_the_settings_choose_the_backend(tmp_path: Path) -> None:
    local = create_storage(Settings(data_dir=tmp_path))
    s3 = create_storage(
        Settings(
            data_dir=tmp_path,
            storage="s3",
            s3_bucket="files",
            s3_prefix="/group-orders/",
            s3_endpoint_url="http://127.0.0.1:9000",
        )
    )

    assert isinstance(local, LocalStorage)
    assert local.root == tmp_path / "files"
    assert isinstance(s3, S3Storage)
    assert (s3.bucket, s3.prefix, s3.endpoint_url) == (
        "files",
        "group-orders",
        "http://127.0.0.1:9000",
    )
    assert s3.object_key("a/b") == "group-orders/a/b"
    assert s3.scratch == tmp_path / "scratch"


def test_storage_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "GROUP_ORDERS_STORAGE": "s3",
            "GROUP_ORDERS_S3_BUCKET": "files",
            "GROUP_ORDERS_S3_PREFIX": "prod",
            "GROUP_ORDERS_S3_ENDPOINT_URL": "https://minio.internal:9000",
            "GROUP_ORDERS_S3_REGION": "eu-central-1",
            "GROUP_ORDERS_S3_PART_BYTES": "16777216",
            "GROUP_ORDERS_DOWNLOAD_LINKS": "presigned",
            "GROUP_ORDERS_FILE_RETENTION_DAYS": "30",
        }
    )
    settings.check()

    assert (
        settings.storage,
        settings.s3_bucket,
        settings.s3_prefix,
        settings.s3_endpoint_url,
        settings.s3_region,
        settings.s3_part_bytes,
        settings.download_links,
        settings.file_retention_days,
    ) == (
        "s3",
        "files",
        "prod",
        "https://minio.internal:9000",
        "eu-central-1",
        16777216,
        "presigned",
        30,
    )
    assert Settings.from_env({}).storage == "local"
    assert Settings.from_env({}).file_retention_days is None


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"storage": "ftp"}, "GROUP_ORDERS_STORAGE must be local or s3"),
        ({"storage": "s3"}, "needs GROUP_ORDERS_S3_BUCKET"),
        ({"download_links": "presigned"}, "presigned needs GROUP_ORDERS_STORAGE=s3"),
        ({"download_links": "email"}, "GROUP_ORDERS_DOWNLOAD_LINKS must be service or presigned"),
        (
            {
                "storage": "s3",
                "s3_bucket": "b",
                "download_links": "presigned",
                "link_lifetime_seconds": 8 * 86_400,
            },
            "presigned links live 1 s to 7 days",
        ),
        ({"file_retention_days": 0}, "at least 1"),
    ],
)
def test_storage_settings_that_cannot_work_are_refused_saying_why(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        Settings().with_changes(**changes).check()


def test_an_unknown_backend_in_the_environment_is_refused() -> None:
    with pytest.raises(ValueError, match="GROUP_ORDERS_STORAGE must be one of local, s3"):
        Settings.from_env({"GROUP_ORDERS_STORAGE": "nfs"})
