"""``/metrics``: Prometheus text with the counts of requests, group orders and rows."""

from __future__ import annotations

import httpx
from prometheus_client.parser import text_string_to_metric_families

from conftest import GraphQL
from group_orders.services.demo import DemoData
from group_orders.worker.runner import Runner
from uploading import csv_bytes, good_row, upload

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_count_requests_by_operation_and_code_and_the_work_done(
    client: httpx.AsyncClient, graphql: GraphQL, demo: DemoData, jobs: Runner
) -> None:
    # given
    before = await scrape(client)
    token = demo.tokens["client"]
    query = "query($id: ID!) { groupOrder(id: $id) { status } }"

    # when: two good reads, one with an unknown id, one with a bad token, an upload of a
    # file with one good and one bad row, and its processing
    for _ in range(2):
        await graphql.post(query, {"id": demo.group_orders["acme-completed"]}, token=token)
    await graphql.post(query, {"id": "00000000-0000-0000-0000-000000000000"}, token=token)
    await graphql.post("{ session { userId } }", token="gos_" + "x" * 43)
    uploaded = await upload(
        client, token, csv_bytes([good_row(1), good_row(2, email="not-an-email")])
    )
    assert "errors" not in uploaded.json(), uploaded.json()
    after_upload = await scrape(client)
    await jobs.run_until_idle()
    after = await scrape(client)

    # then: requests by operation and code, and their latency
    def grew(name: str, samples: Samples = after, **labels: str) -> float:
        return value(samples, name, **labels) - value(before, name, **labels)

    assert (
        grew(
            "group_orders_graphql_requests_total", operation="groupOrder", code="action-successful"
        )
        == 2
    )
    assert (
        grew("group_orders_graphql_requests_total", operation="groupOrder", code="invalid-param")
        == 1
    )
    assert grew("group_orders_graphql_requests_total", operation="none", code="invalid-token") == 1
    assert (
        grew(
            "group_orders_graphql_requests_total",
            operation="createGroupOrder",
            code="action-successful",
        )
        == 1
    )
    assert grew("group_orders_graphql_request_duration_seconds_count", operation="groupOrder") == 3
    assert grew("group_orders_http_requests_total", route="/graphql", status="200") == 4
    assert grew("group_orders_http_requests_total", route="/graphql", status="401") == 1
    assert grew("group_orders_http_request_duration_seconds_count", route="/graphql") == 5
    # the scrapes themselves count too
    assert grew("group_orders_http_requests_total", route="/metrics", status="200") == 2

    # then: the upload waits in the queue, then its rows are counted
    assert grew("group_orders_queue_depth", after_upload) == 1
    assert grew("group_orders_group_orders", after_upload, status="pending") == 1
    assert grew("group_orders_queue_depth") == 0
    assert grew("group_orders_group_orders", status="completed") == 1
    assert grew("group_orders_rows_processed_total", outcome="any") == 2
    assert grew("group_orders_rows_processed_total", outcome="accepted") == 1
    assert grew("group_orders_rows_processed_total", outcome="rejected") == 1
    assert ("group_orders_email_failures_total", ()) in after


async def test_metrics_hold_no_personal_data_or_tokens(
    client: httpx.AsyncClient, graphql: GraphQL, demo: DemoData
) -> None:
    # given
    token = demo.tokens["client"]
    await graphql.post("{ session { userId } }", token=token)

    # when
    text = (await client.get("/metrics")).text

    # then
    assert token not in text
    assert "alice" not in text.lower()
    assert "@" not in text
