"""``group-orders upload`` against a real server process, as a person runs it."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from uploading import csv_bytes, good_row


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, dict[str, str], dict[str, str]]]:
    """A server on a free port with demo data; answers its URL, the demo tokens and the
    environment."""
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}",
        "GROUP_ORDERS_DATA_DIR": str(tmp_path),
    }
    demo = json.loads(
        subprocess.run(
            [sys.executable, "-m", "group_orders.cli", "demo", "--json"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        ).stdout
    )
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "group_orders.cli",
            "serve",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}/graphql"
    try:
        for _ in range(200):
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.05)
        yield url, demo["tokens"], env
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_upload_follows_the_group_order_to_its_end(
    server: tuple[str, dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    # given
    url, tokens, env = server
    orders = tmp_path / "orders.csv"
    orders.write_bytes(csv_bytes([good_row(1), good_row(2, email="nope"), good_row(3)]))

    # when
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "group_orders.cli",
            "upload",
            str(orders),
            "--token",
            tokens["client"],
            "--url",
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then
    lines = result.stdout.splitlines()
    assert result.returncode == 0, result.stderr
    assert lines[0].startswith("group order ")
    assert lines[0].endswith(" (pending)")
    assert "completed: 3/3 rows (100%)" in lines
    assert "partial: 2 accepted, 1 rejected" in lines
    assert lines[-1].startswith("rejected orders: http://127.0.0.1:")


def test_upload_dry_run_and_a_refused_file(
    server: tuple[str, dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    # given
    url, tokens, env = server
    orders = tmp_path / "orders.csv"
    orders.write_bytes(csv_bytes([good_row(1), good_row(2, quantity="many")]))
    broken = tmp_path / "broken.csv"
    broken.write_bytes(b"just,some,columns\r\n1,2,3\r\n")

    # when
    dry = subprocess.run(
        [
            sys.executable,
            "-m",
            "group_orders.cli",
            "upload",
            str(orders),
            "--token",
            tokens["client"],
            "--url",
            url,
            "--dry-run",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    refused = subprocess.run(
        [
            sys.executable,
            "-m",
            "group_orders.cli",
            "upload",
            str(broken),
            "--token",
            tokens["client"],
            "--url",
            url,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )

    # then
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.splitlines()[0] == ("dry run: 2 rows, 1 would be accepted, 1 rejected")
    assert dry.stdout.splitlines()[1].startswith("  row 3: quantity: ")
    assert refused.returncode == 2
    assert refused.stderr.startswith("group-orders: The first row is not a header")
    assert refused.stderr.rstrip().endswith("(invalid-param)")
