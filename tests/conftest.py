"""Fixtures: a fresh database per test, the app, an HTTP client and the demo's tokens.

Every test that uses the database runs twice: on SQLite (the embedded default) and on
PostgreSQL (the server on 127.0.0.1:5432; ``GROUP_ORDERS_TEST_POSTGRES`` names another,
``GROUP_ORDERS_TEST_BACKENDS=sqlite`` runs one backend only). Migrating and seeding take
a while, so they run once per backend into a template (a database file; a PostgreSQL
template database); every test gets its own copy of it, and its own data directory.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

import s3server
from group_orders.app import create_app
from group_orders.db.engine import create_engine
from group_orders.db.migrate import upgrade
from group_orders.services.demo import DemoData, seed_demo
from group_orders.services.routes import sync_routes
from group_orders.settings import Settings
from group_orders.storage.local import LocalStorage
from group_orders.worker.runner import Runner

POSTGRES_SERVER = os.environ.get(
    "GROUP_ORDERS_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
BACKENDS = os.environ.get("GROUP_ORDERS_TEST_BACKENDS", "sqlite,postgresql").split(",")
# Databases of one test run share this prefix, so that runs side by side never meet.
RUN_PREFIX = f"go_test_{os.getpid()}_{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class Template:
    database_url: str
    files: Path
    demo: DemoData


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


def postgres_url(database: str) -> str:
    return make_url(POSTGRES_SERVER).set(database=database).render_as_string(hide_password=False)


async def postgres_admin(statement: str) -> None:
    """Run a statement that cannot run in a transaction (CREATE/DROP DATABASE)."""
    url = make_url(POSTGRES_SERVER)
    connection = await asyncpg.connect(
        host=url.host,
        port=url.port,
        user=url.username,
        password=url.password,
        database=url.database,
    )
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def build_template(settings: Settings, files: Path) -> DemoData:
    async def build() -> DemoData:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            await sync_routes(engine)
            return await seed_demo(engine, LocalStorage(files))
        finally:
            await engine.dispose()

    return asyncio.run(build())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    root = tmp_path_factory.mktemp("template")
    url = sqlite_url(root / "db.sqlite")
    demo = build_template(Settings(database_url=url, data_dir=root), root / "files")
    return Template(url, root / "files", demo)


@pytest.fixture(scope="session")
def postgresql_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Template]:
    root = tmp_path_factory.mktemp("pg-template")
    name = f"{RUN_PREFIX}_template"
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}"'))
    try:
        url = postgres_url(name)
        demo = build_template(Settings(database_url=url, data_dir=root), root / "files")
        yield Template(url, root / "files", demo)
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def template(backend: str, request: pytest.FixtureRequest) -> Template:
    chosen: Template = request.getfixturevalue(f"{backend}_template")
    return chosen


@pytest.fixture
def database_url(template: Template, backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh copy of the template's database, for this test alone."""
    if backend == "sqlite":
        source = make_url(template.database_url).database
        assert source is not None
        shutil.copyfile(source, tmp_path / "db.sqlite")
        yield sqlite_url(tmp_path / "db.sqlite")
        return
    name = f"{RUN_PREFIX}_{uuid.uuid4().hex[:12]}"
    template_name = make_url(template.database_url).database
    asyncio.run(postgres_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template_name}"'))
    try:
        yield postgres_url(name)
    finally:
        asyncio.run(postgres_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture
def settings(tmp_path: Path, template: Template, database_url: str) -> Settings:
    shutil.copytree(template.files, tmp_path / "files")
    # Tests run jobs themselves (``jobs.run_until_idle()``), so that they know when.
    # Switches and tokens are read on every request, so that a test's withdrawal or
    # revocation counts at once.
    return Settings(
        database_url=database_url,
        data_dir=tmp_path,
        embedded_worker=False,
        route_cache_seconds=0,
        token_cache_seconds=0,
        # Tests of bad tokens would trip the limiter; its own tests turn it on.
        auth_failure_limit=0,
    )


@pytest.fixture
def demo(template: Template) -> DemoData:
    return template.demo


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[Starlette]:
    application = create_app(settings)
    async with application.router.lifespan_context(application):
        yield application


@pytest.fixture
def engine(app: Starlette) -> AsyncEngine:
    engine: AsyncEngine = app.state.engine
    return engine


@pytest.fixture
def jobs(app: Starlette) -> Runner:
    runner: Runner = app.state.jobs
    return runner


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


class GraphQL:
    """Sends GraphQL requests the way a client would: POST JSON with a bearer token."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client

    async def post(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        accept: str | None = None,
    ) -> httpx.Response:
        headers = {}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        if accept is not None:
            headers["Accept"] = accept
        body: dict[str, Any] = {"query": query}
        if variables is not None:
            body["variables"] = variables
        return await self.client.post("/graphql", json=body, headers=headers)


@pytest.fixture
def graphql(client: httpx.AsyncClient) -> GraphQL:
    return GraphQL(client)


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An S3-compatible server on loopback (see ``s3server``), with the credentials in
    the environment of this process and of the processes it starts."""
    with pytest.MonkeyPatch.context() as patch:
        for name, value in s3server.CREDENTIALS.items():
            patch.setenv(name, value)
        with s3server.running_server(tmp_path_factory.mktemp("s3") / "server.log") as url:
            yield url


@pytest.fixture
def s3_bucket(s3_server: str) -> str:
    """A fresh bucket for this test alone."""
    name = f"go-test-{uuid.uuid4().hex[:16]}"
    s3server.create_bucket(s3_server, name)
    return name


@pytest.fixture
def s3_settings(settings: Settings, s3_server: str, s3_bucket: str) -> Settings:
    """``settings`` with uploads and result files in the test's bucket."""
    return settings.with_changes(
        storage="s3",
        s3_bucket=s3_bucket,
        s3_prefix="group-orders",
        s3_endpoint_url=s3_server,
        s3_region=s3server.REGION,
    )
