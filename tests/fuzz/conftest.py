"""The app served over real HTTP on DynamoDB Local with one seeded tenant, for Schemathesis (one per test module)."""
from __future__ import annotations

import email
import email.policy
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
import requests

from chalicelib.tokens import mint_token
from tests.api.conftest import ENV
from tests.ddb_local import FAKE_AWS, _reset_app_caches, ddb_client
from tests.http_servers import serving

TENANT = "t1"


@dataclass
class Served:
    """Where the app answers, the tokens of the seeded tenant, and the ids that fill each path parameter."""

    base: str
    staff_token: str
    portal_token: str
    params: dict[str, str] = field(default_factory=dict)
    spares: dict[str, list[str]] = field(default_factory=dict)  # extra ids, for operations that destroy theirs

    def call(self, method: str, path: str, body: Any = None, token: str | None = None, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {token or self.staff_token}", **kw.pop("headers", {})}
        answer = requests.request(method, self.base + path, json=body, headers=headers, timeout=60, **kw)
        assert answer.status_code in (200, 201), (method, path, answer.status_code, answer.text)
        return answer.json()


def _invitation_token(outbox: Path) -> str:
    [path] = outbox.glob("*.eml")
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    links = re.findall(r"https?://[^\s\"'<>]+", message.get_body(("plain",)).get_content())
    return next(t for link in links for t in parse_qs(urlparse(link).query).get("token", []))


def _seed(base: str, data_dir: Path) -> Served:
    """Tenant t1 with two or more of everything a path parameter names, and a contact signed in to the portal."""
    from chalicelib import blobs
    from chalicelib.domain.communications import UnmatchedEmail
    from chalicelib.tables.activity import ActivityRepository
    from chalicelib.tables.inbox import InboxRepository

    served = Served(base, mint_token(TENANT, ["admin"], sub="fuzz-admin"), "")
    call = served.call
    call("PATCH", "/v1/settings/portal", {"enabled": True})
    call("POST", "/v1/settings/custom-fields", {"key": "ref", "label": "Ref", "type": "text"})
    for key in ("spare1", "spare2"):
        call("POST", "/v1/settings/custom-fields", {"key": key, "label": key, "type": "text"})
    parent = call("POST", "/v1/categories", {"name": "Parent"})
    children = [call("POST", "/v1/categories", {"name": f"Child {n}", "parent_id": parent["id"]}) for n in "AB"]
    acme = call("POST", "/v1/clients", {"name": "Acme"})
    bolt = call("POST", "/v1/clients", {"name": "Bolt"})
    ivy = call("POST", "/v1/clients", {"name": "Ivy", "type": "individual"})
    hall = call("POST", "/v1/clients", {"name": "Hall", "type": "venue"})
    base_path = f"/v1/clients/{acme['id']}"
    for related in (ivy, hall):
        call("POST", f"{base_path}/associations", {"related_id": related["id"]})
    sam = call("POST", f"{base_path}/contacts", {"full_name": "Sam Second", "email": "sam@acme.test"})
    pat = call("POST", f"{base_path}/contacts", {"full_name": "Pat Primary", "email": "pat@acme.test"})
    call("PUT", f"{base_path}/contacts/{pat['id']}/portal-access", {"enabled": True})
    threads = [call("POST", f"{base_path}/threads", {"subject": s}) for s in ("Rig", "Crew")]
    comms = [call("POST", f"{base_path}/communications", {
        "type": "phone", "direction": "inbound", "subject": f"Call {n}", "thread_id": thread["id"],
        "requires_followup": True, "followup_date": f"2026-0{n}-01"}) for n, thread in enumerate(threads, 1)]
    tasks = [call("POST", f"{base_path}/tasks", {"title": t}) for t in ("Call back", "Send quote")]
    segments = [call("POST", "/v1/segments", {"name": n, "type": "static"}) for n in ("Gold", "Silver")]
    for segment in segments:
        call("POST", f"/v1/segments/{segment['id']}/members", {"client_id": acme["id"]})
    call("POST", f"/v1/segments/{segments[0]['id']}/members", {"client_id": bolt["id"]})
    call("POST", f"{base_path}/feedback", {"rating": 4})
    call("POST", f"{base_path}/lead-score/recalculate")
    for kind, number in (("quote", "Q-1"), ("quote", "Q-2"), ("invoice", "INV-1"), ("invoice", "INV-2")):
        call("PUT", f"/v1/integrations/invoices/{number}", {"client_id": acme["id"], "kind": kind,
                                                          "amount": "10.00", "status": "open"})
    call("PUT", "/v1/integrations/projects/P-1", {"client_id": acme["id"], "status": "active"})
    imports = [call("POST", "/v1/clients/import", data=f"name,email\nRow {n},not-an-email\n".encode(),
                    headers={"Content-Type": "text/csv"}) for n in (1, 2)]  # recorded, creating nothing
    unmatched = [f"01J000000000000000000000{n:02}" for n in range(3)]
    inbox = InboxRepository(TENANT)
    for n, item_id in enumerate(unmatched):  # the raw email in the bucket, as the inbound function leaves it
        raw = (f"From: who{n}@elsewhere.test\r\nTo: in@t1.test\r\nSubject: Hello {n}\r\n"
               f"Message-ID: <fuzz-{n}@elsewhere.test>\r\nDate: Thu, 01 Jan 2026 10:00:00 +0000\r\n\r\nHi {n}\r\n")
        blobs.put_object("inbound", f"inbound/fuzz-{n}", raw.encode(), "message/rfc822")
        inbox.add_unmatched(UnmatchedEmail(id=item_id, from_email=f"who{n}@elsewhere.test", subject=f"Hello {n}",
                                           received_at=datetime(2026, 1, 1 + n, tzinfo=UTC),
                                           bucket="inbound", key=f"inbound/fuzz-{n}"))
    ActivityRepository(TENANT).write([  # the timeline is written from the table's stream, not pumped here
        {"client_id": acme["id"], "id": f"event-{n}", "at": datetime(2026, 1, n, tzinfo=UTC),
         "actor": "fuzz-admin", "action": "updated", "entity_type": "client", "entity_id": acme["id"],
         "changes": {}} for n in (1, 2)])
    accepted = requests.post(base + "/v1/portal/invitations/accept",
                             json={"token": _invitation_token(data_dir / "outbox")}, timeout=60)
    assert accepted.status_code == 200, accepted.text
    served.portal_token = accepted.json()["access_token"]
    served.params = {
        "client_id": acme["id"], "category_id": parent["id"], "segment_id": segments[0]["id"],
        "comm_id": comms[0]["id"], "thread_id": threads[0]["id"], "contact_id": sam["id"], "task_id": tasks[0]["id"],
        "related_id": ivy["id"], "item_id": unmatched[0], "key": "ref", "project_id": "P-1", "invoice_id": "INV-1",
        "quote_id": "Q-1", "export_id": "01J0EXPORT", "import_id": imports[0]["id"]}
    served.spares = {"category_id": [c["id"] for c in children], "segment_id": [segments[1]["id"]],
                     "comm_id": [comms[1]["id"]], "key": ["spare1", "spare2"], "related_id": [hall["id"]],
                     "contact_id": [pat["id"]], "item_id": unmatched[1:], "client_id": [bolt["id"]]}
    return served


@pytest.fixture(scope="module")
def served(ddb_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """The app on its own fresh table in DynamoDB Local, served on a free port, with tenant t1 seeded."""
    import app as app_module
    from chalicelib.config import get_settings
    from chalicelib.tables import create_table

    data_dir = tmp_path_factory.mktemp("fuzz")
    table_name = f"fuzz-{uuid.uuid4().hex[:12]}"
    env = {**FAKE_AWS, "DYNAMODB_ENDPOINT": ddb_endpoint, "TABLE_NAME": table_name, "DATA_DIR": str(data_dir),
           "S3_LOCAL_DIR": str(data_dir / "s3"), "AUTH_JWT_SECRET": ENV["AUTH_JWT_SECRET"],
           "AUTH_ISSUER": ENV["AUTH_ISSUER"]}
    with pytest.MonkeyPatch.context() as patch:
        for key, value in env.items():
            patch.setenv(key, value)
        for key in ("AWS_SESSION_TOKEN", "AWS_PROFILE", "JOBS_QUEUE_URL", "OUTBOX_DIR", "EMAIL_SENDER", "PORTAL_URL",
                    "PORTAL_TOKEN_SECRET", "AUTH_JWKS_URL", "AUTH_AUDIENCE"):
            patch.delenv(key, raising=False)
        _reset_app_caches()
        get_settings()
        create_table()
        with serving(app_module.app) as base:
            yield _seed(base, data_dir)
            try:
                ddb_client(ddb_endpoint).delete_table(TableName=table_name)
            except Exception:  # noqa: BLE001 - the table goes with DynamoDB Local anyway
                pass
            _reset_app_caches()
