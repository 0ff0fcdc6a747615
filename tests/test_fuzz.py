"""The fuzz suite: generated GraphQL documents, random bytes and random JSON, sent through
the whole app in-process.

Whatever comes in, the answer is JSON with a status the contract documents for it, every
error carries a documented ``extensions.code`` with that code's number in
``extensions.status``, and nothing unexpected gets out: no 5xx, no application-crash, no
traceback, no exception text, no hang.

Documents come from hypothesis-graphql, built from the schema the app serves: valid ones
and ones with one violation each, 1000 per root field. Each test starts the app once; its
examples share that app and its database, so the cancellations and retries of earlier
examples are what later ones see, as on a live server.
"""

from __future__ import annotations

import asyncio
import json
import string
from collections.abc import AsyncIterator
from datetime import UTC
from typing import Any
from urllib.parse import quote

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, mutations, nodes, queries

from group_orders.app import create_app
from group_orders.enums import GroupOrderStatus
from group_orders.errors import STATUS_CODES
from group_orders.schema.query import build_schema
from group_orders.services.demo import CLIENTS, DemoData, demo_id
from group_orders.settings import Settings

JSON = "application/json"
GRAPHQL_JSON = "application/graphql-response+json"
SCHEMA = build_schema().as_str()

# A request still open after this long is taken for a hang.
REQUEST_TIMEOUT_SECONDS = 10.0

# Hypothesis spends more on its own bookkeeping per example than on generating one
# document, so each example sends several: the same 1000 documents per field in a third
# of the time.
DOCUMENTS_PER_EXAMPLE = 10
DOCUMENTS_PER_FIELD = 1000

_FUZZ = settings(
    deadline=None,
    # Without the explain phase, which runs a failing example hundreds of times over to
    # say which lines it ran: the assertion messages already name the request.
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
FIELD_EXAMPLES = settings(_FUZZ, max_examples=DOCUMENTS_PER_FIELD // DOCUMENTS_PER_EXAMPLE)
TRANSPORT_EXAMPLES = settings(_FUZZ, max_examples=300)

# Statuses a request may be answered with at all: the contract's below 500, and 405 for
# a mutation sent with GET.
ANSWERABLE = {200, 400, 401, 404, 405, 413, 429, 503}

# Text that only an exception, never a documented message, puts in a response. A marker
# the request itself holds may come back quoted in a validation message.
LEAK_MARKERS = (
    "Traceback",
    "traceback",
    'File "',
    "sqlalchemy",
    "sqlite3",
    "aiosqlite",
    "orjson",
    "site-packages",
    "TypeError",
    "ValueError",
    "KeyError",
    "AttributeError",
    "IndexError",
    "RecursionError",
    "AssertionError",
    "RuntimeError",
    "OperationalError",
    "IntegrityError",
    "UnicodeDecodeError",
    "JSONDecodeError",
    "MultiPartException",
)
LEAK_KEYS = {"traceback", "stacktrace", "stack", "exception"}

# --- what the suite sends -------------------------------------------------------------

GROUP_ORDER_IDS = [
    str(demo_id(f"{client}-{status.value}")) for client in CLIENTS for status in GroupOrderStatus
]
OTHER_IDS = [str(demo_id(name)) for name in (*CLIENTS, "alice", "bob", "lena", "erin", "nora")]

# Ids that exist (so that documents reach the data, and mutations change it), ids of
# other records, ids that look right and aren't, and anything else.
ids = st.one_of(
    st.sampled_from(GROUP_ORDER_IDS),
    st.sampled_from(OTHER_IDS),
    st.uuids().map(str),
    st.text(max_size=40),
)
date_times = st.one_of(
    st.datetimes(timezones=st.sampled_from([None, UTC])).map(lambda moment: moment.isoformat()),
    st.text(max_size=30),
)
CUSTOM_SCALARS = {
    "ID": st.one_of(ids.map(nodes.String), st.integers().map(nodes.Int)),
    "DateTime": date_times.map(nodes.String),
}

QUERY_FIELDS = ("groupOrder", "groupOrders", "groupOrderStats", "session")
# createGroupOrder is left out: it takes a file, which only a multipart request carries.
MUTATION_FIELDS = ("cancelGroupOrder", "retryGroupOrder")

# Mostly the employee, who sees every group order; now and then a role that sees less.
ROLES = ("employee", "employee", "employee", "client", "liaison", "reporting")
accepts = st.sampled_from([None, JSON, GRAPHQL_JSON, "*/*", f"{GRAPHQL_JSON}, {JSON};q=0.9"])


def field_requests(field: str) -> st.SearchStrategy[list[dict[str, Any]]]:
    """Requests of documents that select ``field``, valid ones and ones with one schema
    violation, each with a role, an Accept header and a method."""
    generate = queries if field in QUERY_FIELDS else mutations
    documents = st.one_of(
        *(
            generate(SCHEMA, fields=[field], custom_scalars=CUSTOM_SCALARS, mode=mode)
            for mode in (Mode.POSITIVE, Mode.NEGATIVE)
        )
    )
    # GET carries queries only, and decodes them on a path of its own.
    methods = st.sampled_from(["POST", "GET"] if field in QUERY_FIELDS else ["POST"])
    request = st.fixed_dictionaries(
        {
            "document": documents,
            "role": st.sampled_from(ROLES),
            "accept": accepts,
            "method": methods,
        }
    )
    return st.lists(request, min_size=DOCUMENTS_PER_EXAMPLE, max_size=DOCUMENTS_PER_EXAMPLE)


big_integers = st.integers(min_value=-(10**60), max_value=10**60)
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    big_integers,
    st.floats(),
    st.text(),
    st.sampled_from(GROUP_ORDER_IDS),
)
json_values = st.recursive(
    json_leaves,
    lambda children: st.one_of(
        st.lists(children, max_size=5), st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=30,
)

VARIABLE_DOCUMENTS = (
    "query($id: ID!, $view: GroupOrderView!, $app: Application) "
    "{ groupOrder(id: $id, view: $view, application: $app) { id status session { userId } } }",
    "query($first: Int!, $after: String, $filter: GroupOrderFilter, $orderBy: GroupOrderOrder!) "
    "{ groupOrders(first: $first, after: $after, filter: $filter, orderBy: $orderBy) "
    "{ totalCount edges { cursor node { id rows(first: $first, after: $after) "
    "{ totalCount } } } } }",
    "query($filter: GroupOrderFilter, $top: Int!) "
    "{ groupOrderStats(filter: $filter, topRejectionCodes: $top) { groupOrders byClient "
    "{ groupOrders } } }",
    "query($view: SessionView!, $app: Application) { session(view: $view, application: $app) "
    "{ userId role } }",
    "mutation($id: ID!, $view: GroupOrderView!) { cancelGroupOrder(id: $id, view: $view) { id } }",
    "mutation($id: ID!) { retryGroupOrder(id: $id) { id status } }",
    "query { __schema { types { name } } }",
    "{ session { userId } } { session { role } }",
    "query A { session { userId } } query B { session { role } }",
)
VARIABLE_NAMES = ("id", "view", "app", "first", "after", "filter", "orderBy", "top")
FILTER_KEYS = ("status", "outcome", "clientId", "createdAfter", "createdBefore", "uploadedBy")

filters = st.dictionaries(st.sampled_from(FILTER_KEYS), json_values, max_size=4)
variables = st.dictionaries(
    st.sampled_from(VARIABLE_NAMES), st.one_of(json_values, filters), max_size=5
)
operations = st.fixed_dictionaries(
    {},
    optional={
        "query": st.one_of(st.sampled_from(VARIABLE_DOCUMENTS), json_values),
        "variables": st.one_of(variables, json_values),
        "operationName": st.one_of(st.sampled_from(["A", "B", ""]), json_values),
        "extensions": json_values,
    },
)


def with_variable(name: str, value: str) -> str:
    """A request of a document taking ``$name``, whose value is the JSON text ``value``."""
    document = next(text for text in VARIABLE_DOCUMENTS if f"${name}:" in text)
    return f'{{"query": {json.dumps(document)}, "variables": {{"{name}": {value}}}}}'


def nested(depth: int, where: str) -> str:
    """A JSON text ``depth`` arrays deep, as the body or as a variable's value."""
    value = "[" * depth + "]" * depth
    return value if where == "body" else with_variable("filter", value)


def to_json(value: Any) -> str:
    # NaN and Infinity are not JSON: sending them checks that they are refused as such.
    return json.dumps(value, allow_nan=True)


json_bodies = st.one_of(
    json_values.map(to_json),
    operations.map(to_json),
    st.lists(operations, max_size=25).map(to_json),
    st.builds(nested, st.integers(1, 5000), st.sampled_from(["body", "variables"])),
    # Numbers no machine type holds, alone and as a variable's value.
    st.integers(1, 4000).map(lambda digits: "9" * digits),
    st.integers(1, 4000).map(lambda digits: with_variable("top", "9" * digits)),
    st.sampled_from(["1e999999", "-1e999999", "1e-999999", "-0", "NaN", "Infinity"]),
)

CONTENT_TYPES = (
    JSON,
    f"{JSON}; charset=utf-8",
    f"{JSON}; charset=latin-1",
    "APPLICATION/JSON",
    GRAPHQL_JSON,
    "application/graphql",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data",
    "multipart/form-data; boundary=fuzz",
    "",
    ";",
)
header_text = st.text(st.sampled_from(string.printable.strip() + " "), max_size=60)
content_types = st.one_of(st.none(), st.sampled_from(CONTENT_TYPES), header_text)

raw_bodies = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=500).map(str.encode),
    json_bodies.map(str.encode),
    # JSON whose string holds bytes that are not UTF-8.
    st.binary(min_size=1, max_size=50).map(lambda junk: b'{"query": "' + junk + b'"}'),
)


@st.composite
def multipart_bodies(draw: st.DrawFn) -> bytes:
    """Bodies framed with the boundary ``fuzz``, whose parts hold anything."""
    names = st.one_of(st.sampled_from(["operations", "map", "0", "file"]), header_text)
    parts = draw(
        st.lists(
            st.tuples(
                names,
                st.one_of(st.none(), header_text),
                st.one_of(st.binary(max_size=200), json_bodies.map(str.encode)),
            ),
            max_size=4,
        )
    )
    chunks = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        chunks.append(
            b"--fuzz\r\nContent-Disposition: "
            + disposition.encode()
            + b"\r\n\r\n"
            + content
            + b"\r\n"
        )
    ending = draw(st.sampled_from([b"--fuzz--\r\n", b"", b"--fuzz"]))
    return b"".join(chunks) + ending


MULTIPART_TYPES = (
    "multipart/form-data; boundary=fuzz",
    "multipart/form-data",
    "multipart/form-data; boundary=",
    "multipart/form-data; boundary=other",
)

# Tokens by the demo's names: ones that work (mostly the employee's), one of a user
# without records and an expired one; or no token at all.
tokens = st.sampled_from(
    [None, "employee", "employee", "employee", "client", "no-record", "expired"]
)
# The same, or an Authorization header that holds anything.
authorizations = st.one_of(tokens, header_text)

# The parameters GET reads, each there or not, beside others it doesn't know.
query_params = st.builds(
    lambda known, unknown: {**unknown, **known},
    st.fixed_dictionaries(
        {},
        optional={
            "query": st.one_of(st.sampled_from(VARIABLE_DOCUMENTS), st.text(max_size=200)),
            "variables": st.one_of(
                variables.map(to_json),
                json_values.map(to_json),
                st.text(max_size=100),
                st.builds(nested, st.integers(1, 3000), st.just("body")),
            ),
            "operationName": st.one_of(st.sampled_from(["A", "B", ""]), st.text(max_size=20)),
        },
    ),
    st.dictionaries(st.text(max_size=10), st.text(max_size=50), max_size=2),
)
# httpx refuses control characters in a URL, so raw text goes in percent-encoded except
# for the characters that give a query string its structure, and stray '%' signs.
raw_query_strings = st.one_of(
    st.text(max_size=300).map(lambda text: quote(text, safe="&=;+%")),
    st.binary(max_size=300).map(lambda raw: "".join(f"%{byte:02X}" for byte in raw)),
)

# --- what every answer must be --------------------------------------------------------


@pytest.fixture
async def fuzz_client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app with the token and route caches of a real server: requests that
    use the same token don't read it again, which makes thousands of them affordable."""
    app = create_app(settings.with_changes(token_cache_seconds=5.0, route_cache_seconds=2.0))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            yield client


async def send(
    client: httpx.AsyncClient,
    method: str,
    *,
    url: str = "/graphql",
    params: Any = None,
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    try:
        return await asyncio.wait_for(
            client.request(method, url, params=params, content=content, headers=headers),
            REQUEST_TIMEOUT_SECONDS,
        )
    except TimeoutError:
        pytest.fail(
            f"no answer in {REQUEST_TIMEOUT_SECONDS} s: {method} {url} {params!r} {content!r}"
        )


def request_headers(
    demo: DemoData, token: str | None, accept: str | None, **extra: str
) -> dict[str, str]:
    """``token`` names a demo token, or is sent as the whole Authorization header."""
    headers = dict(extra)
    if token in demo.tokens:
        headers["Authorization"] = f"Bearer {demo.tokens[token]}"
    elif token is not None:
        headers["Authorization"] = token
    if accept is not None:
        headers["Accept"] = accept
    return headers


def media_type_for(accept: str | None) -> str:
    return GRAPHQL_JSON if accept is not None and accept.startswith(GRAPHQL_JSON) else JSON


def keys_of(value: Any) -> set[str]:
    if isinstance(value, dict):
        return set(value).union(*(keys_of(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(item) for item in value))
    return set()


def check_error(error: Any, request: str) -> None:
    assert isinstance(error, dict), error
    assert isinstance(error.get("message"), str), error
    extensions = error.get("extensions")
    assert isinstance(extensions, dict), f"an error without extensions: {error}\n{request}"
    code = extensions.get("code")
    assert code in STATUS_CODES, f"an undocumented code: {error}\n{request}"
    assert extensions.get("status") == STATUS_CODES[code].http_status, error
    assert code != "application-crash", f"an unexpected exception: {error}\n{request}"
    assert extensions["status"] < 500, f"a 5xx code: {error}\n{request}"


def check_body(body: Any, request: str) -> None:
    """One response body, or one slot of a batch's answer."""
    assert isinstance(body, dict), body
    # Data keys are the document's own, aliases included; the rest are the server's.
    assert not keys_of({**body, "data": None}) & LEAK_KEYS, (body, request)
    errors = body.get("errors")
    if errors is None:
        assert "data" in body, body
        assert body.get("extensions") == {"status": "action-successful"}, body
        return
    assert isinstance(errors, list), body
    assert errors, body
    for error in errors:
        check_error(error, request)


def check_answer(response: httpx.Response, request: str, media_type: str) -> Any:
    """The response's body, once it is known to keep the contract."""
    assert response.status_code < 500, (response.status_code, response.text, request)
    assert response.status_code in ANSWERABLE, (response.status_code, response.text, request)
    assert response.headers.get("content-type") == media_type, (
        response.status_code,
        response.headers.get("content-type"),
        response.text,
        request,
    )
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        pytest.fail(f"not JSON: {response.content[:500]!r}\n{request}")
    text = response.text
    for marker in LEAK_MARKERS:
        assert marker not in text or marker in request, (marker, text, request)
    if isinstance(body, list):
        # A batch: each slot is an answer of its own, the array itself a success.
        assert response.status_code == 200, (response.status_code, body)
        for item in body:
            check_body(item, request)
        return body
    check_body(body, request)
    if response.status_code not in (200, 405):
        # Decided before the document ran, or a request error in the spec's media type:
        # the HTTP status is the first error's number.
        assert response.status_code == body["errors"][0]["extensions"]["status"], body
    return body


# --- the tests ------------------------------------------------------------------------


@pytest.mark.parametrize("field", [*QUERY_FIELDS, *MUTATION_FIELDS])
@FIELD_EXAMPLES
@given(data=st.data())
async def test_generated_documents_are_answered_within_the_contract(
    field: str, data: st.DataObject, fuzz_client: httpx.AsyncClient, demo: DemoData
) -> None:
    for request in data.draw(field_requests(field), label="requests"):
        # given
        document = request["document"]
        headers = request_headers(demo, request["role"], request["accept"])

        # when
        if request["method"] == "GET":
            response = await send(fuzz_client, "GET", params={"query": document}, headers=headers)
        else:
            headers["Content-Type"] = JSON
            body = orjson.dumps({"query": document})
            response = await send(fuzz_client, "POST", content=body, headers=headers)

        # then
        media_type = media_type_for(request["accept"])
        answer = check_answer(response, document, media_type)
        if media_type == JSON or "data" in answer:
            assert response.status_code == 200, (answer, document)
        else:
            # A request error in the spec's media type: the document's 4xx, or a route or
            # service withdrawn.
            assert response.status_code in (400, 404, 503), (answer, document)


@TRANSPORT_EXAMPLES
@given(body=raw_bodies, content_type=content_types, token=authorizations, accept=accepts)
async def test_random_bytes_posted_are_refused_with_a_code(
    body: bytes,
    content_type: str | None,
    token: str | None,
    accept: str | None,
    fuzz_client: httpx.AsyncClient,
    demo: DemoData,
) -> None:
    # given: without the preflight header a multipart body is refused before it is read
    # (test_random_multipart_bodies reads them)
    headers = request_headers(demo, token, accept)
    if content_type is not None:
        headers["Content-Type"] = content_type

    # when
    response = await send(fuzz_client, "POST", content=body, headers=headers)

    # then
    check_answer(response, repr(body), media_type_for(accept))


@TRANSPORT_EXAMPLES
@given(body=multipart_bodies(), content_type=st.sampled_from(MULTIPART_TYPES), token=authorizations)
async def test_random_multipart_bodies_are_refused_with_a_code(
    body: bytes,
    content_type: str,
    token: str | None,
    fuzz_client: httpx.AsyncClient,
    demo: DemoData,
) -> None:
    # given
    headers = request_headers(
        demo, token, None, **{"Content-Type": content_type, "GraphQL-Require-Preflight": "1"}
    )

    # when
    response = await send(fuzz_client, "POST", content=body, headers=headers)

    # then
    check_answer(response, repr(body), JSON)


@TRANSPORT_EXAMPLES
@given(params=st.one_of(query_params, raw_query_strings), token=tokens, accept=accepts)
async def test_random_query_strings_are_refused_with_a_code(
    params: dict[str, str] | str,
    token: str | None,
    accept: str | None,
    fuzz_client: httpx.AsyncClient,
    demo: DemoData,
) -> None:
    # given
    headers = request_headers(demo, token, accept)

    # when: httpx encodes a dict; a string is the query string as sent
    if isinstance(params, str):
        response = await send(fuzz_client, "GET", url=f"/graphql?{params}", headers=headers)
    else:
        response = await send(fuzz_client, "GET", params=params, headers=headers)

    # then
    check_answer(response, repr(params), media_type_for(accept))


@TRANSPORT_EXAMPLES
@given(body=json_bodies, token=tokens, accept=accepts)
async def test_random_json_posted_is_answered_with_a_code(
    body: str,
    token: str | None,
    accept: str | None,
    fuzz_client: httpx.AsyncClient,
    demo: DemoData,
) -> None:
    # given
    headers = request_headers(demo, token, accept, **{"Content-Type": JSON})

    # when
    response = await send(fuzz_client, "POST", content=body.encode(), headers=headers)

    # then
    check_answer(response, body, media_type_for(accept))
