"""The schema's subscription root, served over WebSocket (see ``web/subscriptions.py``)."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.types import Info

from group_orders.enums import ApplicationSlug, GroupOrderView
from group_orders.resolvers import subscriptions as subscription_resolvers
from group_orders.schema.context import RequestContext
from group_orders.schema.types import GroupOrderType


@strawberry.type
class Subscription:
    @strawberry.subscription(
        description="One group order, in a view: its state now, then each change of its "
        "status and progress, ending with its final state once it is completed, failed or "
        "cancelled. An id outside the caller's scope is answered as an unknown id."
    )
    async def group_order_updated(
        self,
        info: Info[RequestContext, None],
        id: strawberry.ID,
        view: GroupOrderView = GroupOrderView.default,
        application: ApplicationSlug | None = None,
    ) -> AsyncGenerator[GroupOrderType, None]:
        return await subscription_resolvers.group_order_updated(info, id, view, application)
