"""``/files/...``: the result files behind signed links."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import Request
from starlette.responses import FileResponse, Response

from group_orders.errors import ApiError
from group_orders.services.files import file_key
from group_orders.storage.links import LinkSigner, ResultFile
from group_orders.storage.local import LocalStorage
from group_orders.web.responses import api_error_response

_MEDIA_TYPES = {
    ResultFile.normalized_csv: "text/csv; charset=utf-8",
    ResultFile.accepted_orders_xlsx: (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
    ResultFile.rejected_orders_xlsx: (
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ),
}


class FilesEndpoint:
    def __init__(self, engine: AsyncEngine, links: LinkSigner, storage: LocalStorage) -> None:
        self.engine = engine
        self.links = links
        self.storage = storage

    async def handle(self, request: Request) -> Response:
        try:
            group_order_id, file = self.links.verify(
                request.path_params["group_order_id"],
                request.path_params["file"],
                request.query_params.get("expires"),
                request.query_params.get("signature"),
                datetime.now(UTC),
            )
            key = await file_key(self.engine, group_order_id, file)
            if key is None or not self.storage.exists(key):
                raise ApiError(
                    "invalid-param", "This group order has no such file (yet).", param="file"
                )
        except ApiError as error:
            return api_error_response(error)
        return FileResponse(
            self.storage.path_of(key),
            media_type=_MEDIA_TYPES[file],
            filename=f"group-order-{group_order_id}-{file.value}",
        )
