"""Limits (OWASP API4): every size and rate limit answers the contract's code; rates are 429 with Retry-After."""
from __future__ import annotations

import email
import email.policy
import importlib
import re
import threading
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

import app  # noqa: F401 - registers every route in ROUTES
from chalicelib.config import get_settings, reset_settings
from chalicelib.domain import communication_cases, rate_limits
from chalicelib.domain.errors import RateLimited
from chalicelib.handlers.openapi import build_openapi
from chalicelib.handlers.routing import MAX_BODY, ROUTES
from chalicelib.tables import keys
from chalicelib.tables.rate_limits import KEEP, RateLimitRepository
from chalicelib.tables.stores import Stores
from chalicelib.tables.work_items import RateCounterItem
from chalicelib.tokens import mint_portal_token
from tests.api.conftest import ENV, Api, PortalUser
from tests.api.test_inbound_email import deliver, inbox  # noqa: F401 - fixture reused

pytestmark = pytest.mark.usefixtures("local_mail")  # emails and invitations go to the outbox of DATA_DIR

# Each limit of the contract, once, with the test that holds it: this module adds the ones that were missing.
LIMITS = {
    "body over 1 MiB is 413": ("test_conventions_api", "test_body_over_one_mebibyte_is_413"),
    "every JSON write route refuses over 1 MiB": (__name__, "test_every_write_route_answers_413_over_one_mebibyte"),
    "import over 10 MiB is 413": ("test_import_api", "test_a_file_over_10_mib_is_413_and_writes_nothing"),
    "import over 10,000 rows is 413": ("test_import_api",
                                       "test_a_file_over_10000_rows_is_413_naming_the_count_and_writes_nothing"),
    "JSON deeper than 64 is 400": ("test_bad_input_api",
                                   "test_json_nested_deeper_than_64_levels_is_400_and_64_levels_are_taken"),
    "id over 128 in a path is 404": ("test_bad_input_api",
                                      "test_a_path_id_longer_than_128_characters_is_404_on_every_route"),
    "id over 128 in a body is 422": ("test_bad_input_api",
                                      "test_an_id_longer_than_128_characters_in_a_body_is_422_naming_the_field"),
    "id over 128 in a query is 400": ("test_bad_input_api",
                                       "test_an_id_longer_than_128_characters_in_a_query_is_400_naming_the_parameter"),
    "limit outside 1-100 is 400": ("test_bad_input_api",
                                   "test_every_list_refuses_a_limit_outside_1_to_100_and_a_forged_cursor"),
    "bulk over 500 or empty is 422": ("test_bulk_api", "test_bad_bodies_are_422_naming_the_field_and_change_nothing"),
    "bulk of 500 is taken": ("test_bulk_api", "test_five_hundred_ids_are_accepted"),
    "inbound attachment over 10 MiB": (__name__, "test_an_inbound_attachment_over_10_mib_is_not_stored"),
    "invitations per contact per day": (__name__, "test_invitations_beyond_the_daily_limit_are_429_and_send_nothing"),
    "emails per tenant per minute": (__name__, "test_emails_beyond_the_tenants_minute_are_429_and_nothing_is_sent"),
}


def test_every_limit_of_the_contract_is_held_by_a_test():
    missing = {}
    for limit, (module, name) in LIMITS.items():
        found = importlib.import_module(module if "." in module else f"tests.api.{module}")
        if not callable(getattr(found, name, None)):
            missing[limit] = f"{module}::{name}"
    assert missing == {}


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, (response.status_code, response.data)
    assert response.data["error"]["code"] == code, response.data
    return response.data["error"]


# --- body size: 1 MiB on every JSON write route, 10 MiB for the CSV import

WRITE_ROUTES = [r for r in ROUTES if r.method in ("POST", "PUT", "PATCH", "DELETE") and not r.accepts]


def test_every_write_route_answers_413_over_one_mebibyte(api):
    """The size is checked before anything is looked up: any id of the right length will do."""
    portal = PortalUser(api.http, mint_portal_token("t1", "some-client", "some-contact")[0])
    too_big = b'{"name": "' + b"x" * MAX_BODY + b'"}'
    answers = {f"{doc.method} {doc.path}": (portal if doc.need == "portal" else api).call(
        doc.method, re.sub(r"{\w+}", "some-id", doc.path), raw=too_big,
        headers={"Authorization": ""} if doc.need == "public" else None) for doc in WRITE_ROUTES}
    assert len(answers) > 40
    wrong = {name: (r.status_code, r.data) for name, r in answers.items()
             if r.status_code != 413 or r.data["error"]["code"] != "payload_too_large"}
    assert wrong == {}


def test_a_body_of_exactly_one_mebibyte_is_taken(api):
    body = b'{"name": "Acme"}'
    created = api.post("/v1/clients", raw=body + b" " * (MAX_BODY - len(body)))
    assert created.status_code == 201, created.data


def test_an_import_between_one_and_ten_mebibytes_is_not_held_to_the_json_limit(api):
    raw = b"name\n" + (b"n" * 100_000 + b"\n") * 21  # 2 MiB of names too long: row errors, not a 413
    answer = api.call("POST", "/v1/clients/import?dry_run=true", raw=raw, headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.data
    assert answer.data["created"] == 0 and answer.data["errors"]


# --- inbound attachments: at most 10 MiB each; the email is logged with the others


def _email_with_attachments(*parts: tuple[str, bytes]) -> str:
    msg = EmailMessage(policy=email.policy.SMTP)
    msg["From"], msg["To"], msg["Subject"] = "Jane Doe <jane@acme.test>", "acme@in.nexusrms.test", "Files"
    msg["Message-ID"] = "<files@acme.test>"
    msg.set_content("Both files attached.")
    for name, data in parts:
        msg.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return msg.as_string()


def test_an_inbound_attachment_over_10_mib_is_not_stored(api, inbox, tmp_path):  # noqa: F811 - the fixture
    client = api.post("/v1/clients", {"name": "Acme"}).data
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Jane Doe", "email": "jane@acme.test"})
    limit = 10 * 1024 * 1024
    result = deliver(inbox, "files.eml", _email_with_attachments(("small.bin", b"s" * 1000),
                                                                 ("huge.bin", b"h" * (limit + 1))))
    assert result["status"] == "logged"
    logged = api.get(f"/v1/clients/{client['id']}/communications/{result['communication_id']}").data
    assert [(a["filename"], a["size"]) for a in logged["attachments"]] == [("small.bin", 1000)]
    stored = [p.name for p in (tmp_path / "s3" / get_settings().attachments_bucket).rglob("*") if p.is_file()]
    assert stored == ["small.bin"]


def test_an_inbound_attachment_of_exactly_10_mib_is_stored(api, inbox):  # noqa: F811 - the fixture
    client = api.post("/v1/clients", {"name": "Acme"}).data
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Jane Doe", "email": "jane@acme.test"})
    result = deliver(inbox, "edge.eml", _email_with_attachments(("edge.bin", b"e" * (10 * 1024 * 1024))))
    logged = api.get(f"/v1/clients/{client['id']}/communications/{result['communication_id']}").data
    assert [a["filename"] for a in logged["attachments"]] == ["edge.bin"]


# --- rates: fixed windows counted in the table; 429 rate_limited with Retry-After


MAR_2_23H = datetime(2026, 3, 2, 23, 0, 0, tzinfo=UTC).timestamp()  # an hour before a UTC day ends


@pytest.fixture
def clock(monkeypatch):
    """The rate limits' clock, at 23:00:00 UTC; `clock.move(seconds)` moves it forward."""
    class Clock:
        now = MAR_2_23H

        def move(self, seconds: float) -> None:
            self.now += seconds

    c = Clock()
    monkeypatch.setattr(rate_limits, "clock", lambda: c.now)
    return c


@pytest.fixture
def limits(monkeypatch):
    """Set the limits (settings are read now: the test client swaps the environment during requests)."""
    def set_limits(emails: int = 60, invitations: int = 5) -> None:
        monkeypatch.setenv("EMAILS_PER_TENANT_PER_MINUTE", str(emails))
        monkeypatch.setenv("INVITATIONS_PER_CONTACT_PER_DAY", str(invitations))
        reset_settings()
        get_settings()
    yield set_limits
    reset_settings()


def _outbox(tmp_path: Path) -> list[Path]:
    return sorted((tmp_path / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)


@pytest.fixture
def acme(api) -> dict:
    client = api.post("/v1/clients", {"name": "Acme"}).data
    api.post(f"/v1/clients/{client['id']}/contacts", {"full_name": "Jane Doe", "email": "jane@acme.test"})
    return client


def _email(api, client_id: str, n: int = 0):
    return api.post(f"/v1/clients/{client_id}/communications",
                    {"type": "email", "subject": f"Quote {n}", "body": "Here it is"})


def _limited(response, setting: str, retry_after: int) -> None:
    message = _error(response, 429, "rate_limited")["message"]
    assert setting in message, message
    assert response.headers["Retry-After"] == str(retry_after)


def test_emails_beyond_the_tenants_minute_are_429_and_nothing_is_sent(api, acme, limits, clock, tmp_path):
    limits(emails=3)
    assert [_email(api, acme["id"], n).data["status"] for n in range(3)] == ["sent"] * 3
    clock.move(15)
    refused = api.post(f"/v1/clients/{acme['id']}/communications", {"type": "email", "subject": "4", "body": "b"},
                       headers={"Origin": "https://app.nexusrms.test"})
    _limited(refused, "EMAILS_PER_TENANT_PER_MINUTE", 45)
    assert "Retry-After" in refused.headers["Access-Control-Expose-Headers"]  # a browser may read it
    assert len(_outbox(tmp_path)) == 3
    assert len(api.get(f"/v1/clients/{acme['id']}/communications").data["items"]) == 3  # nothing stored
    clock.move(45)  # the next minute
    assert _email(api, acme["id"], 4).data["status"] == "sent"
    assert len(_outbox(tmp_path)) == 4


def test_a_refused_email_retried_with_its_idempotency_key_is_sent_once_the_minute_ends(api, acme, limits, clock):
    limits(emails=1)
    _email(api, acme["id"])
    key = {"Idempotency-Key": "send-quote-7"}
    body = {"type": "email", "subject": "Quote 7", "body": "b"}
    _limited(api.post(f"/v1/clients/{acme['id']}/communications", body, headers=key),
             "EMAILS_PER_TENANT_PER_MINUTE", 60)
    clock.move(60)
    sent = api.post(f"/v1/clients/{acme['id']}/communications", body, headers=key)
    assert sent.status_code == 201 and sent.data["status"] == "sent"
    again = api.post(f"/v1/clients/{acme['id']}/communications", body, headers=key)
    assert again.headers.get("Idempotent-Replayed") == "true" and again.data["id"] == sent.data["id"]


def test_drafts_notes_and_calls_are_not_emails_sent(api, acme, limits, clock, tmp_path):
    limits(emails=1)
    _email(api, acme["id"])
    base = f"/v1/clients/{acme['id']}/communications"
    draft = api.post(base, {"type": "email", "subject": "Later", "body": "b", "send_now": False})
    assert draft.status_code == 201 and draft.data["status"] == "draft"
    assert api.post(base, {"type": "note", "body": "internal"}).status_code == 201
    assert api.post(base, {"type": "phone", "direction": "outbound"}).status_code == 201
    assert len(_outbox(tmp_path)) == 1


def test_sending_a_draft_beyond_the_limit_is_429_and_the_draft_stays_a_draft(api, acme, limits, clock, tmp_path):
    limits(emails=1)
    base = f"/v1/clients/{acme['id']}/communications"
    draft = api.post(base, {"type": "email", "subject": "Later", "body": "b", "send_now": False}).data
    _email(api, acme["id"])
    _limited(api.post(f"{base}/{draft['id']}/send"), "EMAILS_PER_TENANT_PER_MINUTE", 60)
    assert api.get(f"{base}/{draft['id']}").data["status"] == "draft"
    assert len(_outbox(tmp_path)) == 1
    clock.move(60)
    assert api.post(f"{base}/{draft['id']}/send").data["status"] == "sent"


def test_the_email_limit_is_per_tenant(api, acme, limits, clock):
    limits(emails=1)
    _email(api, acme["id"])
    other = api.as_("t2")
    bolt = other.post("/v1/clients", {"name": "Bolt"}).data
    other.post(f"/v1/clients/{bolt['id']}/contacts", {"full_name": "Bo", "email": "bo@bolt.test"})
    assert _email(other, bolt["id"]).data["status"] == "sent"
    assert _email(api, acme["id"]).status_code == 429


# --- portal invitations per contact per day


@pytest.fixture
def portal(api):
    assert api.patch("/v1/settings/portal", {"enabled": True}).status_code == 200


def _contact(api, client_id: str, name: str, address: str) -> str:
    return api.post(f"/v1/clients/{client_id}/contacts", {"full_name": name, "email": address}).data["id"]


def _link_token(path: Path) -> str:
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    links = re.findall(r"https?://[^\s\"'<>]+", message.get_body(("plain",)).get_content())
    return next(t for link in links for t in parse_qs(urlparse(link).query).get("token", []))


def test_invitations_beyond_the_daily_limit_are_429_and_send_nothing(api, acme, portal, limits, clock, tmp_path):
    limits(invitations=2)
    one = f"/v1/clients/{acme['id']}/contacts/{_contact(api, acme['id'], 'Pat', 'pat@acme.test')}"
    assert api.put(f"{one}/portal-access", {"enabled": True}).status_code == 200
    assert api.post(f"{one}/portal-invitation").status_code == 200
    before = api.get(one).data
    refused = api.post(f"{one}/portal-invitation")
    _limited(refused, "INVITATIONS_PER_CONTACT_PER_DAY", 3600)  # until the UTC day ends
    assert api.get(one).data == before  # nothing written: the last link sent still works
    assert len(_outbox(tmp_path)) == 2
    accepted = api.call("POST", "/v1/portal/invitations/accept", {"token": _link_token(_outbox(tmp_path)[-1])},
                        headers={"Authorization": ""})
    assert accepted.status_code == 200, accepted.data
    clock.move(3600)  # a new day
    assert api.post(f"{one}/portal-invitation").status_code == 200
    assert len(_outbox(tmp_path)) == 3


def test_turning_access_off_and_on_again_counts_as_an_invitation(api, acme, portal, limits, clock, tmp_path):
    limits(invitations=1)
    one = f"/v1/clients/{acme['id']}/contacts/{_contact(api, acme['id'], 'Pat', 'pat@acme.test')}"
    assert api.put(f"{one}/portal-access", {"enabled": True}).status_code == 200
    assert api.put(f"{one}/portal-access", {"enabled": False}).status_code == 200  # turning off is never limited
    _limited(api.put(f"{one}/portal-access", {"enabled": True}), "INVITATIONS_PER_CONTACT_PER_DAY", 3600)
    assert api.get(one).data["portal_access"] is False
    assert len(_outbox(tmp_path)) == 1


def test_the_invitation_limit_is_per_contact(api, acme, portal, limits, clock):
    limits(invitations=1)
    first = f"/v1/clients/{acme['id']}/contacts/{_contact(api, acme['id'], 'Pat', 'pat@acme.test')}"
    second = f"/v1/clients/{acme['id']}/contacts/{_contact(api, acme['id'], 'Sam', 'sam@acme.test')}"
    assert api.put(f"{first}/portal-access", {"enabled": True}).status_code == 200
    assert api.post(f"{first}/portal-invitation").status_code == 429
    assert api.put(f"{second}/portal-access", {"enabled": True}).status_code == 200


def test_invitations_count_as_emails_and_a_refused_one_is_not_counted_for_the_contact(api, acme, portal, limits,
                                                                                        clock):
    limits(emails=1, invitations=2)
    one = f"/v1/clients/{acme['id']}/contacts/{_contact(api, acme['id'], 'Pat', 'pat@acme.test')}"
    assert api.put(f"{one}/portal-access", {"enabled": True}).status_code == 200  # the tenant's email this minute
    _limited(_email(api, acme["id"]), "EMAILS_PER_TENANT_PER_MINUTE", 60)
    _limited(api.post(f"{one}/portal-invitation"), "EMAILS_PER_TENANT_PER_MINUTE", 60)
    clock.move(60)
    assert api.post(f"{one}/portal-invitation").status_code == 200  # the refused one was given back
    clock.move(60)
    _limited(api.post(f"{one}/portal-invitation"), "INVITATIONS_PER_CONTACT_PER_DAY", 3600 - 120)


def test_a_resend_that_breaks_a_rule_answers_that_rule_not_the_limit(api, acme, portal, limits, clock):
    limits(emails=1)
    _email(api, acme["id"])  # the tenant may send nothing more this minute
    never_invited = f"/v1/clients/{acme['id']}/contacts/{_contact(api, acme['id'], 'Sam', 'sam@acme.test')}"
    _error(api.post(f"{never_invited}/portal-invitation"), 409, "no_invitation_sent")
    _error(api.post(f"/v1/clients/{acme['id']}/contacts/nobody/portal-invitation"), 404, "not_found")
    api.patch("/v1/settings/portal", {"enabled": False})
    _error(api.put(f"{never_invited}/portal-access", {"enabled": True}), 409, "portal_disabled")


# --- the counters themselves


def test_a_rate_counter_key_is_led_by_the_tenant_and_names_its_window():
    assert keys.rate_counter_pk("t1", "emails", 1772492400) == "T#t1#RATE#emails#1772492400"


def test_a_counter_expires_after_its_window(api, acme, limits, clock):
    limits(emails=5)
    _email(api, acme["id"])
    start = int(MAR_2_23H) // 60 * 60
    item = RateCounterItem.get(keys.rate_counter_pk("t1", "emails", start), keys.UNIQUE_SK)
    assert item.n == 1 and item.expires_at == start + 60 + KEEP  # the table's TTL attribute
    assert RateLimitRepository("t2").used("emails", start) == 0  # another tenant's count is its own


def test_the_sending_routes_document_429_and_no_other_route_does():
    documented = {f"{m.upper()} {p}" for p, ops in build_openapi()["paths"].items() for m, op in ops.items()
                  if "429" in op["responses"]}
    assert documented == {
        "POST /v1/clients/{client_id}/communications", "POST /v1/clients/{client_id}/communications/{comm_id}/send",
        "PUT /v1/clients/{client_id}/contacts/{contact_id}/portal-access",
        "POST /v1/clients/{client_id}/contacts/{contact_id}/portal-invitation"}


@pytest.mark.ddb
def test_concurrent_takers_never_pass_the_limit(ddb_table):
    counters, allowed, results = RateLimitRepository("t1"), 7, []
    barrier = threading.Barrier(20)

    def take() -> None:
        barrier.wait()
        results.append(counters.take("emails", 0, 60, allowed))

    threads = [threading.Thread(target=take) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == allowed and counters.used("emails", 0) == allowed


@pytest.mark.ddb
def test_concurrent_sends_send_and_store_only_what_the_limit_allows(ddb_table, monkeypatch):
    from chalice.test import Client

    import app as app_module

    for name in ("AUTH_JWT_SECRET", "AUTH_ISSUER"):
        monkeypatch.setenv(name, ENV[name])
    monkeypatch.setenv("EMAILS_PER_TENANT_PER_MINUTE", "4")
    monkeypatch.setattr(rate_limits, "clock", lambda: MAR_2_23H + 20)  # every send in the same minute
    reset_settings()
    with Client(app_module.app) as http:
        api = Api(http)
        client_id = api.post("/v1/clients", {"name": "Acme"}).data["id"]
        api.post(f"/v1/clients/{client_id}/contacts", {"full_name": "Jane Doe", "email": "jane@acme.test"})
    sent, refused, lock = [], [], threading.Lock()
    barrier = threading.Barrier(12)

    def send(**fields) -> str:
        with lock:
            sent.append(fields["subject"])
        return f"<{fields['subject']}@test>"

    def log(n: int) -> None:
        barrier.wait()
        try:
            communication_cases.log_communication(Stores("t1", "user-1"), client_id,
                                                  {"type": "email", "subject": f"m{n}", "body": "b"},
                                                  actor="user-1", send=send)
        except RateLimited as exc:
            refused.append(exc.retry_after)

    threads = [threading.Thread(target=log, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    stored = Stores("t1").communications.of_client(client_id)
    assert (len(sent), len(refused), len(stored)) == (4, 8, 4)
    assert sorted(c.subject for c in stored) == sorted(sent)
    assert all(1 <= seconds <= 60 for seconds in refused)
