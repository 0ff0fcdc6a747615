"""The status-code registry: every code the service answers with, in one table.

The hierarchy is flat on purpose::

    ApiError                       an error with a documented code
      (code: StatusCode)           -> extensions.code, extensions.status, extensions.param

Anything else raised while answering a request is an unexpected exception: it is
logged with an ``errorId`` and answered as ``application-crash`` with a masked message.

``docs/errors.md`` is generated from ``STATUS_CODES``; a test keeps the two equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class StatusCode:
    """One documented status: its name, its HTTP number and when it is answered."""

    code: str
    http_status: int
    meaning: str
    from_seed: bool = True


_CODES = (
    StatusCode("action-successful", 200, "No error: the request was answered."),
    StatusCode(
        "invalid-token",
        401,
        "The token is malformed, unknown or revoked. All three are answered alike, in "
        "body and in timing.",
    ),
    StatusCode(
        "session-expired",
        401,
        "The session is older than 7 days or was not used for 72 hours, and is not "
        "remember_me. Sign in again.",
    ),
    StatusCode(
        "client-required",
        401,
        "The user has no client, employee or liaison record, or the application needs a "
        "client record the user lacks. `extensions.session` holds the session all the "
        "same, so the user can register as a client.",
    ),
    StatusCode(
        "missing-param",
        400,
        "A required parameter is absent: the token, or a required GraphQL argument or "
        "variable. `extensions.param` names it.",
    ),
    StatusCode(
        "invalid-param",
        400,
        "A value is wrong: a malformed or unknown id (an id outside the caller's scope is "
        "answered exactly as an unknown one), a field outside the requested view, a view "
        "or application the role may not use, any other GraphQL syntax or validation "
        "error, a query over a limit.",
    ),
    StatusCode(
        "application-crash",
        500,
        "An unexpected exception. The message is masked; `extensions.errorId` matches the "
        "server's log line.",
    ),
    StatusCode(
        "mandrill-email-failed",
        500,
        "Sending an email failed: the provider (Mandrill or the SMTP server) refused it, "
        "failed or did not answer in time (`resendGroupOrderEmail`). Nothing else is "
        "affected; the failure is recorded on the group order's `notification` "
        "(see notifications.md).",
    ),
    StatusCode(
        "invalid-content-type",
        400,
        "The request's content type can't be read. Send `application/json` (or GET with "
        "query parameters).",
    ),
    StatusCode(
        "route-non-existent",
        500,
        "The HTTP path is not one the service serves (the seed's number, kept).",
    ),
    StatusCode(
        "no-params-decoded",
        400,
        "The body decoded, but holds no GraphQL request (no `query`).",
    ),
    StatusCode(
        "invalid-encoded-params",
        400,
        "The body could not be decoded: bad JSON, bad UTF-8, or nesting too deep.",
    ),
    StatusCode(
        "route-not-found",
        404,
        "The operation's root field is a route that is not deployed.",
    ),
    StatusCode(
        "service-not-found",
        503,
        "The route's API service is not deployed; or the database it needs is busy (every "
        "connection taken) or unreachable: `extensions.retryAfter` then says in how many "
        "seconds to try again.",
    ),
    StatusCode(
        "identify-request-error",
        500,
        "An internal failure before the route was identified (for example while reading "
        "the token). `extensions.errorId` matches the log line.",
    ),
    StatusCode(
        "link-expired",
        410,
        "A signed file link whose time is up. A tampered link is `invalid-token`.",
        from_seed=False,
    ),
    StatusCode(
        "payload-too-large",
        413,
        "The request body is over its size limit; answered before it is read in full.",
        from_seed=False,
    ),
    StatusCode(
        "rate-limited",
        429,
        "Too many failed authentications from one address; `Retry-After` says when to retry.",
        from_seed=False,
    ),
    StatusCode(
        "origin-not-allowed",
        403,
        "A WebSocket connection from a web page whose origin is neither the server's own nor "
        "one listed in `GROUP_ORDERS_WEBSOCKET_ORIGINS`; refused at the handshake (against "
        "cross-site WebSocket hijacking).",
        from_seed=False,
    ),
)

STATUS_CODES: dict[str, StatusCode] = {status.code: status for status in _CODES}


class ApiError(Exception):
    """An error answered with a documented code.

    ``param`` names the parameter at fault, ``extra`` adds keys to ``extensions``
    (for example the session object of ``client-required``).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        param: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        if code not in STATUS_CODES:
            raise ValueError(f"unknown status code {code!r}")
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param
        self.extra = extra or {}

    @property
    def http_status(self) -> int:
        return STATUS_CODES[self.code].http_status

    def extensions(self) -> dict[str, Any]:
        return error_extensions(self.code, param=self.param, **self.extra)


def error_extensions(code: str, *, param: str | None = None, **extra: Any) -> dict[str, Any]:
    """The ``extensions`` object of an error: its code, HTTP number and parameter."""
    extensions: dict[str, Any] = {"code": code, "status": STATUS_CODES[code].http_status}
    if param is not None:
        extensions["param"] = param
    extensions.update(extra)
    return extensions


# Seconds a client is asked to wait when the database is busy or away.
UNAVAILABLE_RETRY_AFTER = 5


def database_unavailable() -> ApiError:
    """The answer when the database cannot be reached in time: fail fast, never hang."""
    return ApiError(
        "service-not-found",
        "The service's database is busy or unreachable. Try again in a few seconds.",
        extra={"retryAfter": UNAVAILABLE_RETRY_AFTER},
    )
