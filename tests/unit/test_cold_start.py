"""A cold start loads only what every request needs: no model is built, no token or email library is imported."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.handlers.fields import Strict, patch_of

ROOT = Path(__file__).resolve().parents[2]
DEFERRED = ("jwt", "cryptography", "email_validator", "pydantic_settings", "chalicelib.handlers.openapi",
            "chalicelib.handlers.events", "chalicelib.handlers.jobs", "chalicelib.handlers.stream",
            "aws_lambda_powertools", "aws_xray_sdk")  # telemetry: by the first invocation, X-Ray only when on

# Run in a fresh interpreter: this test process has long since imported and built everything.
_AFTER_IMPORT = """
import json, sys
import app
from pydantic import BaseModel
from pydantic._internal._mock_val_ser import MockValSer
from chalicelib.handlers.api.clients import ClientCreate

seen, todo = set(), [BaseModel]
while todo:
    for sub in todo.pop().__subclasses__():
        if sub not in seen:
            seen.add(sub)
            todo.append(sub)
ours = [m for m in seen if m.__module__.startswith("chalicelib") and not m.__pydantic_generic_metadata__["parameters"]]
print(json.dumps({
    "loaded": [name for name in sys.argv[1:] if name in sys.modules],
    "models": len(ours),
    "built": sorted(f"{m.__module__}.{m.__qualname__}" for m in ours if m.__pydantic_complete__),
    "mock_validator": isinstance(ClientCreate.__pydantic_validator__, MockValSer),
}))
"""


@pytest.fixture(scope="module")
def fresh_import() -> dict:
    done = subprocess.run([sys.executable, "-c", _AFTER_IMPORT, *DEFERRED], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_importing_the_app_loads_no_token_email_openapi_or_event_modules(fresh_import):
    assert fresh_import["loaded"] == []


def test_importing_the_app_builds_no_pydantic_model(fresh_import):
    assert fresh_import["models"] > 100  # the walk saw the service's models
    assert fresh_import["built"] == []
    assert fresh_import["mock_validator"]  # pydantic's placeholder until the first validation


def test_a_model_is_built_on_first_validation():
    class Body(Strict):
        name: str

    assert not Body.__pydantic_complete__
    assert Body.model_validate({"name": " x "}).name == "x"
    assert Body.__pydantic_complete__


def test_email_validation_accepts_test_domains_once_email_validator_loads():
    # email_validator is configured by an import hook (domain/values.py) when pydantic first builds an email field.
    code = ("import sys; from chalicelib.handlers.fields import Email, Strict\n"
            "assert 'email_validator' not in sys.modules\n"
            "class Body(Strict):\n    email: Email\n"
            "print(Body.model_validate({'email': 'ana@acme.test'}).email)\n"
            "import email_validator; print('test' in email_validator.SPECIAL_USE_DOMAIN_NAMES)")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ana@acme.test", "False"]


@pytest.mark.parametrize("built_first", [False, True])
def test_a_patch_body_keeps_the_validators_of_its_source(built_first):
    from pydantic import field_validator

    class Source(Strict):
        tags: list[str] | None = None

        @field_validator("tags")
        @classmethod
        def _lower(cls, v: list[str] | None) -> list[str] | None:
            return [t.lower() for t in v] if v else v

    if built_first:
        Source.model_rebuild()
    patch = patch_of("SourcePatch", Source, keep_validators=True)
    assert patch.model_validate({"tags": ["A", "B"]}).tags == ["a", "b"]
    assert patch_of("Plain", Source).model_validate({"tags": ["A"]}).tags == ["A"]


def test_every_item_type_shares_one_connection_and_one_botocore_client(monkeypatch):
    from chalicelib.config import reset_settings
    from chalicelib.tables.base import TableItem, configure, item_types, reset_connections

    monkeypatch.setenv("DYNAMODB_ENDPOINT", "http://127.0.0.1:9")  # creating clients contacts nothing
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "local")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "local")
    reset_settings()
    reset_connections()
    try:
        configure()
        types = item_types()
        assert len(types) > 30
        connections = {id(model._get_connection()) for model in types}
        clients = {id(model._get_connection().connection.client) for model in types}
        assert (len(connections), len(clients)) == (1, 1)
        assert TableItem._get_connection().connection.client is types[-1]._get_connection().connection.client
    finally:
        reset_connections()
        reset_settings()
