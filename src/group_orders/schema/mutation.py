"""Mutations: upload a file as a group order, cancel it, retry it, resend its email, and
turn the requester's emails on or off."""

from __future__ import annotations

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from group_orders.enums import ApplicationSlug, GroupOrderView
from group_orders.resolvers import notifications as notification_resolvers
from group_orders.resolvers import uploads as upload_resolvers
from group_orders.schema.context import RequestContext
from group_orders.schema.types import CreateGroupOrderPayload, GroupOrderType


@strawberry.type
class Mutation:
    @strawberry.mutation(
        description="Upload a CSV file of orders as a new group order (GraphQL multipart "
        "request). A client uploads for itself; a liaison or an employee names clientId. "
        "The same idempotencyKey from the same caller answers the same group order. "
        "dryRun validates and reports without storing anything."
    )
    async def create_group_order(
        self,
        info: Info[RequestContext, None],
        file: Upload,
        application: ApplicationSlug | None = None,
        client_id: strawberry.ID | None = None,
        idempotency_key: str | None = None,
        dry_run: bool = False,
    ) -> CreateGroupOrderPayload | None:
        return await upload_resolvers.create_group_order(
            info,
            file,  # type: ignore[arg-type]  # the request's file: a Starlette UploadFile
            application,
            client_id,
            idempotency_key,
            dry_run,
        )

    @strawberry.mutation(description="Cancel a pending or processing group order.")
    async def cancel_group_order(
        self,
        info: Info[RequestContext, None],
        id: strawberry.ID,
        view: GroupOrderView = GroupOrderView.default,
        application: ApplicationSlug | None = None,
    ) -> GroupOrderType | None:
        return await upload_resolvers.cancel(info, id, view, application)

    @strawberry.mutation(description="Run a failed group order again from the start.")
    async def retry_group_order(
        self,
        info: Info[RequestContext, None],
        id: strawberry.ID,
        view: GroupOrderView = GroupOrderView.default,
        application: ApplicationSlug | None = None,
    ) -> GroupOrderType | None:
        return await upload_resolvers.retry(info, id, view, application)

    @strawberry.mutation(
        description="Email a completed or failed group order's outcome to its uploader "
        "again, now (employees only). A provider that refuses or times out answers "
        "mandrill-email-failed; the failure is recorded on the group order's notification."
    )
    async def resend_group_order_email(
        self,
        info: Info[RequestContext, None],
        id: strawberry.ID,
        view: GroupOrderView = GroupOrderView.planoworker_processing_view,
        application: ApplicationSlug | None = None,
    ) -> GroupOrderType | None:
        return await notification_resolvers.resend_group_order_email(info, id, view, application)

    @strawberry.mutation(
        description="Whether the requester is emailed when a group order they uploaded "
        "completes or fails (on by default). Answers the new setting."
    )
    async def set_email_notifications(
        self, info: Info[RequestContext, None], enabled: bool
    ) -> bool | None:
        return await notification_resolvers.set_email_notifications_of_requester(info, enabled)
