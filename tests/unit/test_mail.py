"""Outbound mail: MIME building and the file outbox backend."""
from __future__ import annotations

import logging
import subprocess
import sys
from email import message_from_bytes, policy
from pathlib import Path

import pytest

from chalicelib.config import reset_settings
from chalicelib.mail import MailSendError, OutgoingEmail, SentEmail, build_message, send


def parse(raw: bytes):
    return message_from_bytes(raw, policy=policy.default)


def body(part) -> str:
    # The wire format uses CRLF (RFC 5322) and the parser keeps it; compare text, not line endings.
    return part.get_content().replace("\r\n", "\n")


def make_email(**overrides) -> OutgoingEmail:
    fields = {"from_address": "Zoë Müller <zoe@agency.example>", "to": ["Søren Ørsted <soren@client.example>"],
                  "subject": "Ihre Einladung — Zugang für Café Ümlaut ☕", "text": "Grüße,\nhier ist Ihr Link.\n"}
    return OutgoingEmail(**{**fields, **overrides})


@pytest.fixture
def outbox(monkeypatch, tmp_path):
    directory = tmp_path / "nested" / "outbox"
    monkeypatch.setenv("EMAIL_SENDER", "outbox")
    monkeypatch.setenv("OUTBOX_DIR", str(directory))
    reset_settings()
    yield directory
    reset_settings()


def test_non_ascii_subject_names_and_body_round_trip_through_the_parser():
    email = make_email(cc=["Ana Núñez <ana@client.example>"], reply_to="support@agency.example")
    raw = build_message(email, domain="agency.example").as_bytes()

    assert raw.isascii()  # non-ASCII travels encoded, so any MTA accepts it
    parsed = parse(raw)
    assert parsed["Subject"] == email.subject
    assert parsed["From"].addresses[0].display_name == "Zoë Müller"
    assert [a.addr_spec for a in parsed["To"].addresses] == ["soren@client.example"]
    assert parsed["To"].addresses[0].display_name == "Søren Ørsted"
    assert [a.addr_spec for a in parsed["Cc"].addresses] == ["ana@client.example"]
    assert parsed["Reply-To"] == "support@agency.example"
    assert parsed["Date"].datetime is not None
    assert body(parsed.get_body(("plain",))) == email.text


def test_bcc_recipients_never_appear_in_the_headers():
    raw = build_message(make_email(bcc=["hidden@agency.example"]), domain="agency.example").as_bytes()

    assert "Bcc" not in parse(raw)
    assert b"hidden@agency.example" not in raw


def test_html_and_text_give_multipart_alternative():
    parsed = parse(build_message(make_email(html="<p>Grüße</p>"), domain="agency.example").as_bytes())

    assert parsed.get_content_type() == "multipart/alternative"
    assert body(parsed.get_body(("html",))).strip() == "<p>Grüße</p>"
    assert body(parsed.get_body(("plain",))) == make_email().text


def test_attachments_keep_filename_content_type_and_bytes():
    pdf = b"%PDF-1.4 \x00\xff binary"
    email = make_email(html="<p>x</p>", attachments=[("Angebot Nr. 7.pdf", "application/pdf", pdf),
                                                     ("notes.txt", "text/plain", b"plain notes")])
    parsed = parse(build_message(email, domain="agency.example").as_bytes())

    assert parsed.get_content_type() == "multipart/mixed"
    assert parsed.get_body(("html",)) is not None
    found = [(p.get_filename(), p.get_content_type(), p.get_payload(decode=True)) for p in parsed.iter_attachments()]
    assert found == [("Angebot Nr. 7.pdf", "application/pdf", pdf), ("notes.txt", "text/plain", b"plain notes")]


def test_threading_and_extra_headers_are_written():
    email = make_email(in_reply_to="<a@x>", references=["<root@x>", "<a@x>"], headers={"X-Tenant": "t1"})
    parsed = parse(build_message(email, domain="agency.example").as_bytes())

    assert parsed["In-Reply-To"] == "<a@x>"
    assert parsed["References"] == "<root@x> <a@x>"
    assert parsed["X-Tenant"] == "t1"


def test_extra_headers_cannot_override_the_message_id():
    with pytest.raises(ValueError):
        build_message(make_email(headers={"Message-ID": "<mine@x>"}), domain="agency.example")


def test_message_id_uses_the_given_domain():
    message_id = build_message(make_email(), domain="agency.example")["Message-ID"]

    assert message_id.startswith("<") and message_id.endswith("@agency.example>")


def test_outbox_writes_one_eml_per_message_and_returns_its_message_id(outbox):
    sent = [send(make_email(subject=f"Nachricht {i}")) for i in range(100)]

    files = sorted(outbox.glob("*.eml"))
    assert len(files) == 100
    assert list(outbox.iterdir()) == list(outbox.glob("*.eml"))  # no temp files left behind
    assert all(isinstance(s, SentEmail) and s.sent_at.tzinfo is not None for s in sent)
    ids = [s.message_id for s in sent]
    assert len(set(ids)) == 100
    # File names sort by send time, so sorted files follow the send order.
    assert [parse(f.read_bytes())["Message-ID"] for f in files] == ids
    assert [parse(f.read_bytes())["Subject"] for f in files] == [f"Nachricht {i}" for i in range(100)]


def test_outbox_message_id_is_built_from_the_sender_domain(outbox):
    assert send(make_email()).message_id.endswith("@agency.example>")


def test_unknown_email_sender_raises_mail_send_error_naming_it(monkeypatch, outbox):
    monkeypatch.setenv("EMAIL_SENDER", "carrier-pigeon")
    reset_settings()

    with pytest.raises(MailSendError, match="carrier-pigeon"):
        send(make_email())
    assert not outbox.exists()


def test_message_without_recipients_raises_mail_send_error(outbox):
    with pytest.raises(MailSendError, match="recipients"):
        send(make_email(to=[]))


def test_header_injection_is_refused_as_mail_send_error(outbox):
    with pytest.raises(MailSendError):
        send(make_email(subject="Hello\r\nBcc: victim@example.com"))
    assert not list(outbox.glob("*.eml"))


def test_outbox_write_failure_raises_mail_send_error(monkeypatch, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the outbox should be")
    monkeypatch.setenv("EMAIL_SENDER", "outbox")
    monkeypatch.setenv("OUTBOX_DIR", str(blocker))
    reset_settings()
    try:
        with pytest.raises(MailSendError):
            send(make_email())
    finally:
        reset_settings()


def test_only_bcc_recipients_still_builds_a_message(outbox):
    send(make_email(to=[], bcc=["hidden@agency.example"]))

    parsed = parse(next(outbox.glob("*.eml")).read_bytes())
    assert "To" not in parsed and "Bcc" not in parsed


def test_importing_the_mail_module_loads_no_boto3():
    code = "import sys, chalicelib.mail; sys.exit('boto3' in sys.modules or 'botocore' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).parents[2]).returncode == 0


def test_the_outbox_logs_recipients_subject_decoded_links_and_the_file(outbox, caplog):
    # Long enough that quoted-printable folds it with `=` soft breaks and writes `=` as `=3D` in the .eml.
    link = "http://127.0.0.1:8000/invitations/accept?token=" + "Ab_9-" * 30 + "&lang=de"
    email = make_email(text=f"Grüße,\nIhr Zugang: {link}.\nHilfe: https://help.example/portal (Seite 2)\n",
                       html=f'<a href="{link}">Zugang</a>', bcc=["hidden@agency.example"])

    with caplog.at_level(logging.INFO, logger="chalicelib.mail"):
        send(email)

    (eml,) = outbox.glob("*.eml")
    assert link.encode() not in eml.read_bytes()  # what the issue saw: the file holds it only encoded
    (message,) = [r.getMessage() for r in caplog.records if r.name == "chalicelib.mail"]
    assert repr(email.subject) in message
    assert "soren@client.example" in message and "hidden@agency.example" in message
    assert str(eml) in message
    assert message.splitlines()[1:] == [f"  link: {link}", "  link: https://help.example/portal"]
