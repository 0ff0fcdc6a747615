"""The ``group-orders`` command, run as a user runs it: a separate process."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from group_orders.db.engine import create_engine
from group_orders.db.tables import catalog_item_table, client_webhook_table
from group_orders.services.demo import demo_id
from group_orders.settings import Settings


def run_cli(settings: Settings, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url,
        "GROUP_ORDERS_DATA_DIR": str(settings.data_dir),
    }
    return subprocess.run(
        [sys.executable, "-m", "group_orders.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        check=check,
        timeout=120,
    )


@pytest.fixture
def fresh(tmp_path: Path) -> Settings:
    """Settings of a machine where nothing has run yet."""
    return Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'new' / 'db.sqlite'}",
        data_dir=tmp_path / "new",
    )


def test_db_upgrade_creates_and_migrates_a_new_database(fresh: Settings) -> None:
    # when
    result = run_cli(fresh, "db", "upgrade")

    # then
    assert result.stdout == "database revision: 0004 (head: 0004)\n"
    assert (fresh.data_dir / "db.sqlite").is_file()


def test_demo_json_gives_tokens_that_work(fresh: Settings) -> None:
    # when
    result = run_cli(fresh, "demo", "--json")
    data = json.loads(result.stdout)

    # then: every role has a token, every client a group order in every status
    assert sorted(data["tokens"]) == [
        "acme-integration",
        "client",
        "client-b",
        "employee",
        "expired",
        "liaison",
        "no-record",
        "reporting",
    ]
    assert len(data["groupOrders"]) == 15
    assert data["curl"].startswith("curl -s http://127.0.0.1:8000/graphql ")
    assert data["tokens"]["client"] in data["curl"]


def test_demo_twice_keeps_the_data_and_mints_new_tokens(fresh: Settings) -> None:
    # when
    first = json.loads(run_cli(fresh, "demo", "--json").stdout)
    second = json.loads(run_cli(fresh, "demo", "--json").stdout)

    # then
    assert first["groupOrders"] == second["groupOrders"]
    assert first["tokens"]["client"] != second["tokens"]["client"]


async def test_user_and_token_create_then_revoke(settings: Settings) -> None:
    # given
    user = json.loads(
        run_cli(
            settings,
            "user",
            "create",
            "--email",
            "zoe@zeta.example",
            "--name",
            "Zoe",
            "--client-name",
            "Zeta GmbH",
        ).stdout
    )
    token = run_cli(
        settings, "token", "create", "--user", "zoe@zeta.example", "--application", "planoorder"
    ).stdout.strip()

    # when
    before = await _session(settings, token)
    revoked = run_cli(settings, "token", "revoke", token)
    after = await _session(settings, token)

    # then
    assert before == {
        "data": {"session": {"userId": user["id"], "client": {"id": user["clientId"]}}},
        "extensions": {"status": "action-successful"},
    }
    assert revoked.stdout == "revoked\n"
    assert after["errors"][0]["extensions"]["code"] == "invalid-token"


def test_application_token_create(settings: Settings) -> None:
    # when
    token = run_cli(
        settings, "token", "create", "--application", "planox2", "--name", "nightly report"
    ).stdout.strip()

    # then
    assert token.startswith("goa_")
    assert len(token) == 47


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("token", "create", "--application", "planox9", "--name", "x"), "unknown application"),
        (("token", "create", "--application", "planoorder", "--user", "no@one"), "no user"),
        (("token", "revoke", "gos_" + "a" * 43), "no live token matched"),
        (("routes", "withdraw", "noSuchRoute"), "no route or service is named"),
        (("user", "create", "--email", "alice@acme.example", "--name", "A"), "exists already"),
    ],
)
def test_mistakes_are_explained_without_a_traceback(
    settings: Settings, args: tuple[str, ...], message: str
) -> None:
    # when
    result = run_cli(settings, *args, check=False)

    # then
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


async def test_routes_withdraw_and_deploy(settings: Settings) -> None:
    # given
    token = run_cli(
        settings,
        "token",
        "create",
        "--user",
        "alice@acme.example",
        "--application",
        "planoorder",
    ).stdout.strip()

    # when
    withdrawn = run_cli(settings, "routes", "withdraw", "sessions")
    while_withdrawn = await _session(settings, token)
    run_cli(settings, "routes", "deploy", "sessions")
    deployed_again = await _session(settings, token)

    # then
    assert withdrawn.stdout.splitlines() == [
        "service sessions: withdrawn",
        "route                  service              route state  service state",
        "cancelGroupOrder       group-order-uploads  deployed     deployed",
        "createGroupOrder       group-order-uploads  deployed     deployed",
        "retryGroupOrder        group-order-uploads  deployed     deployed",
        "groupOrder             group-orders         deployed     deployed",
        "groupOrderStats        group-orders         deployed     deployed",
        "groupOrderUpdated      group-orders         deployed     deployed",
        "groupOrders            group-orders         deployed     deployed",
        "resendGroupOrderEmail  notifications        deployed     deployed",
        "setEmailNotifications  notifications        deployed     deployed",
        "session                sessions             deployed     withdrawn",
    ]
    assert while_withdrawn["errors"][0]["extensions"]["code"] == "service-not-found"
    assert deployed_again["extensions"] == {"status": "action-successful"}


def test_export_schema_prints_the_sdl(settings: Settings) -> None:
    # when
    result = run_cli(settings, "export-schema")

    # then
    assert "groupOrder(id: ID!, view: GroupOrderView! = default" in result.stdout


async def _session(settings: Settings, token: str) -> dict[str, object]:
    from group_orders.app import create_app

    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            response = await client.post(
                "/graphql",
                json={"query": "{ session { userId client { id } } }"},
                headers={"Authorization": f"Bearer {token}"},
            )
    body: dict[str, object] = response.json()
    return body


async def catalog_rows(
    settings: Settings, client_id: uuid.UUID, skus: tuple[str, ...]
) -> list[tuple[str, str, bool]]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                sa.select(
                    catalog_item_table.c.sku, catalog_item_table.c.name, catalog_item_table.c.active
                )
                .where(catalog_item_table.c.client_id == client_id)
                .where(catalog_item_table.c.sku.in_(skus))
                .order_by(catalog_item_table.c.sku)
            )
            return [(row.sku, row.name, bool(row.active)) for row in result]
    finally:
        await engine.dispose()


def test_catalog_import_adds_and_updates_skus(settings: Settings, tmp_path: Path) -> None:
    # given
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("SKU,Name,Active\nBIKE-1,City bike,yes\nMUG-01,Mug,no\n", encoding="utf-8")
    acme = str(demo_id("acme"))

    # when
    result = run_cli(settings, "catalog", "import", str(catalog), "--client", acme)
    unknown = run_cli(
        settings, "catalog", "import", str(catalog), "--client", str(uuid.uuid4()), check=False
    )

    # then
    assert result.stdout == f"imported 2 catalog entries for client {acme}\n"
    assert unknown.returncode == 2
    assert "no client has the id" in unknown.stderr
    rows = asyncio.run(catalog_rows(settings, uuid.UUID(acme), ("BIKE-1", "MUG-01")))
    assert rows == [("BIKE-1", "City bike", True), ("MUG-01", "Mug", False)]


async def webhooks(settings: Settings) -> list[tuple[str, str]]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            result = await connection.execute(
                sa.select(client_webhook_table.c.url, client_webhook_table.c.secret)
            )
            return [(row.url, row.secret) for row in result]
    finally:
        await engine.dispose()


def test_webhook_set_replace_and_remove(settings: Settings) -> None:
    # given
    acme = str(demo_id("acme"))
    url = "https://orders.acme.example/hooks/group-orders"

    # when
    bad_url = run_cli(settings, "webhook", "set", "--client", acme, "--url", "ftp://x", check=False)
    short = run_cli(
        settings, "webhook", "set", "--client", acme, "--url", url, "--secret", "s", check=False
    )
    unknown = run_cli(
        settings,
        "webhook",
        "set",
        "--client",
        str(uuid.uuid4()),
        "--url",
        url,
        "--secret",
        "0123456789abcdef",
        check=False,
    )
    generated = run_cli(settings, "webhook", "set", "--client", acme, "--url", url)
    given = run_cli(
        settings, "webhook", "set", "--client", acme, "--url", url, "--secret", "0123456789abcdef"
    )
    stored = asyncio.run(webhooks(settings))
    removed = run_cli(settings, "webhook", "remove", "--client", acme)
    again = run_cli(settings, "webhook", "remove", "--client", acme, check=False)

    # then
    assert (bad_url.returncode, bad_url.stderr) == (
        2,
        "group-orders: the webhook URL must be http:// or https://, got 'ftp://x'\n",
    )
    assert (short.returncode, short.stderr) == (
        2,
        "group-orders: the webhook secret must be at least 16 characters\n",
    )
    assert unknown.returncode == 2
    assert "no client has the id" in unknown.stderr
    printed_url, printed_secret = generated.stdout.splitlines()
    assert printed_url == f"webhook of client {acme}: {url}"
    assert printed_secret.startswith("secret: ")
    assert len(printed_secret.removeprefix("secret: ")) == 43  # 32 random bytes, base64
    assert given.stdout == f"webhook of client {acme}: {url}\n"
    assert stored == [(url, "0123456789abcdef")]
    assert removed.stdout == f"webhook of client {acme}: removed\n"
    assert (again.returncode, again.stderr) == (
        2,
        f"group-orders: the client {acme} has no webhook\n",
    )
