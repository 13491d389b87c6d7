"""Possible duplicates: a client's candidates with their reasons, the tenant's pairs page by page, dismissals."""
from __future__ import annotations

import pytest

from chalicelib.tables.stores import Stores


def _client(api, **fields):
    response = api.post("/v1/clients?allow_duplicate=true", fields)
    assert response.status_code == 201, response.data
    return response.data


def _sync(*keys):  # what the stream does when a lookup key's holders change (moto runs no stream)
    for name, value in keys:
        Stores("t1").duplicates.sync(name, value)


@pytest.fixture
def twins(api):
    de = [{"kind": "billing", "line1": "Hauptstr. 1", "city": "Berlin", "country": "DE"}]
    acme = _client(api, name="ACME Events GmbH", email="info@acme.example", addresses=de, vat_number="DE 123.456")
    same = _client(api, name="Acme Events", email="sales@acme.example", addresses=de)
    vat = _client(api, name="Other Name", vat_number="de123456")
    abroad = _client(api, name="Acme Events", addresses=[{**de[0], "country": "FR"}])
    gmail = _client(api, name="Ana Freelance", email="ana@gmail.com")
    gmail2 = _client(api, name="Bo Freelance", email="bo@gmail.com")
    _sync(("name", "acme events|DE"), ("domain", "acme.example"), ("vat", "DE123456"))
    return {"acme": acme, "same": same, "vat": vat, "abroad": abroad, "gmail": gmail, "gmail2": gmail2}


def test_a_clients_duplicates_name_each_candidate_and_why(api, twins):
    found = api.get(f"/v1/clients/{twins['acme']['id']}/duplicates").data["items"]
    assert [(c["client"]["id"], c["reasons"]) for c in found] == [
        (twins["same"]["id"], ["same_email_domain", "same_name_and_country"]),
        (twins["vat"]["id"], ["same_vat_number"])]
    assert set(found[0]["client"]) == {"id", "name", "client_number", "status"}


def test_free_mail_and_a_namesake_in_another_country_are_no_duplicates(api, twins):
    assert api.get(f"/v1/clients/{twins['gmail']['id']}/duplicates").data["items"] == []
    assert api.get(f"/v1/clients/{twins['abroad']['id']}/duplicates").data["items"] == []


def test_the_tenants_own_domain_is_no_reason(api, twins):
    assert api.patch("/v1/settings/client", {"sending_address": "crm@acme.example"}).status_code == 200
    found = api.get(f"/v1/clients/{twins['acme']['id']}/duplicates").data["items"]
    assert [(c["client"]["id"], c["reasons"]) for c in found][0] == (twins["same"]["id"], ["same_name_and_country"])


def test_the_tenants_pairs_page_through_once_each_with_every_reason(api, twins):
    first = api.get("/v1/duplicates?kind=client&limit=1").data
    pages, cursor = [first], first["next_cursor"]
    while cursor:
        pages.append(api.get(f"/v1/duplicates?kind=client&limit=1&cursor={cursor}").data)
        cursor = pages[-1]["next_cursor"]
    pairs = [({c["id"] for c in p["clients"]}, tuple(p["reasons"])) for page in pages for p in page["items"]]
    acme, same, vat = twins["acme"]["id"], twins["same"]["id"], twins["vat"]["id"]
    assert sorted(pairs, key=str) == sorted([({acme, same}, ("same_email_domain",)),
                                            ({acme, same}, ("same_name_and_country",)),
                                            ({acme, vat}, ("same_vat_number",))], key=str)
    assert len(pages) == 3


def test_a_dismissed_pair_is_not_proposed_again_in_either_list(api, twins):
    acme, same = twins["acme"]["id"], twins["same"]["id"]
    answer = api.post("/v1/duplicates/dismiss", {"kind": "client", "ids": [same, acme]})
    assert answer.status_code == 200 and answer.data == {"kind": "client", "ids": sorted([acme, same]),
                                                         "dismissed": True}
    assert [c["client"]["id"] for c in api.get(f"/v1/clients/{acme}/duplicates").data["items"]] == [
        twins["vat"]["id"]]
    listed = [{c["id"] for c in p["clients"]} for p in api.get("/v1/duplicates").data["items"]]
    assert {acme, same} not in listed and {acme, twins["vat"]["id"]} in listed


def test_an_archived_client_is_nobodys_duplicate(api, twins):
    assert api.post(f"/v1/clients/{twins['vat']['id']}/archive").status_code == 200
    _sync(("vat", "DE123456"))
    found = api.get(f"/v1/clients/{twins['acme']['id']}/duplicates").data["items"]
    assert twins["vat"]["id"] not in {c["client"]["id"] for c in found}
    assert all(twins["vat"]["id"] not in {c["id"] for c in p["clients"]}
               for p in api.get("/v1/duplicates").data["items"])


@pytest.mark.parametrize("ids,status,field", [
    (["only-one"], 422, "ids"), (["a", "a"], 422, "ids"), (["a", "b", "c"], 422, "ids")])
def test_dismissing_needs_two_different_ids(api, ids, status, field):
    answer = api.post("/v1/duplicates/dismiss", {"kind": "client", "ids": ids})
    assert answer.status_code == status and field in {d["field"] for d in answer.data["error"]["details"]}


def test_dismissing_an_unknown_or_another_tenants_client_is_404_and_writes_nothing(api, twins):
    other = _client(api.as_("t2"), name="Foreign")
    answer = api.post("/v1/duplicates/dismiss", {"ids": [twins["acme"]["id"], other["id"]]})
    assert answer.status_code == 404
    assert Stores("t1").duplicates.dismissed([tuple(sorted([twins["acme"]["id"], other["id"]]))]) == set()


def test_viewers_read_duplicates_and_only_agents_dismiss(api, twins):
    viewer = api.as_(roles=("viewer",))
    assert viewer.get("/v1/duplicates").status_code == 200
    assert viewer.post("/v1/duplicates/dismiss", {"ids": [twins["acme"]["id"], twins["same"]["id"]]}).status_code \
        == 403


def test_creating_a_possible_duplicate_is_409_naming_each_candidate_and_creates_nothing(api, twins):
    count = len(api.get("/v1/clients?limit=100").data["items"])
    answer = api.post("/v1/clients", {"name": "Acme Events", "email": "new@acme.example",
                                      "addresses": [{"kind": "billing", "country": "DE"}]})
    assert answer.status_code == 409 and answer.data["error"]["code"] == "possible_duplicate"
    details = answer.data["error"]["details"]
    assert {(d["client_id"], tuple(d["reasons"])) for d in details} == {
        (twins["acme"]["id"], ("same_email_domain", "same_name_and_country")),
        (twins["same"]["id"], ("same_email_domain", "same_name_and_country"))}
    assert all(d["field"] and d["message"] and d["client_number"] and d["name"] for d in details)
    assert len(api.get("/v1/clients?limit=100").data["items"]) == count


def test_allow_duplicate_creates_it_and_a_retry_with_it_under_the_same_key_is_no_replay_of_the_409(api, twins):
    body, key = {"name": "Other Name GmbH"}, {"Idempotency-Key": "create-1"}
    refused = api.post("/v1/clients", body, headers=key)
    assert refused.status_code == 409 and refused.data["error"]["details"][0]["client_id"] == twins["vat"]["id"]
    created = api.post("/v1/clients?allow_duplicate=true", body, headers=key)
    assert created.status_code == 201 and created.data["name"] == "Other Name GmbH"
    assert "Idempotent-Replayed" not in created.headers


def test_a_new_client_that_matches_nobody_is_created_at_once(api, twins):
    assert api.post("/v1/clients", {"name": "Brand New", "email": "zed@gmail.com"}).status_code == 201  # free mail


def test_adding_a_contact_whose_address_a_contact_has_is_409_naming_it_unless_allowed(api, twins):
    acme, same = twins["acme"]["id"], twins["same"]["id"]
    first = api.post(f"/v1/clients/{acme}/contacts", {"full_name": "Ana Núñez", "email": "ana@acme.example"})
    assert first.status_code == 201
    for client_id, same_client in ((acme, True), (same, False)):
        again = api.post(f"/v1/clients/{client_id}/contacts", {"full_name": "Ana N.", "email": "ANA@acme.example"})
        assert again.status_code == 409 and again.data["error"]["code"] == "possible_duplicate"
        (detail,) = again.data["error"]["details"]
        assert (detail["field"], detail["contact_id"], detail["client_id"], detail["same_client"]) == (
            "email", first.data["id"], acme, same_client)
    allowed = api.post(f"/v1/clients/{same}/contacts?allow_duplicate=true", {"full_name": "Ana N.",
                                                                              "email": "ana@acme.example"})
    assert allowed.status_code == 201
    assert api.post(f"/v1/clients/{acme}/contacts", {"full_name": "Bo", "email": "bo@acme.example"}).status_code == 201
    assert api.post("/v1/clients/nope/contacts", {"full_name": "X", "email": "ana@acme.example"}).status_code == 404


def test_an_import_creates_likely_duplicates_and_lists_them_with_their_reasons(api, twins):
    text = ("name,email,billing_country\nAcme Events AG,new@acme.example,DE\nBrand New,zed@new.example,\n"
            "Brand New Ltd,ann@new.example,\n")
    answer = api.call("POST", "/v1/clients/import", raw=text.encode(), headers={"Content-Type": "text/csv"})
    assert answer.status_code == 200, answer.data
    assert answer.data["created"] == 3 and answer.data["skipped_duplicates"] == 0
    possible = {p["row"]: p for p in answer.data["possible_duplicates"]}
    assert set(possible) == {2, 4}
    assert set(possible[2]["client_ids"]) == {twins["acme"]["id"], twins["same"]["id"]}
    assert possible[2]["reasons"] == ["same_email_domain", "same_name_and_country"]
    assert possible[4] == {"row": 4, "client_ids": [], "earlier_row": 3,
                           "reasons": ["same_email_domain", "same_name_and_country"]}
    stored = api.get(f"/v1/imports/{answer.data['id']}").data
    assert [p["row"] for p in stored["possible_duplicates"]] == [2, 4]
