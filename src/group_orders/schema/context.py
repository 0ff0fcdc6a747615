"""The hand-over from transport to our code: one context per GraphQL operation."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.auth.access import Access, resolve_access
from group_orders.auth.identity import Identity
from group_orders.db.engine import Reader
from group_orders.enums import ApplicationSlug
from group_orders.errors import ApiError
from group_orders.schema.loaders import Loaders
from group_orders.services.events import EventBus
from group_orders.settings import Settings
from group_orders.storage.base import Storage
from group_orders.storage.links import LinkSigner


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def session_payload(identity: Identity) -> dict[str, Any] | None:
    """The session as ``client-required`` carries it in ``extensions.session``."""
    session, user = identity.session, identity.user
    if session is None or user is None:
        return None
    return {
        "userId": str(user.id),
        "user": {"id": str(user.id), "email": user.email, "name": user.name},
        "application": session.application.value,
        "role": None,
        "client": (
            {"id": str(identity.client.id), "name": identity.client.name}
            if identity.client
            else None
        ),
        "employee": {"id": str(identity.employee_id)} if identity.employee_id else None,
        "liaison": {"id": str(identity.liaison_id)} if identity.liaison_id else None,
        "createdAt": _iso(session.created_at),
        "lastUsedAt": _iso(session.last_used_at),
        "expiresAt": _iso(session.expires_at),
        "rememberMe": session.remember_me,
    }


@dataclass
class RequestContext:
    settings: Settings
    engine: AsyncEngine
    identity: Identity | None
    now: datetime
    links: LinkSigner
    base_url: str
    request_id: str
    storage: Storage
    # Reads on the cheapest path (see ``db/engine.py``); None reads through ``engine``.
    reader: Reader | None = None
    wake_worker: Callable[[], None] = field(default=lambda: None)
    _access: dict[ApplicationSlug | None, Access] = field(default_factory=dict)

    # Given for the operations of one batch, so that they load together.
    shared_loaders: Loaders | None = None
    # Where group-order events are published (cancel, retry) and heard (subscriptions).
    events: EventBus | None = None

    @cached_property
    def loaders(self) -> Loaders:
        return self.shared_loaders or Loaders(self.engine, self.reader)

    def renew(self, now: datetime) -> None:
        """Start afresh for the next event of a subscription: links signed from ``now``,
        nothing remembered from the last event's loads."""
        self.now = now
        self.__dict__.pop("loaders", None)

    def require_identity(self) -> Identity:
        if self.identity is None:
            raise ApiError(
                "missing-param",
                "A token is required: send it as 'Authorization: Bearer <token>'.",
                param="token",
            )
        return self.identity

    async def access(self, application: ApplicationSlug | None) -> Access:
        """The role and scope through ``application``, resolved once per operation."""
        if application not in self._access:
            identity = self.require_identity()
            self._access[application] = await resolve_access(
                self.reader or self.engine,
                identity,
                application,
                session_object=lambda: session_payload(identity),
            )
        return self._access[application]
