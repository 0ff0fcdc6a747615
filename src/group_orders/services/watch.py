"""Following a group order: its state now, then each time it changes, until it is done."""

from __future__ import annotations

from collections.abc import AsyncIterator

from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.access import Access
from group_orders.enums import GroupOrderStatus
from group_orders.services.events import EventBus
from group_orders.services.group_orders import GroupOrderRecord, get_group_order, parse_id

# A group order in one of these will not change by itself any more.
DONE_STATUSES = frozenset(
    {GroupOrderStatus.completed, GroupOrderStatus.failed, GroupOrderStatus.cancelled}
)


async def watch_group_order(
    engine: AsyncEngine,
    events: EventBus,
    raw_id: str,
    access: Access,
    *,
    refresh_seconds: float,
) -> AsyncIterator[GroupOrderRecord]:
    """The group order as stored now, then again each time it changed, ending with its
    final state once it is completed, failed or cancelled.

    Each state is read from the database (after an event, or every ``refresh_seconds``
    when none came), within ``access``'s scope; a state equal to the last one is not
    repeated.
    """
    group_order_id = parse_id(raw_id)
    # Listening starts before the first read, so no change after that read is missed.
    async with events.subscribe(group_order_id) as listener:
        record = await get_group_order(engine, raw_id, access)
        yield record
        while record.status not in DONE_STATUSES:
            await listener.wait(refresh_seconds)
            latest = await get_group_order(engine, raw_id, access)
            if latest != record:
                record = latest
                yield record
