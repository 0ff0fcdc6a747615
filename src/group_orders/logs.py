"""Logs as JSON lines: one object per line, for people and for log collectors alike.

Every line has ``time``, ``level`` and ``logger``; a line written during a request has
its ``requestId`` (the ``X-Request-Id`` the client got). A message that is itself a JSON
object (the access log's request lines, the jobs' steps) gives its fields to the line;
any other message is its ``message``. See ``docs/operating.md`` on reading them.

Nothing personal and no secret goes in: request lines name the requester by its id,
job steps by the group order's id, and links are masked where they are logged.
"""

from __future__ import annotations

import logging
import uuid
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

import orjson

current_request_id: ContextVar[str | None] = ContextVar("current_request_id", default=None)

job_logger = logging.getLogger("group_orders.jobs")


def job_step(
    step: str, group_order_id: uuid.UUID, *, level: int = logging.INFO, **fields: Any
) -> None:
    """One line per step of a job: started, counted, completed, retry, failed, stopped."""
    if job_logger.isEnabledFor(level):
        body = {"event": "job", "step": step, "groupOrderId": str(group_order_id), **fields}
        job_logger.log(level, orjson.dumps(body).decode())


class JsonLinesFormatter(logging.Formatter):
    """A record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
        }
        request_id = current_request_id.get()
        if request_id is not None:
            line["requestId"] = request_id
        message = record.getMessage()
        fields = _json_object(message)
        if fields is not None:
            line.update(fields)
        else:
            line["message"] = message
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line, default=str).decode()


def _json_object(message: str) -> dict[str, Any] | None:
    if not message.startswith("{"):
        return None
    try:
        value = orjson.loads(message)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def configure(log_format: str = "json", level: int = logging.INFO) -> None:
    """The process's logging: JSON lines (``json``) or plain text (``text``) on stderr."""
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLinesFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's own loggers go through the same handler, in the same format.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    # The access log of this service says more than uvicorn's.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
