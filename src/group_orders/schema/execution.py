"""Running one GraphQL operation: parse, validate, execute, and give every error its code.

Transport-neutral: the HTTP endpoint (and later the WebSocket) hands over the request's
text and variables, and gets back the response body. Codes are decided from error types
and the document's AST, never from message text (graphql-core rewords its messages).
"""

from __future__ import annotations

import logging
import uuid
from collections import OrderedDict
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass, field
from typing import Any, cast

import strawberry
from graphql import (
    ArgumentNode,
    DocumentNode,
    ExecutionResult,
    FieldNode,
    FragmentDefinitionNode,
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    VariableDefinitionNode,
    Visitor,
    execute,
    parse,
    specified_rules,
    subscribe,
    validate,
    visit,
)
from graphql.language import Node
from graphql.pyutils import is_awaitable
from graphql.type import is_required_argument
from graphql.validation import (
    ASTValidationRule,
    NoSchemaIntrospectionCustomRule,
    ProvidedRequiredArgumentsRule,
)
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext

from group_orders.db.engine import is_database_unavailable
from group_orders.errors import ApiError, database_unavailable, error_extensions
from group_orders.schema.limits import QueryLimits, check_shape, check_tokens
from group_orders.schema.plans import QueryPlan, query_plan
from group_orders.schema.selection import selected_fields

logger = logging.getLogger("group_orders.graphql")


@dataclass(frozen=True, slots=True)
class OperationRequest:
    query: str
    variables: Mapping[str, Any] | None = None
    operation_name: str | None = None


@dataclass(frozen=True, slots=True)
class PreparedOperation:
    document: DocumentNode
    operation: OperationDefinitionNode
    # The operation's root fields that are routes (introspection fields are not).
    routes: tuple[str, ...]
    # How to answer it without graphql-core's field-by-field execution, if it can be.
    plan: QueryPlan | None = None

    @property
    def introspection_only(self) -> bool:
        return not self.routes

    @property
    def is_mutation(self) -> bool:
        return self.operation.operation is OperationType.MUTATION

    @property
    def is_subscription(self) -> bool:
        return self.operation.operation is OperationType.SUBSCRIPTION


class RequestErrors(Exception):
    """Errors that stop an operation before it executes: the response has no ``data``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(errors[0]["message"])
        self.errors = errors

    @property
    def status(self) -> int:
        return int(self.errors[0]["extensions"]["status"])


class MutationNotAllowed(Exception):
    """A mutation sent where only queries may run (GET)."""


class _RequiredArgumentsRule(ProvidedRequiredArgumentsRule):
    """A missing required argument is ``missing-param`` naming it; the rest, as usual."""

    def leave_field(self, field_node: FieldNode, *_args: Any) -> Any:
        field_def = self.context.get_field_def()
        if not field_def or not field_def.args:
            return None
        provided = {argument.name.value for argument in field_node.arguments or ()}
        for name, argument in field_def.args.items():
            if name not in provided and is_required_argument(argument):
                self.report_error(
                    GraphQLError(
                        f"The argument '{name}' of '{field_node.name.value}' is required.",
                        field_node,
                        extensions=error_extensions("missing-param", param=name),
                    )
                )
        return None


VALIDATION_RULES: tuple[type[ASTValidationRule], ...] = tuple(
    _RequiredArgumentsRule if rule is ProvidedRequiredArgumentsRule else rule
    for rule in specified_rules
)


class _ArgumentFinder(Visitor):
    """Maps every node inside an argument's value to that argument's name."""

    def __init__(self) -> None:
        super().__init__()
        self.owner: dict[int, str] = {}
        self._current: list[str] = []

    def enter_argument(self, node: ArgumentNode, *_args: Any) -> None:
        self._current.append(node.name.value)
        self.owner[id(node)] = node.name.value

    def leave_argument(self, *_args: Any) -> None:
        self._current.pop()

    def enter(self, node: Node, *_args: Any) -> None:
        if self._current:
            self.owner.setdefault(id(node), self._current[-1])


def _param_of(error: GraphQLError, document: DocumentNode | None) -> str | None:
    nodes = error.nodes or []
    if not nodes:
        return None
    node = nodes[0]
    if isinstance(node, VariableDefinitionNode):
        return node.variable.name.value
    if document is None:
        return None
    finder = _ArgumentFinder()
    visit(document, finder)
    return finder.owner.get(id(node))


def format_error(error: GraphQLError, document: DocumentNode | None = None) -> dict[str, Any]:
    """The response form of an error, with ``extensions.code`` and ``status`` always set.

    Unexpected exceptions are masked: the client gets an ``errorId`` that the log line
    carries, never the exception's text.
    """
    formatted: dict[str, Any] = {"message": error.message}
    if error.locations:
        formatted["locations"] = [
            {"line": location.line, "column": location.column} for location in error.locations
        ]
    if error.path:
        formatted["path"] = list(error.path)
    original = error.original_error
    if isinstance(original, ApiError):
        formatted["message"] = original.message
        formatted["extensions"] = original.extensions()
    elif original is not None and is_database_unavailable(original):
        logger.warning("service-not-found: database unavailable (%s)", type(original).__name__)
        unavailable = database_unavailable()
        formatted["message"] = unavailable.message
        formatted["extensions"] = unavailable.extensions()
    elif original is not None and not isinstance(original, GraphQLError):
        error_id = uuid.uuid4().hex
        logger.error(
            "application-crash errorId=%s path=%s",
            error_id,
            ".".join(str(part) for part in error.path or ()),
            exc_info=original,
        )
        formatted["message"] = f"An unexpected error occurred. Quote errorId {error_id}."
        formatted["extensions"] = error_extensions("application-crash", errorId=error_id)
    elif error.extensions and "code" in error.extensions:
        formatted["extensions"] = dict(error.extensions)
    else:
        formatted["extensions"] = error_extensions(
            "invalid-param", param=_param_of(error, document)
        )
    return formatted


SUBSCRIPTIONS_OVER_WEBSOCKET = (
    "Subscriptions are served over WebSocket (graphql-transport-ws) on /graphql."
)


@dataclass(slots=True)
class _Document:
    """A query text's document, its validation errors (both depend on the text only) and
    the plans of its operations, made when first run."""

    document: DocumentNode
    errors: list[dict[str, Any]]
    plans: dict[int, QueryPlan | None] = field(default_factory=dict)


def _request_error(code: str, message: str, param: str | None = None) -> RequestErrors:
    return RequestErrors([{"message": message, "extensions": error_extensions(code, param=param)}])


class OperationRunner:
    """Parses, validates and executes operations against one schema.

    Parsed and validated documents are kept in a small LRU keyed by the query text, so a
    client that sends the same text with new variables pays for parsing once. So are the
    plans of their operations (``schema/plans.py``); ``use_plans = False`` runs every
    operation through graphql-core.
    """

    def __init__(
        self,
        schema: strawberry.Schema,
        *,
        limits: QueryLimits,
        production: bool = False,
        cache_size: int = 512,
        use_plans: bool = True,
    ) -> None:
        self._schema: GraphQLSchema = schema._schema
        self.use_plans = use_plans
        self._limits = limits
        self._cache_size = cache_size
        # In production the schema is not for browsing: no introspection, and no "did you
        # mean" hints that would spell out field names to a stranger.
        self._production = production
        self._rules = (
            (*VALIDATION_RULES, NoSchemaIntrospectionCustomRule) if production else VALIDATION_RULES
        )
        self._documents: OrderedDict[str, _Document] = OrderedDict()

    def _document(self, query: str) -> _Document:
        cached = self._documents.get(query)
        if cached is not None:
            self._documents.move_to_end(query)
            return cached
        try:
            check_tokens(query, self._limits.max_tokens)
            document = parse(query, max_tokens=self._limits.max_tokens)
            check_shape(document, self._limits)
        except ApiError as error:
            raise RequestErrors(
                [{"message": error.message, "extensions": error.extensions()}]
            ) from None
        except GraphQLSyntaxError as error:
            formatted = format_error(error)
            formatted["extensions"] = error_extensions("invalid-param", param="query")
            raise RequestErrors([formatted]) from None
        errors = validate(self._schema, document, self._rules, hide_suggestions=self._production)
        cached = _Document(document, [format_error(error, document) for error in errors])
        self._documents[query] = cached
        if len(self._documents) > self._cache_size:
            self._documents.popitem(last=False)
        return cached

    def prepare(
        self, request: OperationRequest, *, allow_mutations: bool = True
    ) -> PreparedOperation:
        """The validated operation to run, or ``RequestErrors``.

        ``allow_mutations=False`` (GET) refuses a mutation before anything else, with
        ``MutationNotAllowed``.
        """
        cached = self._document(request.query)
        document, errors = cached.document, cached.errors
        operations = [
            definition
            for definition in document.definitions
            if isinstance(definition, OperationDefinitionNode)
        ]
        named = [
            operation
            for operation in operations
            if request.operation_name is None
            or (operation.name is not None and operation.name.value == request.operation_name)
        ]
        if not allow_mutations and any(
            operation.operation is OperationType.MUTATION for operation in named
        ):
            raise MutationNotAllowed
        if errors:
            raise RequestErrors(errors)
        if not named:
            raise _request_error(
                "invalid-param",
                f"The document has no operation named '{request.operation_name}'.",
                "operationName",
            )
        if len(named) > 1:
            raise _request_error(
                "missing-param",
                "The document holds several operations: name one in operationName.",
                "operationName",
            )
        operation = named[0]
        plan = None
        if self.use_plans:
            if id(operation) not in cached.plans:
                cached.plans[id(operation)] = query_plan(
                    self._schema, operation, hide_suggestions=self._production
                )
            plan = cached.plans[id(operation)]
        if plan is not None:
            # One root field, no fragments or directives: nothing to work out per request.
            routes: tuple[str, ...] = plan.routes
        else:
            fragments = {
                definition.name.value: definition
                for definition in document.definitions
                if isinstance(definition, FragmentDefinitionNode)
            }
            root_fields = selected_fields(
                [operation.selection_set], fragments, request.variables or {}
            )
            routes = tuple(
                dict.fromkeys(
                    field.name.value
                    for field in root_fields
                    if not field.name.value.startswith("__")
                )
            )
        return PreparedOperation(document, operation, routes, plan)

    async def execute(
        self, prepared: PreparedOperation, request: OperationRequest, context: Any
    ) -> dict[str, Any]:
        """The response body of the operation, or ``RequestErrors`` for bad variables."""
        if prepared.is_subscription:
            raise _request_error("invalid-param", SUBSCRIPTIONS_OVER_WEBSOCKET, "query")
        variables = _checked_variables(prepared, request)
        if prepared.plan is not None:
            data = await prepared.plan.run(context, variables)
            if data is not None:
                return {"data": data, "extensions": {"status": "action-successful"}}
        outcome = execute(
            self._schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=request.operation_name,
            executor_class=StrawberryGraphQLCoreExecutionContext,
        )
        result = cast(ExecutionResult, await outcome if is_awaitable(outcome) else outcome)
        errors = [format_error(error, prepared.document) for error in result.errors or ()]
        if result.data is None and errors and not any("path" in error for error in errors):
            # Variables that could not be coerced: the operation never started.
            raise RequestErrors(errors)
        body: dict[str, Any] = {}
        if errors:
            body["errors"] = errors
        body["data"] = result.data
        if not errors:
            body["extensions"] = {"status": "action-successful"}
        return body

    async def subscribe(
        self, prepared: PreparedOperation, request: OperationRequest, context: Any
    ) -> AsyncGenerator[dict[str, Any], None]:
        """The response bodies of a subscription, one per event.

        Raises ``RequestErrors`` for whatever stops it before its first event: bad
        variables, and the errors of its root field (token, role, view, id).
        """
        variables = _checked_variables(prepared, request)
        outcome = subscribe(
            self._schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=request.operation_name,
            executor_class=StrawberryGraphQLCoreExecutionContext,
        )
        stream = await outcome if is_awaitable(outcome) else outcome
        if isinstance(stream, ExecutionResult):
            raise RequestErrors(
                [format_error(error, prepared.document) for error in stream.errors or ()]
            )
        return _bodies(cast(AsyncGenerator[ExecutionResult, None], stream), prepared.document)


def _checked_variables(prepared: PreparedOperation, request: OperationRequest) -> dict[str, Any]:
    """The operation's variables, or ``missing-param`` naming a required one not given."""
    variables = dict(request.variables or {})
    for definition in prepared.operation.variable_definitions or ():
        name = definition.variable.name.value
        if (
            isinstance(definition.type, NonNullTypeNode)
            and definition.default_value is None
            and variables.get(name) is None
        ):
            raise _request_error("missing-param", f"The variable '${name}' is required.", name)
    return variables


async def _bodies(
    stream: AsyncGenerator[ExecutionResult, None], document: DocumentNode
) -> AsyncGenerator[dict[str, Any], None]:
    try:
        async for result in stream:
            errors = [format_error(error, document) for error in result.errors or ()]
            body: dict[str, Any] = {}
            if errors:
                body["errors"] = errors
            body["data"] = result.data
            if not errors:
                body["extensions"] = {"status": "action-successful"}
            yield body
    finally:
        await stream.aclose()
