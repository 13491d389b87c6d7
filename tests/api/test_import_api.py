"""Client import over HTTP on moto: dry run and real run, duplicates, re-runs, bad files, jobs, listing and revert."""
from __future__ import annotations

import boto3
import pytest

from chalicelib.domain import import_cases
from chalicelib.tables import keys
from chalicelib.tokens import mint_portal_token
from tests.api.conftest import Api, run_queued_jobs

HEADER = "Company Name,E-mail,VAT,Billing City,Billing Country,Tags,Category IDs,custom_fields.size"
BAD = {4: "email", 8: "billing_country", 12: None, 16: "category_ids", 20: "custom_fields.size"}


def post_csv(api: Api, raw: bytes | str, query: str = "", content_type: str = "text/csv"):
    body = raw.encode() if isinstance(raw, str) else raw
    return api.call("POST", f"/v1/clients/import{query}", raw=body, headers={"Content-Type": content_type})


def live_clients(api: Api, status: str | None = None) -> list[dict]:
    items, cursor = [], None
    while True:
        query = "limit=100" + (f"&status={status}" if status else "") + (f"&cursor={cursor}" if cursor else "")
        page = api.get(f"/v1/clients?{query}").data
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def story_file() -> str:
    """22 data rows (lines 2-23): five bad ones at lines 4, 8, 12, 16, 20; lines 6 and 7 have no email or VAT."""
    lines = [HEADER]
    for line in range(2, 24):
        email, vat = f"row{line}@story.test", f"NL{line:09d}B01"
        if line in (6, 7):
            email = vat = ""
        cells = [f"Story {line} B.V.", email, vat, "Utrecht", "NL", "events|story", "", "12"]
        if line == 4:
            cells[1] = "not-an-email"
        elif line == 8:
            cells[4] = "XX"
        elif line == 12:
            cells.append("one too many")
        elif line == 16:
            cells[6] = "no-such-category"
        elif line == 20:
            cells[7] = "big"
        lines.append(",".join(cells))
    return "\n".join(lines) + "\n"


@pytest.fixture
def sized(api):
    assert api.post("/v1/settings/custom-fields", {"key": "size", "label": "Size", "type": "number"}).status_code == 201
    return api


@pytest.fixture
def bucket(aws):
    """The attachments bucket, where a job-run import keeps its raw file."""
    boto3.client("s3", region_name="eu-west-1").create_bucket(
        Bucket="nexus-attachments", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})


# --- the story: dry run, real run, re-run ------------------------------------------------------------------------

def test_a_dry_run_names_exactly_the_bad_rows_and_their_fields_and_writes_nothing(sized):
    answer = post_csv(sized, story_file(), "?dry_run=true")
    assert answer.status_code == 200, answer.data
    assert {(e["row"], e["field"]) for e in answer.data["errors"]} == set(BAD.items())
    assert answer.data["created"] == 17 and answer.data["skipped_duplicates"] == 0
    assert answer.data["dry_run"] is True and answer.data["id"] is None and answer.data["rows"] == 22
    assert live_clients(sized) == []
    assert sized.get("/v1/imports").data["items"] == []  # a dry run is no import


def test_the_real_run_creates_the_good_rows_and_records_the_import_on_each_client(sized):
    answer = post_csv(sized, story_file())
    assert answer.status_code == 200, answer.data
    assert {(e["row"], e["field"]) for e in answer.data["errors"]} == set(BAD.items())
    assert answer.data["created"] == 17 and answer.data["status"] == "done"
    clients = {c["name"]: c for c in live_clients(sized)}
    assert len(clients) == 17 and not {f"Story {line} B.V." for line in BAD} & clients.keys()
    two = clients["Story 2 B.V."]
    assert two["email"] == "row2@story.test" and two["vat_number"] == "NL000000002B01"
    assert two["addresses"] == [{"kind": "billing", "line1": None, "line2": None, "city": "Utrecht", "region": None,
                                 "postal_code": None, "country": "NL"}]
    assert two["tags"] == ["events", "story"] and two["custom_fields"] == {"size": 12}
    assert {c["import_id"] for c in clients.values()} == {answer.data["id"]}
    assert sized.get("/v1/clients/chips").data["all"] == 17  # counters summed per transaction, still exact
    assert sized.get(f"/v1/imports/{answer.data['id']}").data["created"] == 17


def test_running_the_same_file_again_creates_nothing(sized):
    first = post_csv(sized, story_file()).data
    again = post_csv(sized, story_file())
    assert again.status_code == 200
    assert again.data["created"] == 0 and again.data["skipped_duplicates"] == 17
    reasons = {d["row"]: d["reason"] for d in again.data["duplicates"]}
    assert reasons[6] == reasons[7] == "already_imported"  # no email, no VAT: found by the row's fingerprint
    assert {r for line, r in reasons.items() if line not in (6, 7)} == {"exists"}
    assert all(d["client_id"] for d in again.data["duplicates"])
    assert len(live_clients(sized)) == 17
    assert [i["id"] for i in sized.get("/v1/imports").data["items"]] == [again.data["id"], first["id"]]


# --- duplicates ---------------------------------------------------------------------------------------------------

def test_duplicates_in_the_tenant_and_earlier_in_the_file_are_skipped_and_listed(api):
    old = api.post("/v1/clients", {"name": "Old", "email": "Old@Example.test", "vat_number": "NL 123.456.789 B01"})
    text = ("name,email,vat_number\n"
            "Same Mail,old@example.TEST,\n"         # 2: the tenant's email, other case
            "Same VAT,,nl123456789b01\n"             # 3: the tenant's VAT number, spelt otherwise
            "New,new@example.test,\n"                # 4: created
            "New Again,NEW@example.test,\n"          # 5: same email as line 4
            "No Keys,,\n"                            # 6: created
            "No Keys,,\n")                           # 7: the same row as line 6
    answer = post_csv(api, text)
    assert answer.data["created"] == 2 and answer.data["skipped_duplicates"] == 4
    assert answer.data["duplicates"] == [
        {"row": 2, "field": "email", "value": "old@example.test", "client_id": old.data["id"], "reason": "exists"},
        {"row": 3, "field": "vat_number", "value": "NL123456789B01", "client_id": old.data["id"], "reason": "exists"},
        {"row": 5, "field": "email", "value": "new@example.test", "client_id": None, "reason": "earlier_row",
         "earlier_row": 4},
        {"row": 7, "field": None, "value": None, "client_id": None, "reason": "earlier_row", "earlier_row": 6},
    ]


def test_a_changed_email_is_found_by_the_new_address_only_and_an_archived_client_is_no_duplicate(api):
    old = api.post("/v1/clients", {"name": "Old", "email": "first@example.test"}).data
    assert api.patch(f"/v1/clients/{old['id']}", {"email": "second@example.test"}).status_code == 200
    answer = post_csv(api, "name,email\nA,first@example.test\nB,second@example.test\n", "?dry_run=true").data
    assert answer["created"] == 1 and [d["row"] for d in answer["duplicates"]] == [3]
    assert api.post(f"/v1/clients/{old['id']}/archive").status_code == 200
    assert post_csv(api, "name,email\nB,second@example.test\n", "?dry_run=true").data["created"] == 1


def test_a_client_created_between_the_lookup_and_the_write_is_still_no_duplicate_of_the_import(api, monkeypatch):
    from chalicelib.domain import client_cases
    from chalicelib.tables.clients import ClientRepository
    from chalicelib.tables.stores import Stores

    real, calls = ClientRepository.holders, []

    def blind_once(self, wanted):  # the lookup ran just before a concurrent create took the email
        calls.append(wanted)
        if len(calls) > 1:
            return real(self, wanted)
        stores = Stores("t1", "someone-else")
        client_cases.create_client(stores, {"name": "Racer", "email": "race@example.test"})
        return {}

    monkeypatch.setattr(ClientRepository, "holders", blind_once)
    answer = post_csv(api, "name,email\nImported,Race@Example.test\n").data
    racer = next(c for c in live_clients(api) if c["name"] == "Racer")
    assert answer["created"] == 0 and answer["duplicates"] == [
        {"row": 2, "field": "email", "value": "race@example.test", "client_id": racer["id"], "reason": "exists"}]
    assert [c["name"] for c in live_clients(api)] == ["Racer"]


def test_the_import_id_is_read_only_on_a_create(api):
    answer = api.post("/v1/clients", {"name": "Sneaky", "import_id": "01J0IMPORT"})
    assert answer.status_code == 422
    assert answer.data["error"]["details"] == [{"field": "import_id", "message": "is read-only"}]


def test_a_client_number_taken_meanwhile_is_drawn_again(api, monkeypatch):
    from chalicelib.domain import clients as dc

    taken = api.post("/v1/clients", {"name": "Holder"}).data["client_number"]
    real, calls = dc.generate_number, []

    def first_the_taken_one(prefix, now):
        calls.append(1)
        return taken if len(calls) == 1 else real(prefix, now)

    monkeypatch.setattr(dc, "generate_number", first_the_taken_one)
    answer = post_csv(api, "name\nA\nB\nC\n")
    assert answer.data["created"] == 3 and answer.data["errors"] == []
    numbers = [c["client_number"] for c in live_clients(api)]
    assert len(numbers) == len(set(numbers)) == 4 and numbers.count(taken) == 1


# --- bad input ---------------------------------------------------------------------------------------------------

def _error(answer, status: int, code: str) -> str:
    assert answer.status_code == status, answer.data
    assert answer.data["error"]["code"] == code, answer.data
    return answer.data["error"]["message"]


def _nothing_written(api: Api) -> None:
    assert live_clients(api) == [] and api.get("/v1/imports").data["items"] == []


def test_a_semicolon_file_reads_like_a_comma_file(api):
    answer = post_csv(api, "Company Name;E-mail;Billing City\nCafé Noir;noir@example.test;Lyon\n").data
    assert answer["delimiter"] == ";" and answer["created"] == 1
    assert live_clients(api)[0]["addresses"][0]["city"] == "Lyon"


@pytest.mark.parametrize("raw, words", [
    (b"", "empty"),
    (b"\r\n\r\n", "empty"),
    (b"shoe size,colour\n42,red\n", "missing header"),
    (b"email,phone\na@example.test,123\n", "no name column"),
    (b"name,Email,E-mail\nAcme,a@example.test,b@example.test\n", '"Email" and "E-mail"'),
], ids=["empty", "blank lines", "no known column", "no name column", "duplicate columns"])
def test_a_file_that_cannot_be_read_is_400_naming_the_problem_and_writes_nothing(api, raw, words):
    assert words in _error(post_csv(api, raw), 400, "bad_request")
    _nothing_written(api)


def test_unknown_columns_are_listed_and_do_not_stop_the_import(api):
    answer = post_csv(api, "name,shoe size,email\nAcme,42,acme@example.test\n").data
    assert answer["unknown_columns"] == ["shoe size"] and answer["created"] == 1


def test_rows_with_too_many_or_too_few_cells_are_errors_of_those_rows(api):
    answer = post_csv(api, "name,email,phone\nShort,a@example.test\nRight,b@example.test,1\nLong,c@e.test,2,3\n").data
    assert [(e["row"], e["field"]) for e in answer["errors"]] == [(2, None), (4, None)]
    assert "2 cells" in answer["errors"][0]["message"] and answer["created"] == 1


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "utf-16", "cp1252"])
def test_utf8_with_or_without_bom_utf16_and_windows_1252_all_import_their_accents(api, encoding):
    answer = post_csv(api, "name,city\nCafé Müller €,Zürich\n".encode(encoding)).data
    assert answer["created"] == 1, answer
    client = live_clients(api)[0]
    assert client["name"] == "Café Müller €" and client["addresses"][0]["city"] == "Zürich"


def test_a_file_over_10_mib_is_413_and_writes_nothing(api):
    raw = b"name\n" + b"A" * (10 * 1024 * 1024)
    assert "10 MiB" in _error(post_csv(api, raw), 413, "payload_too_large")
    _nothing_written(api)


def test_a_file_over_10000_rows_is_413_naming_the_count_and_writes_nothing(api):
    raw = "name\n" + "".join(f"Client {n}\n" for n in range(10_001))
    assert "10,001 rows" in _error(post_csv(api, raw), 413, "payload_too_large")
    _nothing_written(api)


@pytest.mark.parametrize("query, field", [("?dry_run=yes", "dry_run"), ("?dry_run=1", "dry_run"),
                                          ("?force=true", "force")])
def test_a_bad_query_parameter_is_400_naming_it(api, query, field):
    answer = post_csv(api, "name\nAcme\n", query)
    _error(answer, 400, "bad_request")
    assert [d["field"] for d in answer.data["error"]["details"]] == [field]
    _nothing_written(api)


def test_a_body_that_is_not_csv_is_415_after_authentication(api):
    answer = api.post("/v1/clients/import", {"name": "Acme"})  # application/json
    assert "text/csv" in _error(answer, 415, "unsupported_media_type")
    anonymous = api.call("POST", "/v1/clients/import", {"name": "Acme"}, headers={"Authorization": ""})
    _error(anonymous, 401, "unauthorized")
    _nothing_written(api)


def test_every_csv_media_type_is_taken(api):
    for n, media in enumerate(["application/csv", "application/vnd.ms-excel", "text/plain; charset=utf-8",
                               "application/octet-stream", "text/csv; charset=utf-8"]):
        assert post_csv(api, f"name\nClient {n}\n", content_type=media).data["created"] == 1, media


# --- roles ---------------------------------------------------------------------------------------------------------

def test_agents_and_portal_users_may_not_import_or_revert_while_viewers_read_imports(api):
    made = post_csv(api, "name\nAcme\n").data
    agent = api.as_(roles=("agent",))
    _error(post_csv(agent, "name\nAcme\n"), 403, "forbidden")
    _error(agent.post(f"/v1/imports/{made['id']}/revert"), 403, "forbidden")
    portal = Api(api.http)
    portal.token = mint_portal_token("t1", "some-client", "some-contact")[0]
    _error(post_csv(portal, "name\nAcme\n"), 403, "forbidden")
    _error(portal.post("/v1/clients/import", {"name": "Acme"}), 403, "forbidden")  # not 415: who first
    viewer = api.as_(roles=("viewer",))
    assert viewer.get("/v1/imports").data["items"][0]["id"] == made["id"]
    assert viewer.get(f"/v1/imports/{made['id']}").data["created"] == 1
    assert len(live_clients(api)) == 1


# --- large files: the job ------------------------------------------------------------------------------------------

def job_file(rows: int) -> str:
    lines = ["name,email"]
    for n in range(rows):
        lines.append(f"Job {n},{'' if n % 4 == 0 else f'job{n}@example.test'}")  # every 4th row without keys
    lines.insert(3, "Broken,not-an-email")  # line 4
    return "\n".join(lines) + "\n"


def test_a_file_over_the_threshold_runs_as_a_job_that_shows_its_progress_and_finishes(api, bucket, monkeypatch):
    monkeypatch.setattr(import_cases, "SYNC_ROWS", 5)
    monkeypatch.setattr(import_cases, "CHUNK_ROWS", 3)
    started = post_csv(api, job_file(10))
    assert started.status_code == 202, started.data
    assert started.data["status"] == "queued" and started.data["rows"] == 11 and started.data["processed"] == 0
    assert api.get(f"/v1/imports/{started.data['id']}").data["status"] == "queued"
    assert _error(api.post(f"/v1/imports/{started.data['id']}/revert"), 409, "import_running")
    assert run_queued_jobs() == 4  # 11 rows, 3 a step
    done = api.get(f"/v1/imports/{started.data['id']}").data
    assert done["status"] == "done" and done["processed"] == 11 and done["created"] == 10
    assert [(e["row"], e["field"]) for e in done["errors"]] == [(4, "email")] and done["finished_at"]
    assert len(live_clients(api)) == 10
    again = post_csv(api, job_file(10))
    run_queued_jobs()
    rerun = api.get(f"/v1/imports/{again.data['id']}").data
    assert rerun["created"] == 0 and rerun["skipped_duplicates"] == 10 and len(live_clients(api)) == 10


def test_a_step_cut_off_after_writing_is_run_again_without_creating_anything_twice(api, bucket, monkeypatch):
    from chalicelib.tables.jobs import JobRepository

    monkeypatch.setattr(import_cases, "SYNC_ROWS", 5)
    monkeypatch.setattr(import_cases, "CHUNK_ROWS", 4)
    save, cut = JobRepository.save, []

    def cut_off_once(self, job, *, step, status=None):
        if job.kind == "import" and step == 1 and not cut:  # the second step wrote its clients, then died
            cut.append(job.step)
            raise RuntimeError("the function timed out")
        return save(self, job, step=step, status=status)

    monkeypatch.setattr(JobRepository, "save", cut_off_once)
    started = post_csv(api, job_file(10)).data
    run_queued_jobs()
    done = api.get(f"/v1/imports/{started['id']}").data
    assert cut and done["status"] == "done"
    assert done["created"] == 10 and done["skipped_duplicates"] == 0 and done["duplicates"] == []
    names = [c["name"] for c in live_clients(api)]
    assert len(names) == len(set(names)) == 10


# --- listing -------------------------------------------------------------------------------------------------------

def test_imports_are_listed_newest_first_page_by_page_with_signed_cursors(api):
    made = [post_csv(api, f"name,email\nRow {n},bad\n").data["id"] for n in range(3)]
    first = api.get("/v1/imports?limit=2").data
    assert [i["id"] for i in first["items"]] == made[:0:-1] and first["next_cursor"]
    assert first["items"][0]["errors_count"] == 1 and "errors" not in first["items"][0]
    second = api.get(f"/v1/imports?limit=2&cursor={first['next_cursor']}").data
    assert [i["id"] for i in second["items"]] == [made[0]] and second["next_cursor"] is None
    _error(api.get(f"/v1/imports?cursor={first['next_cursor']}x"), 400, "invalid_cursor")
    other = api.as_(tenant="t2")
    assert other.get("/v1/imports").data["items"] == []
    _error(other.get(f"/v1/imports/{made[0]}"), 404, "not_found")
    _error(api.get("/v1/imports/01J0NOSUCHIMPORT"), 404, "not_found")


# --- revert --------------------------------------------------------------------------------------------------------

REVERT_FILE = "name,email\nAda,ada@example.test\nBob,bob@example.test\nCy,cy@example.test\nDee,\n"


def test_revert_archives_what_nobody_changed_and_says_why_it_kept_the_rest(api):
    imported = post_csv(api, REVERT_FILE).data
    ids = {c["name"]: c["id"] for c in live_clients(api)}
    assert api.patch(f"/v1/clients/{ids['Bob']}", {"phone": "+31 20 1234567"}).status_code == 200
    assert api.post(f"/v1/clients/{ids['Cy']}/archive").status_code == 200
    answer = api.post(f"/v1/imports/{imported['id']}/revert")
    assert answer.status_code == 200, answer.data
    assert answer.data["archived"] == 2 and answer.data["remaining"] == 0 and answer.data["status"] == "done"
    assert sorted(answer.data["kept"], key=lambda k: k["client_id"]) == sorted([
        {"client_id": ids["Bob"], "reason": "changed since the import"},
        {"client_id": ids["Cy"], "reason": "already archived"}], key=lambda k: k["client_id"])
    assert [c["name"] for c in live_clients(api)] == ["Bob"]
    archived = {c["name"]: c for c in live_clients(api, "archived")}
    assert archived.keys() == {"Ada", "Cy", "Dee"} and archived["Ada"]["import_id"] == imported["id"]
    assert api.get("/v1/clients/chips").data["all"] == 1
    shown = api.get(f"/v1/imports/{imported['id']}").data["revert"]
    assert shown["id"] == answer.data["id"] and shown["archived"] == 2


def test_reverting_twice_archives_nothing_more_and_the_file_can_be_imported_again(api):
    imported = post_csv(api, REVERT_FILE).data
    bob = next(c for c in live_clients(api) if c["name"] == "Bob")
    assert api.patch(f"/v1/clients/{bob['id']}", {"phone": "+31 20 1234567"}).status_code == 200
    assert api.post(f"/v1/imports/{imported['id']}/revert").data["archived"] == 3
    again = api.post(f"/v1/imports/{imported['id']}/revert").data
    assert again["archived"] == 0 and again["kept"] == [{"client_id": bob["id"], "reason": "changed since the import"}]
    assert [c["name"] for c in live_clients(api)] == ["Bob"]
    reimported = post_csv(api, REVERT_FILE).data  # the archived rows come back; Bob is still there
    assert reimported["created"] == 3 and [d["row"] for d in reimported["duplicates"]] == [3]


def test_a_revert_that_runs_out_of_time_goes_on_as_a_job(api, monkeypatch):
    monkeypatch.setattr(import_cases, "MEMBERS_PAGE", 2)
    monkeypatch.setattr(import_cases, "REVERT_SECONDS", 0.0)
    imported = post_csv(api, "name\n" + "".join(f"Client {n}\n" for n in range(5))).data
    answer = api.post(f"/v1/imports/{imported['id']}/revert")
    assert answer.status_code == 202, answer.data
    assert answer.data["status"] == "running" and answer.data["archived"] == 1 and answer.data["remaining"] == 4
    _error(api.post(f"/v1/imports/{imported['id']}/revert"), 409, "revert_running")
    run_queued_jobs()
    shown = api.get(f"/v1/imports/{imported['id']}").data["revert"]
    assert shown["status"] == "done" and shown["archived"] == 5 and shown["remaining"] == 0
    assert live_clients(api) == []


def test_a_revert_of_an_unknown_or_foreign_import_is_404(api):
    imported = post_csv(api, "name\nAcme\n").data
    _error(api.post("/v1/imports/01J0NOSUCHIMPORT/revert"), 404, "not_found")
    _error(api.as_(tenant="t2").post(f"/v1/imports/{imported['id']}/revert"), 404, "not_found")
    assert len(live_clients(api)) == 1


# --- clients written before lookup keys existed --------------------------------------------------------------------

def test_the_reindex_job_makes_older_clients_found_as_duplicates(api, monkeypatch):
    from chalicelib.tables.items import ClientKeyItem
    from chalicelib.tables.stores import Stores

    for name in ("Old One", "Old Two", "Old Three"):
        api.post("/v1/clients?allow_duplicate=true", {"name": name, "email": f"{name.split()[1].lower()}@old.test"})
    for who in ("one", "two", "three"):  # as clients created before this change: no lookup keys
        ClientKeyItem(keys.client_key_pk("t1", "email", f"{who}@old.test"), keys.UNIQUE_SK).delete()
    text = "name,email\nA,one@old.test\nB,two@old.test\nC,three@old.test\n"
    assert post_csv(api, text, "?dry_run=true").data["created"] == 3
    monkeypatch.setattr(import_cases, "REINDEX_PAGE", 2)
    job = import_cases.start_reindex(Stores("t1"))
    assert run_queued_jobs() == 2
    assert Stores("t1").jobs.get("reindex_clients", job.id).result["indexed"] == 3
    assert post_csv(api, text, "?dry_run=true").data["skipped_duplicates"] == 3


def test_import_keys_are_led_by_the_tenant():
    assert keys.client_key_pk("t1", "email", "a@b.test") == "T#t1#CLIKEY#email=a@b.test"
    assert keys.import_row_pk("t1", "f00d") == "T#t1#IMPORTROW#f00d"
    assert keys.import_pk("t1", "01J0") == "T#t1#IMPORT#01J0" and keys.REVERT_SK < "0"
