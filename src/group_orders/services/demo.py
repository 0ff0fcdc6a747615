"""Demo data: users of every role, a liaison with two clients, tokens and group orders.

Ids are fixed (derived from names), so the README's examples hold on every machine.
Running it again keeps the data and mints fresh tokens.
"""

from __future__ import annotations

import io
import uuid
from dataclasses import dataclass, field
from datetime import timedelta

import xlsxwriter
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.tables import utc_now
from group_orders.enums import ApplicationSlug, GroupOrderStatus
from group_orders.services.accounts import (
    create_application_token,
    create_client,
    create_session,
    create_user,
    find_user,
)
from group_orders.services.catalog import CatalogEntry, import_catalog
from group_orders.services.group_orders import create_group_order
from group_orders.storage.base import Storage

_NAMESPACE = uuid.UUID("6f1d8a52-3c55-4d8e-9d3e-0c2b6f6f9a11")


def demo_id(name: str) -> uuid.UUID:
    return uuid.uuid5(_NAMESPACE, name)


DEMO_SKUS = [f"SKU-{n}" for n in range(7)] + ["TSHIRT-S", "TSHIRT-M", "TSHIRT-L", "MUG-01"]

CLIENTS = {"acme": "Acme Outfitters", "borealis": "Borealis Foods", "cedar": "Cedar Clinics"}


@dataclass
class DemoData:
    tokens: dict[str, str] = field(default_factory=dict)
    group_orders: dict[str, str] = field(default_factory=dict)

    def as_json(self, base_url: str) -> dict[str, object]:
        return {
            "tokens": self.tokens,
            "groupOrders": self.group_orders,
            "curl": self.curl(base_url),
        }

    def curl(self, base_url: str) -> str:
        query = (
            "query($id: ID!) { groupOrder(id: $id) { id status totalOrders "
            "successfulOrders rejectedOrders session(view: minimal) { userId expiresAt } } }"
        )
        body = (
            '{"query": "'
            + query
            + '", "variables": {"id": "'
            + self.group_orders["acme-completed"]
            + '"}}'
        )
        return (
            f"curl -s {base_url.rstrip('/')}/graphql -H 'Content-Type: application/json' "
            f"-H 'Authorization: Bearer {self.tokens['client']}' -d '{body}'"
        )


def _csv(rows: int) -> bytes:
    lines = ["external_order_id,recipient_name,city,country,sku,quantity"]
    lines += [f"ORD-{n:04d},Recipient {n},Berlin,DE,SKU-{n % 7},{1 + n % 3}" for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def _xlsx(title: str, rows: int) -> bytes:
    buffer = io.BytesIO()
    workbook = xlsxwriter.Workbook(buffer, {"in_memory": True, "strings_to_formulas": False})
    sheet = workbook.add_worksheet(title)
    sheet.write_row(0, 0, ["external_order_id", "sku", "quantity"])
    for n in range(rows):
        sheet.write_row(n + 1, 0, [f"ORD-{n:04d}", f"SKU-{n % 7}", 1 + n % 3])
    workbook.close()
    return buffer.getvalue()


async def _seed_records(engine: AsyncEngine, storage: Storage) -> None:
    await create_user(
        engine,
        "alice@acme.example",
        "Alice Client",
        client_name=CLIENTS["acme"],
        user_id=demo_id("alice"),
        client_id=demo_id("acme"),
    )
    await create_user(
        engine,
        "bob@borealis.example",
        "Bob Client",
        client_name=CLIENTS["borealis"],
        user_id=demo_id("bob"),
        client_id=demo_id("borealis"),
    )
    await create_client(engine, CLIENTS["cedar"], client_id=demo_id("cedar"))
    await create_user(
        engine,
        "lena@plano.example",
        "Lena Liaison",
        liaison_for=[demo_id("borealis"), demo_id("cedar")],
        user_id=demo_id("lena"),
    )
    await create_user(
        engine, "erin@plano.example", "Erin Employee", employee=True, user_id=demo_id("erin")
    )
    await create_user(engine, "nora@example.com", "Nora Newcomer", user_id=demo_id("nora"))

    for client in CLIENTS:
        await import_catalog(
            engine,
            demo_id(client),
            [CatalogEntry(sku, f"Demo article {sku}") for sku in DEMO_SKUS]
            + [CatalogEntry("SKU-RETIRED", "An article no longer sold", active=False)],
        )

    uploaders = {"acme": demo_id("alice"), "borealis": demo_id("bob"), "cedar": demo_id("lena")}
    for client in CLIENTS:
        for status in GroupOrderStatus:
            group_order_id = demo_id(f"{client}-{status.value}")
            files: dict[str, str | None] = {
                "normalized_csv": None,
                "accepted_orders_xlsx": None,
                "rejected_orders_xlsx": None,
            }
            total, accepted, rejected = 0, 0, 0
            if status is not GroupOrderStatus.pending:
                total = 12
            if status in (GroupOrderStatus.processing, GroupOrderStatus.completed):
                csv_key = f"{group_order_id}/normalized.csv"
                storage.write_bytes(csv_key, _csv(total))
                files["normalized_csv"] = csv_key
            if status is GroupOrderStatus.processing:
                accepted, rejected = 5, 1
            if status is GroupOrderStatus.completed:
                accepted, rejected = 10, 2
                for kind, rows in (("accepted", accepted), ("rejected", rejected)):
                    key = f"{group_order_id}/{kind}.xlsx"
                    storage.write_bytes(key, _xlsx(kind, rows))
                    files[f"{kind}_orders_xlsx"] = key
            await create_group_order(
                engine,
                group_order_id=group_order_id,
                client_id=demo_id(client),
                uploaded_by_user_id=uploaders[client],
                status=status,
                total_orders=total,
                successful_orders=accepted,
                rejected_orders=rejected,
                queue_job_id=None
                if status is GroupOrderStatus.pending
                else f"job-{client}-{status.value}",
                **files,
            )


async def seed_demo(engine: AsyncEngine, storage: Storage) -> DemoData:
    """Seed the demo records once, then mint a fresh set of tokens."""
    if await find_user(engine, "alice@acme.example") is None:
        await _seed_records(engine, storage)
    data = DemoData()
    for client in CLIENTS:
        for status in GroupOrderStatus:
            data.group_orders[f"{client}-{status.value}"] = str(demo_id(f"{client}-{status.value}"))
    data.tokens["client"] = await create_session(
        engine, demo_id("alice"), ApplicationSlug.planoorder
    )
    data.tokens["client-b"] = await create_session(
        engine, demo_id("bob"), ApplicationSlug.planoorder
    )
    data.tokens["liaison"] = await create_session(
        engine, demo_id("lena"), ApplicationSlug.planoorder
    )
    data.tokens["employee"] = await create_session(
        engine, demo_id("erin"), ApplicationSlug.planox2, remember_me=True
    )
    data.tokens["no-record"] = await create_session(
        engine, demo_id("nora"), ApplicationSlug.planoauth
    )
    eight_days_ago = utc_now() - timedelta(days=8)
    data.tokens["expired"] = await create_session(
        engine, demo_id("alice"), ApplicationSlug.planoorder, created_at=eight_days_ago
    )
    data.tokens["reporting"] = await create_application_token(
        engine, ApplicationSlug.planox2, "demo reporting tool"
    )
    data.tokens["acme-integration"] = await create_application_token(
        engine, ApplicationSlug.planoorder, "demo Acme integration", client_id=demo_id("acme")
    )
    return data
