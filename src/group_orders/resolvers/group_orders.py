"""Thin resolvers: arguments -> auth -> service -> type."""

from __future__ import annotations

from collections.abc import Iterable

from strawberry.types import Info

from group_orders.auth.access import check_token_application
from group_orders.enums import ApplicationSlug, GroupOrderView, SessionView
from group_orders.schema.context import RequestContext
from group_orders.schema.selection import (
    check_view_fields,
    check_view_role,
    selected_field_names,
)
from group_orders.schema.types import GroupOrderType, SessionType, resolve_session_in_view
from group_orders.services.group_orders import get_group_order
from group_orders.views import GROUP_ORDER_VIEWS


async def group_order(
    info: Info[RequestContext, None],
    id: str,
    view: GroupOrderView,
    application: ApplicationSlug | None,
) -> GroupOrderType:
    return await group_order_in_view(
        info.context, id, view, application, selected_field_names(info)
    )


async def group_order_in_view(
    context: RequestContext,
    id: str,
    view: GroupOrderView,
    application: ApplicationSlug | None,
    selected: Iterable[str],
    *,
    batched: bool = True,
) -> GroupOrderType:
    """The group order ``id`` through ``application``, if the field names ``selected``
    below the field lie within ``view``. The HTTP endpoint's cached plans call this too.

    ``batched=False`` reads the group order at once rather than through the operation's
    loader (which waits for the other fields of the operation to read theirs together).
    """
    access = await context.access(application)
    check_view_role(GROUP_ORDER_VIEWS[view], access.role)
    check_view_fields(GROUP_ORDER_VIEWS[view], selected)
    record = await get_group_order(
        context.reader or context.engine,
        id,
        access,
        load=context.loaders.group_orders.load if batched else None,
    )
    return GroupOrderType.from_record(record, access, context)


async def session(
    info: Info[RequestContext, None],
    view: SessionView,
    application: ApplicationSlug | None,
) -> SessionType | None:
    context = info.context
    identity = context.require_identity()
    if identity.is_application_token:
        check_token_application(identity, application)
        return None
    access = await context.access(application)
    return resolve_session_in_view(info, view, access.role)
