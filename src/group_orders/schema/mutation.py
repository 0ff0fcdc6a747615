"""Mutations: upload a file as a group order, cancel it, retry it."""

from __future__ import annotations

import strawberry
from strawberry.file_uploads import Upload
from strawberry.types import Info

from group_orders.enums import ApplicationSlug, GroupOrderView
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
