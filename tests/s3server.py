"""An S3-compatible server on loopback for the storage tests: moto's server, run as a
process of its own, spoken to over HTTP like any object store."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import boto3
import httpx

REGION = "us-east-1"
# The server takes any credentials; the clients read these from the environment, as
# they would on a real deployment.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing-key",
    "AWS_SECRET_ACCESS_KEY": "testing-secret",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def running_server(log: Path) -> Iterator[str]:
    """Start the server on a free loopback port; its URL until the block ends."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/moto-api/", timeout=2)
                break
            except httpx.TransportError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError(log.read_text(errors="replace")) from None
                time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def create_bucket(endpoint_url: str, name: str) -> None:
    client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=REGION)
    try:
        client.create_bucket(Bucket=name)
    finally:
        client.close()


def object_keys(endpoint_url: str, bucket: str) -> dict[str, str]:
    """Every object in the bucket, with its ETag."""
    client = boto3.session.Session().client("s3", endpoint_url=endpoint_url, region_name=REGION)
    try:
        found: dict[str, str] = {}
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                found[item.get("Key", "")] = item.get("ETag", "")
        return found
    finally:
        client.close()
