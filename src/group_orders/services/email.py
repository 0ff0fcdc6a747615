"""Sending an email through the backend the settings name.

* ``console``: writes the message to the ``group_orders.email`` log, with the signatures
  of its file links masked (the log never holds a working link).
* ``smtp``: an SMTP server (aiosmtplib), optionally with STARTTLS or TLS and a login.
* ``mandrill``: Mandrill's HTTP API, ``POST {base}/api/1.0/messages/send.json`` (httpx).

Every refusal, error or timeout is raised as ``SendFailed`` with a message that names
the cause and holds no secret (no API key, no password).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import make_msgid

import aiosmtplib
import httpx

from group_orders.settings import Settings

logger = logging.getLogger("group_orders.email")

# Mandrill's statuses of a message it took; "rejected" and "invalid" are refusals.
_MANDRILL_ACCEPTED = ("sent", "queued", "scheduled")
_SIGNATURE = re.compile(r"(signature=)[0-9a-f]+")


class SendFailed(Exception):
    """The provider refused the email, failed, or did not answer in time."""


@dataclass(frozen=True, slots=True)
class Email:
    to: str
    subject: str
    text: str
    headers: dict[str, str] = field(default_factory=dict)


def mask_links(text: str) -> str:
    """The text with the signatures of signed links masked, for logs."""
    return _SIGNATURE.sub(r"\1[masked]", text)


def build_message(settings: Settings, email: Email) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.email_from
    message["To"] = email.to
    message["Subject"] = email.subject
    message["Message-ID"] = make_msgid(domain=settings.email_from.rpartition("@")[2] or None)
    for name, value in email.headers.items():
        message[name] = value
    message.set_content(email.text)
    return message


async def send_email(settings: Settings, email: Email) -> str:
    """Send ``email``; answers the provider's id of the message. Raises ``SendFailed``."""
    if settings.email_backend == "smtp":
        return await _send_smtp(settings, email)
    if settings.email_backend == "mandrill":
        return await _send_mandrill(settings, email)
    return _send_console(settings, email)


def _send_console(settings: Settings, email: Email) -> str:
    message = build_message(settings, email)
    # The headers and the text as a reader sees it, not its transfer encoding.
    headers = "".join(f"{name}: {value}\n" for name, value in message.items())
    logger.info("email (console backend, not sent)\n%s\n%s", headers, mask_links(email.text))
    return str(message["Message-ID"])


async def _send_smtp(settings: Settings, email: Email) -> str:
    message = build_message(settings, email)
    try:
        await aiosmtplib.send(
            message,
            hostname=settings.smtp_host,
            port=settings.smtp_port,
            username=settings.smtp_username,
            password=settings.smtp_password,
            use_tls=settings.smtp_tls == "tls",
            start_tls=settings.smtp_tls == "starttls",
            timeout=settings.send_timeout_seconds,
        )
    except aiosmtplib.SMTPTimeoutError:
        raise SendFailed(
            f"the SMTP server {settings.smtp_host}:{settings.smtp_port} did not answer within "
            f"{settings.send_timeout_seconds:g} s"
        ) from None
    except aiosmtplib.SMTPResponseException as error:
        raise SendFailed(
            f"the SMTP server refused the message: {error.code} {error.message}"
        ) from None
    except (aiosmtplib.SMTPException, OSError) as error:
        raise SendFailed(
            f"the SMTP server {settings.smtp_host}:{settings.smtp_port} failed: "
            f"{type(error).__name__}: {error}"
        ) from None
    return str(message["Message-ID"])


async def _send_mandrill(settings: Settings, email: Email) -> str:
    url = f"{settings.mandrill_base_url.rstrip('/')}/api/1.0/messages/send.json"
    body = {
        "key": settings.mandrill_api_key,
        "message": {
            "from_email": settings.email_from,
            "to": [{"email": email.to, "type": "to"}],
            "subject": email.subject,
            "text": email.text,
            "headers": email.headers,
        },
    }
    timeout = settings.send_timeout_seconds
    try:
        async with httpx.AsyncClient(timeout=timeout) as client:
            response = await client.post(url, json=body)
    except httpx.TimeoutException:
        raise SendFailed(f"Mandrill did not answer within {timeout:g} s") from None
    except httpx.HTTPError as error:
        raise SendFailed(f"Mandrill could not be reached: {type(error).__name__}") from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if response.status_code != 200:
        detail = ""
        if isinstance(answer, dict):
            detail = f": {answer.get('name', 'Error')}: {answer.get('message', '')}"
        raise SendFailed(f"Mandrill answered HTTP {response.status_code}{detail}")
    if not isinstance(answer, list) or not answer or not isinstance(answer[0], dict):
        raise SendFailed("Mandrill's answer was not a list of recipients")
    result = answer[0]
    status = result.get("status")
    if status not in _MANDRILL_ACCEPTED:
        reason = result.get("reject_reason") or "no reason given"
        raise SendFailed(f"Mandrill answered status {status}: {reason}")
    return str(result.get("_id", ""))
