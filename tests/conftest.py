"""Fixtures: a fresh database per test, the app, an HTTP client and the demo's tokens.

Migrating and seeding take a while, so they run once into a template database file;
every test gets its own copy of that file, and its own data directory.
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from group_orders.app import create_app
from group_orders.db.engine import create_engine
from group_orders.db.migrate import upgrade
from group_orders.services.demo import DemoData, seed_demo
from group_orders.services.routes import sync_routes
from group_orders.settings import Settings
from group_orders.storage.local import LocalStorage
from group_orders.worker.runner import JobRunner


@dataclass(frozen=True)
class Template:
    database: Path
    files: Path
    demo: DemoData


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Template:
    root = tmp_path_factory.mktemp("template")
    settings = Settings(database_url=sqlite_url(root / "db.sqlite"), data_dir=root)

    async def build() -> DemoData:
        engine = create_engine(settings)
        try:
            await upgrade(engine)
            await sync_routes(engine)
            return await seed_demo(engine, LocalStorage(root / "files"))
        finally:
            await engine.dispose()

    demo = asyncio.run(build())
    return Template(root / "db.sqlite", root / "files", demo)


@pytest.fixture
def settings(tmp_path: Path, template: Template) -> Settings:
    shutil.copyfile(template.database, tmp_path / "db.sqlite")
    shutil.copytree(template.files, tmp_path / "files")
    # Tests run jobs themselves (``jobs.run_until_idle()``), so that they know when.
    # Switches and tokens are read on every request, so that a test's withdrawal or
    # revocation counts at once.
    return Settings(
        database_url=sqlite_url(tmp_path / "db.sqlite"),
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
def jobs(app: Starlette) -> JobRunner:
    runner: JobRunner = app.state.jobs
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
