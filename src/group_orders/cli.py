"""The ``group-orders`` command: serve, worker, db, demo, token, user, client, routes,
webhook, storage, catalog, upload, export-schema, export-docs.

Every command reads its settings from the environment (``DATABASE_URL``,
``GROUP_ORDERS_DATA_DIR``, ...; see ``docs/operating.md``) and migrates the database
before it touches it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.engine import create_engine
from group_orders.db.migrate import current_revision, downgrade, head_revision, upgrade
from group_orders.enums import ApplicationSlug
from group_orders.logs import configure as configure_logs
from group_orders.services import accounts, demo, routes
from group_orders.settings import Settings
from group_orders.storage import Storage, create_storage
from group_orders.worker.runner import create_runner

TOKEN_NOTES = {
    "client": "Alice, client of Acme Outfitters, via planoorder",
    "client-b": "Bob, client of Borealis Foods, via planoorder",
    "liaison": "Lena, liaison for Borealis Foods and Cedar Clinics, via planoorder",
    "employee": "Erin, employee, via planox2 (remember_me)",
    "no-record": "Nora, a user with no client/employee/liaison record, via planoauth",
    "expired": "Alice again, a session signed in 8 days ago",
    "reporting": "application token of planox2, unbound: sees every group order",
    "acme-integration": "application token of planoorder, bound to Acme Outfitters",
}


class CommandError(Exception):
    """A mistake in the command line or its input: printed without a traceback."""


def _run(settings: Settings, work: Callable[[AsyncEngine], Awaitable[int]]) -> int:
    async def main() -> int:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(main())


def _base_url(host: str, port: int) -> str:
    return f"http://{host}:{port}"


def _print_demo(data: demo.DemoData, base_url: str) -> None:
    print("Demo data is ready. Send a token as 'Authorization: Bearer <token>'.\n")
    print("Tokens:")
    for label, token in data.tokens.items():
        print(f"  {label:<17} {token}")
        print(f"  {'':<17} {TOKEN_NOTES.get(label, '')}")
    print("\nGroup orders (client-status):")
    for label, group_order_id in data.group_orders.items():
        print(f"  {label:<20} {group_order_id}")
    print("\nTry:\n  " + data.curl(base_url))
    print(f"\nGraphiQL: {base_url}/graphql (paste a token into the Token field)\n")


def _storage(settings: Settings) -> Storage:
    return create_storage(settings)


def cmd_serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from group_orders.app import create_app, freeze_startup_objects

    base_url = _base_url(args.host, args.port)
    if args.demo:

        async def seed(engine: AsyncEngine) -> int:
            _print_demo(await demo.seed_demo(engine, _storage(settings)), base_url)
            return 0

        _run(settings, seed)
    else:
        _run(settings, lambda _engine: _done())
    print(f"group-orders listening on {base_url}/graphql", flush=True)
    # uvicorn's access log would print paths with their query strings, signed file links
    # included; the service logs its own line per request instead.
    application = create_app(settings)
    freeze_startup_objects()
    uvicorn.run(
        application,
        host=args.host,
        port=args.port,
        log_level=args.log_level,
        access_log=False,
        # The process's logging is configured already: JSON lines (group_orders.logs).
        log_config=None,
    )
    return 0


def cmd_worker(settings: Settings, args: argparse.Namespace) -> int:
    """Process queued group orders until stopped (SIGINT or SIGTERM). On PostgreSQL any
    number of these may run, on any machine; on SQLite, beside the server on its machine."""

    async def work(engine: AsyncEngine) -> int:
        runner = create_runner(engine, _storage(settings), settings, worker_id=args.name)
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        for signal_number in (signal.SIGINT, signal.SIGTERM):
            if task is not None:
                loop.add_signal_handler(signal_number, task.cancel)
        print(f"group-orders worker {args.name or ''} started".replace("  ", " "), flush=True)
        try:
            await runner.run_forever()
        except asyncio.CancelledError:
            print("group-orders worker stopped", flush=True)
        return 0

    return _run(settings, work)


async def _done() -> int:
    return 0


def cmd_db(settings: Settings, args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        if args.action == "downgrade":
            await downgrade(engine, args.revision)
        current = await current_revision(engine)
        print(f"database revision: {current} (head: {head_revision()})")
        return 0

    if args.action == "upgrade":
        return _run(settings, work)

    async def without_upgrade() -> int:
        engine = create_engine(settings)
        try:
            return await work(engine)
        finally:
            await engine.dispose()

    return asyncio.run(without_upgrade())


def cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        data = await demo.seed_demo(engine, _storage(settings))
        if args.json:
            print(json.dumps(data.as_json(args.base_url), indent=2))
        else:
            _print_demo(data, args.base_url)
        return 0

    return _run(settings, work)


def cmd_storage(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import timedelta

    from group_orders.services.retention import purge_files

    days = args.days if args.days is not None else settings.file_retention_days
    if days is None:
        raise CommandError("set GROUP_ORDERS_FILE_RETENTION_DAYS or pass --days")
    if days < 1:
        raise CommandError("--days must be at least 1")

    async def work(engine: AsyncEngine) -> int:
        report = await purge_files(
            engine, _storage(settings), older_than=timedelta(days=days), dry_run=args.dry_run
        )
        verb = "would remove" if args.dry_run else "removed"
        for group_order_id in report.group_orders:
            print(f"{verb} the files of group order {group_order_id}")
        for key in report.orphans:
            print(f"{verb} {key} (no group order references it)")
        print(
            f"{verb} {len(report.files)} files of {len(report.group_orders)} group orders "
            f"finished more than {days} days ago, and {len(report.orphans)} files no group "
            "order references"
        )
        return 0

    return _run(settings, work)


def _application(value: str) -> ApplicationSlug:
    try:
        return ApplicationSlug(value)
    except ValueError:
        choices = ", ".join(slug.value for slug in ApplicationSlug)
        raise argparse.ArgumentTypeError(
            f"unknown application {value!r}; one of {choices}"
        ) from None


def _uuid(value: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a UUID") from None


def cmd_token(settings: Settings, args: argparse.Namespace) -> int:
    async def create(engine: AsyncEngine) -> int:
        if args.user:
            user_id = await accounts.find_user(engine, args.user)
            if user_id is None:
                raise CommandError(f"no user has the email {args.user!r}")
            token = await accounts.create_session(
                engine, user_id, args.application, remember_me=args.remember_me
            )
        else:
            if not args.name:
                raise CommandError("an application token needs --name (or give --user)")
            token = await accounts.create_application_token(
                engine, args.application, args.name, client_id=args.client
            )
        print(token)
        return 0

    async def revoke(engine: AsyncEngine) -> int:
        if not await accounts.revoke_token(engine, args.token):
            raise CommandError("no live token matched")
        print("revoked")
        return 0

    return _run(settings, create if args.action == "create" else revoke)


def cmd_user(settings: Settings, args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        if await accounts.find_user(engine, args.email) is not None:
            raise CommandError(f"a user with the email {args.email!r} exists already")
        user = await accounts.create_user(
            engine,
            args.email,
            args.name,
            client_name=args.client_name,
            employee=args.employee,
            liaison_for=args.liaison_for,
        )
        print(json.dumps(_user_json(user)))
        return 0

    return _run(settings, work)


def _user_json(user: accounts.CreatedUser) -> dict[str, Any]:
    return {
        "id": str(user.id),
        "email": user.email,
        "clientId": str(user.client_id) if user.client_id else None,
        "employeeId": str(user.employee_id) if user.employee_id else None,
        "liaisonId": str(user.liaison_id) if user.liaison_id else None,
    }


def cmd_client(settings: Settings, args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        print(await accounts.create_client(engine, args.name))
        return 0

    return _run(settings, work)


def cmd_routes(settings: Settings, args: argparse.Namespace) -> int:
    async def work(engine: AsyncEngine) -> int:
        await routes.sync_routes(engine)
        if args.action != "list":
            try:
                kind = await routes.set_deployed(
                    engine, args.name, deployed=args.action == "deploy"
                )
            except LookupError as error:
                raise CommandError(str(error)) from None
            print(f"{kind} {args.name}: {'deployed' if args.action == 'deploy' else 'withdrawn'}")
        print(f"{'route':<22} {'service':<20} {'route state':<12} service state")
        for state in await routes.list_routes(engine):
            print(
                f"{state.route:<22} {state.service:<20} "
                f"{'deployed' if state.route_deployed else 'withdrawn':<12} "
                f"{'deployed' if state.service_deployed else 'withdrawn'}"
            )
        return 0

    return _run(settings, work)


def cmd_webhook(settings: Settings, args: argparse.Namespace) -> int:
    from group_orders.services.notifications import remove_webhook, set_webhook

    async def work(engine: AsyncEngine) -> int:
        if args.action == "remove":
            if not await remove_webhook(engine, args.client):
                raise CommandError(f"the client {args.client} has no webhook")
            print(f"webhook of client {args.client}: removed")
            return 0
        secret = args.secret or secrets.token_urlsafe(32)
        try:
            await set_webhook(engine, args.client, args.url, secret)
        except LookupError as error:
            raise CommandError(str(error)) from None
        print(f"webhook of client {args.client}: {args.url}")
        if not args.secret:
            # Generated here: shown once, so that the receiver can verify signatures.
            print(f"secret: {secret}")
        return 0

    return _run(settings, work)


def cmd_export_schema(_settings: Settings, args: argparse.Namespace) -> int:
    from group_orders.schema.query import build_schema

    text = build_schema().as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(text)
    else:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}")
    return 0


def cmd_export_docs(_settings: Settings, args: argparse.Namespace) -> int:
    from group_orders.reference_docs import write_reference_docs

    for path in write_reference_docs(Path(args.directory)):
        print(f"wrote {path}")
    return 0


def cmd_catalog(settings: Settings, args: argparse.Namespace) -> int:
    from group_orders.services.catalog import CatalogFileError, import_catalog, read_catalog_file

    try:
        entries = read_catalog_file(Path(args.file))
    except (OSError, CatalogFileError) as error:
        raise CommandError(str(error)) from None

    async def work(engine: AsyncEngine) -> int:
        try:
            count = await import_catalog(engine, args.client, entries)
        except LookupError as error:
            raise CommandError(str(error)) from None
        print(f"imported {count} catalog entries for client {args.client}")
        return 0

    return _run(settings, work)


def cmd_upload(_settings: Settings, args: argparse.Namespace) -> int:
    from group_orders.upload_client import UploadClientError, upload_and_follow

    try:
        return upload_and_follow(
            url=args.url,
            token=args.token,
            path=Path(args.file),
            client_id=args.client,
            application=args.application,
            idempotency_key=args.idempotency_key,
            dry_run=args.dry_run,
            wait=not args.no_wait,
        )
    except UploadClientError as error:
        raise CommandError(str(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="group-orders", description="The group-order GraphQL API of the Plano platform."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="migrate the database and serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--demo", action="store_true", help="seed demo data and print tokens")
    serve.add_argument("--log-level", default="info")
    serve.set_defaults(handler=cmd_serve)

    worker = commands.add_parser("worker", help="process queued group orders until stopped")
    worker.add_argument("--name", help="this worker's name in logs and job records")
    worker.set_defaults(handler=cmd_worker)

    db = commands.add_parser("db", help="database migrations")
    db_actions = db.add_subparsers(dest="action", required=True)
    db_actions.add_parser("upgrade", help="migrate to the newest revision")
    db_actions.add_parser("current", help="print the database's revision")
    db_down = db_actions.add_parser("downgrade", help="migrate back to a revision")
    db_down.add_argument("revision")
    db.set_defaults(handler=cmd_db)

    demo_parser = commands.add_parser("demo", help="seed demo data and print tokens")
    demo_parser.add_argument("--json", action="store_true", help="print JSON for scripts")
    demo_parser.add_argument("--base-url", default="http://127.0.0.1:8000")
    demo_parser.set_defaults(handler=cmd_demo)

    token = commands.add_parser("token", help="create or revoke tokens")
    token_actions = token.add_subparsers(dest="action", required=True)
    create = token_actions.add_parser(
        "create", help="a session token (--user) or an application token (--name)"
    )
    create.add_argument("--application", type=_application, required=True)
    create.add_argument("--user", help="email of the user to sign in (a session token)")
    create.add_argument("--remember-me", action="store_true")
    create.add_argument("--name", help="name of the application token")
    create.add_argument("--client", type=_uuid, help="bind the application token to a client")
    revoke = token_actions.add_parser("revoke", help="revoke a token")
    revoke.add_argument("token")
    token.set_defaults(handler=cmd_token)

    user = commands.add_parser("user", help="create users")
    user_actions = user.add_subparsers(dest="action", required=True)
    user_create = user_actions.add_parser("create", help="a user with its records")
    user_create.add_argument("--email", required=True)
    user_create.add_argument("--name", required=True)
    user_create.add_argument("--client-name", help="give the user a client record")
    user_create.add_argument("--employee", action="store_true")
    user_create.add_argument(
        "--liaison-for", type=_uuid, nargs="*", help="make a liaison for these client ids"
    )
    user.set_defaults(handler=cmd_user)

    client = commands.add_parser("client", help="create client records")
    client_actions = client.add_subparsers(dest="action", required=True)
    client_create = client_actions.add_parser("create", help="a client without its own user")
    client_create.add_argument("--name", required=True)
    client.set_defaults(handler=cmd_client)

    routes_parser = commands.add_parser("routes", help="list, withdraw and deploy routes")
    route_actions = routes_parser.add_subparsers(dest="action", required=True)
    route_actions.add_parser("list")
    for action in ("withdraw", "deploy"):
        route_action = route_actions.add_parser(action, help=f"{action} a route or service")
        route_action.add_argument("name", help="a route (root field) or an API service")
    routes_parser.set_defaults(handler=cmd_routes)

    storage = commands.add_parser("storage", help="stored files: the retention purge")
    storage_actions = storage.add_subparsers(dest="action", required=True)
    purge = storage_actions.add_parser(
        "purge",
        help="remove the files of group orders finished more than the retention days ago, "
        "and files no group order references",
    )
    purge.add_argument(
        "--days", type=int, help="the retention in days (default GROUP_ORDERS_FILE_RETENTION_DAYS)"
    )
    purge.add_argument("--dry-run", action="store_true", help="list what would go, remove nothing")
    storage.set_defaults(handler=cmd_storage)

    catalog = commands.add_parser("catalog", help="a client's catalog of SKUs")
    catalog_actions = catalog.add_subparsers(dest="action", required=True)
    catalog_import = catalog_actions.add_parser(
        "import", help="add or update SKUs from a CSV with sku[,name][,active] columns"
    )
    catalog_import.add_argument("file")
    catalog_import.add_argument("--client", type=_uuid, required=True)
    catalog.set_defaults(handler=cmd_catalog)

    upload = commands.add_parser(
        "upload", help="upload a CSV file of orders and follow it until it is done"
    )
    upload.add_argument("file")
    upload.add_argument("--token", required=True, help="a session or application token")
    upload.add_argument("--url", default="http://127.0.0.1:8000/graphql")
    upload.add_argument("--client", help="the client to upload for (liaisons, employees)")
    upload.add_argument("--application", help="the application to act through")
    upload.add_argument("--idempotency-key")
    upload.add_argument("--dry-run", action="store_true", help="validate only, store nothing")
    upload.add_argument("--no-wait", action="store_true", help="do not follow processing")
    upload.set_defaults(handler=cmd_upload)

    webhook = commands.add_parser(
        "webhook", help="a client's webhook, POSTed when its group orders complete or fail"
    )
    webhook_actions = webhook.add_subparsers(dest="action", required=True)
    webhook_set = webhook_actions.add_parser("set", help="set or replace a client's webhook")
    webhook_set.add_argument("--client", type=_uuid, required=True)
    webhook_set.add_argument("--url", required=True, help="an http:// or https:// URL")
    webhook_set.add_argument(
        "--secret", help="signs each POST (16 characters or more); generated when absent"
    )
    webhook_remove = webhook_actions.add_parser("remove", help="remove a client's webhook")
    webhook_remove.add_argument("--client", type=_uuid, required=True)
    webhook.set_defaults(handler=cmd_webhook)

    export = commands.add_parser("export-schema", help="print or write schema.graphql")
    export.add_argument("--output", "-o", default="-")
    export.set_defaults(handler=cmd_export_schema)

    docs = commands.add_parser(
        "export-docs", help="write docs/errors.md and docs/views.md from the code"
    )
    docs.add_argument("directory", nargs="?", default="docs")
    docs.set_defaults(handler=cmd_export_docs)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logs(os.environ.get("GROUP_ORDERS_LOG_FORMAT", "json"))
    # Migrations run before every command; their chatter is not news.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("botocore").setLevel(logging.WARNING)
    try:
        settings = Settings.from_env()
        settings.check()
        handler: Callable[[Settings, argparse.Namespace], int] = args.handler
        return handler(settings, args)
    except (CommandError, ValueError) as error:
        print(f"group-orders: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
