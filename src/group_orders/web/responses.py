"""JSON responses in the media type the client asked for, and error bodies."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from group_orders.errors import ApiError

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


def _accepted(accept: str) -> list[tuple[float, int, str]]:
    ranked: list[tuple[float, int, str]] = []
    for position, part in enumerate(accept.split(",")):
        media, *params = (piece.strip() for piece in part.split(";"))
        quality = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip() == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        ranked.append((quality, -position, media.lower()))
    return sorted(ranked, reverse=True)


def response_media_type(request: Request) -> str:
    """``application/graphql-response+json`` when the client prefers it, else JSON.

    Per the GraphQL-over-HTTP spec a request without ``Accept`` is answered as JSON.
    """
    accept = request.headers.get("accept")
    if not accept:
        return JSON
    for quality, _position, media in _accepted(accept):
        if quality <= 0:
            continue
        if media == GRAPHQL_RESPONSE_JSON:
            return GRAPHQL_RESPONSE_JSON
        if media in (JSON, "application/*", "*/*"):
            return JSON
    return JSON


def json_response(
    body: Any, *, status: int = 200, media_type: str = JSON, headers: dict[str, str] | None = None
) -> Response:
    return Response(
        orjson.dumps(body),
        status_code=status,
        media_type=media_type,
        headers=headers,
    )


def api_error_response(
    error: ApiError,
    *,
    media_type: str = JSON,
    status: int | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """A failure decided before the document is read: the table's HTTP status."""
    body = {"errors": [{"message": error.message, "extensions": error.extensions()}]}
    return json_response(
        body,
        status=status if status is not None else error.http_status,
        media_type=media_type,
        headers=headers,
    )
