"""The isolation matrix's world: two seeded tenants, their portal contacts, and the tokens the matrix sends."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.config import get_settings
from chalicelib.domain.communications import UnmatchedEmail
from chalicelib.tables.activity import ActivityRepository
from chalicelib.tables.inbox import InboxRepository
from chalicelib.tokens import PORTAL_ISSUER
from tests.api import openapi_check
from tests.api.conftest import ENV, Api

WEBHOOK_SECRET = "whsec_" + base64.b64encode(b"node-platform-matrix-key").decode()
OTHER_SECRET = "another-secret-of-enough-length-for-hs256"
SPA_CLIENT = "spa-app-client-id"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
OTHER_RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
# Text seeded only into what staff may see: none of it may reach a portal answer.
INTERNAL_MARKERS = ("INTERNAL-NOTE-7f3a", "DRAFT-MESSAGE-7f3a", "CONTACT-NOTES-7f3a", "internal-tag-7f3a",
                    "FOLLOWUP-NOTES-7f3a")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned_jwt(header: dict, claims: dict, signature: bytes = b"") -> str:
    """A JWT put together by hand (no library refuses to build it): for `alg: none` and forged signatures."""
    head = b64(json.dumps(header, separators=(",", ":")).encode())
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    return f"{head}.{body}.{b64(signature)}"


def hs256_with_raw_key(claims: dict, key: bytes, kid: str | None = None) -> str:
    """HS256 with any bytes as the key, such as an RSA public key (PyJWT refuses to sign with one)."""
    header = {"alg": "HS256", "typ": "JWT", **({"kid": kid} if kid else {})}
    head = b64(json.dumps(header, separators=(",", ":")).encode())
    body = b64(json.dumps(claims, separators=(",", ":")).encode())
    signature = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{b64(signature)}"


def public_pem() -> bytes:
    return RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM,
                                             serialization.PublicFormat.SubjectPublicKeyInfo)


def public_jwk() -> dict:
    return {**json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(RSA_KEY.public_key())), "kid": "k1", "alg": "RS256",
            "use": "sig"}


def staff_claims(tenant: str, roles: list[str] | None, **over) -> dict:
    now = int(time.time())
    claims = {"iss": get_settings().auth_issuer, "sub": f"user-{uuid.uuid4().hex[:8]}", "tenant_id": tenant,
              "iat": now, "exp": now + 3600, **({"roles": roles} if roles is not None else {})}
    return {k: v for k, v in {**claims, **over}.items() if v is not None}


def portal_claims(tenant: str, client_id: str, contact_id: str, **over) -> dict:
    now = int(time.time())
    claims = {"iss": PORTAL_ISSUER, "sub": contact_id, "tenant_id": tenant, "client_id": client_id,
              "scope": "portal", "iat": now, "exp": now + 3600, "jti": uuid.uuid4().hex}
    return {k: v for k, v in {**claims, **over}.items() if v is not None}


def staff_token(tenant: str, roles: list[str] | None, **over) -> str:
    return jwt.encode(staff_claims(tenant, roles, **over), get_settings().auth_jwt_secret, algorithm="HS256")


def portal_token(tenant: str, client_id: str, contact_id: str, **over) -> str:
    return jwt.encode(portal_claims(tenant, client_id, contact_id, **over), get_settings().portal_secret,
                      algorithm="HS256")


@dataclass
class Tenant:
    """One seeded tenant: the ids of its first portal client (Acme) and of a second one (Bolt)."""

    id: str
    params: dict[str, str]  # every path parameter, filled with Acme's ids
    other: dict[str, str]  # Bolt's ids, of the same kinds
    acme_contact: str
    bolt_contact: str
    revoked_contact: str
    ids: set[str] = field(default_factory=set)  # every id the tenant holds
    acme_ids: set[str] = field(default_factory=set)  # the ids only Acme's portal users may see


@dataclass
class World:
    http: object
    t1: Tenant
    t2: Tenant
    jwks_issuer: str
    data_dir: Path
    writes: list[str] = field(default_factory=list)  # every write call moto's DynamoDB, SQS and S3 received

    def effects(self) -> tuple[int, list[tuple[str, int]]]:
        """How many writes the service has made, and the files (mail outbox, events, blobs) under DATA_DIR."""
        return len(self.writes), sorted((str(p), p.stat().st_size) for p in self.data_dir.rglob("*") if p.is_file())

    def call(self, method: str, path: str, authorization: str | None, body=None, headers: dict | None = None):
        """The request with exactly this Authorization header (None: none at all), checked against the OpenAPI
        document like every answer a test gets."""
        h = {"Content-Type": "application/json", **(headers or {})}
        if authorization is not None:
            h["Authorization"] = authorization
        raw = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        response = self.http.http.request(method, path, headers=h, body=raw)
        ctype = response.headers.get("Content-Type", "")
        response.data = json.loads(response.body) if response.body and ctype.startswith("application/json") \
            else response.body
        wrong = openapi_check.problems(method, path, response.status_code, ctype, response.body)
        assert not wrong, "the answer disagrees with /v1/openapi.json:\n" + "\n".join(wrong)
        return response


def table_items() -> list[tuple]:
    """Every item of the table (read from moto's memory: a scan per request would be too slow), in key order:
    what a refused request must leave exactly as it was."""
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.dynamodb.models import dynamodb_backends

    table = dynamodb_backends[DEFAULT_ACCOUNT_ID][ENV["AWS_DEFAULT_REGION"]].tables[get_settings().table_name]
    return sorted((item.hash_key.value, item.range_key.value if item.range_key else "",
                   json.dumps(item.to_json(), sort_keys=True, default=str)) for item in table.all_items())


WRITES = {"dynamodb": ("put_item", "update_item", "delete_item", "batch_write_item", "transact_write_items",
                        "execute_transaction"),
          "sqs": ("send_message", "send_message_batch"), "s3": ("put_object", "delete_object")}


def count_writes(mp, writes: list[str]) -> None:
    """Record every write moto's backends carry out, whichever client makes it. A write refused by its condition
    (a transaction cancelled, nothing changed) is not one; calls a backend makes inside another count once."""
    from moto.dynamodb.models import DynamoDBBackend
    from moto.s3.models import S3Backend
    from moto.sqs.models import SQSBackend

    depth = [0]
    for service, backend in (("dynamodb", DynamoDBBackend), ("sqs", SQSBackend), ("s3", S3Backend)):
        for method in WRITES[service]:
            original = getattr(backend, method)

            def counted(self, *args, _original=original, _name=f"{service}.{method}", **kwargs):
                depth[0] += 1
                try:
                    result = _original(self, *args, **kwargs)
                finally:
                    depth[0] -= 1
                if depth[0] == 0:
                    writes.append(_name)
                return result

            mp.setattr(backend, method, counted)


def _made(response) -> dict:
    assert response.status_code in (200, 201), (response.status_code, response.data)
    return response.data


def seed(api: Api, tenant: str, full: bool = True) -> Tenant:
    """A tenant with an item of every kind a path names, for two portal clients (Acme and Bolt); not `full`, only
    Acme with its portal contact, a thread, messages and documents (enough for another tenant's lists)."""
    _made(api.patch("/v1/settings/portal", {"enabled": True, "show_communications": True, "show_invoices": True,
                                            "allow_quote_approval": True}))
    ids: set[str] = set()

    def client_world(client: dict, letter: str) -> dict[str, str]:
        base = f"/v1/clients/{client['id']}"
        contact = _made(api.post(f"{base}/contacts", {"full_name": f"Sam {letter}", "email": f"sam{letter}@x.test",
                                                      "notes": INTERNAL_MARKERS[2]}))
        portal = _made(api.post(f"{base}/contacts", {"full_name": f"Pat {letter}", "email": f"pat{letter}@x.test",
                                                     "notes": INTERNAL_MARKERS[2]}))
        _made(api.put(f"{base}/contacts/{portal['id']}/portal-access", {"enabled": True}))
        thread = _made(api.post(f"{base}/threads", {"subject": f"Rig {letter}"}))
        comm = _made(api.post(f"{base}/communications", {
            "type": "phone", "direction": "inbound", "subject": f"Call {letter}", "thread_id": thread["id"],
            "requires_followup": True, "followup_date": "2026-01-01", "followup_notes": INTERNAL_MARKERS[4]}))
        note = _made(api.post(f"{base}/communications", {"type": "note", "subject": INTERNAL_MARKERS[0],
                                                         "body": INTERNAL_MARKERS[0], "thread_id": thread["id"]}))
        draft = _made(api.post(f"{base}/communications", {
            "type": "email", "subject": INTERNAL_MARKERS[1], "body": INTERNAL_MARKERS[1],
            "to_email": f"pat{letter}@x.test", "thread_id": thread["id"], "send_now": False}))
        assert draft["status"] == "draft"
        task = _made(api.post(f"{base}/tasks", {"title": f"Call back {letter}"}))
        facts = {}
        for kind, name in (("quote", "Q"), ("invoice", "INV")):
            number = f"{tenant}-{name}-{letter}"
            _made(api.put(f"/v1/integrations/invoices/{number}", {"client_id": client["id"], "kind": kind,
                                                                  "amount": "10.00", "status": "open",
                                                                  "issued_at": "2026-01-02T00:00:00Z"}))
            facts[f"{kind}_id"] = number
        project = f"{tenant}-P-{letter}"
        _made(api.put(f"/v1/integrations/projects/{project}", {"client_id": client["id"], "status": "active"}))
        made = {"client_id": client["id"], "contact_id": contact["id"], "portal_contact": portal["id"],
                "thread_id": thread["id"], "comm_id": comm["id"], "task_id": task["id"],
                "invoice_id": facts["invoice_id"], "quote_id": facts["quote_id"], "project_id": project}
        ids.update({client["id"], contact["id"], portal["id"], thread["id"], comm["id"], note["id"], draft["id"],
                    task["id"], *facts.values(), project})
        return made

    acme = _made(api.post("/v1/clients", {"name": f"Acme {tenant}", "tags": [INTERNAL_MARKERS[3]]}))
    a = client_world(acme, "a")
    if not full:
        category = _made(api.post("/v1/categories", {"name": "Parent"}))
        ids.add(category["id"])
        return Tenant(tenant, {**a, "category_id": category["id"]}, {}, a["portal_contact"], "", "", ids, set())
    _made(api.post("/v1/settings/custom-fields", {"key": "ref", "label": "Ref", "type": "text"}))
    parent = _made(api.post("/v1/categories", {"name": "Parent"}))
    child = _made(api.post("/v1/categories", {"name": "Child", "parent_id": parent["id"]}))
    bolt = _made(api.post("/v1/clients", {"name": f"Bolt {tenant}"}))
    ivy = _made(api.post("/v1/clients", {"name": f"Ivy {tenant}", "type": "individual"}))
    hall = _made(api.post("/v1/clients", {"name": f"Hall {tenant}", "type": "venue"}))
    b = client_world(bolt, "b")
    base = f"/v1/clients/{acme['id']}"
    _made(api.post(f"{base}/associations", {"related_id": ivy["id"]}))
    _made(api.post(f"/v1/clients/{bolt['id']}/associations", {"related_id": hall["id"]}))
    revoked = _made(api.post(f"{base}/contacts", {"full_name": "Rae Revoked", "email": "rae@x.test"}))
    _made(api.put(f"{base}/contacts/{revoked['id']}/portal-access", {"enabled": True}))
    _made(api.put(f"{base}/contacts/{revoked['id']}/portal-access", {"enabled": False}))
    segment = _made(api.post("/v1/segments", {"name": "Gold", "type": "static"}))
    _made(api.post(f"/v1/segments/{segment['id']}/members", {"client_id": acme["id"]}))
    imported = _made(api.call("POST", "/v1/clients/import", raw=b"name,email\nRow 1,not-an-email\n",
                              headers={"Content-Type": "text/csv"}))  # recorded, creating nothing
    unmatched = f"01J{tenant.upper():0>4}UNMATCHED000000000"[:26]
    InboxRepository(tenant).add_unmatched(UnmatchedEmail(
        id=unmatched, from_email="who@elsewhere.test", received_at=datetime(2026, 1, 1, tzinfo=UTC),
        subject="Hello", bucket="b", key="k"))
    ActivityRepository(tenant).write([  # the timeline is written from the table's stream, which moto lacks
        {"client_id": acme["id"], "id": "event-1", "at": datetime(2026, 1, 1, tzinfo=UTC),
         "actor": "user-1", "action": "updated", "entity_type": "client", "entity_id": acme["id"], "changes": {}}])
    ids.update({parent["id"], child["id"], ivy["id"], hall["id"], revoked["id"], segment["id"], imported["id"],
                unmatched})
    params = {"client_id": acme["id"], "category_id": parent["id"], "segment_id": segment["id"],
              "comm_id": a["comm_id"], "thread_id": a["thread_id"], "contact_id": a["contact_id"],
              "task_id": a["task_id"], "related_id": ivy["id"], "item_id": unmatched, "key": "ref",
              "project_id": a["project_id"], "invoice_id": a["invoice_id"], "quote_id": a["quote_id"],
              "export_id": "01J0EXPORT", "import_id": imported["id"]}
    other = {**{k: b[k] for k in ("client_id", "comm_id", "thread_id", "contact_id", "task_id", "quote_id",
                                  "invoice_id", "project_id")}, "related_id": hall["id"]}
    acme_ids = {acme["id"], *(v for k, v in a.items() if k != "project_id")}
    return Tenant(tenant, params, other, a["portal_contact"], b["portal_contact"], revoked["id"], ids, acme_ids)


def rs256(claims: dict, key=RSA_KEY, kid: str = "k1") -> str:
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid})

