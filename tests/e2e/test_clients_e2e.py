"""The issue's "done when", over real HTTP against the local server on DynamoDB Local."""
from __future__ import annotations

import re
import uuid
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.local.server_process import ServerProcess

NUMBER = re.compile(r"^CLT-\d{4}-\d{6}[0-9a-f]{4}$")


def _tenant() -> str:
    return f"t{uuid.uuid4().hex[:8]}"


def test_a_new_user_creates_finds_archives_and_restores_a_client(live_server):
    base, h = live_server.base_url, live_server.headers(_tenant(), ["manager"])
    created = requests.post(f"{base}/v1/clients", json={"name": "Harbour Lights Festival", "status": "inactive"},
                            headers=h, timeout=10)
    assert created.status_code == 201
    client = created.json()
    assert NUMBER.match(client["client_number"]) and client["health_score"] == 70 and client["version"] == 1

    listed = requests.get(f"{base}/v1/clients", headers=h, timeout=10).json()
    assert [c["id"] for c in listed["items"]] == [client["id"]] and listed["next_cursor"] is None
    found = requests.get(f"{base}/v1/clients", params={"q": "LIGHTS fest"}, headers=h, timeout=10).json()
    assert [c["id"] for c in found["items"]] == [client["id"]]

    archived = requests.post(f"{base}/v1/clients/{client['id']}/archive", headers=h, timeout=10).json()
    assert archived["status"] == "archived" and archived["archived_at"].endswith("Z")
    assert requests.get(f"{base}/v1/clients", headers=h, timeout=10).json()["items"] == []
    assert requests.get(f"{base}/v1/clients/chips", headers=h, timeout=10).json()["all"] == 0

    restored = requests.post(f"{base}/v1/clients/{client['id']}/restore", headers=h, timeout=10).json()
    assert restored["status"] == "inactive" and restored["archived_at"] is None
    chips = requests.get(f"{base}/v1/clients/chips", headers=h, timeout=10).json()
    assert chips["all"] == 1 and chips["inactive"] == 1


def test_twenty_concurrent_creates_give_twenty_distinct_numbers(live_server):
    base, h = live_server.base_url, live_server.headers(_tenant(), ["agent"])

    def create(i: int) -> requests.Response:
        return requests.post(f"{base}/v1/clients", json={"name": f"Concurrent {i:02d}"}, headers=h, timeout=60)

    with ThreadPoolExecutor(20) as pool:
        answers = list(pool.map(create, range(20)))
    assert [a.status_code for a in answers] == [201] * 20
    numbers = {a.json()["client_number"] for a in answers}
    assert len(numbers) == 20 and all(NUMBER.match(n) for n in numbers)
    assert requests.get(f"{base}/v1/clients/chips", headers=h, timeout=10).json()["all"] == 20
    seen, cursor = [], None
    while True:
        page = requests.get(f"{base}/v1/clients", params={"limit": 6, **({"cursor": cursor} if cursor else {})},
                            headers=h, timeout=10).json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"Concurrent {i:02d}" for i in range(20)]


def test_another_tenants_token_gets_404_for_the_client(live_server):
    base = live_server.base_url
    mine = requests.post(f"{base}/v1/clients", json={"name": "Private Venue", "type": "venue"},
                         headers=live_server.headers(_tenant()), timeout=10).json()
    other = live_server.headers(_tenant())
    answer = requests.get(f"{base}/v1/clients/{mine['id']}", headers=other, timeout=10)
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "not_found"
    patched = requests.patch(f"{base}/v1/clients/{mine['id']}", json={"name": "Stolen"}, headers=other, timeout=10)
    assert patched.status_code == 404
    assert requests.get(f"{base}/v1/clients", headers=other, timeout=10).json()["items"] == []


def test_data_survives_a_restart_of_the_server(tmp_path):
    """`make run` stopped and started again on the same DATA_DIR finds its clients (a file-backed DynamoDB Local)."""
    from chalicelib.local.dynamodb_local import free_port
    from tests.local.server_process import mint

    # No DYNAMODB_ENDPOINT: the server starts its own file-backed DynamoDB Local under DATA_DIR, as `make run` does.
    env = {"DYNAMODB_LOCAL_PORT": str(free_port()), "TABLE_NAME": "restart-table",
           "AUTH_JWT_SECRET": "restart-secret-" + uuid.uuid4().hex,
           "AUTH_ISSUER": "nexusrms-local"}
    h = {"Authorization": "Bearer " + mint(env["AUTH_JWT_SECRET"], "nexusrms-local", "demo", ["admin"])}
    first = ServerProcess(tmp_path, env=env).start()
    try:
        created = requests.post(f"{first.base_url}/v1/clients", json={"name": "Kept Across Restarts"},
                                headers=h, timeout=10).json()
    finally:
        first.stop()
    second = ServerProcess(tmp_path, env=env).start()
    try:
        again = requests.get(f"{second.base_url}/v1/clients/{created['id']}", headers=h, timeout=10)
        assert again.status_code == 200 and again.json()["client_number"] == created["client_number"]
    finally:
        second.stop()
