"""GraphiQL for people exploring the API in a browser (development mode only).

The IDE's scripts and styles are served by the service itself from ``static/graphiql``
(pinned npm builds with their licences, rebuilt by ``scripts/build-graphiql.sh``), so
the page works where no CDN can be reached. A token field above it keeps the token in
the browser's localStorage and sends it as ``Authorization: Bearer`` with every request
(and in ``connection_init`` for subscriptions). Saved operations open as tabs: one per
view and role, a page of group orders, an upload and a batch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from importlib.resources import files
from string import Template

from starlette.staticfiles import StaticFiles

from group_orders.services.demo import demo_id

STATIC_PATH = "/graphiql/static"


def static_files() -> StaticFiles:
    """The IDE's assets, from the installed package."""
    return StaticFiles(directory=str(files("group_orders.web") / "static" / "graphiql"))


def _operation(
    title: str, query: str, variables: Mapping[str, object] | None = None
) -> dict[str, str]:
    tab = {"query": f"# {title}\n{query.strip()}\n"}
    if variables is not None:
        tab["variables"] = json.dumps(variables, indent=2)
    return tab


def saved_operations() -> list[dict[str, str]]:
    """The tabs GraphiQL opens with (until the browser has tabs of its own). The ids are
    those of the demo data (``group-orders serve --demo``)."""
    acme = {"id": str(demo_id("acme-completed"))}
    borealis = {"id": str(demo_id("borealis-completed"))}
    return [
        _operation(
            "A client (CLIENT token), default view: every field but worker detail",
            """
query ClientDefault($id: ID!) {
  groupOrder(id: $id, view: default) {
    id status totalOrders successfulOrders rejectedOrders
    progress { processedRows totalRows }
    normalizedCsv acceptedOrdersXlsx rejectedOrdersXlsx linksExpireAt
    session(view: minimal) { userId expiresAt }
  }
}""",
            acme,
        ),
        _operation(
            "A client, view inital_upload: what an upload screen shows",
            """
query InitialUpload($id: ID!) {
  groupOrder(id: $id, view: inital_upload) {
    id status totalOrders sourceFileName normalizedCsv unknownColumns
  }
}""",
            acme,
        ),
        _operation(
            "A client, view online_order_group_order_status: counts and result files",
            """
query OrderStatus($id: ID!) {
  groupOrder(id: $id, view: online_order_group_order_status) {
    id status totalOrders successfulOrders rejectedOrders
    acceptedOrdersXlsx rejectedOrdersXlsx
  }
}""",
            acme,
        ),
        _operation(
            "An employee (EMPLOYEE token) through planox2, view planoworker_processing_view",
            """
query WorkerView($id: ID!) {
  groupOrder(id: $id, view: planoworker_processing_view, application: planox2) {
    id status queueJobId attempts workerId startedAt finishedAt
    session { role application employee { id } }
  }
}""",
            borealis,
        ),
        _operation(
            "A liaison (LIAISON token): its clients, and one of their group orders",
            """
query Liaison($id: ID!) {
  session { role liaison { clients { id name } } }
  groupOrder(id: $id) { id status client { name } }
}""",
            borealis,
        ),
        _operation(
            "A reporting tool (REPORTING token): counts over every group order it may see",
            """
query Report {
  groupOrderStats(topRejectionCodes: 5) {
    groupOrders acceptedRows rejectedRows
    byStatus { status count }
    topRejectionCodes { code rows }
  }
}""",
        ),
        _operation(
            "A page of group orders; pass pageInfo.endCursor as $after for the next page",
            """
query Page($after: String) {
  groupOrders(first: 5, after: $after, filter: { status: [completed, failed] }) {
    totalCount
    pageInfo { hasNextPage endCursor }
    edges { node { id status totalOrders createdAt sourceFileName } }
  }
}""",
            {"after": None},
        ),
        _operation(
            "An upload. GraphiQL cannot attach a file: send this operation as a GraphQL\n"
            "# multipart request, e.g. with the CLI (group-orders upload orders.csv --token T)\n"
            "# or with curl:\n"
            "#   curl http://127.0.0.1:8000/graphql -H 'Authorization: Bearer T' \\\n"
            "#     -H 'GraphQL-Require-Preflight: 1' \\\n"
            '#     -F operations=\'{"query": "<this document>", '
            '"variables": {"file": null, "dryRun": true}}\' \\\n'
            '#     -F map=\'{"0": ["variables.file"]}\' -F 0=@orders.csv',
            """
mutation Upload($file: Upload!, $dryRun: Boolean) {
  createGroupOrder(file: $file, dryRun: $dryRun) {
    groupOrder { id status sourceFileName }
    dryRun { totalRows acceptedRows rejectedRows errors { sourceRow code field message } }
  }
}""",
        ),
        _operation(
            "A batch: several operations in one HTTP request, as a JSON array (up to 20).\n"
            "# GraphiQL runs one operation at a time; pick one with the run button, or\n"
            "# send them together:\n"
            "#   curl http://127.0.0.1:8000/graphql -H 'Authorization: Bearer T' \\\n"
            "#     -H 'Content-Type: application/json' \\\n"
            '#     -d \'[{"query": "query($id: ID!) { groupOrder(id: $id) { status } }",\n'
            f'#          "variables": {{"id": "{acme["id"]}"}}}},\n'
            '#         {"query": "{ session { userId } }"}]\'',
            """
query BatchGroupOrder($id: ID!) { groupOrder(id: $id) { id status totalOrders } }

query BatchSession { session(view: minimal) { userId expiresAt } }""",
            acme,
        ),
    ]


@cache
def graphiql_html() -> str:
    template = Template(
        (files("group_orders.web") / "templates" / "graphiql.html").read_text("utf-8")
    )
    operations = json.dumps(saved_operations()).replace("</", "<\\/")
    return template.substitute(static=STATIC_PATH, saved_operations=operations)
