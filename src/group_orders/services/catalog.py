"""A client's catalog: the SKUs its orders may name."""

from __future__ import annotations

import csv
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.engine import upsert, write_transaction
from group_orders.db.tables import catalog_item_table, client_table


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    sku: str
    name: str = ""
    active: bool = True


class CatalogFileError(ValueError):
    """The catalog file can't be read; the message says why."""


def read_catalog_file(path: Path) -> list[CatalogEntry]:
    """A CSV with a ``sku`` column and optional ``name`` and ``active`` (yes/no) columns."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle, strict=True)
        fields = [name.strip().lower() for name in reader.fieldnames or ()]
        if "sku" not in fields:
            raise CatalogFileError(f"{path} has no 'sku' column (it has: {', '.join(fields)})")
        entries = []
        for record in reader:
            values = {
                key.strip().lower(): (value or "").strip() for key, value in record.items() if key
            }
            if not values.get("sku"):
                continue
            active = values.get("active", "yes").lower() not in ("no", "false", "0", "inactive")
            entries.append(CatalogEntry(values["sku"], values.get("name", ""), active))
    return entries


async def import_catalog(
    engine: AsyncEngine, client_id: uuid.UUID, entries: Iterable[CatalogEntry]
) -> int:
    """Add or update catalog entries of a client; answers how many were written."""
    rows = [
        {"client_id": client_id, "sku": entry.sku, "name": entry.name, "active": entry.active}
        for entry in entries
    ]
    async with write_transaction(engine) as connection:
        exists = await connection.execute(
            sa.select(client_table.c.id).where(client_table.c.id == client_id)
        )
        if exists.first() is None:
            raise LookupError(f"no client has the id {client_id}")
        if not rows:
            return 0
        statement = upsert(connection, catalog_item_table, ["client_id", "sku"], ["name", "active"])
        await connection.execute(statement, rows)
    return len(rows)
