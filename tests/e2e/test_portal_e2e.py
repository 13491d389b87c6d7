"""The portal over real HTTP: from enabling access to an approved quote through the outbox email's link."""
from __future__ import annotations

import email
import email.policy
import re
import uuid
from urllib.parse import parse_qs, urlparse

import requests


def _token_from_outbox(live_server, address: str) -> str:
    for path in sorted((live_server.data_dir / "outbox").glob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
        message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        if message["To"] == address:
            links = re.findall(r"https?://[^\s\"'<>]+", message.get_body(("plain",)).get_content())
            return [t for link in links for t in parse_qs(urlparse(link).query).get("token", [])][-1]
    raise AssertionError(f"no invitation to {address}")


def test_enable_access_accept_approve_and_lose_access(live_server):
    base, staff = live_server.base_url, live_server.headers(f"t{uuid.uuid4().hex[:8]}")

    def call(method, path, body=None, headers=staff):
        return requests.request(method, f"{base}{path}", json=body, headers=headers, timeout=30)

    call("PATCH", "/v1/settings/portal", {"enabled": True})
    tenant_tag = uuid.uuid4().hex[:6]
    signed_in = {}
    for name in ("Acme", "Bolt"):
        client = call("POST", "/v1/clients", {"name": name}).json()
        address = f"{name.lower()}-{tenant_tag}@example.test"
        contact = call("POST", f"/v1/clients/{client['id']}/contacts", {"full_name": f"{name} Person",
                                                                        "email": address}).json()
        assert call("PUT", f"/v1/clients/{client['id']}/contacts/{contact['id']}/portal-access",
                    {"enabled": True}).status_code == 200
        accepted = requests.post(f"{base}/v1/portal/invitations/accept",
                                 json={"token": _token_from_outbox(live_server, address)}, timeout=30)
        assert accepted.status_code == 200, accepted.text
        signed_in[name] = (client, contact, {"Authorization": f"Bearer {accepted.json()['access_token']}"})
        call("PUT", f"/v1/integrations/invoices/Q-{name}-{tenant_tag}",
             {"client_id": client["id"], "kind": "quote", "amount": "250.00", "status": "open"})
    acme, pat, portal = signed_in["Acme"]
    _, _, bolt_portal = signed_in["Bolt"]
    quote = f"Q-Acme-{tenant_tag}"
    assert [q["id"] for q in call("GET", "/v1/portal/quotes", headers=portal).json()["items"]] == [quote]
    assert call("POST", f"/v1/portal/quotes/{quote}/approve", headers=bolt_portal).status_code == 404
    approved = call("POST", f"/v1/portal/quotes/{quote}/approve", headers=portal)
    assert approved.status_code == 200 and approved.json()["approved_by"] == pat["id"]
    assert quote not in str(call("GET", "/v1/portal/quotes", headers=bolt_portal).json())
    call("PUT", f"/v1/clients/{acme['id']}/contacts/{pat['id']}/portal-access", {"enabled": False})
    assert call("GET", "/v1/portal/me", headers=portal).status_code == 401
    actions = [e["action"] for e in call("GET", f"/v1/clients/{acme['id']}/portal-activity").json()["items"]]
    assert actions[:2] == ["approve_quote", "view_quotes"] and actions[-1] == "sign_in"
