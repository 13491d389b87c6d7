"""Tasks and associations over HTTP: order, status stamping, links seen from both sides, pairs, tenants, roles."""
from __future__ import annotations

import pytest

from chalicelib.tables import keys
from chalicelib.tables.base import TableItem

TASKS = "/v1/clients/{}/tasks"
LINKS = "/v1/clients/{}/associations"


def _client(api, name, type_="company", **extra):
    response = api.post("/v1/clients", {"name": name, "type": type_, **extra})
    assert response.status_code == 201, response.data
    return response.data["id"]


def _task(api, client_id, **body):
    response = api.post(TASKS.format(client_id), {"title": "Call back", **body})
    assert response.status_code == 201, response.data
    return response.data


def _fields(response):
    return [d["field"] for d in response.data["error"]["details"]]


def _partition(tenant, client_id):
    return {i.sk for i in TableItem.query(keys.client_pk(tenant, client_id))}


# --- tasks -------------------------------------------------------------------------------------------

def test_create_task_answers_the_full_task_open_by_default(api):
    client_id = _client(api, "Acme")
    task = _task(api, client_id, title="  Send the quote ", due_date="2030-01-15", assignee_id="user-7")
    assert task["title"] == "Send the quote" and task["status"] == "open" and task["completed_at"] is None
    assert task["client_id"] == client_id and task["due_date"] == "2030-01-15" and task["assignee_id"] == "user-7"
    assert task["created_by"] == "user-1" and task["created_at"].endswith("Z") and len(task["id"]) == 26
    assert set(task) == {"id", "client_id", "title", "due_date", "assignee_id", "status", "completed_at",
                         "created_by", "created_at", "updated_at"}


def test_task_created_done_is_stamped_completed(api):
    task = _task(api, _client(api, "Acme"), status="done")
    assert task["status"] == "done" and task["completed_at"] is not None


def test_list_puts_open_tasks_by_due_date_first_undated_last_then_done(api):
    client_id = _client(api, "Acme")
    undated = _task(api, client_id, title="Undated")
    late = _task(api, client_id, title="Late", due_date="2030-03-01")
    early = _task(api, client_id, title="Early", due_date="2030-01-01")
    first_done = _task(api, client_id, title="Done first", due_date="2029-01-01", status="done")
    last_done = _task(api, client_id, title="Done last", status="done")
    titles = [t["title"] for t in api.get(TASKS.format(client_id)).data["items"]]
    assert titles == [early["title"], late["title"], undated["title"], last_done["title"], first_done["title"]]


def test_list_filters_by_status_and_pages_with_cursors(api):
    client_id = _client(api, "Acme")
    for day in ("01", "02", "03"):
        _task(api, client_id, title=f"Open {day}", due_date=f"2030-01-{day}")
    _task(api, client_id, title="Done", status="done")
    assert [t["title"] for t in api.get(TASKS.format(client_id) + "?status=done").data["items"]] == ["Done"]
    first = api.get(TASKS.format(client_id) + "?status=open&limit=2").data
    assert [t["title"] for t in first["items"]] == ["Open 01", "Open 02"] and first["next_cursor"]
    second = api.get(TASKS.format(client_id) + f"?status=open&limit=2&cursor={first['next_cursor']}").data
    assert [t["title"] for t in second["items"]] == ["Open 03"] and second["next_cursor"] is None
    assert api.get(TASKS.format(client_id) + "?status=closed").status_code == 400


def test_patch_to_done_stamps_completed_at_and_back_to_open_clears_it(api):
    client_id = _client(api, "Acme")
    task = _task(api, client_id, due_date="2030-01-01")
    url = TASKS.format(client_id) + f"/{task['id']}"
    done = api.patch(url, {"status": "done"})
    assert done.status_code == 200 and done.data["status"] == "done" and done.data["completed_at"]
    assert done.data["due_date"] == "2030-01-01" and done.data["updated_at"] > task["updated_at"]
    again = api.patch(url, {"status": "done", "title": "Called back"}).data
    assert again["completed_at"] == done.data["completed_at"] and again["title"] == "Called back"
    reopened = api.patch(url, {"status": "open", "due_date": None}).data
    assert reopened["status"] == "open" and reopened["completed_at"] is None and reopened["due_date"] is None
    assert api.get(TASKS.format(client_id)).data["items"] == [reopened]


def test_patch_with_null_title_or_status_is_422(api):
    client_id = _client(api, "Acme")
    url = TASKS.format(client_id) + f"/{_task(api, client_id)['id']}"
    assert _fields(api.patch(url, {"title": None})) == ["title"]
    assert _fields(api.patch(url, {"status": None})) == ["status"]


def test_task_validation_names_bad_unknown_and_read_only_fields(api):
    client_id = _client(api, "Acme")
    bad = api.post(TASKS.format(client_id), {"title": " ", "due_date": "15-01-2030", "status": "closed"})
    assert bad.status_code == 422 and sorted(_fields(bad)) == ["due_date", "status", "title"]
    assert _fields(api.post(TASKS.format(client_id), {"title": "x" * 201})) == ["title"]
    assert _fields(api.post(TASKS.format(client_id), {"title": "A", "due_date": 1_900_000_000})) == ["due_date"]
    read_only = api.post(TASKS.format(client_id), {"title": "A", "completed_at": "2030-01-01T00:00:00Z"})
    assert read_only.status_code == 422 and read_only.data["error"]["details"] == [
        {"field": "completed_at", "message": "is read-only"}]
    url = TASKS.format(client_id) + f"/{_task(api, client_id)['id']}"
    assert _fields(api.patch(url, {"priority": "high"})) == ["priority"]
    assert _fields(api.patch(url, {"id": "other"})) == ["id"]


def test_tasks_of_unknown_or_other_tenants_clients_are_404(api):
    client_id = _client(api, "Acme")
    task = _task(api, client_id)
    other = api.as_("t2")
    assert api.get(TASKS.format("nope")).status_code == 404
    assert api.post(TASKS.format("nope"), {"title": "A"}).status_code == 404
    assert other.get(TASKS.format(client_id)).status_code == 404
    assert other.post(TASKS.format(client_id), {"title": "A"}).status_code == 404
    assert other.patch(TASKS.format(client_id) + f"/{task['id']}", {"status": "done"}).status_code == 404
    assert api.get(TASKS.format(client_id)).data["items"][0]["status"] == "open"


def test_task_of_another_client_is_404_on_patch(api):
    first, second = _client(api, "Acme"), _client(api, "Beta")
    task = _task(api, first)
    response = api.patch(TASKS.format(second) + f"/{task['id']}", {"title": "Moved?"})
    assert response.status_code == 404 and response.data["error"]["code"] == "not_found"
    assert api.get(TASKS.format(second)).data["items"] == []


def test_task_can_be_added_to_an_archived_client(api):
    client_id = _client(api, "Acme")
    assert api.post(f"/v1/clients/{client_id}/archive").status_code == 200
    assert _task(api, client_id)["status"] == "open"


def test_viewer_reads_tasks_but_cannot_create_or_edit(api):
    client_id = _client(api, "Acme")
    task = _task(api, client_id)
    viewer = api.as_(roles=("viewer",))
    assert viewer.get(TASKS.format(client_id)).status_code == 200
    assert viewer.post(TASKS.format(client_id), {"title": "A"}).status_code == 403
    assert viewer.patch(TASKS.format(client_id) + f"/{task['id']}", {"status": "done"}).status_code == 403
    assert api.as_(roles=("agent",)).post(TASKS.format(client_id), {"title": "A"}).status_code == 201


def test_task_create_replays_with_the_same_idempotency_key(api):
    client_id = _client(api, "Acme")
    headers = {"Idempotency-Key": "task-1"}
    first = api.post(TASKS.format(client_id), {"title": "A"}, headers=headers)
    again = api.post(TASKS.format(client_id), {"title": "A"}, headers=headers)
    assert again.status_code == 201 and again.data == first.data
    assert len(api.get(TASKS.format(client_id)).data["items"]) == 1


# --- associations ------------------------------------------------------------------------------------

def test_link_is_visible_from_both_sides_with_current_names_and_types(api):
    company, person = _client(api, "Acme"), _client(api, "Jane Doe", "individual")
    created = api.post(LINKS.format(company), {"related_id": person, "role": "Director"})
    assert created.status_code == 201
    assert created.data == {"related_id": person, "related_name": "Jane Doe", "related_type": "individual",
                            "role": "Director"}
    api.patch(f"/v1/clients/{person}", {"name": "Jane Smith"})
    assert api.get(LINKS.format(person)).data == {"items": [
        {"related_id": company, "related_name": "Acme", "related_type": "company", "role": "Director"}],
        "next_cursor": None}
    assert api.get(LINKS.format(company)).data["items"][0]["related_name"] == "Jane Smith"


def test_links_are_listed_by_related_name(api):
    venue = _client(api, "Hall", "venue")
    for name, type_ in (("zeta corp", "company"), ("Alice", "individual"), ("Mid Ltd", "company")):
        assert api.post(LINKS.format(venue), {"related_id": _client(api, name, type_)}).status_code == 201
    assert [i["related_name"] for i in api.get(LINKS.format(venue)).data["items"]] == ["Alice", "Mid Ltd",
                                                                                       "zeta corp"]


@pytest.mark.parametrize("left, right", [("company", "individual"), ("individual", "company"),
                                         ("venue", "company"), ("company", "venue"),
                                         ("venue", "individual"), ("individual", "venue")])
def test_allowed_pairs_link_in_either_direction(api, left, right):
    a, b = _client(api, "A", left), _client(api, "B", right)
    assert api.post(LINKS.format(a), {"related_id": b}).status_code == 201


@pytest.mark.parametrize("type_", ["company", "individual", "venue"])
def test_same_type_pairs_are_422_on_related_id_and_write_nothing(api, type_):
    a, b = _client(api, "A", type_), _client(api, "B", type_)
    response = api.post(LINKS.format(a), {"related_id": b, "role": "Partner"})
    assert response.status_code == 422 and _fields(response) == ["related_id"]
    assert api.get(LINKS.format(a)).data["items"] == [] and api.get(LINKS.format(b)).data["items"] == []


def test_linking_a_client_to_itself_is_422(api):
    company = _client(api, "Acme")
    response = api.post(LINKS.format(company), {"related_id": company})
    assert response.status_code == 422 and _fields(response) == ["related_id"]
    assert "itself" in response.data["error"]["details"][0]["message"]


def test_posting_an_existing_link_again_sets_its_role_on_both_sides_and_is_200(api):
    company, person = _client(api, "Acme"), _client(api, "Jane", "individual")
    api.post(LINKS.format(company), {"related_id": person, "role": "Director"})
    again = api.post(LINKS.format(person), {"related_id": company, "role": "Owner"})
    assert again.status_code == 200 and again.data["role"] == "Owner" and again.data["related_name"] == "Acme"
    assert [i["role"] for i in api.get(LINKS.format(company)).data["items"]] == ["Owner"]
    assert [i["role"] for i in api.get(LINKS.format(person)).data["items"]] == ["Owner"]


def test_delete_removes_the_link_from_both_sides_and_then_is_404(api):
    company, person = _client(api, "Acme"), _client(api, "Jane", "individual")
    api.post(LINKS.format(company), {"related_id": person})
    deleted = api.call("DELETE", LINKS.format(person) + f"/{company}")
    assert deleted.status_code == 204
    assert api.get(LINKS.format(company)).data["items"] == [] and api.get(LINKS.format(person)).data["items"] == []
    assert not {sk for sk in _partition("t1", company) | _partition("t1", person) if sk.startswith("ASSOC#")}
    assert api.call("DELETE", LINKS.format(company) + f"/{person}").status_code == 404


def test_another_tenants_client_is_422_on_related_id_and_nothing_is_written(api):
    company = _client(api, "Acme")
    foreign = _client(api.as_("t2"), "Jane", "individual")
    response = api.post(LINKS.format(company), {"related_id": foreign})
    assert response.status_code == 422 and _fields(response) == ["related_id"]
    assert _fields(api.post(LINKS.format(company), {"related_id": "no-such-client"})) == ["related_id"]
    assert api.get(LINKS.format(company)).data["items"] == []
    assert api.as_("t2").get(LINKS.format(foreign)).data["items"] == []
    assert not any(sk.startswith("ASSOC#") for sk in _partition("t1", company) | _partition("t2", foreign))


def test_association_of_unknown_or_other_tenants_client_is_404(api):
    company, person = _client(api, "Acme"), _client(api, "Jane", "individual")
    api.post(LINKS.format(company), {"related_id": person})
    other = api.as_("t2")
    assert api.get(LINKS.format("nope")).status_code == 404
    assert other.get(LINKS.format(company)).status_code == 404
    assert other.post(LINKS.format(company), {"related_id": person}).status_code == 404
    assert other.call("DELETE", LINKS.format(company) + f"/{person}").status_code == 404
    assert len(api.get(LINKS.format(company)).data["items"]) == 1


def test_association_body_is_validated(api):
    company = _client(api, "Acme")
    assert _fields(api.post(LINKS.format(company), {"role": "Director"})) == ["related_id"]
    person = _client(api, "Jane", "individual")
    assert _fields(api.post(LINKS.format(company), {"related_id": person, "role": "x" * 51})) == ["role"]
    assert _fields(api.post(LINKS.format(company), {"related_id": person, "since": "2020"})) == ["since"]


def test_viewer_lists_links_but_cannot_link_or_unlink(api):
    company, person = _client(api, "Acme"), _client(api, "Jane", "individual")
    api.post(LINKS.format(company), {"related_id": person})
    viewer = api.as_(roles=("viewer",))
    assert viewer.get(LINKS.format(company)).status_code == 200
    assert viewer.post(LINKS.format(company), {"related_id": person}).status_code == 403
    assert viewer.call("DELETE", LINKS.format(company) + f"/{person}").status_code == 403
    assert len(api.get(LINKS.format(person)).data["items"]) == 1
