"""``group-orders upload``: a small client of the API's multipart upload, with progress."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

CREATE = """
mutation Upload($file: Upload!, $clientId: ID, $application: Application,
                $idempotencyKey: String, $dryRun: Boolean) {
  createGroupOrder(file: $file, clientId: $clientId, application: $application,
                   idempotencyKey: $idempotencyKey, dryRun: $dryRun) {
    groupOrder { id status duplicateOf unknownColumns }
    dryRun { totalRows acceptedRows rejectedRows unknownColumns
             errors { sourceRow code field value message } }
  }
}
"""

FOLLOW = """
query Follow($id: ID!, $application: Application) {
  groupOrder(id: $id, application: $application, view: online_order_group_order_status) {
    status progress { processedRows totalRows } successfulOrders rejectedOrders outcome
    failureReason acceptedOrdersXlsx rejectedOrdersXlsx
  }
}
"""

FINAL = {"completed", "failed", "cancelled"}


class UploadClientError(Exception):
    """The upload could not be made or followed; the message says why."""


def _errors(body: dict[str, Any]) -> str:
    return "; ".join(
        f"{error['message']} ({error.get('extensions', {}).get('code')})"
        for error in body.get("errors", [])
    )


def _post(client: httpx.Client, url: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = client.post(url, **kwargs)
    except httpx.HTTPError as error:
        raise UploadClientError(f"could not reach {url}: {error}") from None
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        raise UploadClientError(f"{url} answered HTTP {response.status_code}") from None
    if body.get("errors") and not body.get("data"):
        raise UploadClientError(_errors(body))
    return body


def upload_and_follow(
    *,
    url: str,
    token: str,
    path: Path,
    client_id: str | None,
    application: str | None,
    idempotency_key: str | None,
    dry_run: bool,
    wait: bool,
    poll_seconds: float = 1.0,
) -> int:
    """Upload ``path``; follow the group order until it is done. Exit status: 0 when it
    completed (or the dry run ran), 1 when it failed or was cancelled."""
    if not path.is_file():
        raise UploadClientError(f"{path} is not a file")
    variables = {
        "file": None,
        "clientId": client_id,
        "application": application,
        "idempotencyKey": idempotency_key,
        "dryRun": dry_run,
    }
    headers = {"Authorization": f"Bearer {token}", "GraphQL-Require-Preflight": "1"}
    with httpx.Client(headers=headers, timeout=300) as client, path.open("rb") as handle:
        body = _post(
            client,
            url,
            data={
                "operations": orjson.dumps({"query": CREATE, "variables": variables}).decode(),
                "map": orjson.dumps({"0": ["variables.file"]}).decode(),
            },
            files={"0": (path.name, handle, "text/csv")},
        )
        if body.get("errors"):
            raise UploadClientError(_errors(body))
        payload = body["data"]["createGroupOrder"]
        if dry_run:
            report = payload["dryRun"]
            print(
                f"dry run: {report['totalRows']} rows, {report['acceptedRows']} would be "
                f"accepted, {report['rejectedRows']} rejected"
            )
            for error in report["errors"]:
                print(f"  row {error['sourceRow']}: {error['field']}: {error['message']}")
            return 0
        group_order = payload["groupOrder"]
        print(f"group order {group_order['id']} ({group_order['status']})")
        if group_order.get("duplicateOf"):
            print(f"  the same file was uploaded before as {group_order['duplicateOf']}")
        if group_order.get("unknownColumns"):
            print(f"  ignored columns: {', '.join(group_order['unknownColumns'])}")
        if not wait:
            return 0
        return _follow(client, url, group_order["id"], application, poll_seconds)


def _follow(
    client: httpx.Client, url: str, group_order_id: str, application: str | None, poll: float
) -> int:
    interactive = sys.stdout.isatty()
    last = ""
    while True:
        body = _post(
            client,
            url,
            json={"query": FOLLOW, "variables": {"id": group_order_id, "application": application}},
        )
        state = body["data"]["groupOrder"]
        progress = state["progress"]
        total = progress["totalRows"]
        done = progress["processedRows"]
        if total:
            line = f"{state['status']}: {done}/{total} rows ({100 * done // total}%)"
        else:
            line = state["status"]
        if line != last:
            print(("\r" if interactive else "") + line, end="" if interactive else "\n")
            last = line
        if state["status"] in FINAL:
            break
        time.sleep(poll)
    if interactive:
        print()
    if state["status"] != "completed":
        print(f"{state['status']}: {state.get('failureReason') or ''}".rstrip(": "))
        return 1
    print(
        f"{state['outcome']}: {state['successfulOrders']} accepted, "
        f"{state['rejectedOrders']} rejected"
    )
    print(f"accepted orders: {state['acceptedOrdersXlsx']}")
    print(f"rejected orders: {state['rejectedOrdersXlsx']}")
    return 0
