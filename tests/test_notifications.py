"""Telling a group order's outcome: emails through each backend to a server the test
starts, failures recorded and retried, resending, opting out, and signed webhooks."""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from group_orders.app import create_app
from group_orders.db.tables import as_utc, group_order_table, notification_table, utc_now
from group_orders.services.demo import DemoData, demo_id
from group_orders.services.notifications import deliver_due_notifications, set_webhook
from group_orders.settings import Settings
from group_orders.worker.runner import JobRunner
from local_servers import FakeMandrill, WebhookReceiver, serve, smtp_server
from uploading import csv_bytes, good_row, upload

ALICE = "alice@acme.example"
BASE_URL = "http://testserver"
ROWS = [good_row(1), good_row(2), good_row(3, email="not-an-email")]

NOTIFIED = """
query($id: ID!) {
  groupOrder(id: $id, view: planoworker_processing_view) {
    status totalOrders successfulOrders rejectedOrders
    notification { event recipient status attempts lastError response }
    webhookDeliveries { event recipient status attempts lastError response }
  }
}
"""
RESEND = """
mutation($id: ID!) {
  resendGroupOrderEmail(id: $id) {
    status successfulOrders notification { status attempts lastError }
  }
}
"""


@dataclass
class Service:
    client: httpx.AsyncClient
    jobs: JobRunner
    engine: AsyncEngine
    demo: DemoData

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str
    ) -> dict[str, Any]:
        response = await self.client.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token}"},
        )
        body: dict[str, Any] = response.json()
        return body

    async def upload_and_process(self, rows: list[dict[str, str]] = ROWS) -> str:
        response = await upload(self.client, self.demo.tokens["client"], csv_bytes(rows))
        body = response.json()
        assert "errors" not in body, body
        group_order_id: str = body["data"]["createGroupOrder"]["groupOrder"]["id"]
        await self.jobs.run_until_idle()
        return group_order_id

    async def notified(self, group_order_id: str) -> dict[str, Any]:
        body = await self.post(NOTIFIED, {"id": group_order_id}, token=self.demo.tokens["employee"])
        assert "errors" not in body, body
        group_order: dict[str, Any] = body["data"]["groupOrder"]
        return group_order


@contextlib.asynccontextmanager
async def running(settings: Settings, demo: DemoData, **changes: Any) -> AsyncIterator[Service]:
    app = create_app(settings.with_changes(public_base_url=BASE_URL, **changes))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client:
            yield Service(client, app.state.jobs, app.state.engine, demo)


@contextlib.asynccontextmanager
async def running_with_mandrill(
    settings: Settings, demo: DemoData, mandrill: FakeMandrill, **changes: Any
) -> AsyncIterator[Service]:
    """The service with the mandrill backend, sending to ``mandrill`` on loopback."""
    async with serve(mandrill.app()) as mandrill_url:
        async with running(
            settings,
            demo,
            email_backend="mandrill",
            mandrill_base_url=mandrill_url,
            mandrill_api_key="test-key",
            **changes,
        ) as service:
            yield service


def text_of(message: Message) -> str:
    payload = message.get_payload(decode=True)
    assert isinstance(payload, bytes)
    return payload.decode().replace("\r\n", "\n")


def links_in(text: str) -> list[str]:
    return re.findall(r"https?://\S+", text)


# --- SMTP ------------------------------------------------------------------------------


async def test_a_completed_group_order_is_emailed_through_smtp(
    settings: Settings, demo: DemoData
) -> None:
    # given
    with smtp_server() as smtp:
        async with running(
            settings, demo, email_backend="smtp", smtp_host=smtp.host, smtp_port=smtp.port
        ) as service:
            # when
            group_order_id = await service.upload_and_process()
            notified = await service.notified(group_order_id)
            assert len(smtp.messages) == 1
            envelope, message = smtp.messages[0]
            text = text_of(message)
            downloads = [await service.client.get(link) for link in links_in(text)]

    # then: the email went to the uploader with the counts and working links
    assert envelope.rcpt_tos == [ALICE]
    assert (message["To"], message["From"]) == (ALICE, settings.email_from)
    assert message["Subject"] == "Group order orders.csv completed: 2 accepted, 1 rejected"
    assert message["X-Group-Order-Id"] == group_order_id
    assert "  Orders in the file: 3\n" in text
    assert "  Accepted:           2\n" in text
    assert "  Rejected:           1\n" in text
    assert "  Outcome:            partial (some orders were rejected)\n" in text
    assert [urlsplit(link).path for link in links_in(text)] == [
        f"/files/{group_order_id}/normalized.csv",
        f"/files/{group_order_id}/accepted.xlsx",
        f"/files/{group_order_id}/rejected.xlsx",
        f"/group-orders/{group_order_id}",
    ]
    assert [response.status_code for response in downloads] == [200, 200, 200, 200]
    # the last link opens the group order's page without a token
    assert 'id="accepted">2<' in downloads[3].text
    # the links live as long as the email setting says (7 days), not the API's 15 minutes
    expires = int(parse_qs(urlsplit(links_in(text)[0]).query)["expires"][0])
    lifetime = datetime.fromtimestamp(expires, UTC) - datetime.now(UTC)
    assert timedelta(days=6, hours=23) < lifetime <= timedelta(days=7)
    assert notified["status"] == "completed"
    assert notified["notification"] | {"response": None} == {
        "event": "completed",
        "recipient": ALICE,
        "status": "sent",
        "attempts": 1,
        "lastError": None,
        "response": None,
    }
    assert notified["notification"]["response"] == message["Message-ID"]
    assert notified["webhookDeliveries"] == []


async def test_a_failed_group_order_is_emailed_with_its_reason(
    settings: Settings, demo: DemoData
) -> None:
    # given: a job that fails because its stored file went missing
    with smtp_server() as smtp:
        async with running(
            settings,
            demo,
            email_backend="smtp",
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            job_max_attempts=1,
        ) as service:
            response = await upload(service.client, demo.tokens["client"], csv_bytes([good_row(1)]))
            group_order_id = response.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
            (settings.data_dir / "files" / "uploads" / group_order_id / "source").unlink()

            # when
            await service.jobs.run_until_idle()
            notified = await service.notified(group_order_id)

    # then
    assert notified["status"] == "failed"
    assert notified["notification"]["status"] == "sent"
    _, message = smtp.messages[0]
    text = text_of(message)
    assert message["Subject"] == "Group order orders.csv failed"
    assert "could not be processed; no orders were created." in text
    assert "  Reason: Processing failed 1 times; the last error has errorId" in text
    # no file links; only the page's, which shows the reason too
    assert [urlsplit(link).path for link in links_in(text)] == [f"/group-orders/{group_order_id}"]


async def test_an_smtp_server_that_is_down_leaves_the_group_order_completed(
    settings: Settings, demo: DemoData
) -> None:
    # given: nothing listens on the SMTP port
    with smtp_server() as smtp:
        port = smtp.port
    async with running(
        settings, demo, email_backend="smtp", smtp_host="127.0.0.1", smtp_port=port
    ) as service:
        # when
        group_order_id = await service.upload_and_process()
        notified = await service.notified(group_order_id)

    # then
    assert notified["status"] == "completed"
    assert (notified["successfulOrders"], notified["rejectedOrders"]) == (2, 1)
    assert notified["notification"]["status"] == "retrying"
    assert notified["notification"]["attempts"] == 1
    assert notified["notification"]["lastError"] == (
        f"the SMTP server 127.0.0.1:{port} failed: SMTPConnectError: Error connecting to "
        f"127.0.0.1 on port {port}: [Errno 111] Connect call failed ('127.0.0.1', {port})"
    )


# --- Console ---------------------------------------------------------------------------


async def test_the_console_backend_logs_the_email_with_its_links_masked(
    settings: Settings, demo: DemoData, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    caplog.set_level(logging.INFO, logger="group_orders.email")
    async with running(settings, demo) as service:
        # when
        group_order_id = await service.upload_and_process()
        notified = await service.notified(group_order_id)

    # then
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "group_orders.email")
    assert "Subject: Group order orders.csv completed: 2 accepted, 1 rejected" in logged
    assert f"/files/{group_order_id}/accepted.xlsx?expires=" in logged
    assert logged.count("signature=[masked]") == 4
    assert re.search(r"signature=[0-9a-f]{16}", logged) is None
    assert notified["notification"]["status"] == "sent"


# --- Mandrill --------------------------------------------------------------------------


async def test_mandrill_sends_the_email_through_its_http_api(
    settings: Settings, demo: DemoData
) -> None:
    # given
    mandrill = FakeMandrill()
    async with running_with_mandrill(settings, demo, mandrill) as service:
        # when
        group_order_id = await service.upload_and_process()
        notified = await service.notified(group_order_id)

    # then
    [request] = mandrill.requests
    assert request["key"] == "test-key"
    assert request["message"]["to"] == [{"email": ALICE, "type": "to"}]
    assert request["message"]["from_email"] == settings.email_from
    assert request["message"]["subject"] == (
        "Group order orders.csv completed: 2 accepted, 1 rejected"
    )
    assert len(links_in(request["message"]["text"])) == 4
    assert notified["notification"] == {
        "event": "completed",
        "recipient": ALICE,
        "status": "sent",
        "attempts": 1,
        "lastError": None,
        "response": "msg-1",
    }


@pytest.mark.parametrize(
    ("mode", "error"),
    [
        ("rejected", "Mandrill answered status rejected: hard-bounce"),
        ("error", "Mandrill answered HTTP 500: Invalid_Key: Invalid API key"),
        ("slow", "Mandrill did not answer within 0.3 s"),
    ],
)
async def test_a_refused_or_timed_out_email_is_recorded_and_resending_answers_mandrill_email_failed(
    settings: Settings, demo: DemoData, mode: str, error: str
) -> None:
    # given: Mandrill refuses, fails or does not answer in time
    mandrill = FakeMandrill(mode=mode)
    async with running_with_mandrill(settings, demo, mandrill, send_timeout_seconds=0.3) as service:
        group_order_id = await service.upload_and_process()
        after_worker = await service.notified(group_order_id)

        # when: an employee asks for the email again
        resent = await service.post(RESEND, {"id": group_order_id}, token=demo.tokens["employee"])
        after_resend = await service.notified(group_order_id)
        mandrill.release.set()

    # then: nothing is lost, and both failures are recorded
    assert after_worker["status"] == "completed"
    assert (after_worker["successfulOrders"], after_worker["rejectedOrders"]) == (2, 1)
    assert after_worker["notification"] | {"response": None} == {
        "event": "completed",
        "recipient": ALICE,
        "status": "retrying",
        "attempts": 1,
        "lastError": error,
        "response": None,
    }
    assert resent == {
        "data": {"resendGroupOrderEmail": None},
        "errors": [
            {
                "message": f"The email to {ALICE} could not be sent: {error}. The failure is "
                "recorded on the group order's notification.",
                "locations": [{"line": 3, "column": 3}],
                "path": ["resendGroupOrderEmail"],
                "extensions": {"code": "mandrill-email-failed", "status": 500, "param": "id"},
            }
        ],
    }
    assert after_resend["status"] == "completed"
    assert (after_resend["successfulOrders"], after_resend["rejectedOrders"]) == (2, 1)
    # the resend was one more try of the same email
    assert after_resend["notification"] | {"response": None} == {
        "event": "completed",
        "recipient": ALICE,
        "status": "retrying",
        "attempts": 2,
        "lastError": error,
        "response": None,
    }
    assert len(mandrill.requests) == 2


async def test_resending_after_a_failure_sends_and_is_recorded(
    settings: Settings, demo: DemoData
) -> None:
    # given: a first try that Mandrill rejected
    mandrill = FakeMandrill(mode="rejected")
    async with running_with_mandrill(settings, demo, mandrill) as service:
        group_order_id = await service.upload_and_process()

        # when: Mandrill takes it now
        mandrill.mode = "sent"
        resent = await service.post(RESEND, {"id": group_order_id}, token=demo.tokens["employee"])
        # and the worker comes round after the retry's time
        later = await deliver_due_notifications(
            service.engine, service.jobs.settings, now=utc_now() + timedelta(hours=1)
        )

    # then
    assert resent == {
        "data": {
            "resendGroupOrderEmail": {
                "status": "completed",
                "successfulOrders": 2,
                "notification": {
                    "status": "sent",
                    "attempts": 2,
                    "lastError": "Mandrill answered status rejected: hard-bounce",
                },
            }
        },
        "extensions": {"status": "action-successful"},
    }
    # sent once by the resend, not again by the worker
    assert later == 0
    assert [r["message"]["to"][0]["email"] for r in mandrill.requests] == [ALICE, ALICE]


# --- Retries -----------------------------------------------------------------------------


async def notification_row(engine: AsyncEngine, group_order_id: str) -> Any:
    async with engine.connect() as connection:
        return (
            await connection.execute(
                sa.select(notification_table).where(
                    notification_table.c.group_order_id == uuid.UUID(group_order_id)
                )
            )
        ).one()


async def test_failed_sends_are_retried_with_back_off_until_the_attempts_are_used(
    settings: Settings, demo: DemoData
) -> None:
    # given: Mandrill rejects every try; 3 attempts, 60 s, then 120 s apart
    mandrill = FakeMandrill(mode="rejected")
    async with running_with_mandrill(
        settings, demo, mandrill, notification_max_attempts=3, notification_retry_delay_seconds=60
    ) as service:
        group_order_id = await service.upload_and_process()
        first = await notification_row(service.engine, group_order_id)
        app_settings = service.jobs.settings

        # when: the worker looks before the pause is over, then after it, twice
        early = await deliver_due_notifications(
            service.engine,
            app_settings,
            now=as_utc(first.next_attempt_at) - timedelta(seconds=1),
        )
        await deliver_due_notifications(
            service.engine, app_settings, now=as_utc(first.next_attempt_at)
        )
        second = await notification_row(service.engine, group_order_id)
        await deliver_due_notifications(
            service.engine, app_settings, now=as_utc(second.next_attempt_at)
        )
        third = await notification_row(service.engine, group_order_id)
        notified = await service.notified(group_order_id)

    # then
    assert early == 0
    assert (first.status, first.attempts) == ("retrying", 1)
    assert as_utc(first.next_attempt_at) - as_utc(first.last_attempt_at) == timedelta(seconds=60)
    assert (second.status, second.attempts) == ("retrying", 2)
    assert as_utc(second.next_attempt_at) - as_utc(second.last_attempt_at) == timedelta(seconds=120)
    assert (third.status, third.attempts, third.next_attempt_at) == ("failed", 3, None)
    assert len(mandrill.requests) == 3
    assert notified["status"] == "completed"
    assert notified["notification"]["status"] == "failed"


# --- Who is emailed ----------------------------------------------------------------------


async def test_a_user_who_opted_out_is_not_emailed(settings: Settings, demo: DemoData) -> None:
    # given
    with smtp_server() as smtp:
        async with running(
            settings, demo, email_backend="smtp", smtp_host=smtp.host, smtp_port=smtp.port
        ) as service:
            off = await service.post(
                "mutation { setEmailNotifications(enabled: false) }",
                token=demo.tokens["client"],
            )

            # when
            group_order_id = await service.upload_and_process()
            notified = await service.notified(group_order_id)
            resent = await service.post(
                RESEND, {"id": group_order_id}, token=demo.tokens["employee"]
            )

    # then
    assert off["data"] == {"setEmailNotifications": False}
    assert smtp.messages == []
    assert notified["notification"] | {"response": None} == {
        "event": "completed",
        "recipient": ALICE,
        "status": "skipped",
        "attempts": 0,
        "lastError": "the uploader turned group-order emails off",
        "response": None,
    }
    assert resent["errors"][0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": "id",
    }


async def test_only_employees_may_resend_and_only_an_outcome(
    settings: Settings, demo: DemoData
) -> None:
    async with running(settings, demo) as service:
        # when
        by_client = await service.post(
            RESEND,
            {"id": demo.group_orders["acme-completed"]},
            token=demo.tokens["client"],
        )
        pending = await service.post(
            RESEND,
            {"id": demo.group_orders["acme-pending"]},
            token=demo.tokens["employee"],
        )
        unknown = await service.post(
            RESEND, {"id": str(uuid.uuid4())}, token=demo.tokens["employee"]
        )
        by_token = await service.post(
            "mutation { setEmailNotifications(enabled: false) }",
            token=demo.tokens["reporting"],
        )

    # then
    assert by_client["errors"][0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": "application",
    }
    assert pending["errors"][0]["message"] == (
        "This group order is pending: there is no outcome to email yet."
    )
    assert unknown["errors"][0]["message"] == "No group order has this id."
    assert by_token["errors"][0]["extensions"] == {
        "code": "invalid-param",
        "status": 400,
        "param": "token",
    }


async def test_an_upload_through_an_application_token_has_no_email(
    settings: Settings, demo: DemoData
) -> None:
    async with running(settings, demo) as service:
        response = await upload(service.client, demo.tokens["acme-integration"], csv_bytes(ROWS))
        group_order_id = response.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
        await service.jobs.run_until_idle()
        notified = await service.notified(group_order_id)

    assert (notified["status"], notified["notification"]) == ("completed", None)


# --- Webhooks ----------------------------------------------------------------------------

SECRET = "a-webhook-secret-of-the-client"


def verify(secret: str, headers: dict[str, str], body: bytes) -> bool:
    """What a receiver does: recompute the signature over timestamp + "." + body."""
    timestamp = headers["x-group-orders-timestamp"]
    expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return hmac.compare_digest(
        headers["x-group-orders-signature"], f"sha256={expected.hexdigest()}"
    )


async def test_a_webhook_receives_a_signed_post_and_is_retried_until_it_answers(
    settings: Settings, demo: DemoData
) -> None:
    # given: the receiver fails the first POST
    receiver = WebhookReceiver(status=503)
    async with serve(receiver.app()) as receiver_url:
        url = f"{receiver_url}/hooks/group-orders"
        async with running(settings, demo) as service:
            await set_webhook(service.engine, demo_id("acme"), url, SECRET)
            group_order_id = await service.upload_and_process()
            first = await service.notified(group_order_id)

            # when: it answers again, and the retry is due
            receiver.status = 200
            await deliver_due_notifications(
                service.engine, service.jobs.settings, now=utc_now() + timedelta(minutes=2)
            )
            second = await service.notified(group_order_id)

    # then
    assert len(receiver.received) == 2
    headers, body = receiver.received[-1]
    assert verify(SECRET, headers, body)
    assert not verify("another-secret-entirely", headers, body)
    assert not verify(SECRET, headers, body.replace(b'"completed"', b'"failed"'))
    assert headers["x-group-orders-event"] == "group_order.completed"
    payload = json.loads(body)
    assert payload == {
        "id": headers["x-group-orders-delivery"],
        "event": "group_order.completed",
        "groupOrder": {
            "id": group_order_id,
            "clientId": str(demo_id("acme")),
            "status": "completed",
            "sourceFileName": "orders.csv",
            "totalOrders": 3,
            "successfulOrders": 2,
            "rejectedOrders": 1,
            "outcome": "partial",
            "failureReason": None,
            "finishedAt": payload["groupOrder"]["finishedAt"],
        },
    }
    assert first["webhookDeliveries"] == [
        {
            "event": "completed",
            "recipient": url,
            "status": "retrying",
            "attempts": 1,
            "lastError": "the webhook answered HTTP 503",
            "response": None,
        }
    ]
    assert second["webhookDeliveries"] == [
        {
            "event": "completed",
            "recipient": url,
            "status": "sent",
            "attempts": 2,
            "lastError": "the webhook answered HTTP 503",
            "response": "200",
        }
    ]
    # the email went its own way
    assert second["notification"]["status"] == "sent"


async def test_webhook_deliveries_are_for_employees_only(
    settings: Settings, demo: DemoData
) -> None:
    async with running(settings, demo) as service:
        as_client = await service.post(
            "query($id: ID!) { groupOrder(id: $id) { webhookDeliveries { status } } }",
            {"id": demo.group_orders["acme-completed"]},
            token=demo.tokens["client"],
        )

    assert as_client["data"] == {"groupOrder": None}
    assert as_client["errors"][0]["extensions"]["code"] == "invalid-param"
    assert "webhookDeliveries" in as_client["errors"][0]["message"]


async def test_a_file_name_with_line_breaks_stays_on_the_subject_line(
    settings: Settings, demo: DemoData
) -> None:
    # given: an uploaded file whose stored name holds line breaks (a header injection)
    with smtp_server() as smtp:
        async with running(
            settings, demo, email_backend="smtp", smtp_host=smtp.host, smtp_port=smtp.port
        ) as service:
            response = await upload(service.client, demo.tokens["client"], csv_bytes(ROWS))
            group_order_id = response.json()["data"]["createGroupOrder"]["groupOrder"]["id"]
            async with service.engine.begin() as connection:
                await connection.execute(
                    sa.update(group_order_table)
                    .where(group_order_table.c.id == uuid.UUID(group_order_id))
                    .values(source_name="orders.csv\r\nBcc: someone@example.com")
                )

            # when
            await service.jobs.run_until_idle()

    # then
    [(envelope, message)] = smtp.messages
    assert envelope.rcpt_tos == [ALICE]
    assert message["Bcc"] is None
    # (a long subject is folded over two lines, as headers are)
    assert " ".join(message["Subject"].split()) == (
        "Group order orders.csv Bcc: someone@example.com completed: 2 accepted, 1 rejected"
    )


# --- Settings ----------------------------------------------------------------------------


def test_notification_settings_are_read_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "GROUP_ORDERS_EMAIL_BACKEND": "smtp",
            "GROUP_ORDERS_EMAIL_FROM": "orders@plano.example",
            "GROUP_ORDERS_SMTP_HOST": "mail.plano.example",
            "GROUP_ORDERS_SMTP_PORT": "587",
            "GROUP_ORDERS_SMTP_USERNAME": "orders",
            "GROUP_ORDERS_SMTP_PASSWORD": "pw",
            "GROUP_ORDERS_SMTP_TLS": "starttls",
            "GROUP_ORDERS_MANDRILL_BASE_URL": "http://127.0.0.1:9",
            "GROUP_ORDERS_EMAIL_LINK_LIFETIME_SECONDS": "86400",
            "GROUP_ORDERS_NOTIFICATION_MAX_ATTEMPTS": "7",
            "GROUP_ORDERS_NOTIFICATION_RETRY_DELAY_SECONDS": "30",
            "GROUP_ORDERS_SEND_TIMEOUT_SECONDS": "2.5",
        }
    )

    assert (
        settings.email_backend,
        settings.email_from,
        settings.smtp_host,
        settings.smtp_port,
        settings.smtp_username,
        settings.smtp_password,
        settings.smtp_tls,
        settings.mandrill_base_url,
        settings.email_link_lifetime,
        settings.notification_max_attempts,
        settings.notification_retry_delay_seconds,
        settings.send_timeout_seconds,
    ) == (
        "smtp",
        "orders@plano.example",
        "mail.plano.example",
        587,
        "orders",
        "pw",
        "starttls",
        "http://127.0.0.1:9",
        timedelta(days=1),
        7,
        30,
        2.5,
    )


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        (
            {"GROUP_ORDERS_EMAIL_BACKEND": "pigeon"},
            "GROUP_ORDERS_EMAIL_BACKEND must be one of console, smtp, mandrill, got 'pigeon'",
        ),
        (
            {"GROUP_ORDERS_SMTP_TLS": "yes"},
            "GROUP_ORDERS_SMTP_TLS must be one of none, starttls, tls, got 'yes'",
        ),
        (
            {"GROUP_ORDERS_SEND_TIMEOUT_SECONDS": "soon"},
            "GROUP_ORDERS_SEND_TIMEOUT_SECONDS must be a number, got 'soon'",
        ),
    ],
)
def test_wrong_notification_settings_are_refused(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings.from_env(environ)


def test_the_mandrill_backend_needs_an_api_key() -> None:
    with pytest.raises(
        ValueError,
        match=r"^GROUP_ORDERS_EMAIL_BACKEND=mandrill needs GROUP_ORDERS_MANDRILL_API_KEY$",
    ):
        Settings.from_env({"GROUP_ORDERS_EMAIL_BACKEND": "mandrill"}).check()
