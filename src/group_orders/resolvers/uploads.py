"""Thin resolvers of the upload mutations: arguments -> auth -> service -> type."""

from __future__ import annotations

from strawberry.types import Info

from group_orders.enums import ApplicationSlug, GroupOrderView
from group_orders.schema.context import RequestContext
from group_orders.schema.selection import check_view
from group_orders.schema.types import (
    CreateGroupOrderPayload,
    DryRunReportType,
    DryRunRowErrorType,
    GroupOrderType,
)
from group_orders.services.group_orders import get_group_order
from group_orders.services.uploads import (
    Requester,
    UploadedFile,
    cancel_group_order,
    create_group_order_from_upload,
    retry_group_order,
)
from group_orders.views import GROUP_ORDER_VIEWS


async def create_group_order(
    info: Info[RequestContext, None],
    file: UploadedFile,
    application: ApplicationSlug | None,
    client_id: str | None,
    idempotency_key: str | None,
    dry_run: bool,
) -> CreateGroupOrderPayload:
    context = info.context
    identity = context.require_identity()
    access = await context.access(application)
    outcome = await create_group_order_from_upload(
        context.engine,
        context.storage,
        context.settings,
        access,
        Requester(identity.requester_key, identity.user.id if identity.user else None),
        file,
        raw_client_id=client_id,
        idempotency_key=idempotency_key,
        dry_run=dry_run,
    )
    if outcome.dry_run is not None:
        report = outcome.dry_run
        return CreateGroupOrderPayload(
            dry_run=DryRunReportType(
                total_rows=report.total_rows,
                accepted_rows=report.accepted_rows,
                rejected_rows=report.rejected_rows,
                unknown_columns=report.unknown_columns,
                errors=[
                    DryRunRowErrorType(
                        source_row=source_row,
                        code=error.code.value,
                        field=error.field,
                        value=error.value,
                        message=error.message,
                    )
                    for source_row, error in report.errors
                ],
            ),
            record=None,
            access=access,
        )
    context.wake_worker()
    record = await get_group_order(context.engine, str(outcome.group_order_id), access)
    return CreateGroupOrderPayload(dry_run=None, record=record, access=access)


async def _change(
    info: Info[RequestContext, None],
    raw_id: str,
    view: GroupOrderView,
    application: ApplicationSlug | None,
    *,
    retry: bool,
) -> GroupOrderType:
    context = info.context
    access = await context.access(application)
    check_view(info, GROUP_ORDER_VIEWS[view], access.role)
    record = await get_group_order(context.engine, raw_id, access)
    if retry:
        await retry_group_order(context.engine, record.id)
        context.wake_worker()
    else:
        await cancel_group_order(context.engine, record.id)
    if context.events is not None:
        await context.events.publish(record.id)
    updated = await get_group_order(context.engine, str(record.id), access)
    return GroupOrderType.from_record(updated, access, context)


async def cancel(
    info: Info[RequestContext, None],
    raw_id: str,
    view: GroupOrderView,
    application: ApplicationSlug | None,
) -> GroupOrderType:
    return await _change(info, raw_id, view, application, retry=False)


async def retry(
    info: Info[RequestContext, None],
    raw_id: str,
    view: GroupOrderView,
    application: ApplicationSlug | None,
) -> GroupOrderType:
    return await _change(info, raw_id, view, application, retry=True)
