"""The field names a selection asks for, with fragments expanded and @skip/@include obeyed."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from graphql import (
    BooleanValueNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    SelectionSetNode,
    VariableNode,
)

from group_orders.enums import Role
from group_orders.errors import ApiError
from group_orders.views import View


def _condition(node: Any, directive: str, variables: Mapping[str, Any]) -> bool | None:
    for applied in node.directives or ():
        if applied.name.value != directive:
            continue
        for argument in applied.arguments or ():
            if argument.name.value != "if":
                continue
            value = argument.value
            if isinstance(value, VariableNode):
                return bool(variables.get(value.name.value))
            if isinstance(value, BooleanValueNode):
                return value.value
    return None


def _included(node: Any, variables: Mapping[str, Any]) -> bool:
    if _condition(node, "skip", variables) is True:
        return False
    return _condition(node, "include", variables) is not False


def selected_fields(
    selection_sets: Iterable[SelectionSetNode | None],
    fragments: Mapping[str, FragmentDefinitionNode],
    variables: Mapping[str, Any],
) -> list[FieldNode]:
    """The field nodes directly under the given selection sets, in document order."""
    found: list[FieldNode] = []
    seen_fragments: set[str] = set()

    def walk(selection_set: SelectionSetNode | None) -> None:
        if selection_set is None:
            return
        for selection in selection_set.selections:
            if not _included(selection, variables):
                continue
            if isinstance(selection, FieldNode):
                found.append(selection)
            elif isinstance(selection, InlineFragmentNode):
                walk(selection.selection_set)
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                fragment = fragments.get(name)
                if fragment is not None and name not in seen_fragments:
                    seen_fragments.add(name)
                    walk(fragment.selection_set)

    for selection_set in selection_sets:
        walk(selection_set)
    return found


def selected_field_names(info: Any, path: Sequence[str] = ()) -> list[str]:
    """The names of the fields selected under the field a resolver is answering, or,
    with ``path`` (such as ``("edges", "node")``), under that path below it."""
    raw = info._raw_info
    nodes = selected_fields(
        (node.selection_set for node in raw.field_nodes), raw.fragments, raw.variable_values
    )
    for name in path:
        nodes = selected_fields(
            (node.selection_set for node in nodes if node.name.value == name),
            raw.fragments,
            raw.variable_values,
        )
    return [node.name.value for node in nodes]


def check_view(
    info: Any, view: View, role: Role, *, param: str = "view", path: Sequence[str] = ()
) -> None:
    """Refuse a view the role may not use, or a selection outside the view (the
    selection at ``path`` below the field, for a connection's nodes)."""
    check_view_role(view, role, param=param)
    check_view_fields(view, selected_field_names(info, path), param=param)


def check_view_role(view: View, role: Role, *, param: str = "view") -> None:
    """Refuse a view the role may not use."""
    if role not in view.roles:
        allowed = ", ".join(sorted(r.value for r in view.roles))
        raise ApiError(
            "invalid-param",
            f"The view '{view.name}' is not available to the role {role.value}; "
            f"it is for: {allowed}.",
            param=param,
        )


def check_view_fields(view: View, selected: Iterable[str], *, param: str = "view") -> None:
    """Refuse a selection (field names) outside the view."""
    outside = view.fields_outside(selected)
    if outside:
        raise ApiError(
            "invalid-param",
            f"The view '{view.name}' does not hold {', '.join(outside)}. "
            f"Its fields are: {', '.join(view.fields)}.",
            param=param,
            extra={"fields": outside, "viewFields": list(view.fields)},
        )
