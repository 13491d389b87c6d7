"""/v1/clients/{id}/contacts and /v1/contacts through the real app on moto: the contract's §4 as a user sees it."""
from __future__ import annotations

import email
import email.policy
import re
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from chalicelib.domain.contacts import invitation_valid, parse_invitation_token

NUMBER = re.compile(r"^CON-(\d{4})-(\d{6})[0-9a-f]{4}$")
CONTRACT_FIELDS = {
    "id", "contact_number", "client_id", "full_name", "first_name", "last_name", "email", "phone", "mobile",
    "job_title", "position", "department", "notes", "is_primary", "is_billing_contact", "is_technical_contact",
    "portal_access", "portal_invited_at", "synced_from_node", "node_user_id", "last_synced_at", "badges",
    "version", "created_at", "updated_at",
}
BADGES = {"primary", "node_user", "portal", "billing", "technical"}


def new_client(api, name="Acme Events") -> str:
    response = api.post("/v1/clients", {"name": name})
    assert response.status_code == 201, response.data
    return response.data["id"]


def add(api, client_id, full_name="Jane Smith", email_="jane@example.com", **fields) -> dict:
    response = api.post(f"/v1/clients/{client_id}/contacts", {"full_name": full_name, "email": email_, **fields})
    assert response.status_code == 201, response.data
    return response.data


def contacts(api, client_id, query="") -> list[dict]:
    response = api.get(f"/v1/clients/{client_id}/contacts{query}")
    assert response.status_code == 200, response.data
    return response.data["items"]


def contact(api, client_id, contact_id) -> dict:
    response = api.get(f"/v1/clients/{client_id}/contacts/{contact_id}")
    assert response.status_code == 200, response.data
    return response.data


def primary_summary(api, client_id) -> dict | None:
    response = api.get(f"/v1/clients/{client_id}")
    assert response.status_code == 200, response.data
    return response.data["primary_contact"]


def error(response, status, code):
    assert response.status_code == status, (response.status_code, response.data)
    assert response.data["error"]["code"] == code, response.data
    return response.data["error"]


def fields_of(response) -> set[str]:
    assert response.status_code == 422, (response.status_code, response.data)
    assert response.data["error"]["code"] == "validation_error"
    return {d["field"] for d in response.data["error"]["details"]}


# --- create and read -------------------------------------------------------------------------------

def test_create_answers_201_with_every_contract_field(api):
    client_id = new_client(api)
    created = add(api, client_id, "Dr. Jane van der Berg", "jane@example.com", phone="+31 20 555 0101",
                  mobile="+31 6 1234", job_title="Production Manager", position="Lead", department="Events",
                  notes="Prefers mornings", is_technical_contact=True)
    assert CONTRACT_FIELDS <= created.keys()
    assert created["client_id"] == client_id and created["id"]
    assert (created["full_name"], created["first_name"], created["last_name"]) == \
        ("Dr. Jane van der Berg", "Jane", "van der Berg")
    assert (created["email"], created["phone"], created["mobile"]) == \
        ("jane@example.com", "+31 20 555 0101", "+31 6 1234")
    assert (created["job_title"], created["position"], created["department"], created["notes"]) == \
        ("Production Manager", "Lead", "Events", "Prefers mornings")
    assert created["is_technical_contact"] is True and created["is_billing_contact"] is False
    assert created["portal_access"] is False and created["portal_invited_at"] is None
    assert created["synced_from_node"] is False and created["node_user_id"] is None
    assert created["last_synced_at"] is None and created["version"] == 1
    assert created["created_at"].endswith("Z") and created["updated_at"] == created["created_at"]
    assert set(created["badges"]) == {"primary", "technical"} and set(created["badges"]) <= BADGES
    assert contact(api, client_id, created["id"]) == created


def test_contact_number_is_con_with_the_creation_year_and_time(api):
    created = add(api, new_client(api))
    match = NUMBER.match(created["contact_number"])
    assert match, created["contact_number"]
    at = datetime.fromisoformat(created["created_at"])
    assert match.group(1) == f"{at:%Y}" and match.group(2) == f"{at:%H%M%S}"


def test_given_first_and_last_name_are_kept(api):
    created = add(api, new_client(api), "Bob Smith", first_name="Robert", last_name="Smith-Jones")
    assert (created["first_name"], created["last_name"]) == ("Robert", "Smith-Jones")


def test_the_first_contact_is_primary_and_the_client_shows_its_summary(api):
    client_id = new_client(api)
    assert primary_summary(api, client_id) is None
    first = add(api, client_id, "Jane Smith", "jane@example.com", phone="+44 20 7946 0000")
    assert first["is_primary"] is True and "primary" in first["badges"]
    assert primary_summary(api, client_id) == {"id": first["id"], "full_name": "Jane Smith",
                                               "email": "jane@example.com", "phone": "+44 20 7946 0000"}


def test_a_second_contact_is_not_primary(api):
    client_id = new_client(api)
    first = add(api, client_id)
    second = add(api, client_id, "Tom Jones", "tom@example.com")
    assert second["is_primary"] is False and "primary" not in second["badges"]
    assert primary_summary(api, client_id)["id"] == first["id"]


def test_idempotency_key_on_create_answers_the_first_contact_again(api):
    client_id = new_client(api)
    body = {"full_name": "Jane Smith", "email": "jane@example.com"}
    first = api.post(f"/v1/clients/{client_id}/contacts", body, headers={"Idempotency-Key": "k-1"})
    again = api.post(f"/v1/clients/{client_id}/contacts", body, headers={"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 201
    assert again.data["id"] == first.data["id"]
    assert len(contacts(api, client_id)) == 1


# --- primary --------------------------------------------------------------------------------------

def test_make_primary_demotes_the_previous_one_and_updates_the_client_summary(api):
    client_id = new_client(api)
    first = add(api, client_id)
    second = add(api, client_id, "Tom Jones", "tom@example.com", phone="+1 555 0100")
    made = api.post(f"/v1/clients/{client_id}/contacts/{second['id']}/make-primary")
    assert made.status_code == 200, made.data
    assert made.data["is_primary"] is True and "primary" in made.data["badges"]
    old = contact(api, client_id, first["id"])
    assert old["is_primary"] is False and "primary" not in old["badges"]
    assert [c["id"] for c in contacts(api, client_id) if c["is_primary"]] == [second["id"]]
    assert primary_summary(api, client_id) == {"id": second["id"], "full_name": "Tom Jones",
                                               "email": "tom@example.com", "phone": "+1 555 0100"}


def test_make_primary_on_the_primary_changes_nothing(api):
    client_id = new_client(api)
    first = add(api, client_id)
    made = api.post(f"/v1/clients/{client_id}/contacts/{first['id']}/make-primary")
    assert made.status_code == 200 and made.data["is_primary"] is True
    assert made.data["version"] == first["version"]


def test_creating_a_contact_flagged_primary_demotes_the_previous_one(api):
    client_id = new_client(api)
    first = add(api, client_id)
    second = add(api, client_id, "Tom Jones", "tom@example.com", is_primary=True)
    assert second["is_primary"] is True
    assert contact(api, client_id, first["id"])["is_primary"] is False
    assert primary_summary(api, client_id)["id"] == second["id"]


def test_patch_is_primary_true_makes_the_contact_primary(api):
    client_id = new_client(api)
    first = add(api, client_id)
    second = add(api, client_id, "Tom Jones", "tom@example.com")
    patched = api.patch(f"/v1/clients/{client_id}/contacts/{second['id']}", {"is_primary": True})
    assert patched.status_code == 200, patched.data
    assert patched.data["is_primary"] is True
    assert contact(api, client_id, first["id"])["is_primary"] is False
    assert primary_summary(api, client_id)["id"] == second["id"]


def interleave(monkeypatch, contact_id, other_request):
    """Run `other_request` once, just before the repository next reads `contact_id`: between a request's read of
    the client and its read of the contact, as a concurrent request on another server thread can."""
    from chalicelib.tables.contacts import ContactRepository

    original, fired = ContactRepository.get, []

    def get(self, client_id, wanted, **kw):
        if wanted == contact_id and not fired:
            fired.append(True)
            other_request()
        return original(self, client_id, wanted, **kw)

    monkeypatch.setattr(ContactRepository, "get", get)
    return fired


def stores():
    from chalicelib.tables.stores import Stores

    return Stores("t1")


def test_make_primary_racing_another_make_primary_leaves_one_primary(api, monkeypatch):
    from chalicelib.domain import contact_cases as cases

    client_id = new_client(api)
    first = add(api, client_id)
    second = add(api, client_id, "Tom Jones", "tom@example.com")
    fired = interleave(monkeypatch, first["id"], lambda: cases.make_primary(stores(), client_id, second["id"]))
    answer = api.post(f"/v1/clients/{client_id}/contacts/{first['id']}/make-primary")
    assert fired and answer.status_code == 200, answer.data
    primaries = [c["id"] for c in contacts(api, client_id) if c["is_primary"]]
    assert len(primaries) == 1, primaries
    assert primary_summary(api, client_id)["id"] == primaries[0]


def test_billing_flag_racing_another_billing_flag_leaves_one_billing_contact(api, monkeypatch):
    from chalicelib.domain import contact_cases as cases

    client_id = new_client(api)
    first = add(api, client_id, is_billing_contact=True)
    second = add(api, client_id, "Tom Jones", "tom@example.com")
    fired = interleave(monkeypatch, first["id"], lambda: cases.update_contact(
        stores(), client_id, second["id"], {"is_billing_contact": True}, None))
    answer = api.patch(f"/v1/clients/{client_id}/contacts/{first['id']}", {"is_billing_contact": True})
    assert fired and answer.status_code == 200, answer.data
    billing = [c["id"] for c in contacts(api, client_id) if c["is_billing_contact"]]
    assert len(billing) == 1, billing


def test_unflagging_the_primary_is_409_primary_contact(api):
    client_id = new_client(api)
    first = add(api, client_id)
    error(api.patch(f"/v1/clients/{client_id}/contacts/{first['id']}", {"is_primary": False}), 409,
          "primary_contact")
    assert contact(api, client_id, first["id"])["is_primary"] is True


def test_editing_the_primary_email_and_phone_updates_the_client_summary(api):
    client_id = new_client(api)
    first = add(api, client_id, phone="+44 1")
    patched = api.patch(f"/v1/clients/{client_id}/contacts/{first['id']}",
                        {"email": "jane.smith@example.org", "phone": "+44 2", "full_name": "Jane Smith-Brown"})
    assert patched.status_code == 200, patched.data
    assert patched.data["version"] == first["version"] + 1
    assert primary_summary(api, client_id) == {"id": first["id"], "full_name": "Jane Smith-Brown",
                                               "email": "jane.smith@example.org", "phone": "+44 2"}


def test_patch_writes_only_the_named_fields(api):
    client_id = new_client(api)
    created = add(api, client_id, phone="+44 1", notes="keep", job_title="Producer")
    patched = api.patch(f"/v1/clients/{client_id}/contacts/{created['id']}", {"department": "AV"})
    assert patched.status_code == 200, patched.data
    assert (patched.data["phone"], patched.data["notes"], patched.data["job_title"], patched.data["department"]) \
        == ("+44 1", "keep", "Producer", "AV")


def test_patch_with_a_stale_if_match_is_412(api):
    client_id = new_client(api)
    created = add(api, client_id)
    api.patch(f"/v1/clients/{client_id}/contacts/{created['id']}", {"notes": "one"})
    stale = api.patch(f"/v1/clients/{client_id}/contacts/{created['id']}", {"notes": "two"},
                      headers={"If-Match": str(created["version"])})
    error(stale, 412, "version_conflict")
    assert contact(api, client_id, created["id"])["notes"] == "one"


def node_synced(client_id, contact_id):
    """Seed what a Node `user.upserted` webhook leaves behind (the webhook route has its own tests)."""
    from chalicelib.tables.contacts import ContactRepository

    repo = ContactRepository("t1")
    current = repo.get(client_id, contact_id)
    repo.commit([(current, current.model_copy(update={
        "synced_from_node": True, "node_user_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7",
        "last_synced_at": current.updated_at}))])


def test_node_synced_identity_fields_are_409_node_synced_read_only_and_flags_stay_editable(api):
    client_id = new_client(api)
    add(api, client_id)
    node = add(api, client_id, "Nora Node", "nora@example.com", phone="+31 1", job_title="Stage Manager")
    node_synced(client_id, node["id"])
    url = f"/v1/clients/{client_id}/contacts/{node['id']}"
    seeded = contact(api, client_id, node["id"])
    assert seeded["synced_from_node"] is True and "node_user" in seeded["badges"]
    for body in ({"full_name": "Someone Else"}, {"email": "other@example.com"}, {"phone": "+31 2"},
                 {"job_title": "CEO"}):
        error(api.patch(url, body), 409, "node_synced_read_only")
    assert contact(api, client_id, node["id"]) == seeded
    flagged = api.patch(url, {"is_billing_contact": True, "is_technical_contact": True, "notes": "on site"})
    assert flagged.status_code == 200, flagged.data
    assert {"node_user", "billing", "technical"} <= set(flagged.data["badges"])
    made = api.post(url + "/make-primary")
    assert made.status_code == 200 and made.data["is_primary"] is True
    assert primary_summary(api, client_id)["id"] == node["id"]


# --- billing and technical flags ------------------------------------------------------------------

def test_one_billing_contact_per_client_flagging_a_new_one_unflags_the_old(api):
    client_id = new_client(api)
    first = add(api, client_id, is_billing_contact=True)
    assert first["is_billing_contact"] is True and "billing" in first["badges"]
    second = add(api, client_id, "Tom Jones", "tom@example.com", is_billing_contact=True)
    assert second["is_billing_contact"] is True
    assert contact(api, client_id, first["id"])["is_billing_contact"] is False
    third = add(api, client_id, "Ann Lee", "ann@example.com")
    patched = api.patch(f"/v1/clients/{client_id}/contacts/{third['id']}", {"is_billing_contact": True})
    assert patched.status_code == 200 and patched.data["is_billing_contact"] is True
    assert [c["id"] for c in contacts(api, client_id) if c["is_billing_contact"]] == [third["id"]]
    old = contact(api, client_id, second["id"])
    assert old["is_billing_contact"] is False and "billing" not in old["badges"]


def test_the_billing_contact_may_also_be_the_primary(api):
    client_id = new_client(api)
    first = add(api, client_id, is_billing_contact=True)
    assert first["is_primary"] and first["is_billing_contact"]
    assert {"primary", "billing"} <= set(first["badges"])


def test_several_technical_contacts_are_allowed(api):
    client_id = new_client(api)
    a = add(api, client_id, is_technical_contact=True)
    b = add(api, client_id, "Tom Jones", "tom@example.com", is_technical_contact=True)
    c = add(api, client_id, "Ann Lee", "ann@example.com")
    patched = api.patch(f"/v1/clients/{client_id}/contacts/{c['id']}", {"is_technical_contact": True})
    assert patched.status_code == 200 and "technical" in patched.data["badges"]
    assert {x["id"] for x in contacts(api, client_id) if x["is_technical_contact"]} == {a["id"], b["id"], c["id"]}


# --- bad input -------------------------------------------------------------------------------------

BAD_CREATES = [
    ({"full_name": "Jane Smith", "email": "not-an-email"}, "email"),
    ({"full_name": "Jane Smith", "email": "jane@"}, "email"),
    ({"full_name": "Jane Smith"}, "email"),
    ({"full_name": "", "email": "jane@example.com"}, "full_name"),
    ({"full_name": "   ", "email": "jane@example.com"}, "full_name"),
    ({"email": "jane@example.com"}, "full_name"),
    ({"full_name": "J" * 201, "email": "jane@example.com"}, "full_name"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "job_title": "x" * 101}, "job_title"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "phone": "1" * 51}, "phone"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "notes": "n" * 5001}, "notes"),
    ({"full_name": "Jane Smith", "email": "j" * 250 + "@example.com"}, "email"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "favourite_colour": "blue"}, "favourite_colour"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "is_vip_contact": True}, "is_vip_contact"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "contact_number": "CON-2020-0000000000"},
     "contact_number"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "portal_access": True}, "portal_access"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "synced_from_node": True}, "synced_from_node"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "badges": ["vip"]}, "badges"),
    ({"full_name": "Jane Smith", "email": "jane@example.com", "is_primary": "maybe"}, "is_primary"),
]


def test_bad_create_is_422_naming_the_field_and_creates_nothing(api):
    client_id = new_client(api)
    existing = add(api, client_id, "Existing One", "existing@example.com")
    for body, field in BAD_CREATES:
        answer = api.post(f"/v1/clients/{client_id}/contacts", body)
        assert field in fields_of(answer), (body, answer.data)
    assert [c["id"] for c in contacts(api, client_id)] == [existing["id"]]
    assert api.get("/v1/contacts").data["items"] == [contact(api, client_id, existing["id"])]


def test_read_only_fields_are_reported_as_read_only(api):
    client_id = new_client(api)
    answer = api.post(f"/v1/clients/{client_id}/contacts", {"full_name": "Jane", "email": "jane@example.com",
                                                            "contact_number": "CON-2020-0000000000"})
    details = {d["field"]: d["message"] for d in answer.data["error"]["details"]}
    assert "read-only" in details["contact_number"]


BAD_PATCHES = [
    ({"email": "nope"}, "email"),
    ({"full_name": ""}, "full_name"),
    ({"full_name": None}, "full_name"),
    ({"email": None}, "email"),
    ({"contact_number": "CON-2020-0000000000"}, "contact_number"),
    ({"portal_access": True}, "portal_access"),
    ({"version": 7}, "version"),
    ({"client_id": "other"}, "client_id"),
    ({"department": "d" * 101}, "department"),
    ({"nickname": "JJ"}, "nickname"),
]


def test_bad_patch_is_422_naming_the_field_and_changes_nothing(api):
    client_id = new_client(api)
    created = add(api, client_id)
    for body, field in BAD_PATCHES:
        answer = api.patch(f"/v1/clients/{client_id}/contacts/{created['id']}", body)
        assert field in fields_of(answer), (body, answer.data)
    assert contact(api, client_id, created["id"]) == created


def test_a_body_that_is_not_json_is_400_invalid_json(api):
    client_id = new_client(api)
    error(api.post(f"/v1/clients/{client_id}/contacts", raw="{not json"), 400, "invalid_json")
    assert contacts(api, client_id) == []


# --- deletion -------------------------------------------------------------------------------------

def test_deleting_the_primary_is_409_primary_contact(api):
    client_id = new_client(api)
    first = add(api, client_id)
    error(api.call("DELETE", f"/v1/clients/{client_id}/contacts/{first['id']}"), 409, "primary_contact")
    assert contact(api, client_id, first["id"])["is_primary"] is True


def _project(api, project_id, client_id, status, contact_ids):
    body = {"client_id": client_id, "status": status, "contact_ids": contact_ids}
    assert api.put(f"/v1/integrations/projects/{project_id}", body).status_code in (200, 201)


def test_a_contact_on_an_active_project_cannot_be_deleted_but_a_completed_project_does_not_block(api):
    client_id = new_client(api)
    add(api, client_id)
    busy = add(api, client_id, "Tom Jones", "tom@example.com")
    done = add(api, client_id, "Ann Lee", "ann@example.com")
    _project(api, "PRJ-1", client_id, "active", [busy["id"]])
    _project(api, "PRJ-0", client_id, "completed", [done["id"]])
    error(api.call("DELETE", f"/v1/clients/{client_id}/contacts/{busy['id']}"), 409, "contact_on_active_project")
    assert contact(api, client_id, busy["id"])["id"] == busy["id"]
    assert api.call("DELETE", f"/v1/clients/{client_id}/contacts/{done['id']}").status_code == 204
    # The project completes: the contact may go.
    _project(api, "PRJ-1", client_id, "completed", [busy["id"]])
    assert api.call("DELETE", f"/v1/clients/{client_id}/contacts/{busy['id']}").status_code == 204


def test_a_planned_project_also_blocks_deletion(api):
    client_id = new_client(api)
    add(api, client_id)
    busy = add(api, client_id, "Tom Jones", "tom@example.com")
    _project(api, "PRJ-2", client_id, "planned", [busy["id"]])
    error(api.call("DELETE", f"/v1/clients/{client_id}/contacts/{busy['id']}"), 409, "contact_on_active_project")


def test_a_soft_deleted_contact_is_gone_from_get_list_and_search(api):
    client_id = new_client(api)
    add(api, client_id)
    gone = add(api, client_id, "Zelda Quartermaine", "zelda@example.com", is_billing_contact=True)
    assert api.call("DELETE", f"/v1/clients/{client_id}/contacts/{gone['id']}").status_code == 204
    error(api.get(f"/v1/clients/{client_id}/contacts/{gone['id']}"), 404, "not_found")
    assert gone["id"] not in [c["id"] for c in contacts(api, client_id)]
    assert contacts(api, client_id, "?q=zelda") == []
    assert api.get("/v1/contacts?q=zelda").data["items"] == []
    error(api.call("DELETE", f"/v1/clients/{client_id}/contacts/{gone['id']}"), 404, "not_found")
    error(api.post(f"/v1/clients/{client_id}/contacts/{gone['id']}/make-primary"), 404, "not_found")
    error(api.patch(f"/v1/clients/{client_id}/contacts/{gone['id']}", {"notes": "x"}), 404, "not_found")
    error(api.put(f"/v1/clients/{client_id}/contacts/{gone['id']}/portal-access", {"enabled": True}), 404,
          "not_found")


# --- search and pagination ------------------------------------------------------------------------

def test_search_within_a_client_matches_name_email_and_job_title_ignoring_case(api):
    client_id = new_client(api)
    jane = add(api, client_id, "Jane Smith", "jane@alpha.example", job_title="Production Manager")
    tom = add(api, client_id, "Tom Jones", "tom@bravo.example", job_title="Technical Director")
    other_client = new_client(api, "Other Co")
    add(api, other_client, "Jane Other", "jane@other.example")

    def ids(q):
        return [c["id"] for c in contacts(api, client_id, f"?q={q}")]

    assert ids("SMITH") == [jane["id"]]
    assert ids("Bravo.EXAMPLE") == [tom["id"]]
    assert ids("technical%20dir") == [tom["id"]]
    assert ids("jane") == [jane["id"]]  # not the other client's Jane
    assert ids("nobody") == []


def test_tenant_wide_search_finds_contacts_across_clients_but_never_another_tenants(api):
    a, b = new_client(api, "Alpha"), new_client(api, "Bravo")
    jane = add(api, a, "Jane Marlowe", "jane@alpha.example")
    tom = add(api, b, "Tom Marlowe", "tom@bravo.example", job_title="Rigger")
    other = api.as_("t2")
    other_client = new_client(other, "Charlie")
    add(other, other_client, "Eve Marlowe", "eve@charlie.example")

    found = api.get("/v1/contacts?q=MARLOWE")
    assert found.status_code == 200, found.data
    assert {c["id"] for c in found.data["items"]} == {jane["id"], tom["id"]}
    assert [c["id"] for c in api.get("/v1/contacts?q=rigger").data["items"]] == [tom["id"]]
    assert [c["full_name"] for c in other.get("/v1/contacts?q=marlowe").data["items"]] == ["Eve Marlowe"]


def test_contact_lists_page_with_limit_and_cursor(api):
    client_id = new_client(api)
    made = [add(api, client_id, f"Person {i}", f"p{i}@example.com")["id"] for i in range(3)]
    first = api.get(f"/v1/clients/{client_id}/contacts?limit=2")
    assert first.status_code == 200 and len(first.data["items"]) == 2 and first.data["next_cursor"]
    second = api.get(f"/v1/clients/{client_id}/contacts?limit=2&cursor={first.data['next_cursor']}")
    assert second.status_code == 200 and second.data["next_cursor"] is None
    assert [c["id"] for c in first.data["items"] + second.data["items"]] == made
    tenant_first = api.get("/v1/contacts?limit=2")
    tenant_rest = api.get(f"/v1/contacts?limit=2&cursor={tenant_first.data['next_cursor']}")
    assert sorted(c["id"] for c in tenant_first.data["items"] + tenant_rest.data["items"]) == sorted(made)
    assert tenant_rest.data["next_cursor"] is None


def test_bad_limit_and_cursor_are_400(api):
    client_id = new_client(api)
    error(api.get(f"/v1/clients/{client_id}/contacts?limit=0"), 400, "bad_request")
    error(api.get(f"/v1/clients/{client_id}/contacts?limit=101"), 400, "bad_request")
    error(api.get(f"/v1/clients/{client_id}/contacts?cursor=forged"), 400, "invalid_cursor")


# --- tenants and roles ----------------------------------------------------------------------------

def test_another_tenants_client_and_contacts_are_404(api):
    client_id = new_client(api)
    mine = add(api, client_id)
    other = api.as_("t2")
    error(other.get(f"/v1/clients/{client_id}/contacts"), 404, "not_found")
    error(other.get(f"/v1/clients/{client_id}/contacts/{mine['id']}"), 404, "not_found")
    error(other.post(f"/v1/clients/{client_id}/contacts", {"full_name": "Eve", "email": "eve@example.com"}),
          404, "not_found")
    error(other.patch(f"/v1/clients/{client_id}/contacts/{mine['id']}", {"notes": "x"}), 404, "not_found")
    error(other.post(f"/v1/clients/{client_id}/contacts/{mine['id']}/make-primary"), 404, "not_found")
    assert other.get("/v1/contacts").data["items"] == []
    assert [c["id"] for c in contacts(api, client_id)] == [mine["id"]]


def test_an_unknown_client_or_contact_is_404(api):
    client_id = new_client(api)
    error(api.get("/v1/clients/01NOPE/contacts"), 404, "not_found")
    error(api.get(f"/v1/clients/{client_id}/contacts/01NOPE"), 404, "not_found")


def test_a_viewer_reads_but_cannot_create_or_change_contacts(api):
    client_id = new_client(api)
    created = add(api, client_id)
    viewer = api.as_("t1", ["viewer"])
    assert [c["id"] for c in contacts(viewer, client_id)] == [created["id"]]
    error(viewer.post(f"/v1/clients/{client_id}/contacts", {"full_name": "Eve", "email": "eve@example.com"}),
          403, "forbidden")
    error(viewer.patch(f"/v1/clients/{client_id}/contacts/{created['id']}", {"notes": "x"}), 403, "forbidden")
    error(viewer.put(f"/v1/clients/{client_id}/contacts/{created['id']}/portal-access", {"enabled": True}),
          403, "forbidden")
    assert len(contacts(api, client_id)) == 1
    agent = api.as_("t1", ["agent"])
    assert agent.post(f"/v1/clients/{client_id}/contacts",
                      {"full_name": "Tom", "email": "tom@example.com"}).status_code == 201


# --- portal access and invitations ----------------------------------------------------------------

@pytest.fixture(autouse=True)
def _local_mail(monkeypatch):
    """The default sender and outbox, whatever the developer's shell says; autouse, so it runs before `aws`
    reads the settings (the Chalice test client later puts `.chalice/config.json` values in the environment)."""
    for name in ("OUTBOX_DIR", "EMAIL_SENDER", "PORTAL_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def outbox(api, tmp_path) -> Path:
    """The default local sender writes one .eml per message into DATA_DIR/outbox (DATA_DIR is tmp_path)."""
    return tmp_path / "outbox"


def emails(outbox: Path) -> list[email.message.EmailMessage]:
    files = sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime_ns) if outbox.exists() else []
    return [email.message_from_bytes(p.read_bytes(), policy=email.policy.default) for p in files]


def token_of(message: email.message.EmailMessage) -> str:
    body = message.get_body(("plain", "html")).get_content()
    links = re.findall(r"https?://[^\s\"'<>]+", body)
    tokens = [t for link in links for t in parse_qs(urlparse(link).query).get("token", [])]
    assert len(tokens) == 1, body
    return tokens[0]


def valid(token: str) -> bool:
    from chalicelib.domain.values import utcnow
    from chalicelib.tables.contacts import ContactRepository

    parsed = parse_invitation_token(token)
    assert parsed is not None, token
    tenant_id, client_id, contact_id, secret = parsed
    stored = ContactRepository(tenant_id).get(client_id, contact_id, include_deleted=True)
    return invitation_valid(stored, secret, utcnow())


def portal_on(api):
    assert api.patch("/v1/settings/portal", {"enabled": True}).status_code == 200


def test_enabling_portal_access_with_the_portal_off_is_409_portal_disabled(api, outbox):
    client_id = new_client(api)
    created = add(api, client_id)
    answer = api.put(f"/v1/clients/{client_id}/contacts/{created['id']}/portal-access", {"enabled": True})
    error(answer, 409, "portal_disabled")
    after = contact(api, client_id, created["id"])
    assert after["portal_access"] is False and after["portal_invited_at"] is None
    assert emails(outbox) == []


def test_enabling_portal_access_sends_one_invitation_with_a_valid_link_token(api, outbox):
    portal_on(api)
    client_id = new_client(api)
    created = add(api, client_id, "Jane Smith", "jane@example.com")
    answer = api.put(f"/v1/clients/{client_id}/contacts/{created['id']}/portal-access", {"enabled": True})
    assert answer.status_code == 200, answer.data
    assert answer.data["portal_access"] is True and "portal" in answer.data["badges"]
    assert answer.data["portal_invited_at"] and answer.data["portal_invited_at"].endswith("Z")
    assert contact(api, client_id, created["id"])["portal_access"] is True

    sent = emails(outbox)
    assert len(sent) == 1
    assert "jane@example.com" in sent[0]["To"] and sent[0]["Message-ID"]
    token = token_of(sent[0])
    assert parse_invitation_token(token)[:3] == ("t1", client_id, created["id"])
    assert valid(token) is True


def test_enabling_again_sends_no_second_invitation(api, outbox):
    portal_on(api)
    client_id = new_client(api)
    created = add(api, client_id)
    url = f"/v1/clients/{client_id}/contacts/{created['id']}/portal-access"
    assert api.put(url, {"enabled": True}).status_code == 200
    again = api.put(url, {"enabled": True})
    assert again.status_code == 200 and again.data["portal_access"] is True
    assert len(emails(outbox)) == 1


def test_resending_before_any_invitation_is_409_no_invitation_sent(api, outbox):
    client_id = new_client(api)
    created = add(api, client_id)
    error(api.post(f"/v1/clients/{client_id}/contacts/{created['id']}/portal-invitation"), 409,
          "no_invitation_sent")
    assert emails(outbox) == []


def test_resending_sends_a_new_link_and_voids_the_first(api, outbox):
    portal_on(api)
    client_id = new_client(api)
    created = add(api, client_id)
    assert api.put(f"/v1/clients/{client_id}/contacts/{created['id']}/portal-access",
                   {"enabled": True}).status_code == 200
    first = token_of(emails(outbox)[0])
    resent = api.post(f"/v1/clients/{client_id}/contacts/{created['id']}/portal-invitation")
    assert resent.status_code == 200, resent.data
    sent = emails(outbox)
    assert len(sent) == 2
    tokens = {token_of(m) for m in sent}
    assert first in tokens and len(tokens) == 2
    (second,) = tokens - {first}
    assert valid(first) is False
    assert valid(second) is True


def test_disabling_portal_access_turns_it_off_and_voids_the_invitation(api, outbox):
    portal_on(api)
    client_id = new_client(api)
    created = add(api, client_id)
    url = f"/v1/clients/{client_id}/contacts/{created['id']}/portal-access"
    assert api.put(url, {"enabled": True}).status_code == 200
    token = token_of(emails(outbox)[0])
    off = api.put(url, {"enabled": False})
    assert off.status_code == 200, off.data
    assert off.data["portal_access"] is False and "portal" not in off.data["badges"]
    assert contact(api, client_id, created["id"])["portal_access"] is False
    assert valid(token) is False


def test_enabling_again_after_access_was_off_sends_a_new_link_and_the_old_one_stays_void(api, outbox):
    portal_on(api)
    client_id = new_client(api)
    created = add(api, client_id)
    url = f"/v1/clients/{client_id}/contacts/{created['id']}/portal-access"
    api.put(url, {"enabled": True})
    first = token_of(emails(outbox)[0])
    api.put(url, {"enabled": False})
    assert api.put(url, {"enabled": True}).data["portal_access"] is True
    assert len(emails(outbox)) == 2
    second = token_of(emails(outbox)[1])
    assert valid(first) is False and valid(second) is True


def test_portal_access_body_is_validated(api, outbox):
    client_id = new_client(api)
    created = add(api, client_id)
    url = f"/v1/clients/{client_id}/contacts/{created['id']}/portal-access"
    assert "enabled" in fields_of(api.put(url, {}))
    assert "enabled" in fields_of(api.put(url, {"enabled": "yes please"}))
    assert "extra" in fields_of(api.put(url, {"enabled": True, "extra": 1}))
