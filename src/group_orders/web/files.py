"""``/files/...``: the result files behind signed links, streamed from storage."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse

from group_orders.errors import ApiError
from group_orders.services.files import MEDIA_TYPES, download_name, file_key
from group_orders.storage.base import Storage
from group_orders.storage.links import LinkSigner
from group_orders.storage.local import LocalStorage
from group_orders.web.responses import api_error_response


class FilesEndpoint:
    def __init__(self, engine: AsyncEngine, links: LinkSigner, storage: Storage) -> None:
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
            missing = ApiError(
                "invalid-param", "This group order has no such file (yet).", param="file"
            )
            if key is None:
                raise missing
            filename = download_name(group_order_id, file)
            if isinstance(self.storage, LocalStorage):
                # A local file is served as one: with its length, ranges and HEAD.
                if not self.storage.exists(key):
                    raise missing
                return FileResponse(
                    self.storage.path_of(key), media_type=MEDIA_TYPES[file], filename=filename
                )
            stored = await asyncio.to_thread(self.storage.open, key)
            if stored is None:
                raise missing
        except ApiError as error:
            return api_error_response(error)
        headers = {
            "Content-Length": str(stored.size),
            "Content-Disposition": f'attachment; filename="{filename}"',
        }
        if request.method == "HEAD":
            await asyncio.to_thread(stored.close)
            return Response(media_type=MEDIA_TYPES[file], headers=headers)
        # Streamed a chunk at a time (Starlette iterates a plain iterator in a thread);
        # the object is closed when the response ends.
        return StreamingResponse(
            stored.chunks,
            media_type=MEDIA_TYPES[file],
            headers=headers,
            background=BackgroundTask(stored.close),
        )
