"""The schema's roots. Each root field is a route (see ``services/routes.py``)."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from group_orders.enums import ApplicationSlug, GroupOrderView, SessionView
from group_orders.resolvers import group_orders as group_order_resolvers
from group_orders.resolvers import listing as listing_resolvers
from group_orders.schema.context import RequestContext
from group_orders.schema.mutation import Mutation
from group_orders.schema.subscription import Subscription
from group_orders.schema.types import (
    GroupOrderConnection,
    GroupOrderFilter,
    GroupOrderStatsType,
    GroupOrderType,
    SessionType,
)
from group_orders.services.listing import GroupOrderOrder


@strawberry.type
class Query:
    @strawberry.field(
        description="One group order, in a view. An id outside the caller's scope is "
        "answered as an unknown id."
    )
    async def group_order(
        self,
        info: Info[RequestContext, None],
        id: strawberry.ID,
        view: GroupOrderView = GroupOrderView.default,
        application: ApplicationSlug | None = None,
    ) -> GroupOrderType | None:
        return await group_order_resolvers.group_order(info, id, view, application)

    @strawberry.field(
        description="Group orders in the caller's scope, newest first unless orderBy says "
        "otherwise: a connection with stable cursors, at most 100 a page."
    )
    async def group_orders(
        self,
        info: Info[RequestContext, None],
        first: int = 20,
        after: str | None = None,
        filter: GroupOrderFilter | None = None,
        order_by: GroupOrderOrder = GroupOrderOrder.newest_first,
        view: GroupOrderView = GroupOrderView.default,
        application: ApplicationSlug | None = None,
    ) -> GroupOrderConnection | None:
        return await listing_resolvers.group_orders(
            info, first, after, filter, order_by, view, application
        )

    @strawberry.field(
        description="Counts over the group orders in the caller's scope that match the filter."
    )
    async def group_order_stats(
        self,
        info: Info[RequestContext, None],
        filter: GroupOrderFilter | None = None,
        top_rejection_codes: int = 10,
        application: ApplicationSlug | None = None,
    ) -> GroupOrderStatsType | None:
        return await listing_resolvers.group_order_stats(
            info, filter, top_rejection_codes, application
        )

    @strawberry.field(description="The requester's session; null for application tokens.")
    async def session(
        self,
        info: Info[RequestContext, None],
        view: SessionView = SessionView.default,
        application: ApplicationSlug | None = None,
    ) -> SessionType | None:
        return await group_order_resolvers.session(info, view, application)


def build_schema() -> strawberry.Schema:
    return strawberry.Schema(query=Query, mutation=Mutation, subscription=Subscription)
