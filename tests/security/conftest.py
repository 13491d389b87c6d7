"""A module-scoped moto world of two seeded tenants (tests/security/matrix_world.py), and trust switches."""
from __future__ import annotations

import pytest
from moto import mock_aws

from chalicelib.config import get_settings, reset_settings
from chalicelib.handlers import auth
from chalicelib.tables import create_table, reset_connections
from tests.api.conftest import ENV, Api, _jobs_queue
from tests.http_servers import jwks_server
from tests.security.matrix_world import SPA_CLIENT, WEBHOOK_SECRET, World, count_writes, public_jwk, seed


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tenants t1 and t2 seeded alike on moto, once per module (every matrix case is a refusal or a read)."""
    from chalice.test import Client

    import app as app_module

    server = jwks_server([public_jwk()])
    with pytest.MonkeyPatch.context() as mp:
        for key, value in ENV.items():
            mp.setenv(key, value)
        for name in ("DYNAMODB_ENDPOINT", "OUTBOX_DIR", "EMAIL_SENDER", "PORTAL_URL", "PORTAL_TOKEN_SECRET",
                     "AUTH_JWKS_URL", "AUTH_AUDIENCE"):
            mp.delenv(name, raising=False)
        data_dir = tmp_path_factory.mktemp("matrix")
        mp.setenv("DATA_DIR", str(data_dir))
        mp.setenv("NODE_WEBHOOK_SECRET", WEBHOOK_SECRET)
        reset_settings()
        reset_connections()
        with mock_aws():
            create_table()
            mp.setenv("JOBS_QUEUE_URL", _jobs_queue())
            reset_settings()
            with Client(app_module.app) as http:
                t1, t2 = seed(Api(http, "t1"), "t1"), seed(Api(http, "t2"), "t2", full=False)
                world = World(http, t1, t2, f"http://127.0.0.1:{server.server_address[1]}/eu-west-1_Matrix",
                              data_dir)
                count_writes(mp, world.writes)
                yield world
        reset_connections()
    reset_settings()
    auth._jwks_client.cache_clear()
    server.shutdown()
    server.server_close()


@pytest.fixture
def trust(world):
    """Switch what the service trusts for one test: `trust("jwks")` (Cognito RS256 keys from a JWKS URL) or
    `trust("audience")` (AUTH_AUDIENCE set); everything returns to the local HS256 setup afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        def switch(mode: str) -> None:
            mp.undo()  # from the local HS256 setup, whatever was switched before
            if mode == "jwks":
                mp.setenv("AUTH_ISSUER", world.jwks_issuer)
                mp.setenv("AUTH_JWKS_URL", f"{world.jwks_issuer}/.well-known/jwks.json")
                mp.setenv("AUTH_AUDIENCE", SPA_CLIENT)
            elif mode == "audience":
                mp.setenv("AUTH_AUDIENCE", SPA_CLIENT)
            reset_settings()
            get_settings()
            auth._jwks_client.cache_clear()

        yield switch
    reset_settings()
    auth._jwks_client.cache_clear()


