"""Views: named sets of fields and the roles allowed to use them.

This table is the one source: the resolvers enforce it, and ``docs/views.md`` is
generated from it (a test keeps the two equal). Field names are the GraphQL names.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from group_orders.enums import GroupOrderView, Role, SessionView

ALL_ROLES = frozenset(Role)


@dataclass(frozen=True, slots=True)
class View:
    name: str
    fields: tuple[str, ...]
    roles: frozenset[Role]

    def fields_outside(self, selected: Iterable[str]) -> list[str]:
        """The selected fields this view does not hold, in the order they were selected."""
        allowed = set(self.fields)
        outside: list[str] = []
        for name in selected:
            if name not in allowed and name != "__typename" and name not in outside:
                outside.append(name)
        return outside


_COMMON = (
    "id",
    "status",
    "totalOrders",
    "createdAt",
    "updatedAt",
    "session",
    "progress",
    "sourceFileName",
    "duplicateOf",
    "client",
    "uploader",
)
_COUNTS = ("successfulOrders", "rejectedOrders", "outcome", "failureReason", "rows")
_UPLOAD_CHECK = ("normalizedCsv", "unknownColumns")
_RESULT_FILES = ("acceptedOrdersXlsx", "rejectedOrdersXlsx")
_LINKS = ("linksExpireAt",)
_WORKER_DETAIL = ("queueJobId", "attempts", "workerId", "startedAt", "finishedAt")
# How telling the uploader and the client went: for employees only.
_NOTIFICATIONS = ("notification", "webhookDeliveries")

# One order for every view's fields, so that lists of them read alike everywhere.
_FIELD_ORDER = (
    *_COMMON,
    *_UPLOAD_CHECK,
    *_LINKS,
    *_COUNTS,
    *_RESULT_FILES,
    *_WORKER_DETAIL,
    *_NOTIFICATIONS,
)


def _view(name: str, groups: tuple[tuple[str, ...], ...], roles: frozenset[Role]) -> View:
    fields = {field for group in groups for field in group}
    return View(name, tuple(field for field in _FIELD_ORDER if field in fields), roles)


GROUP_ORDER_VIEWS: dict[GroupOrderView, View] = {
    GroupOrderView.inital_upload: _view(
        "inital_upload", (_COMMON, _UPLOAD_CHECK, _LINKS), ALL_ROLES
    ),
    GroupOrderView.online_order_group_order_status: _view(
        "online_order_group_order_status", (_COMMON, _COUNTS, _RESULT_FILES, _LINKS), ALL_ROLES
    ),
    GroupOrderView.planoworker_processing_view: _view(
        "planoworker_processing_view",
        (_COMMON, _COUNTS, _UPLOAD_CHECK, _RESULT_FILES, _LINKS, _WORKER_DETAIL, _NOTIFICATIONS),
        frozenset({Role.employee}),
    ),
    GroupOrderView.default: _view(
        "default", (_COMMON, _COUNTS, _UPLOAD_CHECK, _RESULT_FILES, _LINKS), ALL_ROLES
    ),
}

SESSION_VIEWS: dict[SessionView, View] = {
    SessionView.default: View(
        "default",
        (
            "userId",
            "user",
            "application",
            "role",
            "client",
            "employee",
            "liaison",
            "createdAt",
            "lastUsedAt",
            "expiresAt",
            "rememberMe",
        ),
        ALL_ROLES,
    ),
    SessionView.minimal: View("minimal", ("userId", "expiresAt"), ALL_ROLES),
}
