"""``/group-orders/{id}``: a group order's page, for people.

The page shows the status with live progress, the counts with a bar of accepted against
rejected rows, the rejection codes that occur most, and the three result files. It is
server-rendered HTML with a little JavaScript, which reads ``/group-orders/{id}/summary``
while the group order is open: whenever the ``groupOrderUpdated`` subscription tells of
a change (with a token), or every 2 seconds (through a signed link).

Who may read it, under the API's own rules:

* a bearer token (the page asks for one and keeps it in the browser, as GraphiQL does):
  the same authentication, rate limit, role and scope as ``groupOrder``, and the same
  route switch; an unknown id and one outside the caller's scope are answered alike;
* a signed page link (``?expires=…&signature=…``, as in the outcome emails): that one
  group order, until the link expires.

Without either, the page is the same for every id: it reveals nothing.
"""

from __future__ import annotations

import html
import json
import time
import uuid
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from string import Template
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from group_orders.auth.access import resolve_access
from group_orders.auth.tokens import bearer_token
from group_orders.errors import ApiError
from group_orders.services.group_orders import (
    GroupOrderRecord,
    get_group_order,
    group_order_rows,
    parse_id,
    record_from_row,
)
from group_orders.services.page_links import PageLinkSigner
from group_orders.services.summary import top_rejection_codes
from group_orders.storage.links import ResultFile
from group_orders.web.graphql_endpoint import GraphQLService
from group_orders.web.responses import api_error_response, json_response

TOP_CODES = 5
OPEN_STATUSES = ("pending", "processing")

_FILES = (
    ("normalizedCsv", ResultFile.normalized_csv, "normalized_csv", "Normalized CSV"),
    (
        "acceptedOrdersXlsx",
        ResultFile.accepted_orders_xlsx,
        "accepted_orders_xlsx",
        "Accepted orders (XLSX)",
    ),
    (
        "rejectedOrdersXlsx",
        ResultFile.rejected_orders_xlsx,
        "rejected_orders_xlsx",
        "Rejected orders (XLSX)",
    ),
)

_STATUS_TEXT = {
    "pending": "Waiting to be processed",
    "processing": "Processing",
    "completed": "Completed",
    "failed": "Failed",
    "cancelled": "Cancelled",
}


@cache
def _template() -> Template:
    source = files("group_orders.web") / "templates" / "group_order.html"
    return Template(source.read_text("utf-8"))


class GroupOrderPage:
    def __init__(self, service: GraphQLService, pages: PageLinkSigner) -> None:
        self.service = service
        self.pages = pages

    async def page(self, request: Request) -> Response:
        try:
            group_order_id = parse_id(request.path_params["group_order_id"])
        except ApiError as error:
            return self._error_page(error)
        signed = "signature" in request.query_params
        summary: dict[str, Any] | None = None
        if signed:
            try:
                summary = await self._signed_summary(request, group_order_id)
            except ApiError as error:
                return self._error_page(error)
        query = f"?{request.url.query}" if signed else ""
        config = {
            "id": str(group_order_id),
            "summaryUrl": f"/group-orders/{group_order_id}/summary{query}",
            "signed": signed,
            "summary": summary,
            "statusText": _STATUS_TEXT,
        }
        return HTMLResponse(
            _template().substitute(
                id=html.escape(str(group_order_id)),
                body=_render(summary),
                config=json.dumps(config).replace("</", "<\\/"),
            ),
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )

    async def summary(self, request: Request) -> Response:
        try:
            group_order_id = parse_id(request.path_params["group_order_id"])
            if "signature" in request.query_params:
                body = await self._signed_summary(request, group_order_id)
            else:
                body = await self._token_summary(request, group_order_id)
        except ApiError as error:
            headers = {"Cache-Control": "no-store"}
            if "retryAfter" in error.extra:
                headers["Retry-After"] = str(error.extra["retryAfter"])
            return api_error_response(error, headers=headers)
        return json_response(body, headers={"Cache-Control": "no-store"})

    async def _signed_summary(self, request: Request, group_order_id: uuid.UUID) -> dict[str, Any]:
        now = datetime.now(UTC)
        self.pages.verify(
            group_order_id,
            request.query_params.get("expires"),
            request.query_params.get("signature"),
            now,
        )
        await self.service.routes.check(["groupOrder"])
        row = (await group_order_rows(self.service.engine, [group_order_id])).get(group_order_id)
        if row is None:
            raise ApiError("invalid-param", "No group order has this id.", param="id")
        return await self._summary_of(request, record_from_row(row), now)

    async def _token_summary(self, request: Request, group_order_id: uuid.UUID) -> dict[str, Any]:
        service = self.service
        now = datetime.now(UTC)
        token = bearer_token(request.headers.get("authorization"))
        address = request.client.host if request.client else "unknown"
        clock = time.monotonic()
        if token is not None:
            wait = service.failures.retry_after(address, clock)
            if wait is not None:
                raise ApiError(
                    "rate-limited",
                    f"Too many failed authentications from this address. Retry after "
                    f"{wait} seconds.",
                    param="token",
                    extra={"retryAfter": wait},
                )
        try:
            identity = await service.authenticator.authenticate(token, now=now)
        except ApiError as error:
            if error.code == "invalid-token":
                service.failures.record(address, clock, 1)
            raise
        await service.routes.check(["groupOrder"])
        access = await resolve_access(service.engine, identity, None)
        record = await get_group_order(service.engine, str(group_order_id), access)
        return await self._summary_of(request, record, now)

    async def _summary_of(
        self, request: Request, record: GroupOrderRecord, now: datetime
    ) -> dict[str, Any]:
        settings = self.service.settings
        base_url = settings.public_base_url or str(request.base_url)
        links = self.service.links
        codes = await top_rejection_codes(self.service.engine, record.id, top=TOP_CODES)
        file_links = {
            name: links.sign(base_url, record.id, file, now) if getattr(record, column) else None
            for name, file, column, _label in _FILES
        }
        return {
            "id": str(record.id),
            "status": record.status.value,
            "sourceFileName": record.source_name,
            "totalOrders": record.total_orders,
            "successfulOrders": record.successful_orders,
            "rejectedOrders": record.rejected_orders,
            "progress": {"processedRows": record.processed_rows, "totalRows": record.total_orders},
            "failureReason": record.failure_reason,
            "topRejectionCodes": [{"code": code, "rows": rows} for code, rows in codes],
            "files": file_links,
            "linksExpireAt": (
                (now + links.lifetime).isoformat() if any(file_links.values()) else None
            ),
            "updatedAt": record.updated_at.isoformat(),
        }

    def _error_page(self, error: ApiError) -> Response:
        message = html.escape(error.message)
        body = (
            '<section class="card" aria-labelledby="problem"><h2 id="problem">This page cannot '
            f'be shown</h2><p role="alert">{message}</p><p class="muted">Code: '
            f"{html.escape(error.code)}</p></section>"
        )
        return HTMLResponse(
            _template().substitute(id="", body=body, config="null"),
            status_code=error.http_status,
            headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
        )


def _rows(count: int) -> str:
    return f"{count} row" if count == 1 else f"{count} rows"


def _percent(part: int, whole: int) -> str:
    return f"{(100 * part / whole):.1f}" if whole else "0"


def _render(summary: dict[str, Any] | None) -> str:
    """The page's sections, filled from ``summary`` (or empty, for the script to fill)."""
    data = summary or {}
    status = str(data.get("status", ""))
    total = int(data.get("totalOrders", 0))
    accepted = int(data.get("successfulOrders", 0))
    rejected = int(data.get("rejectedOrders", 0))
    progress = data.get("progress") or {"processedRows": 0, "totalRows": 0}
    processed = int(progress["processedRows"])
    rows_total = int(progress["totalRows"])
    is_open = status in OPEN_STATUSES or not status
    failure = data.get("failureReason")
    codes = data.get("topRejectionCodes") or []
    file_links = data.get("files") or {}
    escape = html.escape
    code_items = "".join(
        f"<li><code>{escape(item['code'])}</code> <span>{_rows(item['rows'])}</span></li>"
        for item in codes
    )
    buttons = "".join(
        (
            f'<a class="button" id="download-{name}" data-file="{name}" '
            f'href="{escape(file_links[name])}" download>{label}</a>'
            if file_links.get(name)
            else f'<a class="button" id="download-{name}" data-file="{name}" '
            f'aria-disabled="true">{label}</a>'
        )
        for name, _file, _column, label in _FILES
    )
    file_name = escape(str(data.get("sourceFileName") or ""))
    accepted_width = _percent(accepted, accepted + rejected)
    rejected_width = _percent(rejected, accepted + rejected)
    return f"""
<section class="card" aria-labelledby="status-heading">
  <h2 id="status-heading">Status</h2>
  <p id="file-name" class="muted">{file_name}</p>
  <p><span id="status" class="badge status-{escape(status)}" role="status"
    aria-live="polite">{escape(_STATUS_TEXT.get(status, "Loading…"))}</span></p>
  <div id="progress-box"{"" if is_open else " hidden"}>
    <label for="progress">Rows processed</label>
    <progress id="progress" max="{max(rows_total, 1)}" value="{processed}"></progress>
    <span id="progress-text">{processed} of {rows_total or "?"} rows</span>
  </div>
  <p id="failure" class="failure"{"" if failure else " hidden"}>{escape(str(failure or ""))}</p>
</section>
<section class="card" aria-labelledby="counts-heading">
  <h2 id="counts-heading">Orders</h2>
  <dl class="counts">
    <div><dt>In the file</dt><dd id="total">{total}</dd></div>
    <div><dt>Accepted</dt><dd id="accepted">{accepted}</dd></div>
    <div><dt>Rejected</dt><dd id="rejected">{rejected}</dd></div>
  </dl>
  <div id="bar" class="bar" role="img"
    aria-label="{accepted} accepted, {rejected} rejected">
    <span id="bar-accepted" class="accepted" style="width:{accepted_width}%"></span>
    <span id="bar-rejected" class="rejected" style="width:{rejected_width}%"></span>
  </div>
  <p class="legend"><span class="key accepted"></span> accepted
    <span class="key rejected"></span> rejected</p>
</section>
<section class="card" aria-labelledby="codes-heading">
  <h2 id="codes-heading">Why rows were rejected</h2>
  <ol id="codes">{code_items}</ol>
  <p id="no-codes" class="muted"{" hidden" if codes else ""}>No rejection codes to show.</p>
</section>
<section class="card" aria-labelledby="files-heading">
  <h2 id="files-heading">Downloads</h2>
  <p class="buttons">{buttons}</p>
  <p class="muted">Links are made when you open or refresh this page.</p>
</section>"""
