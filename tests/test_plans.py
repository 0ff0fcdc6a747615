"""A cached plan answers exactly what graphql-core's execution answers.

Generated ``groupOrder`` documents (plain fields in any order, aliases, ``__typename``,
nested objects, the session in its views, literal and variable arguments, good and bad
values, every kind of requester) run both ways on the same context; the response bytes,
or the request errors, must be the same. Documents a plan does not cover are mixed in,
and so are the ones where it must give up (unknown ids, views a role may not use,
fields outside a view): the general path answers those.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.applications import Starlette

from group_orders.auth.identity import Authenticator, Identity
from group_orders.db.engine import Reader
from group_orders.enums import GroupOrderStatus, GroupOrderView, SessionView
from group_orders.schema.context import RequestContext
from group_orders.schema.execution import OperationRequest, OperationRunner, RequestErrors
from group_orders.services.demo import CLIENTS, DemoData, demo_id
from group_orders.settings import Settings
from group_orders.storage.links import LinkSigner
from group_orders.views import GROUP_ORDER_VIEWS, SESSION_VIEWS, View

GROUP_ORDER_IDS = [
    str(demo_id(f"{client}-{status.value}")) for client in CLIENTS for status in GroupOrderStatus
]
TOKENS = ("client", "client-b", "liaison", "employee", "no-record", "reporting", "acme-integration")

PLAIN_FIELDS = (
    "id",
    "status",
    "totalOrders",
    "successfulOrders",
    "rejectedOrders",
    "normalizedCsv",
    "acceptedOrdersXlsx",
    "rejectedOrdersXlsx",
    "queueJobId",
    "createdAt",
    "updatedAt",
    "outcome",
    "failureReason",
    "duplicateOf",
    "sourceFileName",
    "unknownColumns",
    "linksExpireAt",
    "attempts",
    "workerId",
    "startedAt",
    "finishedAt",
    "__typename",
    "progress { processedRows totalRows }",
    "progress { __typename totalRows }",
)
SESSION_FIELDS = (
    "userId",
    "application",
    "role",
    "createdAt",
    "lastUsedAt",
    "expiresAt",
    "rememberMe",
    "__typename",
    "user { id email name }",
    "client { id name }",
    "employee { id }",
    "liaison { id __typename }",
)
# Selections that take the general path all the same.
UNPLANNED = (
    "client { name }",
    "uploader { id }",
    "rows(first: 2) { totalCount }",
    "session { liaison { clients { name } } }",
    "... on GroupOrder { id }",
    "status @include(if: true)",
    "id id",
)
VIEWS = (
    "default",
    "inital_upload",
    "online_order_group_order_status",
    "planoworker_processing_view",
)
APPLICATIONS = ("planoauth", "planoorder", "planox2")

WORKER_DETAIL = ("queueJobId", "attempts", "workerId", "startedAt", "finishedAt")
DEFAULT_VIEW_FIELDS = tuple(field for field in PLAIN_FIELDS if field not in WORKER_DETAIL)
# Mostly none, now and then one of its own, seldom one that others use too (a conflict).
aliases = st.sampled_from([None, None, None, None, "own", "own", "a"])


def aliased(field: str, alias: str | None, position: int) -> str:
    if alias is None:
        return field
    return f"{alias if alias != 'own' else f'k{position}'}: {field}"


@st.composite
def requests(draw: st.DrawFn) -> tuple[str, dict[str, Any]]:
    """A ``groupOrder`` document and its variables."""
    definitions: list[str] = []
    variables: dict[str, Any] = {}
    arguments: list[str] = []

    # Mostly what a frontend sends: an id that exists, the default view, no application.
    id_value = draw(
        st.one_of(
            *[st.sampled_from(GROUP_ORDER_IDS)] * 6,
            st.uuids().map(str),
            st.sampled_from(["not-a-uuid", "", str(demo_id("acme"))]),
            st.integers(min_value=0, max_value=10**6),
        )
    )
    if draw(st.booleans()):
        definitions.append(f"$id: {draw(st.sampled_from(['ID!', 'ID!', 'ID!', 'ID']))}")
        arguments.append("id: $id")
        if draw(st.integers(min_value=0, max_value=9)):  # now and then left out
            variables["id"] = id_value
    else:
        arguments.append(f"id: {orjson.dumps(str(id_value)).decode()}")

    view_how = draw(st.sampled_from(["absent", "absent", "absent", "literal", "variable"]))
    if view_how == "literal":
        arguments.append(f"view: {draw(st.sampled_from(VIEWS))}")
    elif view_how == "variable":
        definitions.append(f"$view: {draw(st.sampled_from(['GroupOrderView!', 'GroupOrderView']))}")
        arguments.append("view: $view")
        variables["view"] = draw(st.sampled_from([*VIEWS, *VIEWS, "nope", None]))

    application_how = draw(
        st.sampled_from(["absent", "absent", "absent", "absent", "literal", "null", "variable"])
    )
    if application_how == "literal":
        arguments.append(f"application: {draw(st.sampled_from(APPLICATIONS))}")
    elif application_how == "null":
        arguments.append("application: null")
    elif application_how == "variable":
        definitions.append("$app: Application")
        arguments.append("application: $app")
        variables["app"] = draw(st.sampled_from([*APPLICATIONS, None, None, "x"]))

    fields = draw(st.sampled_from([DEFAULT_VIEW_FIELDS] * 4 + [PLAIN_FIELDS]))
    selections = [
        aliased(field, draw(aliases), position)
        for position, field in enumerate(
            draw(st.lists(st.sampled_from(fields), min_size=1, max_size=8))
        )
    ]
    if draw(st.booleans()):
        session_view = draw(
            st.sampled_from(["", "", "(view: minimal)", "(view: default)", "($sv)"])
        )
        if session_view == "($sv)":
            definitions.append("$sv: SessionView!")
            session_view = "(view: $sv)"
            variables["sv"] = draw(st.sampled_from(["minimal", "default", "other"]))
        chosen = draw(st.lists(st.sampled_from(SESSION_FIELDS), min_size=1, max_size=5))
        session = f"session{session_view} {{ {' '.join(chosen)} }}"
        selections.insert(
            draw(st.integers(0, len(selections))), aliased(session, draw(aliases), 99)
        )
    if draw(st.integers(min_value=0, max_value=7)) == 0:
        selections.append(draw(st.sampled_from(UNPLANNED)))

    header = f"query Q({', '.join(definitions)})" if definitions else "query Q"
    root = aliased(f"groupOrder({', '.join(arguments)})", draw(aliases), 0)
    return f"{header} {{ {root} {{ {' '.join(selections)} }} }}", variables


# Who sees what: the demo's group orders in each requester's scope, and its views.
SCOPES = {
    "client": ("acme",),
    "acme-integration": ("acme",),
    "liaison": ("borealis", "cedar"),
    "employee": tuple(CLIENTS),
    "reporting": tuple(CLIENTS),
}
EMPLOYEE_ROLE = ("employee", "reporting")


def in_view(selection: str, view: View) -> bool:
    return selection.split()[0] in (*view.fields, "__typename")


@st.composite
def answerable_requests(draw: st.DrawFn, token: str) -> tuple[str, dict[str, Any]]:
    """A ``groupOrder`` document that asks only for what ``token`` may see, and its
    variables: every one is answered without an error."""
    client = draw(st.sampled_from(SCOPES[token]))
    status = draw(st.sampled_from(GroupOrderStatus))
    variables: dict[str, Any] = {"id": str(demo_id(f"{client}-{status.value}"))}
    views = [
        view
        for view in GroupOrderView
        if token in EMPLOYEE_ROLE or view is not GroupOrderView.planoworker_processing_view
    ]
    view = draw(st.sampled_from(views))
    definitions = ["$id: ID!"]
    arguments = ["id: $id"]
    if draw(st.booleans()):
        definitions.append(f"$view: {draw(st.sampled_from(['GroupOrderView!', 'GroupOrderView']))}")
        arguments.append("view: $view")
        variables["view"] = view.value
    elif view is not GroupOrderView.default or draw(st.booleans()):
        arguments.append(f"view: {view.value}")
    if token == "employee":
        application = draw(st.sampled_from([None, "planox2", "planoauth"]))
        if draw(st.booleans()):
            definitions.append("$app: Application")
            arguments.append("application: $app")
            if application is not None or draw(st.booleans()):
                variables["app"] = application
        elif application:
            arguments.append(f"application: {application}")
    allowed = [field for field in PLAIN_FIELDS if in_view(field, GROUP_ORDER_VIEWS[view])]
    chosen = draw(
        st.lists(
            st.sampled_from(allowed),
            min_size=1,
            max_size=10,
            unique_by=lambda field: field.split()[0],
        )
    )
    selections = [
        field if not draw(st.booleans()) else f"k{position}: {field}"
        for position, field in enumerate(chosen)
    ]
    if draw(st.booleans()):
        session_view = draw(st.sampled_from(SessionView))
        session_fields = [f for f in SESSION_FIELDS if in_view(f, SESSION_VIEWS[session_view])]
        picked = draw(
            st.lists(
                st.sampled_from(session_fields),
                min_size=1,
                unique_by=lambda field: field.split()[0],
            )
        )
        if draw(st.booleans()):
            definitions.append("$sessionView: SessionView!")
            variables["sessionView"] = session_view.value
            argument = "(view: $sessionView)"
        else:
            argument = (
                "" if session_view is SessionView.default else f"(view: {session_view.value})"
            )
        selections.insert(
            draw(st.integers(0, len(selections))), f"session{argument} {{ {' '.join(picked)} }}"
        )
    root = f"groupOrder({', '.join(arguments)})"
    if draw(st.booleans()):
        root = f"order: {root}"
    header = f"query Q({', '.join(definitions)})"
    return f"{header} {{ {root} {{ {' '.join(selections)} }} }}", variables


NOW = datetime.now(UTC).replace(microsecond=0)


class Both:
    """The app's runner, with and without plans, on contexts alike but for the plan."""

    def __init__(self, app: Starlette, engine: AsyncEngine, settings: Settings) -> None:
        self.runner: OperationRunner = app.state.runner
        self.engine = engine
        self.settings = settings
        self.reader = Reader.for_engine(engine, settings)
        self.links = LinkSigner(settings.secret_key, settings.link_lifetime)
        self.authenticator = Authenticator(
            engine,
            ttl_seconds=60,
            last_used_write_interval=settings.link_lifetime * 10**6,
            reader=self.reader,
        )

    def context(self, identity: Identity) -> RequestContext:
        return RequestContext(
            settings=self.settings,
            engine=self.engine,
            reader=self.reader,
            identity=identity,
            now=NOW,
            links=self.links,
            base_url="http://testserver",
            request_id="request",
            storage=None,  # type: ignore[arg-type]  # queries store nothing
        )

    async def answer(
        self, token: str, query: str, variables: dict[str, Any], *, plans: bool
    ) -> Any:
        identity = await self.authenticator.authenticate(token, now=NOW)
        request = OperationRequest(query, variables, None)
        self.runner.use_plans = plans
        try:
            prepared = self.runner.prepare(request)
            if not plans:
                assert prepared.plan is None
            body = await self.runner.execute(prepared, request, self.context(identity))
        except RequestErrors as errors:
            return ("request errors", errors.errors)
        finally:
            self.runner.use_plans = True
        return orjson.dumps(body)

    async def planned(self, token: str, query: str, variables: dict[str, Any]) -> Any:
        """The plan's own ``data``, or None where it gives up (or there is no plan)."""
        identity = await self.authenticator.authenticate(token, now=NOW)
        request = OperationRequest(query, variables, None)
        try:
            prepared = self.runner.prepare(request)
        except RequestErrors:
            return None
        if prepared.plan is None:
            return None
        return await prepared.plan.run(self.context(identity), variables)


@pytest.fixture
async def both(app: Starlette, engine: AsyncEngine, settings: Settings) -> Any:
    pair = Both(app, engine, settings)
    yield pair
    await pair.reader.close()


@settings(
    max_examples=600,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Mostly requesters who see every group order, so that most requests reach the data.
@given(request=requests(), token=st.sampled_from([*TOKENS, "employee", "employee", "reporting"]))
async def test_a_plan_answers_byte_for_byte_what_execution_answers(
    request: tuple[str, dict[str, Any]], token: str, both: Both, demo: DemoData
) -> None:
    # given
    query, variables = request

    # when
    planned = await both.answer(demo.tokens[token], query, variables, plans=True)
    executed = await both.answer(demo.tokens[token], query, variables, plans=False)

    # then
    assert planned == executed, (query, variables, token)


@settings(
    max_examples=400,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
async def test_every_answerable_request_is_answered_by_its_plan_as_execution_would(
    data: st.DataObject, both: Both, demo: DemoData
) -> None:
    # given
    token = data.draw(st.sampled_from(list(SCOPES)), label="token")
    query, variables = data.draw(answerable_requests(token), label="request")

    # when
    planned = await both.planned(demo.tokens[token], query, variables)
    executed = await both.answer(demo.tokens[token], query, variables, plans=False)

    # then
    assert planned is not None, (query, variables, token, executed)
    body = orjson.dumps({"data": planned, "extensions": {"status": "action-successful"}})
    assert body == executed, (query, variables, token)


PLANNED = [
    (
        "employee",
        "query($id: ID!) { groupOrder(id: $id) { id status totalOrders successfulOrders "
        "rejectedOrders normalizedCsv acceptedOrdersXlsx rejectedOrdersXlsx createdAt "
        "session { userId expiresAt } } }",
    ),
    ("client", "query($id: ID!) { groupOrder(id: $id) { id status } }"),
    (
        "liaison",
        "query($id: ID!) { g: groupOrder(id: $id, view: online_order_group_order_status) "
        "{ __typename s: status outcome progress { totalRows } acceptedOrdersXlsx "
        "session(view: minimal) { userId } } }",
    ),
    (
        "employee",
        "query($id: ID!) { groupOrder(id: $id, view: planoworker_processing_view) { "
        "queueJobId attempts workerId startedAt finishedAt unknownColumns linksExpireAt "
        "session { role application user { name } employee { id } client { id } liaison { id } "
        "rememberMe lastUsedAt createdAt } } }",
    ),
    ("reporting", "query($id: ID!) { groupOrder(id: $id) { id session { userId } } }"),
]


@pytest.mark.parametrize(("token", "query"), PLANNED)
async def test_the_shapes_frontends_send_are_answered_by_their_plan(
    both: Both, demo: DemoData, token: str, query: str
) -> None:
    # given: a group order the requester may see
    group_order_id = demo.group_orders[
        "acme-completed" if token in ("client", "employee", "reporting") else "borealis-completed"
    ]
    variables = {"id": group_order_id}

    # when
    data = await both.planned(demo.tokens[token], query, variables)
    executed = await both.answer(demo.tokens[token], query, variables, plans=False)

    # then: the plan answered, and as execution does
    assert data is not None
    assert orjson.dumps({"data": data, "extensions": {"status": "action-successful"}}) == executed


@pytest.mark.parametrize(
    ("token", "query", "variables"),
    [
        # an id outside the requester's scope, an unknown one, a malformed one
        ("client", "query($id: ID!) { groupOrder(id: $id) { id } }", {"id": "borealis"}),
        ("client", "query($id: ID!) { groupOrder(id: $id) { id } }", {"id": str(uuid.uuid4())}),
        ("client", "query($id: ID!) { groupOrder(id: $id) { id } }", {"id": "x"}),
        # a view the role may not use, a field outside the view, a session view's field
        (
            "client",
            "query($id: ID!) { groupOrder(id: $id, view: planoworker_processing_view) { id } }",
            {"id": "acme"},
        ),
        (
            "client",
            "query($id: ID!) { groupOrder(id: $id, view: inital_upload) { rejectedOrders } }",
            {"id": "acme"},
        ),
        (
            "client",
            "query($id: ID!) { groupOrder(id: $id) { session(view: minimal) { role } } }",
            {"id": "acme"},
        ),
        # a user with no record, an application token through another application
        ("no-record", "query($id: ID!) { groupOrder(id: $id) { id } }", {"id": "acme"}),
        (
            "reporting",
            "query($id: ID!) { groupOrder(id: $id, application: planoorder) { id } }",
            {"id": "acme"},
        ),
        # a variable of the wrong type
        ("employee", "query($id: ID!) { groupOrder(id: $id) { id } }", {"id": [1]}),
    ],
)
async def test_a_plan_gives_up_where_execution_answers_an_error(
    both: Both, demo: DemoData, token: str, query: str, variables: dict[str, Any]
) -> None:
    # given: names of demo group orders stand for their ids
    if variables["id"] in ("acme", "borealis"):
        variables = {"id": demo.group_orders[f"{variables['id']}-completed"]}

    # when
    data = await both.planned(demo.tokens[token], query, variables)
    planned = await both.answer(demo.tokens[token], query, variables, plans=True)
    executed = await both.answer(demo.tokens[token], query, variables, plans=False)

    # then
    assert data is None
    assert planned == executed
    assert b'"errors"' in executed if isinstance(executed, bytes) else executed[1]


@pytest.mark.parametrize(
    "query",
    [
        "query($id: ID!) { groupOrder(id: $id) { id client { name } } }",
        "query($id: ID!) { groupOrder(id: $id) { ... on GroupOrder { id } } }",
        "query($id: ID!) { groupOrder(id: $id) { id @skip(if: false) } }",
        "query($id: ID!) { groupOrder(id: $id) { id } session { userId } }",
        "query($id: ID!) { groupOrder(id: $id) { session { liaison { clients { name } } } } }",
        "query($id: ID!) { groupOrder(id: $id) { id id } }",
        "{ groupOrders(first: 1) { edges { node { id } } } }",
    ],
)
async def test_documents_a_plan_does_not_cover_get_none(both: Both, query: str) -> None:
    prepared = both.runner.prepare(OperationRequest(query, {"id": str(uuid.uuid4())}))
    assert prepared.plan is None
