"""Views see through fragments and directives, as a client's query is written."""

from __future__ import annotations

import pytest

from conftest import GraphQL
from group_orders.services.demo import DemoData

QUERY_PARTS = {
    "named fragment": (
        "query($id: ID!) { groupOrder(id: $id, view: inital_upload) { ...F } } "
        "fragment F on GroupOrder { id rejectedOrders }"
    ),
    "inline fragment": (
        "query($id: ID!) { groupOrder(id: $id, view: inital_upload) "
        "{ id ... on GroupOrder { rejectedOrders } } }"
    ),
    "included": (
        "query($id: ID!, $on: Boolean!) { groupOrder(id: $id, view: inital_upload) "
        "{ id rejectedOrders @include(if: $on) } }"
    ),
}


@pytest.mark.parametrize("name", sorted(QUERY_PARTS))
async def test_a_field_outside_the_view_is_found_wherever_it_hides(
    graphql: GraphQL, demo: DemoData, name: str
) -> None:
    # when
    response = await graphql.post(
        QUERY_PARTS[name],
        {"id": demo.group_orders["acme-completed"], "on": True},
        token=demo.tokens["client"],
    )

    # then
    body = response.json()
    assert body["data"] == {"groupOrder": None}
    assert [error["extensions"]["fields"] for error in body["errors"]] == [["rejectedOrders"]]


@pytest.mark.parametrize(
    "selection",
    ["id rejectedOrders @include(if: false)", "id rejectedOrders @skip(if: true)", "id __typename"],
)
async def test_skipped_fields_and_typename_do_not_count(
    graphql: GraphQL, demo: DemoData, selection: str
) -> None:
    # when
    response = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id, view: inital_upload) { " + selection + " } }",
        {"id": demo.group_orders["acme-completed"]},
        token=demo.tokens["client"],
    )

    # then
    assert response.json()["extensions"] == {"status": "action-successful"}


async def test_nested_session_view_is_checked_too(graphql: GraphQL, demo: DemoData) -> None:
    # when
    response = await graphql.post(
        "query($id: ID!) { groupOrder(id: $id) { id session(view: minimal) { userId role } } }",
        {"id": demo.group_orders["acme-completed"]},
        token=demo.tokens["client"],
    )

    # then: the group order stands; its session is refused with the view's fields
    body = response.json()
    assert body["data"] == {
        "groupOrder": {"id": demo.group_orders["acme-completed"], "session": None}
    }
    assert body["errors"] == [
        {
            "message": "The view 'minimal' does not hold role. Its fields are: userId, expiresAt.",
            "locations": [{"line": 1, "column": 44}],
            "path": ["groupOrder", "session"],
            "extensions": {
                "code": "invalid-param",
                "status": 400,
                "param": "view",
                "fields": ["role"],
                "viewFields": ["userId", "expiresAt"],
            },
        }
    ]
