"""Outbound mail through SES, on moto: what SES receives and how its failures surface."""
from __future__ import annotations

from email import message_from_string, policy

import boto3
import pytest
from moto import mock_aws
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from chalicelib.config import reset_settings
from chalicelib.mail import MailSendError, OutgoingEmail, reset_clients, send

REGION = "eu-west-1"
SENDER = "hello@agency.example"


@pytest.fixture
def ses(monkeypatch):
    for key, value in {"AWS_DEFAULT_REGION": REGION, "AWS_ACCESS_KEY_ID": "testing",
                       "AWS_SECRET_ACCESS_KEY": "testing", "EMAIL_SENDER": "ses"}.items():
        monkeypatch.setenv(key, value)
    reset_settings()
    reset_clients()  # a client cached from an earlier test would point outside this mock
    with mock_aws():
        boto3.client("ses", region_name=REGION).verify_email_identity(EmailAddress=SENDER)
        yield ses_backends[DEFAULT_ACCOUNT_ID][REGION]
    reset_clients()
    reset_settings()


def make_email(**overrides) -> OutgoingEmail:
    fields = {"from_address": f"Agentur Ölberg <{SENDER}>", "to": ["Søren <soren@client.example>"],
                  "cc": ["ana@client.example"], "bcc": ["audit@agency.example"],
                  "subject": "Einladung zum Kundenportal", "text": "Ihr Link: https://portal.example/?token=abc"}
    return OutgoingEmail(**{**fields, **overrides})


def test_ses_receives_the_raw_message_with_our_message_id(ses):
    sent = send(make_email())

    [message] = ses.sent_messages
    parsed = message_from_string(message.raw_data, policy=policy.default)
    assert parsed["Message-ID"] == sent.message_id
    assert parsed["Subject"] == "Einladung zum Kundenportal"
    assert message.source == SENDER


def test_bcc_is_an_ses_destination_but_not_a_header(ses):
    send(make_email())

    [message] = ses.sent_messages
    assert "audit@agency.example" in message.destinations
    addresses = {d.split("<")[-1].rstrip(">") for d in message.destinations}
    assert {"soren@client.example", "ana@client.example"} <= addresses
    assert "Bcc" not in message_from_string(message.raw_data, policy=policy.default)
    assert "audit@agency.example" not in message.raw_data


def test_unverified_sender_rejected_by_ses_raises_mail_send_error(ses):
    with pytest.raises(MailSendError, match="MessageRejected"):
        send(make_email(from_address="stranger@elsewhere.example"))
    assert ses.sent_messages == []


def test_one_ses_client_is_reused_across_sends(ses):
    import chalicelib.mail as mail

    send(make_email())
    send(make_email())

    assert len(ses.sent_messages) == 2
    assert mail._ses_client.cache_info().currsize == 1


def test_backend_is_chosen_on_each_call_from_settings(ses, monkeypatch, tmp_path):
    monkeypatch.setenv("EMAIL_SENDER", "outbox")
    monkeypatch.setenv("OUTBOX_DIR", str(tmp_path))
    reset_settings()
    send(make_email())
    monkeypatch.setenv("EMAIL_SENDER", "ses")
    reset_settings()
    send(make_email())

    assert len(list(tmp_path.glob("*.eml"))) == 1
    assert len(ses.sent_messages) == 1
