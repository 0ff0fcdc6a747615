"""Authorization matrix for `groupOrder`: every field, view, principal, application and scope.

The expectations come from this file's own copy of the contract: "Applications and roles"
in CONTRACT.md, and the views table of docs/views.md, which the contract names as the one
kept current. They never come from the service's tables, so a wrong table in the service
fails here.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pprint import pformat
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from conftest import GraphQL
from group_orders.db.tables import (
    employee_table,
    group_order_table,
    liaison_table,
    session_table,
)
from group_orders.enums import ApplicationSlug
from group_orders.services.accounts import create_application_token
from group_orders.services.demo import DemoData, demo_id
from group_orders.settings import Settings

# --- The views table of docs/views.md ---------------------------------------------------

VIEW_NAMES = (
    "inital_upload",
    "online_order_group_order_status",
    "planoworker_processing_view",
    "default",
)
# The table of docs/views.md, one row per field, one column per view in VIEW_NAMES' order.
# The rows keep the table's order: `viewFields` and the error message list a view's
# fields in this order.
X, _ = True, False
VIEW_TABLE: dict[str, tuple[bool, bool, bool, bool]] = {
    "id": (X, X, X, X),
    "status": (X, X, X, X),
    "totalOrders": (X, X, X, X),
    "createdAt": (X, X, X, X),
    "updatedAt": (X, X, X, X),
    "session": (X, X, X, X),
    "progress": (X, X, X, X),
    "sourceFileName": (X, X, X, X),
    "duplicateOf": (X, X, X, X),
    "client": (X, X, X, X),
    "uploader": (X, X, X, X),
    "normalizedCsv": (X, _, X, X),
    "unknownColumns": (X, _, X, X),
    "linksExpireAt": (X, X, X, X),
    "successfulOrders": (_, X, X, X),
    "rejectedOrders": (_, X, X, X),
    "outcome": (_, X, X, X),
    "failureReason": (_, X, X, X),
    "rows": (_, X, X, X),
    "acceptedOrdersXlsx": (_, X, X, X),
    "rejectedOrdersXlsx": (_, X, X, X),
    "queueJobId": (_, _, X, _),
    "attempts": (_, _, X, _),
    "workerId": (_, _, X, _),
    "startedAt": (_, _, X, _),
    "finishedAt": (_, _, X, _),
    "notification": (_, _, X, _),
    "webhookDeliveries": (_, _, X, _),
}
ALL_ROLES = frozenset({"client", "liaison", "employee"})
VIEW_ROLES = dict(
    zip(VIEW_NAMES, (ALL_ROLES, ALL_ROLES, frozenset({"employee"}), ALL_ROLES), strict=True)
)
FIELDS = tuple(VIEW_TABLE)
VIEWS = {
    view: tuple(name for name, row in VIEW_TABLE.items() if row[column])
    for column, view in enumerate(VIEW_NAMES)
}
# How each field is written in a query; object fields need a selection of their own.
SELECTIONS = {name: name for name in FIELDS} | {
    "session": "session { userId }",
    "progress": "progress { processedRows totalRows }",
    "client": "client { name }",
    "uploader": "uploader { name }",
    "rows": "rows { totalCount }",
    "notification": "notification { status attempts lastError }",
    "webhookDeliveries": "webhookDeliveries { status }",
}

# --- The contract's roles table -------------------------------------------------------

# The roles an application may use, tried in this order, and how it refuses a user who
# has records but none of those.
APPLICATION_ROLES: dict[str, tuple[str, ...]] = {
    "planoorder": ("client", "liaison"),
    "planox2": ("employee",),
    "planoauth": ("client", "liaison", "employee"),
}
LACKING_ROLE = {
    "planoorder": ("client-required", None),
    "planox2": ("invalid-param", "application"),
}
# In scope: client -> its own client's group orders; liaison -> its assigned clients';
# employee -> all (see Person.scopes).
APPLICATIONS = (None, "planoauth", "planoorder", "planox2")
HTTP_STATUS = {"client-required": 401, "invalid-param": 400}

# --- The demo's data, as demo.py defines it ---------------------------------------------

CLIENT_NAMES = {"acme": "Acme Outfitters", "borealis": "Borealis Foods", "cedar": "Cedar Clinics"}
CLIENTS = tuple(CLIENT_NAMES)
STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
# status -> (totalOrders, successfulOrders, rejectedOrders)
COUNTS = {
    "pending": (0, 0, 0),
    "processing": (12, 5, 1),
    "completed": (12, 10, 2),
    "failed": (12, 0, 0),
    "cancelled": (12, 0, 0),
}
# status -> the result files it has, by field, with the name they carry in a link
FILES: dict[str, dict[str, str]] = {
    "pending": {},
    "processing": {"normalizedCsv": "normalized.csv"},
    "completed": {
        "normalizedCsv": "normalized.csv",
        "acceptedOrdersXlsx": "accepted.xlsx",
        "rejectedOrdersXlsx": "rejected.xlsx",
    },
    "failed": {},
    "cancelled": {},
}
FILE_FIELDS = ("normalizedCsv", "acceptedOrdersXlsx", "rejectedOrdersXlsx")
GROUP_ORDERS = tuple((client, status) for client in CLIENTS for status in STATUSES)


@dataclass(frozen=True)
class Person:
    """A demo user holding a session token, with the records the demo gives them."""

    user: str
    email: str
    name: str
    signed_in_through: str
    remember_me: bool = False
    client: str | None = None
    liaison_for: tuple[str, ...] = ()
    employee: bool = False

    def scopes(self) -> dict[str, frozenset[str] | None]:
        """The roles this person's records allow, with the clients each may see."""
        roles: dict[str, frozenset[str] | None] = {}
        if self.client is not None:
            roles["client"] = frozenset({self.client})
        if self.liaison_for:
            roles["liaison"] = frozenset(self.liaison_for)
        if self.employee:
            roles["employee"] = None
        return roles


@dataclass(frozen=True)
class AppToken:
    application: str
    client: str | None = None


PEOPLE = {
    "client": Person("alice", "alice@acme.example", "Alice Client", "planoorder", client="acme"),
    "client-b": Person(
        "bob", "bob@borealis.example", "Bob Client", "planoorder", client="borealis"
    ),
    "liaison": Person(
        "lena",
        "lena@plano.example",
        "Lena Liaison",
        "planoorder",
        liaison_for=("borealis", "cedar"),
    ),
    "employee": Person(
        "erin", "erin@plano.example", "Erin Employee", "planox2", remember_me=True, employee=True
    ),
    "no-record": Person("nora", "nora@example.com", "Nora Newcomer", "planoauth"),
}
APP_TOKENS = {
    "reporting": AppToken("planox2"),
    "acme-integration": AppToken("planoorder", client="acme"),
    # Not in the demo: minted by the test, for the rule on unbound tokens of applications
    # other than planox2.
    "unbound-planoorder": AppToken("planoorder"),
}

# --- What the service says --------------------------------------------------------------

NO_RECORD = "This user has no client, employee or liaison record. Register as a client first."
LACKING_RECORD = {
    "planoorder": "The application planoorder needs a client or liaison record, "
    "which this user lacks.",
    "planox2": "The application planox2 needs an employee record, which this user lacks.",
}
UNKNOWN_ID = "No group order has this id."
SESSION_LIFETIME = timedelta(days=7)
SESSION_IDLE_LIMIT = timedelta(hours=72)


@dataclass(frozen=True)
class Granted:
    role: str
    # None: every client's group orders.
    clients: frozenset[str] | None

    def may_see(self, client: str) -> bool:
        return self.clients is None or client in self.clients


@dataclass(frozen=True)
class Refused:
    code: str
    message: str
    param: str | None = None
    # client-required carries the session object; an application token has none.
    carries_session: bool = False


Outcome = Granted | Refused


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """A principal's sweep can take over a minute on a busy machine: its session's
    lastUsedAt is written back at its first request only, so that the session object
    read after that request stays the one every later answer carries."""
    return settings.with_changes(last_used_write_interval_seconds=86_400)


def person_outcome(person: Person, application: str | None) -> Outcome:
    scopes = person.scopes()
    if not scopes:
        return Refused("client-required", NO_RECORD, carries_session=True)
    slug = application or person.signed_in_through
    for role in APPLICATION_ROLES[slug]:
        if role in scopes:
            return Granted(role, scopes[role])
    code, param = LACKING_ROLE[slug]
    return Refused(
        code, LACKING_RECORD[slug], param=param, carries_session=code == "client-required"
    )


def token_outcome(token: AppToken, application: str | None) -> Outcome:
    if application is not None and application != token.application:
        return Refused(
            "invalid-param",
            f"This token acts for the application {token.application} only.",
            param="application",
        )
    if token.client is not None:
        return Granted("client", frozenset({token.client}))
    if token.application == "planox2":
        return Granted("employee", None)
    return Refused(
        "client-required",
        f"An application token for {token.application} must be bound to a client.",
        carries_session=True,
    )


# --- Matchers for values that carry a time of their own ----------------------------------


@dataclass(frozen=True)
class SignedLink:
    """A signed link to one of a group order's files, still valid."""

    group_order_id: str
    file: str

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        pattern = (
            rf"http://testserver/files/{re.escape(self.group_order_id)}/{re.escape(self.file)}"
            r"\?expires=(\d+)&signature=[0-9a-f]{64}"
        )
        match = re.fullmatch(pattern, other)
        return match is not None and int(match.group(1)) > time.time()

    def __hash__(self) -> int:
        return hash((self.group_order_id, self.file))


@dataclass(frozen=True)
class FutureTimestamp:
    """An ISO timestamp with its offset, still ahead: when a response's links stop working."""

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        try:
            moment = datetime.fromisoformat(other)
        except ValueError:
            return False
        return moment.tzinfo is not None and moment > datetime.now(UTC)

    def __hash__(self) -> int:
        return hash(type(self))


# --- Reading the database ----------------------------------------------------------------


def as_utc(value: str | datetime) -> datetime:
    # SQLite hands timestamps back as naive text; every stored one is UTC.
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


async def group_order_rows(engine: AsyncEngine) -> list[dict[str, Any]]:
    async with engine.connect() as connection:
        result = await connection.execute(
            sa.select(group_order_table).order_by(group_order_table.c.id)
        )
        return [dict(row) for row in result.mappings()]


async def session_object(engine: AsyncEngine, person: Person) -> dict[str, Any]:
    """The person's session as client-required shows it: their records, but no role."""
    user_id = demo_id(person.user)
    async with engine.connect() as connection:

        async def one(table: sa.Table, *columns: str) -> Any:
            result = await connection.execute(
                sa.select(*(table.c[name] for name in columns))
                .where(table.c.user_id == user_id)
                .where(*([table.c.revoked_at.is_(None)] if "revoked_at" in table.c else []))
            )
            return result.mappings().one_or_none()

        session = await one(session_table, "created_at", "last_used_at")
        employee = await one(employee_table, "id")
        liaison = await one(liaison_table, "id")
    created, last_used = as_utc(session["created_at"]), as_utc(session["last_used_at"])
    expires = (
        None
        if person.remember_me
        else min(created + SESSION_LIFETIME, last_used + SESSION_IDLE_LIMIT)
    )
    client = (
        {"id": str(demo_id(person.client)), "name": CLIENT_NAMES[person.client]}
        if person.client
        else None
    )
    return {
        "userId": str(user_id),
        "user": {"id": str(user_id), "email": person.email, "name": person.name},
        "application": person.signed_in_through,
        "role": None,
        "client": client,
        "employee": {"id": str(employee["id"])} if employee else None,
        "liaison": {"id": str(liaison["id"])} if liaison else None,
        "createdAt": created.isoformat(),
        "lastUsedAt": last_used.isoformat(),
        "expiresAt": expires.isoformat() if expires else None,
        "rememberMe": person.remember_me,
    }


# --- Building requests and expected responses ----------------------------------------


@dataclass
class Matrix:
    outcome: Outcome
    # The requester's user id; None for application tokens.
    user_id: str | None
    # The expected extensions.session of client-required.
    session: dict[str, Any] | None
    # group order key -> its database row
    rows: Mapping[tuple[str, str], Mapping[str, Any]]
    requests: int = 0
    mismatches: list[dict[str, Any]] = field(default_factory=list)


def query(view: str, application: str | None, fields: tuple[str, ...]) -> str:
    arguments = f"id: $id, view: {view}"
    if application is not None:
        arguments += f", application: {application}"
    selection = " ".join(SELECTIONS[name] for name in fields)
    return f"query Matrix($id: ID!) {{ groupOrder({arguments}) {{ {selection} }} }}"


def error(document: str, message: str, extensions: dict[str, Any]) -> dict[str, Any]:
    column = document.index("groupOrder(") + 1
    return {
        "data": {"groupOrder": None},
        "errors": [
            {
                "message": message,
                "locations": [{"line": 1, "column": column}],
                "path": ["groupOrder"],
                "extensions": extensions,
            }
        ],
    }


def group_order_id(rows: Mapping[tuple[str, str], Mapping[str, Any]], key: tuple[str, str]) -> str:
    return str(rows[key]["id"])


def completion(status: str, successful: int, rejected: int) -> str | None:
    """How a group order's rows came out: known once it is completed, not before."""
    if status != "completed":
        return None
    if rejected == 0:
        return "all_accepted"
    if successful == 0:
        return "all_rejected"
    return "partial"


def field_value(matrix: Matrix, key: tuple[str, str], name: str) -> object:
    client, status = key
    row = matrix.rows[key]
    total, successful, rejected = COUNTS[status]
    if name in FILE_FIELDS:
        file = FILES[status].get(name)
        return SignedLink(group_order_id(matrix.rows, key), file) if file else None
    # The demo seeds group orders as they stand, not through an upload and a worker: no
    # file name, rows, unknown columns, failure reason or worker detail are recorded, and
    # no row counts as processed yet.
    values: dict[str, object] = {
        "id": group_order_id(matrix.rows, key),
        "status": status,
        "totalOrders": total,
        "successfulOrders": successful,
        "rejectedOrders": rejected,
        "queueJobId": None if status == "pending" else f"job-{client}-{status}",
        "createdAt": as_utc(row["created_at"]).isoformat(),
        "updatedAt": as_utc(row["updated_at"]).isoformat(),
        "session": None if matrix.user_id is None else {"userId": matrix.user_id},
        "progress": {"processedRows": 0, "totalRows": total},
        "sourceFileName": None,
        "duplicateOf": None,
        # The demo's clients, and who uploaded their group orders.
        "client": {
            "name": {
                "acme": "Acme Outfitters",
                "borealis": "Borealis Foods",
                "cedar": "Cedar Clinics",
            }[client]
        },
        "uploader": {
            "name": {"acme": "Alice Client", "borealis": "Bob Client", "cedar": "Lena Liaison"}[
                client
            ]
        },
        "unknownColumns": [],
        # The links' time is the request's, so only its shape can be known here.
        "linksExpireAt": FutureTimestamp() if FILES[status] else None,
        "outcome": completion(status, successful, rejected),
        "failureReason": None,
        "rows": {"totalCount": 0},
        "attempts": 0,
        "workerId": None,
        "startedAt": None,
        "finishedAt": None,
        # The demo's group orders reached their status without a worker: nothing was sent.
        "notification": None,
        "webhookDeliveries": [],
    }
    return values[name]


def expected(
    matrix: Matrix,
    document: str,
    view: str,
    fields: tuple[str, ...],
    key: tuple[str, str] | None,
) -> dict[str, Any]:
    """The whole response the contract asks for; ``key`` None stands for an unknown id."""
    outcome = matrix.outcome
    if isinstance(outcome, Refused):
        extensions: dict[str, Any] = {"code": outcome.code, "status": HTTP_STATUS[outcome.code]}
        if outcome.param is not None:
            extensions["param"] = outcome.param
        if outcome.carries_session:
            extensions["session"] = matrix.session
        return error(document, outcome.message, extensions)
    if outcome.role not in VIEW_ROLES[view]:
        allowed = ", ".join(sorted(VIEW_ROLES[view]))
        return error(
            document,
            f"The view '{view}' is not available to the role {outcome.role}; it is for: {allowed}.",
            {"code": "invalid-param", "status": 400, "param": "view"},
        )
    outside = [name for name in fields if name not in VIEWS[view]]
    if outside:
        view_fields = list(VIEWS[view])
        return error(
            document,
            f"The view '{view}' does not hold {', '.join(outside)}. "
            f"Its fields are: {', '.join(view_fields)}.",
            {
                "code": "invalid-param",
                "status": 400,
                "param": "view",
                "fields": outside,
                "viewFields": view_fields,
            },
        )
    if key is None or not outcome.may_see(key[0]):
        return error(document, UNKNOWN_ID, {"code": "invalid-param", "status": 400, "param": "id"})
    group_order = {name: field_value(matrix, key, name) for name in fields}
    return {"data": {"groupOrder": group_order}, "extensions": {"status": "action-successful"}}


async def send(
    graphql: GraphQL,
    token: str,
    matrix: Matrix,
    view: str,
    application: str | None,
    fields: tuple[str, ...],
    group_order_id: str,
) -> tuple[int, dict[str, Any]]:
    response = await graphql.post(
        query(view, application, fields), {"id": group_order_id}, token=token
    )
    matrix.requests += 1
    body: dict[str, Any] = response.json()
    return response.status_code, body


def check(
    matrix: Matrix,
    answer: tuple[int, dict[str, Any]],
    view: str,
    application: str | None,
    fields: tuple[str, ...],
    key: tuple[str, str] | None,
) -> None:
    """Note any difference between a response and the contract's."""
    status, body = answer
    want = expected(matrix, query(view, application, fields), view, fields, key)
    # Errors from the document answer 200 under application/json (GraphQL over HTTP).
    if status != 200 or body != want:
        matrix.mismatches.append(
            {
                "view": view,
                "fields": fields,
                "group order": key or "unknown",
                "status": status,
                "expected": want,
                "actual": body,
            }
        )


def depends_on_id(outcome: Outcome, view: str, fields: tuple[str, ...]) -> bool:
    """Whether the contract's answer differs by id: only when the fields may be read."""
    return (
        isinstance(outcome, Granted)
        and outcome.role in VIEW_ROLES[view]
        and all(name in VIEWS[view] for name in fields)
    )


def widest_view(role: str) -> str:
    """The view with the most fields the role may use."""
    allowed = [view for view in VIEWS if role in VIEW_ROLES[view]]
    return max(allowed, key=lambda view: len(VIEWS[view]))


PRINCIPALS = [
    pytest.param(name, application, id=f"{name}-{application or 'absent'}")
    for name in (*PEOPLE, *APP_TOKENS)
    for application in APPLICATIONS
]


@pytest.mark.parametrize(("principal", "application"), PRINCIPALS)
async def test_group_order_matrix(
    principal: str,
    application: str | None,
    graphql: GraphQL,
    demo: DemoData,
    engine: AsyncEngine,
) -> None:
    # given: a principal, the application it asks through, and the group orders as stored
    before = await group_order_rows(engine)
    rows = {
        (client, status): next(row for row in before if row["id"] == demo_id(f"{client}-{status}"))
        for client, status in GROUP_ORDERS
    }
    unknown_id = str(uuid.uuid4())
    first_view, first_fields = "default", ("id",)
    if principal in PEOPLE:
        person = PEOPLE[principal]
        token = demo.tokens[principal]
        outcome = person_outcome(person, application)
        user_id: str | None = str(demo_id(person.user))
    else:
        app_token = APP_TOKENS[principal]
        token = demo.tokens.get(principal) or await create_application_token(
            engine, ApplicationSlug(app_token.application), "matrix: unbound token"
        )
        outcome = token_outcome(app_token, application)
        user_id = None
    matrix = Matrix(outcome, user_id, None, rows)
    # A session's first use in a while moves its lastUsedAt, so the session object that
    # client-required carries is read after the first request.
    first_answer = await send(
        graphql, token, matrix, first_view, application, first_fields, unknown_id
    )
    if isinstance(outcome, Refused) and outcome.carries_session and user_id is not None:
        matrix.session = await session_object(engine, PEOPLE[principal])
    check(matrix, first_answer, first_view, application, first_fields, None)
    visible = [
        key for key in GROUP_ORDERS if isinstance(outcome, Granted) and outcome.may_see(key[0])
    ]
    hidden = [key for key in GROUP_ORDERS if key not in visible]
    sweep_view = widest_view(outcome.role) if isinstance(outcome, Granted) else None

    # when: every view is asked for each field alone (beside id) and for all its fields, by
    # an unknown id, an id in scope and an id out of scope; the ids take turns so that the
    # matrix stays small, and the widest view the role may use reads every id in scope so
    # that every status's values are seen
    turn = 0
    out_of_scope_differs: list[dict[str, Any]] = []
    for view in VIEWS:
        selections: list[tuple[str, ...]] = [
            ("id", name) if name != "id" else ("id",) for name in FIELDS
        ]
        selections.append(VIEWS[view])
        for fields in selections:
            in_scope = [visible[turn % len(visible)]] if visible else []
            if view == sweep_view and fields == VIEWS[view]:
                in_scope = visible
            out_of_scope = [hidden[turn % len(hidden)]] if hidden else []
            keys: list[tuple[str, str] | None] = [None, *in_scope, *out_of_scope]
            if not depends_on_id(outcome, view, fields):
                # The contract's answer is one error whatever the id, so one id (the kinds
                # taking turns) checks it; three would only slow the matrix down.
                keys = [keys[turn % len(keys)]]
            answers: dict[tuple[str, str] | None, tuple[int, dict[str, Any]]] = {}
            for key in keys:
                raw_id = unknown_id if key is None else group_order_id(rows, key)
                answers[key] = await send(graphql, token, matrix, view, application, fields, raw_id)
                check(matrix, answers[key], view, application, fields, key)
            # then: a group order out of scope cannot be told from one that does not exist
            for key in out_of_scope:
                if None in answers and key in answers and answers[key] != answers[None]:
                    out_of_scope_differs.append(
                        {"view": view, "fields": fields, "group order": key, "answer": answers[key]}
                    )
            turn += 1

    # then: every response is the contract's, and nothing was written
    assert not matrix.mismatches, (
        f"{len(matrix.mismatches)} of {matrix.requests} responses differ; the first:\n"
        + pformat(matrix.mismatches[0], width=100)
    )
    assert out_of_scope_differs == []
    assert await group_order_rows(engine) == before
