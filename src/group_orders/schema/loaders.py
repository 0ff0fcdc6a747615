"""DataLoaders, made per HTTP request: nested fields of a list load in one statement
each, and so do the group orders of a batch's operations.

A page of 100 group orders with their client, uploader, rows and the session's liaison
clients costs the same number of statements as a page of one.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from functools import cached_property

from sqlalchemy.ext.asyncio import AsyncEngine
from strawberry.dataloader import DataLoader

from group_orders.auth.access import liaison_clients
from group_orders.auth.identity import ClientRecord, UserRecord
from group_orders.db.engine import Reader
from group_orders.services.group_orders import (
    GroupOrderRow,
    RowPage,
    clients_by_id,
    group_order_rows,
    rows_of_many,
    users_by_id,
)
from group_orders.services.notifications import NotificationRecord, notifications_of_many


@dataclass(frozen=True, slots=True)
class RowsKey:
    group_order_id: uuid.UUID
    status: str | None
    first: int
    after_source_row: int


class Loaders:
    """Each loader is made when first used: most operations use one or none."""

    def __init__(self, engine: AsyncEngine, reader: Reader | None = None) -> None:
        self._engine = engine
        self._reader = reader or Reader(engine)

    @cached_property
    def clients(self) -> DataLoader[uuid.UUID, ClientRecord | None]:
        return DataLoader(self._clients)

    @cached_property
    def users(self) -> DataLoader[uuid.UUID, UserRecord | None]:
        return DataLoader(self._users)

    @cached_property
    def rows(self) -> DataLoader[RowsKey, RowPage]:
        return DataLoader(self._rows)

    @cached_property
    def liaison_clients(self) -> DataLoader[uuid.UUID, list[ClientRecord]]:
        return DataLoader(self._liaison_clients)

    @cached_property
    def notifications(self) -> DataLoader[uuid.UUID, list[NotificationRecord]]:
        return DataLoader(self._notifications, cache=False)

    @cached_property
    def group_orders(self) -> DataLoader[uuid.UUID, GroupOrderRow | None]:
        # Not cached: a mutation earlier in a batch may have changed the row since.
        return DataLoader(self._group_orders, cache=False)

    async def _group_orders(self, ids: list[uuid.UUID]) -> list[GroupOrderRow | None]:
        found = await group_order_rows(self._reader, list(dict.fromkeys(ids)))
        return [found.get(key) for key in ids]

    async def _notifications(self, ids: list[uuid.UUID]) -> list[list[NotificationRecord]]:
        found = await notifications_of_many(self._engine, list(dict.fromkeys(ids)))
        return [found[key] for key in ids]

    async def _clients(self, ids: list[uuid.UUID]) -> list[ClientRecord | None]:
        found = await clients_by_id(self._engine, ids)
        return [found.get(key) for key in ids]

    async def _users(self, ids: list[uuid.UUID]) -> list[UserRecord | None]:
        found = await users_by_id(self._engine, ids)
        return [found.get(key) for key in ids]

    async def _rows(self, keys: list[RowsKey]) -> list[RowPage]:
        # One pair of statements per distinct (status, first, after) in the document.
        groups: dict[tuple[str | None, int, int], list[uuid.UUID]] = defaultdict(list)
        for key in keys:
            groups[(key.status, key.first, key.after_source_row)].append(key.group_order_id)
        pages: dict[RowsKey, RowPage] = {}
        for (status, first, after), ids in groups.items():
            found = await rows_of_many(
                self._engine, ids, status=status, first=first, after_source_row=after
            )
            for group_order_id, page in found.items():
                pages[RowsKey(group_order_id, status, first, after)] = page
        return [pages[key] for key in keys]

    async def _liaison_clients(self, ids: list[uuid.UUID]) -> list[list[ClientRecord]]:
        return [await liaison_clients(self._reader, liaison_id) for liaison_id in ids]
