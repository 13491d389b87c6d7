"""The bench's bulk loader writes what the service's create path writes: a consistent tenant the API answers."""
from __future__ import annotations

from collections import Counter

from bench.loader import RARE_CLIENT_WORD, RARE_CONTACT_WORD, TenantPlan, load, planned
from chalicelib.domain import client_cases
from chalicelib.tables.stores import Stores
from tests.audit import assert_consistent, tenant_items
from tests.integration.conftest import Api


def _kinds(tenant: str) -> Counter:
    return Counter(item.kind for item in tenant_items(tenant))


def test_a_loaded_tenant_passes_the_consistency_audit_and_answers_its_searches(ddb_api, ddb_table, ddb_endpoint):
    plan = TenantPlan("lt", clients=40, contacts=12)
    done = load(plan, ddb_endpoint, ddb_table, threads=2)
    assert done.items == sum(_kinds("lt").values())
    audit = assert_consistent("lt")
    assert len(audit.clients) == 40
    api = Api(ddb_api.http, tenant="lt")
    listed = api.get("/v1/clients?limit=100&status=all").data["items"]
    assert len(listed) == 40
    chips = api.get("/v1/clients/chips").data
    assert chips["all"] == sum(1 for c in audit.clients.values() if not c.is_archived)
    rare = api.get(f"/v1/clients?q={RARE_CLIENT_WORD.lower()}&status=all").data["items"]
    assert len(rare) == len(plan.rare_clients()) and all(RARE_CLIENT_WORD in c["name"] for c in rare)
    contacts = api.get(f"/v1/contacts?q={RARE_CONTACT_WORD.lower()}").data["items"]
    assert {c["full_name"].split()[-1] for c in contacts} == {RARE_CONTACT_WORD}
    with_primary = [c for c in listed if c["primary_contact"]]
    assert len(with_primary) == 12  # each contact is the first, so the primary, of its client


def test_a_loaded_client_has_the_items_the_create_use_case_and_the_scoring_write(ddb_api, ddb_table, ddb_endpoint):
    plan = TenantPlan("one", clients=1, contacts=0)
    load(plan, ddb_endpoint, ddb_table, threads=1)
    _, _, fields, figures = planned(plan, 0)
    stores = Stores("ref", "u")
    made = client_cases.create_client(stores, fields)
    client_cases.update_derived(stores, made.id, lambda client: figures)  # what the stream's rescore leaves
    [loaded] = assert_consistent("one").clients.values()
    if loaded.is_archived:
        client_cases.archive_client(stores, made.id)
    kinds, created = _kinds("one"), _kinds("ref")
    assert kinds["search"] > 0 and created["search"] > 0  # their exact terms are checked by the audit
    assert {k: n for k, n in kinds.items() if k != "search"} == {k: n for k, n in created.items() if k != "search"}
    assert_consistent("ref")
