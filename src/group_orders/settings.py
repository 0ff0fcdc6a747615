"""One settings object, read from the environment once and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Self

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/group-orders.db"


def _env_int(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the service. ``from_env`` reads them; tests build them directly."""

    database_url: str = DEFAULT_DATABASE_URL
    environment: str = "development"
    data_dir: Path = field(default_factory=lambda: Path("var"))
    # A JSON GraphQL request is small; uploads get their own, larger limit.
    max_body_bytes: int = 1_000_000
    # graphql-core refuses documents with more tokens than this while parsing.
    max_query_tokens: int = 5_000
    sqlite_busy_timeout_ms: int = 5_000
    # A session's lastUsedAt is written at most this often, so reads stay reads.
    last_used_write_interval_seconds: int = 60
    # Signs file links. The development default is public: set your own anywhere else.
    secret_key: str = "development-only-secret-change-me"  # noqa: S105
    link_lifetime_seconds: int = 3_600
    # The scheme and host links are built with; by default the request's own.
    public_base_url: str | None = None

    @property
    def link_lifetime(self) -> timedelta:
        return timedelta(seconds=self.link_lifetime_seconds)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Self:
        env = dict(os.environ if environ is None else environ)
        defaults = cls()
        return cls(
            database_url=env.get("DATABASE_URL", defaults.database_url),
            environment=env.get("GROUP_ORDERS_ENV", defaults.environment),
            data_dir=Path(env.get("GROUP_ORDERS_DATA_DIR", str(defaults.data_dir))),
            max_body_bytes=_env_int(env, "GROUP_ORDERS_MAX_BODY_BYTES", defaults.max_body_bytes),
            max_query_tokens=_env_int(
                env, "GROUP_ORDERS_MAX_QUERY_TOKENS", defaults.max_query_tokens
            ),
            sqlite_busy_timeout_ms=_env_int(
                env, "GROUP_ORDERS_SQLITE_BUSY_TIMEOUT_MS", defaults.sqlite_busy_timeout_ms
            ),
            secret_key=env.get("GROUP_ORDERS_SECRET_KEY", defaults.secret_key),
            link_lifetime_seconds=_env_int(
                env, "GROUP_ORDERS_LINK_LIFETIME_SECONDS", defaults.link_lifetime_seconds
            ),
            public_base_url=env.get("GROUP_ORDERS_PUBLIC_BASE_URL") or None,
        )

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
