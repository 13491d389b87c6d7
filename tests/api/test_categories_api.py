"""Categories over HTTP: the tree's paths and rules, scopes and order, assignments, and the recount."""
from __future__ import annotations


def _category(api, name, parent=None, **extra):
    response = api.post("/v1/categories", {"name": name, "parent_id": parent, **extra})
    assert response.status_code == 201, response.data
    return response.data


def test_a_three_level_tree_shows_full_paths_depths_and_leaves(api):
    events = _category(api, "Events")
    corporate = _category(api, "Corporate", events["id"])
    conferences = _category(api, "Conferences", corporate["id"])
    assert conferences["full_path"] == "Events > Corporate > Conferences"
    assert conferences["depth"] == 2 and conferences["is_leaf"] and not conferences["has_children"]
    root = api.get(f"/v1/categories/{events['id']}").data
    assert root["full_path"] == "Events" and root["depth"] == 0
    assert root["has_children"] and not root["is_leaf"] and root["slug"] == "events"
    below = api.get(f"/v1/categories/{events['id']}/descendants").data["items"]
    assert [c["name"] for c in below] == ["Corporate", "Conferences"]


def test_renaming_a_parent_changes_the_paths_below_it(api):
    events = _category(api, "Events")
    child = _category(api, "Weddings", events["id"])
    api.patch(f"/v1/categories/{events['id']}", {"name": "Occasions"})
    assert api.get(f"/v1/categories/{child['id']}").data["full_path"] == "Occasions > Weddings"


def test_slugs_are_generated_and_unique_in_the_tenant(api):
    first = _category(api, "Théâtre & Opera")
    second = _category(api, "Théâtre & Opera")
    assert first["slug"] == "theatre-opera" and second["slug"] == "theatre-opera-2"
    assert _category(api.as_("t2"), "Théâtre & Opera")["slug"] == "theatre-opera"


def test_a_parent_may_not_be_the_category_itself_or_a_descendant(api):
    a = _category(api, "A")
    b = _category(api, "B", a["id"])
    c = _category(api, "C", b["id"])
    for parent in (a["id"], c["id"]):
        response = api.patch(f"/v1/categories/{a['id']}", {"parent_id": parent})
        assert response.status_code == 422
        assert response.data["error"]["details"][0]["field"] == "parent_id"
    assert api.get(f"/v1/categories/{a['id']}").data["parent_id"] is None
    moved = api.patch(f"/v1/categories/{c['id']}", {"parent_id": None}).data
    assert moved["depth"] == 0 and api.get(f"/v1/categories/{b['id']}").data["is_leaf"]


def test_an_unknown_parent_is_a_422(api):
    response = api.post("/v1/categories", {"name": "Orphan", "parent_id": "nope"})
    assert response.status_code == 422 and response.data["error"]["details"][0]["field"] == "parent_id"
    assert api.get("/v1/categories").data["items"] == []


def test_system_categories_cannot_be_deleted_but_can_be_deactivated(api):
    system = _category(api, "VIP", is_system=True)
    response = api.call("DELETE", f"/v1/categories/{system['id']}")
    assert response.status_code == 409 and response.data["error"]["code"] == "system_category"
    assert api.patch(f"/v1/categories/{system['id']}", {"is_active": False}).data["is_active"] is False
    assert api.patch(f"/v1/categories/{system['id']}", {"is_system": False}).status_code == 422


def test_only_an_admin_creates_a_system_category(api):
    manager = api.as_(roles=("manager",))
    assert manager.post("/v1/categories", {"name": "VIP", "is_system": True}).status_code == 403
    assert manager.post("/v1/categories", {"name": "VIP"}).status_code == 201
    assert api.as_(roles=("agent",)).post("/v1/categories", {"name": "X"}).status_code == 403


def test_a_category_with_children_cannot_be_deleted(api):
    parent = _category(api, "Events")
    child = _category(api, "Corporate", parent["id"])
    response = api.call("DELETE", f"/v1/categories/{parent['id']}")
    assert response.status_code == 409 and response.data["error"]["code"] == "has_children"
    assert api.as_(roles=("manager",)).call("DELETE", f"/v1/categories/{child['id']}").status_code == 403
    assert api.call("DELETE", f"/v1/categories/{child['id']}").status_code == 204
    assert api.get(f"/v1/categories/{child['id']}").status_code == 404
    assert api.call("DELETE", f"/v1/categories/{parent['id']}").status_code == 204
    assert _category(api, "Events")["slug"] == "events"  # a deleted category's slug is free again


def test_scopes_filter_and_order_is_sort_order_then_name(api):
    _category(api, "b-custom", sort_order=2)
    root = _category(api, "a-system", is_system=True, sort_order=2)
    _category(api, "z-first", sort_order=1, parent=root["id"])
    _category(api, "inactive", sort_order=3, is_active=False)

    def names(scope=None):
        return [c["name"] for c in api.get("/v1/categories" + (f"?scope={scope}" if scope else "")).data["items"]]

    assert names() == ["z-first", "a-system", "b-custom", "inactive"]
    assert names("system") == ["a-system"]
    assert names("custom") == ["z-first", "b-custom", "inactive"]
    assert names("top_level") == ["a-system", "b-custom", "inactive"]
    assert names("active") == ["z-first", "a-system", "b-custom"]
    assert api.get("/v1/categories?scope=everything").status_code == 400


def test_the_category_list_pages_with_cursors(api):
    for n in range(5):
        _category(api, f"C{n}")
    first = api.get("/v1/categories?limit=2").data
    second = api.get(f"/v1/categories?limit=2&cursor={first['next_cursor']}").data
    third = api.get(f"/v1/categories?limit=2&cursor={second['next_cursor']}").data
    assert [c["name"] for c in first["items"] + second["items"] + third["items"]] == [f"C{n}" for n in range(5)]
    assert third["next_cursor"] is None


def test_bad_fields_are_named(api):
    response = api.post("/v1/categories", {"name": "X", "color": "red", "icon": "fa-star", "clients_count": 3})
    fields = {d["field"] for d in response.data["error"]["details"]}
    assert response.status_code == 422 and {"color", "icon", "clients_count"} <= fields
    assert api.get("/v1/categories").data["items"] == []


def test_clients_only_take_live_active_categories(api):
    active = _category(api, "Festival")
    inactive = _category(api, "Old", is_active=False)
    response = api.post("/v1/clients", {"name": "Acme", "category_ids": [active["id"], "nope", inactive["id"]]})
    assert response.status_code == 422
    assert [d["field"] for d in response.data["error"]["details"]] == ["category_ids.1", "category_ids.2"]
    client = api.post("/v1/clients", {"name": "Acme", "category_ids": [active["id"]]}).data
    assert client["category_ids"] == [active["id"]]
    api.patch(f"/v1/categories/{active['id']}", {"is_active": False})
    kept = api.patch(f"/v1/clients/{client['id']}", {"name": "Acme Ltd", "category_ids": [active["id"]]})
    assert kept.status_code == 200  # an assignment made while it was active may stay


def test_the_client_list_filters_by_a_category_and_its_descendants(api):
    events = _category(api, "Events")
    corporate = _category(api, "Corporate", events["id"])
    other = _category(api, "Other")
    api.post("/v1/clients", {"name": "Root client", "category_ids": [events["id"]]})
    api.post("/v1/clients", {"name": "Child client", "category_ids": [corporate["id"]]})
    api.post("/v1/clients", {"name": "Elsewhere", "category_ids": [other["id"]]})

    def names(category_id):
        return [c["name"] for c in api.get(f"/v1/clients?category_id={category_id}").data["items"]]

    assert names(events["id"]) == ["Child client", "Root client"]
    assert names(corporate["id"]) == ["Child client"]


def test_recount_counts_non_archived_clients_assigned(api):
    festival = _category(api, "Festival")
    ids = [api.post("/v1/clients", {"name": f"C{n}", "category_ids": [festival["id"]]}).data["id"] for n in range(3)]
    api.post(f"/v1/clients/{ids[0]}/archive")
    recounted = api.post(f"/v1/categories/{festival['id']}/recount").data
    assert recounted["clients_count"] == 2
    assert api.get(f"/v1/categories/{festival['id']}").data["clients_count"] == 2
    assert api.as_("t2").post(f"/v1/categories/{festival['id']}/recount").status_code == 404
