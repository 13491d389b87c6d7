"""Pytest plugin (loaded by pytest.ini): one in-memory DynamoDB Local per test session, and fixtures pointing at it."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import boto3
import pytest

from chalicelib.local.dynamodb_local import DynamoDBLocal, DynamoDBLocalError

# Set it to reuse a running DynamoDB Local (e.g. `make run`'s) instead of starting one; tables get unique names.
REUSE_ENV = "TEST_DYNAMODB_ENDPOINT"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": "eu-west-1"}


def serving(quick_start: bool) -> Iterator[str]:
    """A DynamoDB Local in memory on a free port for as long as the generator runs (or REUSE_ENV's endpoint)."""
    given = os.environ.get(REUSE_ENV)
    if given:
        yield given
        return
    ddb = DynamoDBLocal(quick_start=quick_start)
    try:
        ddb.start()
    except DynamoDBLocalError as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield ddb.endpoint
    finally:
        ddb.stop()


@pytest.fixture(scope="session")
def ddb_endpoint() -> Iterator[str]:
    """URL of DynamoDB Local, started on first use (in memory, free port) and stopped at the end of the session.

    Under pytest-xdist each worker process gets its own instance, so workers never share tables. The full JIT: this
    instance serves the whole session (minutes of writes), where C2 pays for its warm-up. A module that writes
    thousands of items overrides this fixture with `own_ddb_endpoint` (below): DynamoDB Local's transactions slow
    down with everything written before them, even into other, deleted tables (a new table's transactions took
    2.5 s each after 12,000 items elsewhere, 0.1 s before).
    """
    yield from serving(quick_start=False)


def own_ddb_endpoint() -> Iterator[str]:
    """For a module's `ddb_endpoint = pytest.fixture(scope="module")(own_ddb_endpoint)`: its own DynamoDB Local."""
    yield from serving(quick_start=True)


def ddb_client(endpoint: str, service: str = "dynamodb"):
    """A boto3 client for DynamoDB Local, independent of the process environment."""
    return boto3.client(service, endpoint_url=endpoint, region_name=FAKE_AWS["AWS_DEFAULT_REGION"],
                        aws_access_key_id=FAKE_AWS["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=FAKE_AWS["AWS_SECRET_ACCESS_KEY"])


def _reset_app_caches() -> None:
    from chalicelib.config import reset_settings

    reset_settings()
    try:
        from chalicelib.tables import reset_connections
    except ImportError:  # storage not written yet: nothing cached
        return
    reset_connections()


@pytest.fixture
def ddb_env(ddb_endpoint: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[str]:
    """Point settings and PynamoDB at DynamoDB Local under a fresh TABLE_NAME (yielded); the table is not created.
    Local files (the folder job queue, outbox, exports) go to the test's own DATA_DIR, never the repository's var/."""
    table_name = f"test-{uuid.uuid4().hex[:12]}"
    env = {**FAKE_AWS, "DYNAMODB_ENDPOINT": ddb_endpoint, "TABLE_NAME": table_name, "DATA_DIR": str(tmp_path)}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    _reset_app_caches()
    yield table_name
    # Runs before monkeypatch restores the environment; the cleared caches then re-read the restored one.
    _reset_app_caches()


@pytest.fixture
def ddb_table(ddb_env: str, ddb_endpoint: str) -> Iterator[str]:
    """The app's table, created by chalicelib.tables.create_table() in DynamoDB Local, deleted afterwards."""
    from chalicelib.tables import create_table

    create_table()
    yield ddb_env
    try:
        ddb_client(ddb_endpoint).delete_table(TableName=ddb_env)
    except Exception:  # the test may have deleted it already
        pass
