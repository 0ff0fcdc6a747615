"""Thin resolvers of the notification mutations: arguments -> auth -> service -> type."""

from __future__ import annotations

from strawberry.types import Info

from group_orders.enums import ApplicationSlug, GroupOrderView, Role
from group_orders.errors import ApiError
from group_orders.schema.context import RequestContext
from group_orders.schema.selection import check_view
from group_orders.schema.types import GroupOrderType
from group_orders.services.accounts import set_email_notifications
from group_orders.services.group_orders import get_group_order
from group_orders.services.notifications import resend_email
from group_orders.views import GROUP_ORDER_VIEWS


async def resend_group_order_email(
    info: Info[RequestContext, None],
    raw_id: str,
    view: GroupOrderView,
    application: ApplicationSlug | None,
) -> GroupOrderType:
    context = info.context
    access = await context.access(application)
    if access.role is not Role.employee:
        raise ApiError(
            "invalid-param",
            "Only employees may resend a group order's email (through planox2).",
            param="application",
        )
    check_view(info, GROUP_ORDER_VIEWS[view], access.role)
    record = await get_group_order(context.engine, raw_id, access)
    await resend_email(context.engine, context.settings, record.id)
    updated = await get_group_order(context.engine, str(record.id), access)
    return GroupOrderType.from_record(updated, access, context)


async def set_email_notifications_of_requester(
    info: Info[RequestContext, None], enabled: bool
) -> bool:
    context = info.context
    identity = context.require_identity()
    if identity.user is None:
        raise ApiError(
            "invalid-param",
            "An application token has no user whose emails could be turned on or off.",
            param="token",
        )
    await set_email_notifications(context.engine, identity.user.id, enabled)
    return enabled
