"""Cached plans for the query shape frontends send most: one ``groupOrder``.

graphql-core resolves every field of every response on its own: a resolver call, an
``info`` object, a path and a completion step per field, which costs more than the
lookup itself. For a document whose one root field is ``groupOrder`` and whose fields
below it are plain (attributes of the objects the resolvers build) or the group order's
``session``, the plan made once per document reads the attributes straight into the
response, completing each value with its GraphQL type's own ``coerce_output_value``.

A plan answers only when everything went well. On anything else (any error, a null
where the schema says non-null, a value it does not know) it gives up, and the general
path runs the operation from the start and answers it, errors included. The resolvers'
work is the same on both paths: a plan calls ``group_order_in_view`` and
``session_in_view``, which the Strawberry resolvers call too. Documents a plan does not
cover (fragments, directives, other root fields, fields with resolvers of their own
such as ``client`` or ``rows``) get no plan.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    FieldNode,
    GraphQLEnumType,
    GraphQLField,
    GraphQLLeafType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    GraphQLScalarType,
    GraphQLSchema,
    NamedTypeNode,
    NonNullTypeNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    Undefined,
    VariableDefinitionNode,
    VariableNode,
)
from graphql.execution.values import VariableValues, get_argument_values, get_variable_values
from graphql.type import is_required_argument

from group_orders.enums import ApplicationSlug, GroupOrderView, SessionView
from group_orders.resolvers.group_orders import group_order_in_view
from group_orders.schema.context import RequestContext
from group_orders.schema.types import session_in_view

_STRAWBERRY_FIELD = "strawberry-definition"

# A value's completion: the response form of a resolved value, or ``_GiveUp``.
Completer = Callable[[Any], Any]
# One entry of the group order's selection: its response key and how to answer it.
Entry = tuple[str, Callable[[Any, RequestContext, Any], Any]]


class _GiveUp(Exception):
    """The plan cannot answer this; the general path will."""


class _NoPlan(Exception):
    """The document holds something a plan does not cover."""


def _leaf(type_: GraphQLLeafType, nullable: bool) -> Completer:
    coerce = type_.coerce_output_value

    def complete(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise _GiveUp
        coerced = coerce(value)
        if coerced is None or coerced is Undefined:
            raise _GiveUp
        return coerced

    return complete


def _list(item: Completer, nullable: bool) -> Completer:
    def complete(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise _GiveUp
        if not isinstance(value, list | tuple):
            raise _GiveUp
        return [item(element) for element in value]

    return complete


def _object(fields: tuple[tuple[str, str | None, Completer], ...], nullable: bool) -> Completer:
    def complete(value: Any) -> Any:
        if value is None:
            if nullable:
                return None
            raise _GiveUp
        return {
            key: completer(getattr(value, attribute) if attribute is not None else None)
            for key, attribute, completer in fields
        }

    return complete


def _fields(selection_set: SelectionSetNode | None) -> list[FieldNode]:
    """The plain field nodes of a selection set: no fragments, directives or twice-used
    response keys (graphql-core would merge them)."""
    if selection_set is None:
        raise _NoPlan
    nodes: list[FieldNode] = []
    keys: set[str] = set()
    for selection in selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.directives:
            raise _NoPlan
        key = (selection.alias or selection.name).value
        if key in keys:
            raise _NoPlan
        keys.add(key)
        nodes.append(selection)
    return nodes


def _completer(type_: GraphQLOutputType, node: FieldNode) -> Completer:
    nullable = not isinstance(type_, GraphQLNonNull)
    named = type_.of_type if isinstance(type_, GraphQLNonNull) else type_
    if isinstance(named, GraphQLList):
        if node.selection_set is not None:
            raise _NoPlan
        item = named.of_type
        item_nullable = not isinstance(item, GraphQLNonNull)
        item = item.of_type if isinstance(item, GraphQLNonNull) else item
        if not isinstance(item, GraphQLScalarType | GraphQLEnumType):
            raise _NoPlan
        return _list(_leaf(item, item_nullable), nullable)
    if isinstance(named, GraphQLScalarType | GraphQLEnumType):
        if node.selection_set is not None:
            raise _NoPlan
        return _leaf(named, nullable)
    if isinstance(named, GraphQLObjectType):
        return _object(_plain_fields(named, node.selection_set), nullable)
    raise _NoPlan


def _typename(name: str) -> Completer:
    return lambda _value: name


def _plain_field(parent: GraphQLObjectType, node: FieldNode) -> tuple[str, str | None, Completer]:
    key = (node.alias or node.name).value
    name = node.name.value
    if name == "__typename":
        return key, None, _typename(parent.name)
    field = parent.fields.get(name)
    definition = field.extensions.get(_STRAWBERRY_FIELD) if field is not None else None
    if field is None or definition is None or not definition.is_basic_field or node.arguments:
        raise _NoPlan
    return key, definition.python_name, _completer(field.type, node)


def _plain_fields(
    parent: GraphQLObjectType, selection_set: SelectionSetNode | None
) -> tuple[tuple[str, str | None, Completer], ...]:
    return tuple(_plain_field(parent, node) for node in _fields(selection_set))


def _names(selection_set: SelectionSetNode | None) -> tuple[str, ...]:
    return tuple(node.name.value for node in _fields(selection_set))


_ABSENT = object()


@dataclass(frozen=True, slots=True)
class _Variable:
    """A variable of a plain type: ``ID``, ``String`` or an enum, without a default.

    Its value is coerced as graphql-core coerces it where that is trivially so (a string;
    an enum value's name); for anything else the plan coerces as graphql-core does."""

    name: str
    nullable: bool
    # An enum's values by name, or None for ID and String (a string is taken as it is).
    members: Mapping[str, Any] | None

    def coerce(self, inputs: Mapping[str, Any], coerced: dict[str, Any]) -> bool:
        value = inputs.get(self.name, _ABSENT)
        if value is _ABSENT or value is None:
            if not self.nullable:
                return False
            if value is None:
                coerced[self.name] = None
            return True
        if not isinstance(value, str):
            return False
        if self.members is None:
            coerced[self.name] = value
            return True
        member = self.members.get(value, _ABSENT)
        if member is _ABSENT:
            return False
        coerced[self.name] = member
        return True


def _variable(schema: GraphQLSchema, definition: VariableDefinitionNode) -> _Variable | None:
    type_node = definition.type
    nullable = not isinstance(type_node, NonNullTypeNode)
    if isinstance(type_node, NonNullTypeNode):
        type_node = type_node.type
    if definition.default_value is not None or not isinstance(type_node, NamedTypeNode):
        return None
    named = schema.get_type(type_node.name.value)
    if named is not None and named.name in ("ID", "String"):
        return _Variable(definition.variable.name.value, nullable, None)
    if isinstance(named, GraphQLEnumType):
        members = {name: named.coerce_input_value(name) for name in named.values}
        return _Variable(definition.variable.name.value, nullable, members)
    return None


@dataclass(frozen=True, slots=True)
class _Variables:
    """An operation's variables, coerced as graphql-core's execution coerces them."""

    schema: GraphQLSchema
    definitions: tuple[VariableDefinitionNode, ...]
    # Set when every variable is of a plain type (see ``_Variable``).
    plain: tuple[_Variable, ...] | None
    hide_suggestions: bool

    def coerce(self, inputs: Mapping[str, Any]) -> VariableValues | None:
        """The coerced values, or None where graphql-core would report errors."""
        if self.plain is not None:
            coerced: dict[str, Any] = {}
            if all(variable.coerce(inputs, coerced) for variable in self.plain):
                return VariableValues(sources={}, coerced=coerced)
        values = get_variable_values(
            self.schema, self.definitions, dict(inputs), hide_suggestions=self.hide_suggestions
        )
        return None if isinstance(values, list) else values


def _variables(
    schema: GraphQLSchema, operation: OperationDefinitionNode, hide_suggestions: bool
) -> _Variables:
    definitions = tuple(operation.variable_definitions or ())
    plain = tuple(_variable(schema, definition) for definition in definitions)
    return _Variables(
        schema,
        definitions,
        None if any(variable is None for variable in plain) else plain,  # type: ignore[arg-type]
        hide_suggestions,
    )


@dataclass(frozen=True, slots=True)
class _Arguments:
    """A field's arguments, coerced as graphql-core's execution coerces them: those
    written in the document (and defaults) once, those from variables per request."""

    field: GraphQLField
    node: FieldNode
    constants: dict[str, Any]
    # (argument, variable) for the arguments given by a variable.
    from_variables: tuple[tuple[str, str], ...]

    def values(self, variables: VariableValues) -> dict[str, Any]:
        values = dict(self.constants)
        for argument, variable in self.from_variables:
            value = variables.coerced.get(variable, _ABSENT)
            if value is _ABSENT or (
                value is None and is_required_argument(self.field.args[argument])
            ):
                # A default to apply, or an error to report: as graphql-core does.
                return get_argument_values(self.field, self.node, variables)
            values[argument] = value
        return values


def _arguments(field: GraphQLField, node: FieldNode) -> _Arguments:
    given = {argument.name.value: argument for argument in node.arguments or ()}
    from_variables = tuple(
        (name, argument.value.name.value)
        for name, argument in given.items()
        if isinstance(argument.value, VariableNode)
    )
    variable_arguments = {name for name, _variable in from_variables}
    literal_node = FieldNode(
        name=node.name,
        arguments=tuple(
            argument for name, argument in given.items() if name not in variable_arguments
        ),
    )
    # Literals and defaults need no variables: coerced here once (raises if invalid).
    constants = {
        name: value
        for name, value in get_argument_values(
            _optional(field, variable_arguments), literal_node
        ).items()
    }
    return _Arguments(field, node, constants, from_variables)


def _optional(field: GraphQLField, names: set[str]) -> GraphQLField:
    """``field`` with the arguments ``names`` left out, so that the rest can be coerced
    without them."""
    return GraphQLField(
        field.type,
        args={name: argument for name, argument in field.args.items() if name not in names},
    )


def _plain_entry(key: str, attribute: str | None, completer: Completer) -> Entry:
    if attribute is None:
        return key, lambda _source, _context, _variables: completer(None)
    return key, lambda source, _context, _variables: completer(getattr(source, attribute))


def _session_entry(parent: GraphQLObjectType, node: FieldNode) -> Entry:
    """The group order's ``session``: its resolver's work, then plain fields."""
    field = parent.fields["session"]
    arguments = _arguments(field, node)
    names = _names(node.selection_set)
    complete = _completer(field.type, node)

    def answer(source: Any, context: RequestContext, variables: Any) -> Any:
        view = SessionView(arguments.values(variables)["view"])
        return complete(session_in_view(context, view, source.access.role, names))

    return (node.alias or node.name).value, answer


@dataclass(frozen=True, slots=True)
class QueryPlan:
    """How to answer one operation whose only root field is ``groupOrder``."""

    key: str
    # The operation's routes: its one root field.
    routes: tuple[str, ...]
    variables: _Variables
    arguments: _Arguments
    names: tuple[str, ...]
    entries: tuple[Entry, ...]

    async def run(
        self, context: RequestContext, variables: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """The operation's ``data``, or None where the general path must answer."""
        try:
            coerced = self.variables.coerce(variables)
            if coerced is None:
                return None
            values = self.arguments.values(coerced)
            application = values.get("application")
            group_order = await group_order_in_view(
                context,
                values["id"],
                GroupOrderView(values["view"]),
                ApplicationSlug(application) if application is not None else None,
                self.names,
                # One operation reads its one group order at once; a batch's operations
                # go through their shared loader, which reads them together.
                batched=context.shared_loaders is not None,
            )
            return {
                self.key: {
                    key: answer(group_order, context, coerced) for key, answer in self.entries
                }
            }
        except Exception:
            # Every failure is the general path's to answer, in its own words.
            return None


def query_plan(
    schema: GraphQLSchema, operation: OperationDefinitionNode, *, hide_suggestions: bool
) -> QueryPlan | None:
    """The plan of ``operation`` (of a validated document), or None if it has none."""
    if operation.operation is not OperationType.QUERY or operation.directives:
        return None
    try:
        [root] = _fields(operation.selection_set)
        if root.name.value != "groupOrder" or schema.query_type is None:
            return None
        field = schema.query_type.fields["groupOrder"]
        group_order_type = field.type
        if not isinstance(group_order_type, GraphQLObjectType):
            return None
        entries: list[Entry] = []
        for node in _fields(root.selection_set):
            if node.name.value == "session":
                entries.append(_session_entry(group_order_type, node))
            else:
                entries.append(_plain_entry(*_plain_field(group_order_type, node)))
        arguments = _arguments(field, root)
    except Exception:
        # _NoPlan, or a document this module does not foresee: graphql-core runs it.
        return None
    return QueryPlan(
        key=(root.alias or root.name).value,
        routes=(root.name.value,),
        variables=_variables(schema, operation, hide_suggestions),
        arguments=arguments,
        names=_names(root.selection_set),
        entries=tuple(entries),
    )
