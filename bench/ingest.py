"""How fast a whole upload job runs, and how much memory it takes, by file size.

    python bench/ingest.py            # 10k, 100k and 1M rows
    python bench/ingest.py --quick    # 10k and 100k rows
    python bench/ingest.py --rows 50000

Each size runs in a fresh process (so its peak memory is its own) against a fresh SQLite
database: the file is generated (about 10% of its rows with an error), uploaded through
the service (copied to storage, header checked, group order and job recorded), and the
job is run to its end: reading, validating, storing row results, writing the three
result files. Printed per size: rows, seconds for the job, rows/s, and the process's
peak RSS, and that of the second process that writes the result files of large files.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

COUNTRIES = [
    ("DE", "10115", "+49 30 901820", "Berlin"),
    ("FR", "75001", "+33 1 42 68 53 00", "Paris"),
    ("GB", "SW1A 1AA", "020 7946 0958", "London"),
    ("US", "10001", "(212) 555-0123", "New York"),
    ("NL", "1012 AB", "020 555 1234", "Amsterdam"),
]
NAMES = ["Zoë Müller", "José García", "Łukasz Nowak", "Anna Svensson", "Chloé Dubois", "Sam Lee"]
SKUS = [f"SKU-{n}" for n in range(50)]


def generate(path: Path, rows: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "Order ID",
                "Order Date",
                "Name",
                "E-mail",
                "Phone Number",
                "Address",
                "City",
                "Zip",
                "Country",
                "SKU",
                "Qty",
                "Notes",
            ]
        )
        for n in range(rows):
            country, postal, phone, city = COUNTRIES[n % len(COUNTRIES)]
            sku = rng.choice(SKUS)
            quantity = str(rng.randint(1, 5))
            email = f"buyer{n}@example.com"
            broken = rng.random()
            if broken < 0.03:
                sku = "NOT-IN-CATALOG"
            elif broken < 0.06:
                email = "not an email"
            elif broken < 0.08:
                quantity = "0"
            elif broken < 0.10:
                postal = "??"
            writer.writerow(
                [
                    f"B-{n:07d}",
                    "30/11/2026",
                    rng.choice(NAMES),
                    email,
                    phone,
                    f"{n} Main Street",
                    city,
                    postal,
                    country,
                    sku,
                    quantity,
                    "",
                ]
            )


def run_one(rows: int) -> dict[str, float]:
    """Generate, upload and process one file in this process; answers the figures."""
    from group_orders.app import create_app
    from group_orders.auth.access import Access
    from group_orders.enums import ApplicationSlug, Role
    from group_orders.services.accounts import create_client
    from group_orders.services.catalog import CatalogEntry, import_catalog
    from group_orders.services.uploads import Requester, create_group_order_from_upload
    from group_orders.settings import Settings

    class DiskUpload:
        def __init__(self, path: Path) -> None:
            self.filename = path.name
            self._handle = path.open("rb")

        async def read(self, size: int = -1) -> bytes:
            return self._handle.read(size)

    async def main() -> dict[str, float]:
        with tempfile.TemporaryDirectory() as directory:
            root = Path(directory)
            source = root / "orders.csv"
            generate(source, rows)
            settings = Settings(
                database_url=f"sqlite+aiosqlite:///{root / 'db.sqlite'}",
                data_dir=root,
                embedded_worker=False,
                max_upload_bytes=2 * 1024**3,
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                engine = app.state.engine
                client_id = await create_client(engine, "Bench Co", client_id=uuid.uuid4())
                await import_catalog(engine, client_id, [CatalogEntry(sku) for sku in SKUS])
                access = Access(Role.client, ApplicationSlug.planoorder, frozenset({client_id}))
                started = time.perf_counter()
                outcome = await create_group_order_from_upload(
                    engine,
                    app.state.storage,
                    settings,
                    access,
                    Requester("bench", None),
                    DiskUpload(source),
                    raw_client_id=None,
                    idempotency_key=None,
                    dry_run=False,
                )
                uploaded = time.perf_counter()
                await app.state.jobs.run_until_idle()
                finished = time.perf_counter()
                assert outcome.group_order_id is not None
            return {
                "rows": rows,
                "upload_seconds": uploaded - started,
                "job_seconds": finished - uploaded,
                "file_mb": source.stat().st_size / 1e6,
            }

    figures = asyncio.run(main())
    figures["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # The process that writes the result files of large uploads has its own.
    figures["writer_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k and 100k rows only")
    parser.add_argument("--rows", type=int, action="append", help="a size to run (repeatable)")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_one(args.child)))
        return
    sizes = args.rows or ([10_000, 100_000] if args.quick else [10_000, 100_000, 1_000_000])
    print(
        f"{'rows':>9} {'file MB':>8} {'upload s':>9} {'job s':>8} {'rows/s':>9} {'peak RSS MB':>12}"
    )
    for rows in sizes:
        result = subprocess.run(
            [sys.executable, __file__, "--child", str(rows)],
            capture_output=True,
            text=True,
            check=True,
        )
        figures = json.loads(result.stdout.strip().splitlines()[-1])
        print(
            f"{rows:>9,} {figures['file_mb']:>8.1f} {figures['upload_seconds']:>9.2f} "
            f"{figures['job_seconds']:>8.2f} {rows / figures['job_seconds']:>9,.0f} "
            f"{figures['peak_rss_mb']:>12.0f} {figures['writer_rss_mb']:>14.0f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
