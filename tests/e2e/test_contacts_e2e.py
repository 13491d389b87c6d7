"""Contacts over real HTTP on DynamoDB Local: the primary and billing rules hold under concurrent calls."""
from __future__ import annotations

import email
import email.policy
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import parse_qs, urlparse

import requests

NUMBER = re.compile(r"^CON-\d{4}-\d{6}[0-9a-f]{4}$")


def _tenant() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


class Session:
    """One tenant's agent talking to the live server."""

    def __init__(self, live_server, roles=("admin",)):
        self.base = live_server.base_url
        self.headers = live_server.headers(_tenant(), list(roles))

    def call(self, method, path, body=None, timeout=120):
        return requests.request(method, f"{self.base}{path}", json=body, headers=self.headers, timeout=timeout)

    def client(self, name="Concurrency Events") -> str:
        answer = self.call("POST", "/v1/clients", {"name": name})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    def add(self, client_id, i, **fields) -> dict:
        answer = self.call("POST", f"/v1/clients/{client_id}/contacts",
                           {"full_name": f"Person {i:02d}", "email": f"p{i}@example.com", **fields})
        assert answer.status_code == 201, answer.text
        return answer.json()

    def contacts(self, client_id) -> list[dict]:
        answer = self.call("GET", f"/v1/clients/{client_id}/contacts?limit=100")
        assert answer.status_code == 200, answer.text
        assert answer.json()["next_cursor"] is None
        return answer.json()["items"]

    def primary_contact(self, client_id) -> dict | None:
        answer = self.call("GET", f"/v1/clients/{client_id}")
        assert answer.status_code == 200, answer.text
        return answer.json()["primary_contact"]


def test_fifty_concurrent_make_primary_calls_leave_exactly_one_primary(live_server):
    s = Session(live_server, ["agent"])
    client_id = s.client()
    with ThreadPoolExecutor(4) as pool:
        made = list(pool.map(lambda i: s.add(client_id, i), range(50)))
    ids = [c["id"] for c in made]
    assert len(set(ids)) == 50
    assert sum(c["is_primary"] for c in s.contacts(client_id)) == 1

    def make_primary(contact_id):
        return s.call("POST", f"/v1/clients/{client_id}/contacts/{contact_id}/make-primary")

    with ThreadPoolExecutor(50) as pool:
        answers = list(pool.map(make_primary, ids))
    # Under this much contention a call may give up when its retry budget runs out: 503 `unavailable`, nothing
    # written; never a 409 (no rule was broken), never a 412 (no If-Match), never a lie.
    assert {a.status_code for a in answers} <= {200, 503}, [a.text for a in answers if a.status_code not in (200, 503)]
    assert all("nothing was written" in a.json()["error"]["message"] for a in answers if a.status_code == 503)
    assert all(a.json()["is_primary"] for a in answers if a.status_code == 200)
    assert sum(a.status_code == 200 for a in answers) >= 1

    everyone = s.contacts(client_id)
    assert len(everyone) == 50
    primaries = [c for c in everyone if c["is_primary"]]
    assert len(primaries) == 1, [c["full_name"] for c in primaries]
    assert s.primary_contact(client_id) == {"id": primaries[0]["id"], "full_name": primaries[0]["full_name"],
                                            "email": primaries[0]["email"], "phone": primaries[0]["phone"]}
    assert all(("primary" in c["badges"]) == c["is_primary"] for c in everyone)


def test_ten_concurrent_first_contacts_give_exactly_one_primary_and_distinct_numbers(live_server):
    s = Session(live_server, ["agent"])
    client_id = s.client()
    with ThreadPoolExecutor(10) as pool:
        made = list(pool.map(lambda i: s.add(client_id, i), range(10)))
    assert sum(c["is_primary"] for c in made) == 1
    numbers = {c["contact_number"] for c in made}
    assert len(numbers) == 10 and all(NUMBER.match(n) for n in numbers)
    everyone = s.contacts(client_id)
    assert len(everyone) == 10
    primaries = [c["id"] for c in everyone if c["is_primary"]]
    assert len(primaries) == 1
    assert s.primary_contact(client_id)["id"] == primaries[0]


def test_ten_concurrent_billing_flags_leave_exactly_one_billing_contact(live_server):
    s = Session(live_server, ["agent"])
    client_id = s.client()
    with ThreadPoolExecutor(4) as pool:
        ids = [c["id"] for c in pool.map(lambda i: s.add(client_id, i), range(10))]

    def flag(contact_id):
        return s.call("PATCH", f"/v1/clients/{client_id}/contacts/{contact_id}", {"is_billing_contact": True})

    with ThreadPoolExecutor(10) as pool:
        answers = list(pool.map(flag, ids))
    assert [a.status_code for a in answers] == [200] * 10, [a.text for a in answers if a.status_code != 200][:3]
    billing = [c for c in s.contacts(client_id) if c["is_billing_contact"]]
    assert len(billing) == 1
    assert "billing" in billing[0]["badges"]
    # The survivor is still the one the client points at: a new flag moves it cleanly.
    last = s.add(client_id, 99, is_billing_contact=True)
    assert [c["id"] for c in s.contacts(client_id) if c["is_billing_contact"]] == [last["id"]]


def test_the_invitation_email_lies_in_the_outbox_with_a_link_token(live_server):
    s = Session(live_server)
    assert s.call("PATCH", "/v1/settings/portal", {"enabled": True}).status_code == 200
    client_id = s.client("Portal Events")
    address = f"invitee-{uuid.uuid4().hex[:8]}@example.com"
    created = s.add(client_id, 1, email=address)
    answer = s.call("PUT", f"/v1/clients/{client_id}/contacts/{created['id']}/portal-access", {"enabled": True})
    assert answer.status_code == 200, answer.text
    assert answer.json()["portal_access"] is True and answer.json()["portal_invited_at"]

    outbox = live_server.data_dir / "outbox"
    mine = [m for m in (email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                        for p in outbox.glob("*.eml")) if address in str(m["To"])]
    assert len(mine) == 1
    body = mine[0].get_body(("plain", "html")).get_content()
    tokens = [t for link in re.findall(r"https?://\S+", body) for t in parse_qs(urlparse(link).query).get("token", [])]
    assert len(tokens) == 1 and len(tokens[0]) > 40
