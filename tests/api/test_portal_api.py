"""The client portal over HTTP: invitation to approval, scope per client and tenant, and access ended at once."""
from __future__ import annotations

import email
import email.policy
import json
import re
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import jwt
import pytest

import app  # noqa: F401 - registers every route in ROUTES
from chalicelib.handlers.routing import ROUTES
from tests.api.conftest import PortalUser

PORTAL_ROUTES = [r for r in ROUTES if r.need == "portal"]
STAFF_ROUTES = [r for r in ROUTES if r.need not in ("portal", "public")]


pytestmark = pytest.mark.usefixtures("local_mail")  # invitations go to the outbox of DATA_DIR


def _invite(api, tmp_path: Path, client_id: str, name: str, address: str) -> tuple[dict, str]:
    """Add a contact, turn its portal access on and read the link token from the email it was sent."""
    contact = api.post(f"/v1/clients/{client_id}/contacts", {"full_name": name, "email": address}).data
    before = set((tmp_path / "outbox").glob("*.eml")) if (tmp_path / "outbox").exists() else set()
    assert api.put(f"/v1/clients/{client_id}/contacts/{contact['id']}/portal-access",
                   {"enabled": True}).status_code == 200
    [path] = set((tmp_path / "outbox").glob("*.eml")) - before
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    links = re.findall(r"https?://[^\s\"'<>]+", message.get_body(("plain",)).get_content())
    [token] = [t for link in links for t in parse_qs(urlparse(link).query).get("token", [])]
    return contact, token


def _accept(api, token):
    return api.call("POST", "/v1/portal/invitations/accept", {"token": token}, headers={"Authorization": ""})


@pytest.fixture
def world(api, tmp_path):
    """Tenant t1 with the portal on: Acme (a signed-in contact, a thread, messages, a note, a draft, a quote,
    an invoice) and Bolt (another client with its own signed-in contact)."""
    assert api.patch("/v1/settings/portal", {"enabled": True}).status_code == 200
    acme = api.post("/v1/clients", {"name": "Acme", "tags": ["secret-tag"]}).data
    bolt = api.post("/v1/clients", {"name": "Bolt"}).data
    pat, token = _invite(api, tmp_path, acme["id"], "Pat Primary", "pat@acme.test")
    _, bolt_token = _invite(api, tmp_path, bolt["id"], "Bo Bolt", "bo@bolt.test")
    base = f"/v1/clients/{acme['id']}"
    thread = api.post(f"{base}/threads", {"subject": "Rig for May", "type": "email"}).data
    api.post(f"{base}/communications", {"type": "phone", "direction": "inbound", "subject": "Call about May",
                                        "thread_id": thread["id"]})
    api.post(f"{base}/communications", {"type": "note", "body": "Internal: they pay late", "thread_id": thread["id"]})
    api.post(f"{base}/communications", {"type": "email", "subject": "Draft", "body": "not yet",
                                        "to_email": "pat@acme.test", "send_now": False})
    integration = api.as_(roles=("integration",))
    integration.put("/v1/integrations/invoices/Q-1", {"client_id": acme["id"], "kind": "quote", "amount": "900.00",
                                                      "status": "open"})
    integration.put("/v1/integrations/invoices/INV-1", {"client_id": acme["id"], "kind": "invoice",
                                                        "amount": "100.00", "status": "open"})
    integration.put("/v1/integrations/invoices/Q-B", {"client_id": bolt["id"], "kind": "quote", "amount": "5.00",
                                                      "status": "open"})
    accepted = _accept(api, token)
    assert accepted.status_code == 200, accepted.data
    user = PortalUser(api.http, accepted.data["access_token"])
    other = PortalUser(api.http, _accept(api, bolt_token).data["access_token"])
    return {"acme": acme, "bolt": bolt, "pat": pat, "thread": thread, "user": user, "other": other, "token": token}


def test_from_invitation_to_an_approved_quote(api, world):
    user = world["user"]
    me = user.get("/v1/portal/me").data
    assert me["contact"]["id"] == world["pat"]["id"] and me["client"]["name"] == "Acme"
    quotes = user.get("/v1/portal/quotes").data["items"]
    assert [q["id"] for q in quotes] == ["Q-1"] and quotes[0]["amount"] == "900.00"
    approved = user.post("/v1/portal/quotes/Q-1/approve")
    assert approved.status_code == 200 and approved.data["status"] == "approved"
    assert approved.data["approved_by"] == world["pat"]["id"] and approved.data["approved_at"].endswith("Z")
    again = user.post("/v1/portal/quotes/Q-1/approve")
    assert again.status_code == 409 and again.data["error"]["code"] == "quote_not_open"
    stored = api.as_(roles=("integration",)).get("/v1/integrations/invoices/Q-1").data
    assert stored["status"] == "approved" and stored["approved_by"] == world["pat"]["id"]
    log = api.get(f"/v1/clients/{world['acme']['id']}/portal-activity").data["items"]
    assert [e["action"] for e in log][:3] == ["approve_quote", "view_quotes", "view_profile"]
    assert log[-1]["action"] == "sign_in" and log[0]["contact_id"] == world["pat"]["id"]


def test_the_portal_never_shows_notes_drafts_or_internal_fields(world):
    user = world["user"]
    messages = user.get("/v1/portal/communications").data["items"]
    assert [m["type"] for m in messages] == ["phone"]
    threads = user.get("/v1/portal/threads").data["items"]
    assert threads[0]["messages_count"] == 1 and "Internal" not in (threads[0]["preview"] or "")
    detail = user.get(f"/v1/portal/threads/{world['thread']['id']}").data
    assert [m["type"] for m in detail["messages"]] == ["phone"]
    me = json.dumps(user.get("/v1/portal/me").data)
    for internal in ("health_score", "churn_probability", "lead_classification", "tags", "category_ids",
                     "secret-tag", "notes", "price_multiplier", "risk_level"):
        assert internal not in me
    invoices = user.get("/v1/portal/invoices").data["items"]
    assert [i["id"] for i in invoices] == ["INV-1"]


def test_an_invitation_works_once(api, world):
    assert _accept(api, world["token"]).status_code == 401


@pytest.mark.parametrize("token", ["", "garbage", "dDEKYwprMQ.secret", "x" * 600])
def test_unknown_or_malformed_invitations_are_401_or_422(api, token):
    assert _accept(api, token).status_code in (401, 422)


def test_a_resend_voids_the_older_link_and_turning_access_off_rejects_the_new_one(api, world, tmp_path):
    acme = world["acme"]["id"]
    contact, first = _invite(api, tmp_path, acme, "Sam Second", "sam@acme.test")
    api.post(f"/v1/clients/{acme}/contacts/{contact['id']}/portal-invitation")
    newest = sorted((tmp_path / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns)[-1]
    links = re.findall(r"https?://[^\s\"'<>]+", email.message_from_bytes(
        newest.read_bytes(), policy=email.policy.default).get_body(("plain",)).get_content())
    [second] = [t for link in links for t in parse_qs(urlparse(link).query).get("token", [])]
    assert _accept(api, first).status_code == 401
    api.put(f"/v1/clients/{acme}/contacts/{contact['id']}/portal-access", {"enabled": False})
    assert _accept(api, second).status_code == 401


def test_turning_access_off_ends_the_session_on_the_next_request(api, world):
    user = world["user"]
    assert user.get("/v1/portal/me").status_code == 200
    api.put(f"/v1/clients/{world['acme']['id']}/contacts/{world['pat']['id']}/portal-access", {"enabled": False})
    assert user.get("/v1/portal/me").status_code == 401
    assert user.post("/v1/portal/quotes/Q-1/approve").status_code == 401


def test_turning_the_tenant_portal_off_ends_every_session(api, world):
    api.patch("/v1/settings/portal", {"enabled": False})
    assert world["user"].get("/v1/portal/me").status_code == 401
    assert world["other"].get("/v1/portal/quotes").status_code == 401


def test_portal_switches_hide_communications_invoices_and_approval(api, world):
    api.patch("/v1/settings/portal", {"show_communications": False, "show_invoices": False,
                                      "allow_quote_approval": False})
    user = world["user"]
    assert user.get("/v1/portal/communications").status_code == 403
    assert user.get("/v1/portal/threads").status_code == 403
    assert user.get("/v1/portal/invoices").status_code == 403
    assert user.post("/v1/portal/quotes/Q-1/approve").status_code == 403
    assert api.as_(roles=("integration",)).get("/v1/integrations/invoices/Q-1").data["status"] == "open"


def test_a_contact_edits_its_own_phone_but_nothing_else(world):
    user = world["user"]
    changed = user.patch("/v1/portal/me", {"phone": "+31 20 555 0101", "job_title": "Producer"})
    assert changed.status_code == 200 and changed.data["contact"]["phone"] == "+31 20 555 0101"
    assert user.patch("/v1/portal/me", {"email": "new@acme.test"}).status_code == 422


def test_edited_or_foreign_claims_are_401(api, world):
    token = world["user"].token
    claims = jwt.decode(token, options={"verify_signature": False})
    forged = jwt.encode({**claims, "client_id": world["bolt"]["id"]}, "not-the-secret-but-long-enough-for-hs256",
                        algorithm="HS256")
    assert PortalUser(api.http, forged).get("/v1/portal/me").status_code == 401
    header, payload, signature = token.split(".")
    tampered = jwt.utils.base64url_encode(json.dumps({**claims, "client_id": world["bolt"]["id"]}).encode()).decode()
    assert PortalUser(api.http, f"{header}.{tampered}.{signature}").get("/v1/portal/me").status_code == 401


def test_every_portal_route_answers_only_for_the_callers_own_client(api, world):
    """The matrix: each portal route for the own client (200), another client of the tenant (its own data, or 404
    for the other's ids) and with a staff token (403)."""
    assert PORTAL_ROUTES
    staff = api.as_("t2")
    for route in PORTAL_ROUTES:
        path = route.path.replace("{thread_id}", world["thread"]["id"]).replace("{quote_id}", "Q-1")
        body = {"phone": "+1 555"} if route.method == "PATCH" else None
        other = world["other"].call(route.method, path, body)
        if "{" in route.path:
            assert other.status_code == 404, (path, other.data)
        else:
            assert other.status_code == 200 and "Acme" not in json.dumps(other.data), path
        assert staff.call(route.method, path, body).status_code == 403, path
        answer = world["user"].call(route.method, path, body)
        assert answer.status_code == 200, (path, answer.data)


def test_another_tenants_portal_user_sees_nothing_of_this_tenant(api, world, tmp_path):
    t2 = api.as_("t2")
    t2.patch("/v1/settings/portal", {"enabled": True})
    client = t2.post("/v1/clients", {"name": "Elsewhere"}).data
    _, token = _invite(t2, tmp_path, client["id"], "Eve Else", "eve@else.test")
    eve = PortalUser(api.http, _accept(api, token).data["access_token"])
    assert eve.get(f"/v1/portal/threads/{world['thread']['id']}").status_code == 404
    assert eve.post("/v1/portal/quotes/Q-1/approve").status_code == 404
    assert eve.get("/v1/portal/quotes").data["items"] == []
    assert eve.get("/v1/portal/me").data["client"]["name"] == "Elsewhere"


def test_every_staff_route_refuses_a_portal_token_with_403(world):
    assert len(STAFF_ROUTES) > 50
    refused = {}
    for route in STAFF_ROUTES:
        path = re.sub(r"\{[^}]+\}", "x", route.path)
        answer = world["user"].call(route.method, path, {} if route.method in ("POST", "PUT", "PATCH") else None)
        refused[f"{route.method} {path}"] = answer.status_code
    assert {k: v for k, v in refused.items() if v != 403} == {}
