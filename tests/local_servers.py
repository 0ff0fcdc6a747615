"""Servers the notification tests start on loopback: an SMTP server (aiosmtpd), a fake
Mandrill API and a webhook receiver (Starlette apps served by uvicorn)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

import uvicorn
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


@contextlib.asynccontextmanager
async def serve(app: Starlette) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port for the block; yields its base URL."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(app, lifespan="off", log_level="warning", access_log=False)
    )
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


# --- SMTP ------------------------------------------------------------------------------


class _Collect:
    def __init__(self) -> None:
        self.messages: list[tuple[Envelope, Message]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append((envelope, message_from_bytes(content)))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: _Collect

    @property
    def messages(self) -> list[tuple[Envelope, Message]]:
        return self.handler.messages


@contextlib.contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    """An aiosmtpd server on a free loopback port, keeping every message it receives."""
    handler = _Collect()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield SmtpServer("127.0.0.1", port, handler)
    finally:
        controller.stop()


# --- Mandrill ----------------------------------------------------------------------------


@dataclass
class FakeMandrill:
    """Answers like Mandrill's messages/send.json: ``mode`` is sent, rejected, error (an
    HTTP 500 with Mandrill's error body) or slow (no answer until released)."""

    mode: str = "sent"
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: asyncio.Event = field(default_factory=asyncio.Event)

    async def send(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        email = body["message"]["to"][0]["email"]
        if self.mode == "slow":
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.release.wait(), timeout=30)
        if self.mode == "error":
            return JSONResponse(
                {
                    "status": "error",
                    "code": -1,
                    "name": "Invalid_Key",
                    "message": "Invalid API key",
                },
                status_code=500,
            )
        if self.mode == "rejected":
            return JSONResponse(
                [
                    {
                        "email": email,
                        "status": "rejected",
                        "reject_reason": "hard-bounce",
                        "_id": "rejected-1",
                    }
                ]
            )
        return JSONResponse(
            [
                {
                    "email": email,
                    "status": "sent",
                    "reject_reason": None,
                    "_id": f"msg-{len(self.requests)}",
                }
            ]
        )

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/api/1.0/messages/send.json", self.send, methods=["POST"])])


# --- Webhooks ----------------------------------------------------------------------------


@dataclass
class WebhookReceiver:
    """Keeps each POST (headers and raw body) and answers ``status``."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def receive(self, request: Request) -> Response:
        self.received.append((dict(request.headers), await request.body()))
        return Response(json.dumps({"ok": self.status < 300}), status_code=self.status)

    def app(self) -> Starlette:
        return Starlette(routes=[Route("/hooks/group-orders", self.receive, methods=["POST"])])
