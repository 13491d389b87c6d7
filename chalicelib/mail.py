"""The one outbound mail sender: builds MIME messages and hands them to SES or to a local file outbox."""
from __future__ import annotations

import logging
import os
import re
import secrets
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr
from functools import cache
from pathlib import Path
from typing import Any

from chalicelib import telemetry
from chalicelib.config import Settings, get_settings

log = logging.getLogger(__name__)

# A link ends at white space or at what usually wraps it in prose; trailing punctuation is not part of it.
_LINK = re.compile(r"""https?://[^\s<>"')\]]+""")
# Headers we own: letting callers set them would duplicate them or desync the Message-ID we store.
_RESERVED = {"from", "to", "cc", "bcc", "subject", "date", "message-id", "mime-version", "content-type"}


class MailSendError(Exception):
    """The message was not handed over; the reason is the exception text."""


@dataclass
class OutgoingEmail:
    from_address: str
    to: list[str]
    subject: str
    text: str
    html: str | None = None
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: str | None = None
    in_reply_to: str | None = None
    references: list[str] | str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[tuple[str, str, bytes]] = field(default_factory=list)

    @property
    def recipients(self) -> list[str]:
        return [*self.to, *self.cc, *self.bcc]


@dataclass(frozen=True)
class SentEmail:
    message_id: str
    sent_at: datetime


def build_message(email: OutgoingEmail, *, domain: str, date: datetime | None = None) -> EmailMessage:
    """The MIME message as it goes on the wire; Bcc recipients are deliberately left out of the headers."""
    # SMTP policy: CRLF line endings, which SES raw sending and .eml readers both expect.
    msg = EmailMessage(policy=policy.SMTP)
    msg["From"] = email.from_address
    if email.to:
        msg["To"] = ", ".join(email.to)
    if email.cc:
        msg["Cc"] = ", ".join(email.cc)
    if email.reply_to:
        msg["Reply-To"] = email.reply_to
    msg["Subject"] = email.subject
    msg["Date"] = format_datetime(date or datetime.now(UTC))
    msg["Message-ID"] = make_msgid(domain=domain)
    if email.in_reply_to:
        msg["In-Reply-To"] = email.in_reply_to
    if email.references:
        refs = email.references
        msg["References"] = refs if isinstance(refs, str) else " ".join(refs)
    for name, value in email.headers.items():
        if name.lower() in _RESERVED:
            raise ValueError(f"header {name!r} is set by the mail sender")
        msg[name] = value
    msg.set_content(email.text, cte="quoted-printable")
    if email.html is not None:
        msg.add_alternative(email.html, subtype="html", cte="quoted-printable")
    for filename, content_type, data in email.attachments:
        maintype, _, subtype = (content_type if "/" in content_type else "application/octet-stream").partition("/")
        # add_attachment turns multipart/alternative into multipart/mixed around it, as mail clients expect.
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg


def send(email: OutgoingEmail) -> SentEmail:
    """Send through the backend named by EMAIL_SENDER; any failure is a MailSendError."""
    settings = get_settings()
    backend = _BACKENDS.get(settings.email_sender)
    if backend is None:
        raise MailSendError(f"unknown EMAIL_SENDER {settings.email_sender!r} (expected 'ses' or 'outbox')")
    if not email.recipients:
        raise MailSendError("message has no recipients")
    sent_at = datetime.now(UTC)
    sender = parseaddr(email.from_address)[1]
    try:
        msg = build_message(email, domain=sender.rpartition("@")[2] or "localhost", date=sent_at)
        raw = msg.as_bytes()
        backend(settings, sender, email.recipients, raw, sent_at)
    except Exception as exc:  # boto, filesystem, or header errors: callers only need "failed, and why"
        telemetry.count("EmailsFailed")
        if isinstance(exc, MailSendError):
            raise
        raise MailSendError(f"{type(exc).__name__}: {exc}") from exc
    telemetry.count("EmailsSent")
    return SentEmail(message_id=msg["Message-ID"], sent_at=sent_at)


def _send_outbox(settings: Settings, sender: str, recipients: list[str], raw: bytes, sent_at: datetime) -> None:
    outbox = Path(settings.outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    name = f"{sent_at.strftime('%Y%m%dT%H%M%S.%fZ')}-{secrets.token_hex(4)}.eml"
    # Write under a dot-name then rename, so a watcher globbing *.eml never reads a half-written file.
    fd, tmp = tempfile.mkstemp(dir=outbox, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
        os.replace(tmp, outbox / name)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _log_outbox_message(raw, recipients, outbox / name)


def _log_outbox_message(raw: bytes, recipients: list[str], path: Path) -> None:
    # The .eml is quoted-printable; the console shows what a reader would see, so local links can be clicked.
    msg = message_from_bytes(raw, policy=policy.default)
    body = msg.get_body(("plain",))
    text = body.get_content() if body is not None else ""
    links = [link.rstrip(".,;:!?") for link in _LINK.findall(text)]
    log.info("outbox: %r to %s, saved as %s%s", msg["Subject"], ", ".join(recipients), path,
             "".join(f"\n  link: {link}" for link in links))


def _send_ses(settings: Settings, sender: str, recipients: list[str], raw: bytes, sent_at: datetime) -> None:
    # Destinations carry the Bcc recipients that the headers must not show.
    _ses_client(settings.region).send_raw_email(
        Source=sender, Destinations=recipients, RawMessage={"Data": raw}
    )


@cache
def _ses_client(region: str) -> Any:
    from chalicelib import aws  # boto3 is imported on first send, so importing this module stays cheap

    return aws.client("ses", region_name=region)


def reset_clients() -> None:
    """Forget cached boto3 clients (tests start a fresh moto mock per test)."""
    _ses_client.cache_clear()


_BACKENDS = {"outbox": _send_outbox, "ses": _send_ses}
