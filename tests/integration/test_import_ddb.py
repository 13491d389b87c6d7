"""Client import on DynamoDB Local: the Done-when story at full size, a cut-off job resumed, and a revert that
leaves changed clients alone, with counts kept by the real stream."""
from __future__ import annotations

import pytest

from chalicelib.config import get_settings, reset_settings
from chalicelib.domain import import_cases
from tests.api.conftest import Api, run_queued_jobs
from tests.ddb_local import own_ddb_endpoint

pytestmark = pytest.mark.ddb

BAD_LINES = {101: "email", 302: "status", 503: "billing_country", 704: None, 905: "payment_terms_days"}


def thousand_rows() -> str:
    """1,000 data rows (lines 2-1001), each with its own email and VAT number; five bad ones at BAD_LINES."""
    lines = ["Company Name,E-mail,VAT,Status,Billing City,Billing Country,Payment Terms,Tags"]
    for line in range(2, 1002):
        cells = [f"Client {line} B.V.", f"client{line}@ddb.test", f"NL{line:09d}B01", "Active", "Utrecht", "NL",
                 "30", "wave1"]
        if line == 101:
            cells[1] = "client101-at-ddb.test"
        elif line == 302:
            cells[3] = "sleeping"
        elif line == 503:
            cells[5] = "Neverland"
        elif line == 704:
            cells = cells[:5]
        elif line == 905:
            cells[6] = "thirty"
        lines.append(",".join(cells))
    return "\r\n".join(lines) + "\r\n"


# A thousand clients a test: each its own DynamoDB Local, the session's stays fast (see tests/ddb_local.py).
ddb_endpoint = pytest.fixture(own_ddb_endpoint)


@pytest.fixture
def api(ddb_api: Api, monkeypatch, tmp_path) -> Api:
    monkeypatch.setenv("S3_LOCAL_DIR", str(tmp_path / "s3"))  # a job-run import keeps its raw file here
    reset_settings()
    get_settings()
    return ddb_api


def post_csv(api: Api, text: str, query: str = ""):
    return api.call("POST", f"/v1/clients/import{query}", raw=text.encode(), headers={"Content-Type": "text/csv"})


def count_live(api: Api) -> int:
    return api.get("/v1/clients/chips").data["all"]


@pytest.mark.slow
def test_a_thousand_rows_with_five_bad_ones_dry_run_then_create_995_then_none(api, stream):
    dry = post_csv(api, thousand_rows(), "?dry_run=true")
    assert dry.status_code == 200, dry.data
    assert {(e["row"], e["field"]) for e in dry.data["errors"]} == set(BAD_LINES.items())
    assert dry.data["created"] == 995 and count_live(api) == 0
    real = post_csv(api, thousand_rows())
    assert real.status_code == 200, real.data
    assert real.data["created"] == 995 and {e["row"] for e in real.data["errors"]} == set(BAD_LINES)
    assert count_live(api) == 995
    again = post_csv(api, thousand_rows()).data
    assert again["created"] == 0 and again["skipped_duplicates"] == 995 and count_live(api) == 995
    stream.settle()  # the stream's effects of 995 creates (timeline, segments, scores) apply without failures


def test_a_large_import_cut_off_mid_step_resumes_and_creates_nothing_twice(api, monkeypatch):
    from chalicelib.tables.clients import ClientRepository

    monkeypatch.setattr(import_cases, "SYNC_ROWS", 100)
    monkeypatch.setattr(import_cases, "CHUNK_ROWS", 200)
    real, commits = ClientRepository._create_chunk, []

    def dies_after_some_transactions(self, chunk, *args):
        result = real(self, chunk, *args)
        commits.append(len(chunk))
        if len(commits) == 12:  # inside the second step: its first transactions landed, then the worker died
            raise RuntimeError("the function timed out")
        return result

    monkeypatch.setattr(ClientRepository, "_create_chunk", dies_after_some_transactions)
    lines = ["name,email"] + [f"Row {n},{'' if n % 5 == 0 else f'row{n}@ddb.test'}" for n in range(600)]
    started = post_csv(api, "\n".join(lines) + "\n")
    assert started.status_code == 202, started.data
    run_queued_jobs()
    done = api.get(f"/v1/imports/{started.data['id']}").data
    assert done["status"] == "done" and done["processed"] == 600
    assert done["created"] == 600 and done["skipped_duplicates"] == 0 and done["errors"] == []
    assert count_live(api) == 600


def test_revert_archives_the_unchanged_clients_and_leaves_changed_ones_alone(api, stream):
    category = api.post("/v1/categories", {"name": "Imported"}).data["id"]
    lines = ["name,email,category_ids"] + [f"Client {n},c{n}@ddb.test,{category}" for n in range(30)]
    imported = post_csv(api, "\n".join(lines) + "\n").data
    assert imported["created"] == 30
    clients = {c["name"]: c for c in api.get("/v1/clients?limit=100").data["items"]}
    for n in range(5):  # someone works on five of them after the import
        assert api.patch(f"/v1/clients/{clients[f'Client {n}']['id']}", {"phone": f"+31 6 {n:08d}"}).status_code == 200
    stream.settle()
    assert api.get(f"/v1/categories/{category}").data["clients_count"] == 30
    answer = api.post(f"/v1/imports/{imported['id']}/revert").data
    assert answer["archived"] == 25
    assert {k["client_id"] for k in answer["kept"]} == {clients[f"Client {n}"]["id"] for n in range(5)}
    assert {k["reason"] for k in answer["kept"]} == {"changed since the import"}
    stream.settle()
    assert count_live(api) == 5
    assert api.get(f"/v1/categories/{category}").data["clients_count"] == 5  # the stream counts archives
    assert sorted(c["name"] for c in api.get("/v1/clients?limit=100").data["items"]) == [
        f"Client {n}" for n in range(5)]
    assert api.post(f"/v1/imports/{imported['id']}/revert").data["archived"] == 0
