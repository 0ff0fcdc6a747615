"""Limits on a GraphQL document: tokens, depth and aliases.

Each is a setting; a document over one is ``invalid-param`` with ``extensions.param``
naming the limit, decided before the document is validated or run. Tokens are counted
with graphql-core's lexer before parsing, so a huge document costs no parse.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    Source,
    TokenKind,
)
from graphql.language.lexer import Lexer

from group_orders.errors import ApiError


@dataclass(frozen=True, slots=True)
class QueryLimits:
    max_tokens: int
    max_depth: int
    max_aliases: int


def check_tokens(query: str, limit: int) -> None:
    """Refuse a document of more than ``limit`` tokens, without parsing it."""
    lexer = Lexer(Source(query))
    count = 0
    try:
        while lexer.advance().kind is not TokenKind.EOF:
            count += 1
            if count > limit:
                raise ApiError(
                    "invalid-param",
                    f"The document has more than {limit} tokens, the limit.",
                    param="max_query_tokens",
                )
    except GraphQLError:
        # A lexing error is the parser's to report, with its position.
        return


def _depth_and_aliases(document: DocumentNode) -> tuple[int, int]:
    """The deepest field nesting and the number of aliases as executed: a fragment
    spread twice counts twice. Each fragment is measured once, so a document of
    fragments that spread each other many times costs no more to measure than to read."""
    fragments = {
        definition.name.value: definition
        for definition in document.definitions
        if isinstance(definition, FragmentDefinitionNode)
    }
    measured: dict[str, tuple[int, int]] = {}

    def measure(selection_set: SelectionSetNode | None, path: frozenset[str]) -> tuple[int, int]:
        depth = aliases = 0
        if selection_set is None:
            return depth, aliases
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                below, inner = measure(selection.selection_set, path)
                depth = max(depth, 1 + below)
                aliases += inner + (selection.alias is not None)
            elif isinstance(selection, InlineFragmentNode):
                below, inner = measure(selection.selection_set, path)
                depth, aliases = max(depth, below), aliases + inner
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                # A cycle of fragments is a validation error; don't follow it here.
                if name in path or name not in fragments:
                    continue
                if name not in measured:
                    measured[name] = measure(fragments[name].selection_set, path | {name})
                below, inner = measured[name]
                depth, aliases = max(depth, below), aliases + inner
        return depth, aliases

    deepest = total = 0
    for definition in document.definitions:
        if isinstance(definition, OperationDefinitionNode):
            depth, aliases = measure(definition.selection_set, frozenset())
            deepest, total = max(deepest, depth), total + aliases
    return deepest, total


def check_shape(document: DocumentNode, limits: QueryLimits) -> None:
    """Refuse a document nested deeper, or with more aliases, than the limits."""
    depth, aliases = _depth_and_aliases(document)
    if depth > limits.max_depth:
        raise ApiError(
            "invalid-param",
            f"The document nests fields {depth} deep; the limit is {limits.max_depth}.",
            param="max_query_depth",
        )
    if aliases > limits.max_aliases:
        raise ApiError(
            "invalid-param",
            f"The document has {aliases} aliases; the limit is {limits.max_aliases}.",
            param="max_aliases",
        )
