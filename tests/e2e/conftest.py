"""End-to-end fixture: the real local server (`python -m chalicelib.local run`) on the session's DynamoDB Local."""
from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.local.server_process import ServerProcess, mint

ISSUER = "nexusrms-local"


@dataclass
class LiveServer:
    base_url: str
    data_dir: Path
    table_name: str
    secret: str
    process: ServerProcess

    def token(self, tenant: str = "demo", roles: list[str] | None = None, **claims) -> str:
        """A bearer token the server accepts; `claims` go to mint_token (sub, client_id, scope, ttl, name)."""
        return mint(self.secret, ISSUER, tenant, ["admin"] if roles is None else roles, **claims)

    def headers(self, tenant: str = "demo", roles: list[str] | None = None, **claims) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token(tenant, roles, **claims)}"}

    def output(self) -> str:
        """Everything the server printed so far (banner, request log, handler errors)."""
        return self.process.output()


@pytest.fixture(scope="session")
def live_server(ddb_endpoint: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("e2e-data")
    table_name = f"e2e-{uuid.uuid4().hex[:10]}"
    secret = secrets.token_urlsafe(32)
    process = ServerProcess(data_dir, env={
        "DYNAMODB_ENDPOINT": ddb_endpoint, "TABLE_NAME": table_name,
        "AUTH_JWT_SECRET": secret, "AUTH_ISSUER": ISSUER,
        "LOCAL_SCHEDULE_SCALE": "600",  # the hourly segment refresh runs every 6 s
    })
    try:
        process.start()
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    yield LiveServer(process.base_url, data_dir, table_name, secret, process)
    process.stop()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(item.fspath).parents:
            item.add_marker(pytest.mark.e2e)
            item.add_marker(pytest.mark.ddb)
