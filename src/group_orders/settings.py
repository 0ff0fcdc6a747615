"""One settings object, read from the environment once and passed down."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Self

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./var/group-orders.db"
EMAIL_BACKENDS = ("console", "smtp", "mandrill")
SMTP_TLS_MODES = ("none", "starttls", "tls")


def _env_int(environ: dict[str, str], name: str, default: int) -> int:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _env_float(environ: dict[str, str], name: str, default: float) -> float:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None


def _env_choice(environ: dict[str, str], name: str, choices: tuple[str, ...], default: str) -> str:
    raw = environ.get(name) or default
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


@dataclass(frozen=True, slots=True)
class Settings:
    """Every knob of the service. ``from_env`` reads them; tests build them directly."""

    database_url: str = DEFAULT_DATABASE_URL
    environment: str = "development"
    data_dir: Path = field(default_factory=lambda: Path("var"))
    # A JSON GraphQL request is small; uploads get their own, larger limit.
    max_body_bytes: int = 1_000_000
    # Limits on a GraphQL document, each answered invalid-param naming it.
    max_query_tokens: int = 5_000
    max_query_depth: int = 12
    max_aliases: int = 30
    # Operations in one HTTP batch (a JSON array); past it the whole batch is refused.
    max_batch_operations: int = 20
    sqlite_busy_timeout_ms: int = 5_000
    # PostgreSQL: connections per process, and how long a request waits for one, for the
    # server to answer a connect, or for a statement, before it is answered
    # service-not-found (503) instead of hanging.
    db_pool_size: int = 10
    db_pool_overflow: int = 5
    db_pool_timeout_seconds: float = 3.0
    db_connect_timeout_seconds: float = 5.0
    db_statement_timeout_seconds: float = 60.0
    # A session's lastUsedAt is written at most this often, so reads stay reads.
    last_used_write_interval_seconds: int = 60
    # Signs file links. The development default is public: set your own anywhere else.
    secret_key: str = "development-only-secret-change-me"  # noqa: S105
    link_lifetime_seconds: int = 900
    # The scheme and host links are built with; by default the request's own.
    public_base_url: str | None = None
    # Uploads: the body limit, enforced while it streams.
    max_upload_bytes: int = 50 * 1024 * 1024
    max_upload_rows: int = 1_000_000
    # How an ambiguous date like 03/04/2026 is read: "DMY" (3 April) or "MDY" (4 March).
    date_order: str = "DMY"
    # Rows per XLSX sheet before a new sheet starts (the format's limit).
    max_sheet_rows: int = 1_048_576
    # Files of at least this many rows get their result files written by a second process.
    result_files_process_from_rows: int = 20_000
    # How long a process trusts what it read of the route and service switches, and of a
    # token's session and records (a revocation reaches a running server after as long).
    route_cache_seconds: float = 2.0
    token_cache_seconds: float = 5.0
    # Failed authentications per client address in a window before rate-limited (0: off).
    auth_failure_limit: int = 20
    auth_failure_window_seconds: float = 60.0
    # Jobs: the embedded worker runs in the server process unless turned off.
    embedded_worker: bool = True
    job_lease_seconds: int = 60
    job_max_attempts: int = 3
    job_retry_delay_seconds: int = 5
    worker_poll_seconds: float = 2.0
    # Live updates. With a Redis URL, group-order events travel through Redis pub/sub, so
    # that a subscriber hears the jobs of every process; without one, only its own.
    redis_url: str | None = None
    # Channels are named "<prefix>:group-order:<id>": deployments sharing a Redis differ here.
    redis_channel_prefix: str = "group-orders"
    # Origins (scheme://host[:port]) whose pages may open a WebSocket, besides the
    # server's own; "*" allows any. A request without an Origin header (not a browser)
    # is not checked.
    websocket_allowed_origins: tuple[str, ...] = ()
    # Seconds a new connection has to send connection_init.
    websocket_init_timeout_seconds: float = 10.0
    # Operations running at once on one connection.
    websocket_max_subscriptions: int = 20
    # A subscription re-reads its group order this often even when no event came, and
    # checks the connection's token as often.
    subscription_refresh_seconds: float = 10.0
    # Notifications: the uploader's email when a group order completes or fails, and the
    # client's webhook. "console" writes emails to the log; "smtp" and "mandrill" send.
    email_backend: str = "console"
    email_from: str = "group-orders@localhost"
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    # "none", "starttls" (upgrade a plain connection) or "tls" (TLS from the start).
    smtp_tls: str = "none"
    mandrill_api_key: str | None = None
    mandrill_base_url: str = "https://mandrillapp.com"
    # File links in an email outlive the API's: the email is read later.
    email_link_lifetime_seconds: int = 7 * 24 * 3600
    # A failed send is tried again after delay, 2 x delay, 4 x delay, ... until attempts.
    notification_max_attempts: int = 5
    notification_retry_delay_seconds: int = 60
    send_timeout_seconds: float = 10.0
    # Where uploads and result files live: "local" (files under data_dir, one machine) or
    # "s3" (an S3-compatible bucket every machine reaches; credentials come from the
    # usual AWS_* variables). With s3, data_dir holds temporary files only.
    storage: str = "local"
    s3_bucket: str | None = None
    s3_prefix: str = ""
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # Files past this size are uploaded and downloaded as multipart transfers of parts
    # this size (at least 5 MiB, S3's smallest part).
    s3_part_bytes: int = 8 * 1024 * 1024
    # File links: "service" (the service's signed /files route streams the file) or
    # "presigned" (the store's own presigned URLs; s3 only). Both live link_lifetime.
    download_links: str = "service"
    # Group orders finished more than this many days ago lose their files when
    # `group-orders storage purge` runs; None keeps files forever.
    file_retention_days: int | None = None

    @property
    def link_lifetime(self) -> timedelta:
        return timedelta(seconds=self.link_lifetime_seconds)

    @property
    def email_link_lifetime(self) -> timedelta:
        return timedelta(seconds=self.email_link_lifetime_seconds)

    @property
    def production(self) -> bool:
        return self.environment == "production"

    def check(self) -> None:
        """Refuse settings a production server must not run with, saying why."""
        if self.environment not in ("development", "production"):
            raise ValueError(
                f"GROUP_ORDERS_ENV must be development or production, not {self.environment!r}"
            )
        if self.email_backend == "mandrill" and not self.mandrill_api_key:
            raise ValueError(
                "GROUP_ORDERS_EMAIL_BACKEND=mandrill needs GROUP_ORDERS_MANDRILL_API_KEY"
            )
        self._check_storage()
        if not self.production:
            return
        if self.secret_key == Settings().secret_key or len(self.secret_key) < 32:
            raise ValueError(
                "production needs GROUP_ORDERS_SECRET_KEY: at least 32 characters of your own "
                "(it signs file links; the development default is public). For example: "
                "python -c 'import secrets; print(secrets.token_urlsafe(48))'"
            )

    def _check_storage(self) -> None:
        if self.storage not in ("local", "s3"):
            raise ValueError(f"GROUP_ORDERS_STORAGE must be local or s3, not {self.storage!r}")
        if self.storage == "s3" and not self.s3_bucket:
            raise ValueError("GROUP_ORDERS_STORAGE=s3 needs GROUP_ORDERS_S3_BUCKET")
        if self.download_links not in ("service", "presigned"):
            raise ValueError(
                "GROUP_ORDERS_DOWNLOAD_LINKS must be service or presigned, "
                f"not {self.download_links!r}"
            )
        if self.download_links == "presigned" and self.storage != "s3":
            raise ValueError(
                "GROUP_ORDERS_DOWNLOAD_LINKS=presigned needs GROUP_ORDERS_STORAGE=s3: "
                "a local directory has no presigned URLs"
            )
        # SigV4 presigned URLs live at most 7 days.
        if self.download_links == "presigned" and not 1 <= self.link_lifetime_seconds <= 604_800:
            raise ValueError(
                "presigned links live 1 s to 7 days: set GROUP_ORDERS_LINK_LIFETIME_SECONDS "
                "within that"
            )
        if self.file_retention_days is not None and self.file_retention_days < 1:
            raise ValueError("GROUP_ORDERS_FILE_RETENTION_DAYS must be at least 1")

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
            max_query_depth=_env_int(env, "GROUP_ORDERS_MAX_QUERY_DEPTH", defaults.max_query_depth),
            max_aliases=_env_int(env, "GROUP_ORDERS_MAX_ALIASES", defaults.max_aliases),
            max_batch_operations=_env_int(
                env, "GROUP_ORDERS_MAX_BATCH_OPERATIONS", defaults.max_batch_operations
            ),
            sqlite_busy_timeout_ms=_env_int(
                env, "GROUP_ORDERS_SQLITE_BUSY_TIMEOUT_MS", defaults.sqlite_busy_timeout_ms
            ),
            secret_key=env.get("GROUP_ORDERS_SECRET_KEY", defaults.secret_key),
            link_lifetime_seconds=_env_int(
                env, "GROUP_ORDERS_LINK_LIFETIME_SECONDS", defaults.link_lifetime_seconds
            ),
            public_base_url=env.get("GROUP_ORDERS_PUBLIC_BASE_URL") or None,
            max_upload_bytes=_env_int(
                env, "GROUP_ORDERS_MAX_UPLOAD_BYTES", defaults.max_upload_bytes
            ),
            max_upload_rows=_env_int(env, "GROUP_ORDERS_MAX_UPLOAD_ROWS", defaults.max_upload_rows),
            date_order=_env_choice(env, "GROUP_ORDERS_DATE_ORDER", ("DMY", "MDY"), "DMY"),
            embedded_worker=env.get("GROUP_ORDERS_EMBEDDED_WORKER", "1") not in ("0", "false"),
            route_cache_seconds=float(
                env.get("GROUP_ORDERS_ROUTE_CACHE_SECONDS", defaults.route_cache_seconds)
            ),
            auth_failure_limit=_env_int(
                env, "GROUP_ORDERS_AUTH_FAILURE_LIMIT", defaults.auth_failure_limit
            ),
            auth_failure_window_seconds=float(
                env.get(
                    "GROUP_ORDERS_AUTH_FAILURE_WINDOW_SECONDS",
                    defaults.auth_failure_window_seconds,
                )
            ),
            token_cache_seconds=float(
                env.get("GROUP_ORDERS_TOKEN_CACHE_SECONDS", defaults.token_cache_seconds)
            ),
            job_lease_seconds=_env_int(
                env, "GROUP_ORDERS_JOB_LEASE_SECONDS", defaults.job_lease_seconds
            ),
            job_max_attempts=_env_int(
                env, "GROUP_ORDERS_JOB_MAX_ATTEMPTS", defaults.job_max_attempts
            ),
            job_retry_delay_seconds=_env_int(
                env, "GROUP_ORDERS_JOB_RETRY_DELAY_SECONDS", defaults.job_retry_delay_seconds
            ),
            worker_poll_seconds=_env_float(
                env, "GROUP_ORDERS_WORKER_POLL_SECONDS", defaults.worker_poll_seconds
            ),
            db_pool_size=_env_int(env, "GROUP_ORDERS_DB_POOL_SIZE", defaults.db_pool_size),
            db_pool_overflow=_env_int(
                env, "GROUP_ORDERS_DB_POOL_OVERFLOW", defaults.db_pool_overflow
            ),
            db_pool_timeout_seconds=_env_float(
                env, "GROUP_ORDERS_DB_POOL_TIMEOUT_SECONDS", defaults.db_pool_timeout_seconds
            ),
            db_connect_timeout_seconds=_env_float(
                env, "GROUP_ORDERS_DB_CONNECT_TIMEOUT_SECONDS", defaults.db_connect_timeout_seconds
            ),
            db_statement_timeout_seconds=_env_float(
                env,
                "GROUP_ORDERS_DB_STATEMENT_TIMEOUT_SECONDS",
                defaults.db_statement_timeout_seconds,
            ),
            redis_url=env.get("GROUP_ORDERS_REDIS_URL") or None,
            redis_channel_prefix=env.get(
                "GROUP_ORDERS_REDIS_CHANNEL_PREFIX", defaults.redis_channel_prefix
            ),
            websocket_allowed_origins=tuple(
                origin.strip().rstrip("/")
                for origin in env.get("GROUP_ORDERS_WEBSOCKET_ORIGINS", "").split(",")
                if origin.strip()
            ),
            websocket_init_timeout_seconds=float(
                env.get(
                    "GROUP_ORDERS_WEBSOCKET_INIT_TIMEOUT_SECONDS",
                    defaults.websocket_init_timeout_seconds,
                )
            ),
            websocket_max_subscriptions=_env_int(
                env,
                "GROUP_ORDERS_WEBSOCKET_MAX_SUBSCRIPTIONS",
                defaults.websocket_max_subscriptions,
            ),
            subscription_refresh_seconds=float(
                env.get(
                    "GROUP_ORDERS_SUBSCRIPTION_REFRESH_SECONDS",
                    defaults.subscription_refresh_seconds,
                )
            ),
            email_backend=_env_choice(
                env, "GROUP_ORDERS_EMAIL_BACKEND", EMAIL_BACKENDS, defaults.email_backend
            ),
            email_from=env.get("GROUP_ORDERS_EMAIL_FROM") or defaults.email_from,
            smtp_host=env.get("GROUP_ORDERS_SMTP_HOST") or defaults.smtp_host,
            smtp_port=_env_int(env, "GROUP_ORDERS_SMTP_PORT", defaults.smtp_port),
            smtp_username=env.get("GROUP_ORDERS_SMTP_USERNAME") or None,
            smtp_password=env.get("GROUP_ORDERS_SMTP_PASSWORD") or None,
            smtp_tls=_env_choice(env, "GROUP_ORDERS_SMTP_TLS", SMTP_TLS_MODES, defaults.smtp_tls),
            mandrill_api_key=env.get("GROUP_ORDERS_MANDRILL_API_KEY") or None,
            mandrill_base_url=(
                env.get("GROUP_ORDERS_MANDRILL_BASE_URL") or defaults.mandrill_base_url
            ),
            email_link_lifetime_seconds=_env_int(
                env,
                "GROUP_ORDERS_EMAIL_LINK_LIFETIME_SECONDS",
                defaults.email_link_lifetime_seconds,
            ),
            notification_max_attempts=_env_int(
                env, "GROUP_ORDERS_NOTIFICATION_MAX_ATTEMPTS", defaults.notification_max_attempts
            ),
            notification_retry_delay_seconds=_env_int(
                env,
                "GROUP_ORDERS_NOTIFICATION_RETRY_DELAY_SECONDS",
                defaults.notification_retry_delay_seconds,
            ),
            send_timeout_seconds=_env_float(
                env, "GROUP_ORDERS_SEND_TIMEOUT_SECONDS", defaults.send_timeout_seconds
            ),
            result_files_process_from_rows=_env_int(
                env,
                "GROUP_ORDERS_RESULT_FILES_PROCESS_FROM_ROWS",
                defaults.result_files_process_from_rows,
            ),
            storage=_env_choice(env, "GROUP_ORDERS_STORAGE", ("local", "s3"), "local"),
            s3_bucket=env.get("GROUP_ORDERS_S3_BUCKET") or None,
            s3_prefix=env.get("GROUP_ORDERS_S3_PREFIX", defaults.s3_prefix),
            s3_endpoint_url=env.get("GROUP_ORDERS_S3_ENDPOINT_URL") or None,
            s3_region=env.get("GROUP_ORDERS_S3_REGION") or None,
            s3_part_bytes=_env_int(env, "GROUP_ORDERS_S3_PART_BYTES", defaults.s3_part_bytes),
            download_links=_env_choice(
                env, "GROUP_ORDERS_DOWNLOAD_LINKS", ("service", "presigned"), "service"
            ),
            file_retention_days=(_env_int(env, "GROUP_ORDERS_FILE_RETENTION_DAYS", 0) or None),
        )

    def with_changes(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]
