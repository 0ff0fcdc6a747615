"""The subscription's resolver: the same checks as ``groupOrder``, then its updates."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from datetime import UTC, datetime

from strawberry.types import Info

from group_orders.auth.access import Access
from group_orders.enums import ApplicationSlug, GroupOrderView
from group_orders.errors import ApiError
from group_orders.schema.context import RequestContext
from group_orders.schema.selection import check_view
from group_orders.schema.types import GroupOrderType
from group_orders.services.events import EventBus
from group_orders.services.group_orders import get_group_order
from group_orders.services.watch import watch_group_order
from group_orders.views import GROUP_ORDER_VIEWS


async def group_order_updated(
    info: Info[RequestContext, None],
    id: str,
    view: GroupOrderView,
    application: ApplicationSlug | None,
) -> AsyncGenerator[GroupOrderType, None]:
    """Checked before anything is sent: the role, the view, and the id (an id outside
    the caller's scope is refused exactly as an unknown one)."""
    context = info.context
    if context.events is None:
        raise ApiError(
            "invalid-param",
            "Subscriptions are served over WebSocket (graphql-transport-ws) on /graphql.",
            param="query",
        )
    access = await context.access(application)
    check_view(info, GROUP_ORDER_VIEWS[view], access.role)
    await get_group_order(context.engine, id, access)
    return _updates(context, context.events, id, access)


async def _updates(
    context: RequestContext, events: EventBus, id: str, access: Access
) -> AsyncGenerator[GroupOrderType, None]:
    updates = watch_group_order(
        context.engine,
        events,
        id,
        access,
        refresh_seconds=context.settings.subscription_refresh_seconds,
    )
    async for record in updates:
        context.renew(datetime.now(UTC))
        yield GroupOrderType.from_record(record, access, context)
