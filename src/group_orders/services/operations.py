"""What operators count: group orders by status, rows processed, notifications.

Read from the database when metrics are scraped, so that every process (API servers and
separate workers alike) reports the same figures, whichever of them did the work.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.db.tables import group_order_table, notification_table
from group_orders.enums import GroupOrderStatus, NotificationStatus


@dataclass(frozen=True, slots=True)
class ServiceSnapshot:
    group_orders: dict[GroupOrderStatus, int]
    # Rows validated so far, over every group order (running ones included).
    rows_processed: int
    rows_accepted: int
    rows_rejected: int
    # (channel, status) -> count, every pair present.
    notifications: dict[tuple[str, NotificationStatus], int]

    @property
    def queue_depth(self) -> int:
        """Group orders waiting for a worker."""
        return self.group_orders[GroupOrderStatus.pending]


CHANNELS = ("email", "webhook")


async def service_snapshot(engine: AsyncEngine) -> ServiceSnapshot:
    """Counts over the whole database, in three small grouped statements."""
    table = group_order_table
    by_status = sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
    counted = table.c.successful_orders + table.c.rejected_orders
    # A running group order has counted no outcome yet; a finished one may have been
    # recorded with its outcome only.
    processed = sa.case((table.c.processed_rows > counted, table.c.processed_rows), else_=counted)
    rows = sa.select(
        sa.func.coalesce(sa.func.sum(processed), 0),
        sa.func.coalesce(sa.func.sum(table.c.successful_orders), 0),
        sa.func.coalesce(sa.func.sum(table.c.rejected_orders), 0),
    )
    notifications = sa.select(
        notification_table.c.channel, notification_table.c.status, sa.func.count()
    ).group_by(notification_table.c.channel, notification_table.c.status)
    async with engine.connect() as connection:
        statuses: dict[str, int] = {
            status: count for status, count in (await connection.execute(by_status)).all()
        }
        processed, accepted, rejected = (await connection.execute(rows)).one()
        sent = (await connection.execute(notifications)).all()
    by_channel = {(channel, status): count for channel, status, count in sent}
    return ServiceSnapshot(
        group_orders={status: int(statuses.get(status.value, 0)) for status in GroupOrderStatus},
        rows_processed=int(processed),
        rows_accepted=int(accepted),
        rows_rejected=int(rejected),
        notifications={
            (channel, status): int(by_channel.get((channel, status.value), 0))
            for channel in CHANNELS
            for status in NotificationStatus
        },
    )
