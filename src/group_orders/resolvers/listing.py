"""Thin resolvers of the reporting lists: arguments -> auth -> service -> type."""

from __future__ import annotations

import uuid
from datetime import datetime

from strawberry.types import Info

from group_orders.enums import ApplicationSlug, GroupOrderView
from group_orders.errors import ApiError
from group_orders.schema.context import RequestContext
from group_orders.schema.selection import check_view, selected_field_names
from group_orders.schema.types import (
    GroupOrderConnection,
    GroupOrderEdge,
    GroupOrderFilter,
    GroupOrderStatsType,
    GroupOrderType,
    PageInfo,
)
from group_orders.services import stats as stats_service
from group_orders.services.group_orders import parse_id
from group_orders.services.listing import GroupOrderOrder, GroupOrderQuery, list_group_orders
from group_orders.views import GROUP_ORDER_VIEWS


def _aware(value: datetime | None, param: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ApiError(
            "invalid-param",
            f"'{param}' needs a time zone, for example 2026-12-01T00:00:00Z.",
            param=f"filter.{param}",
        )
    return value


def to_query(filter: GroupOrderFilter | None, order: GroupOrderOrder) -> GroupOrderQuery:
    if filter is None:
        return GroupOrderQuery(order=order)
    client_ids: tuple[uuid.UUID, ...] = tuple(
        parse_id(str(raw), param="filter.clientId") for raw in filter.client_id or ()
    )
    return GroupOrderQuery(
        statuses=tuple(filter.status or ()),
        outcomes=tuple(filter.outcome or ()),
        client_ids=client_ids,
        created_after=_aware(filter.created_after, "createdAfter"),
        created_before=_aware(filter.created_before, "createdBefore"),
        uploaded_by=(
            parse_id(str(filter.uploaded_by), param="filter.uploadedBy")
            if filter.uploaded_by is not None
            else None
        ),
        order=order,
    )


async def group_orders(
    info: Info[RequestContext, None],
    first: int,
    after: str | None,
    filter: GroupOrderFilter | None,
    order_by: GroupOrderOrder,
    view: GroupOrderView,
    application: ApplicationSlug | None,
) -> GroupOrderConnection:
    context = info.context
    access = await context.access(application)
    check_view(info, GROUP_ORDER_VIEWS[view], access.role, path=("edges", "node"))
    page = await list_group_orders(
        context.engine,
        access,
        to_query(filter, order_by),
        first=first,
        after=after,
        # Counting every match costs a statement a tool may not want.
        count="totalCount" in selected_field_names(info),
    )
    edges = [
        GroupOrderEdge(cursor=cursor, node=GroupOrderType.from_record(record, access, context))
        for record, cursor in zip(page.records, page.cursors, strict=True)
    ]
    return GroupOrderConnection(
        edges=edges,
        page_info=PageInfo(
            has_next_page=page.has_next_page,
            end_cursor=page.cursors[-1] if page.cursors else None,
        ),
        total_count=page.total_count,
    )


MAX_TOP_CODES = 50


async def group_order_stats(
    info: Info[RequestContext, None],
    filter: GroupOrderFilter | None,
    top_rejection_codes: int,
    application: ApplicationSlug | None,
) -> GroupOrderStatsType:
    if not 0 <= top_rejection_codes <= MAX_TOP_CODES:
        raise ApiError(
            "invalid-param",
            f"'topRejectionCodes' must be between 0 and {MAX_TOP_CODES}.",
            param="topRejectionCodes",
        )
    context = info.context
    access = await context.access(application)
    stats = await stats_service.group_order_stats(
        context.engine,
        access,
        to_query(filter, GroupOrderOrder.newest_first),
        top_codes=top_rejection_codes,
    )
    return GroupOrderStatsType.from_stats(stats)
