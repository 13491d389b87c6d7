"""GET /v1/clients/export: the list's rows as CSV a spreadsheet opens, inline or behind a short-lived link."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from chalicelib.config import reset_settings
from chalicelib.domain import client_cases
from chalicelib.domain.client_csv import EXPORT_COLUMNS
from chalicelib.handlers.api.exports import link_token


def rows(response) -> list[dict[str, str]]:
    """The CSV answer as a spreadsheet reads it: UTF-8 after its BOM, CRLF rows, a header row."""
    assert response.status_code == 200, response.data
    assert response.headers["Content-Type"] == "text/csv; charset=utf-8"
    body: bytes = response.body
    assert body.startswith(b"\xef\xbb\xbf") and body.endswith(b"\r\n")
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))


CSV = {"Accept": "text/csv"}  # as API Gateway wants it to answer the CSV's bytes (README: Export)
PUBLIC = {"Authorization": "", "Accept": "text/csv"}


def get_export(api, query: str = ""):
    return api.get(f"/v1/clients/export{'?' + query if query else ''}", headers=CSV)


def export(api, query: str = "") -> list[dict[str, str]]:
    return rows(get_export(api, query))


def listed(api, query: str = "") -> list[str]:
    """Ids of every page of GET /v1/clients with the same query, in order."""
    ids, cursor = [], None
    while True:
        url = f"/v1/clients?{query}{'&' if query else ''}limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = api.get(url)
        assert page.status_code == 200, page.data
        ids += [c["id"] for c in page.data["items"]]
        cursor = page.data["next_cursor"]
        if cursor is None:
            return ids


def made(response) -> dict:
    assert response.status_code in (200, 201), response.data
    return response.data


@pytest.fixture
def book(api):
    """Six clients across statuses, types, tiers, tags, categories and a segment; one archived."""
    parent = made(api.post("/v1/categories", {"name": "Events"}))
    child = made(api.post("/v1/categories", {"name": "Festivals", "parent_id": parent["id"]}))
    clients = {
        "Åsa Öberg": made(api.post("/v1/clients", {"name": "Åsa Öberg", "type": "individual", "status": "lead",
                                                   "tags": ["Gold"], "category_ids": [child["id"]]})),
        "Acme Events": made(api.post("/v1/clients", {"name": "Acme Events", "pricing_tier": "vip",
                                                     "email": "info@acme.test", "category_ids": [parent["id"]]})),
        "Beta Hall": made(api.post("/v1/clients", {"name": "Beta Hall", "type": "venue", "status": "trial",
                                                   "tags": ["gold", "north"]})),
        "Crème Brûlée Ltd": made(api.post("/v1/clients", {"name": "Crème Brûlée Ltd", "status": "inactive"})),
        "Delta Corp": made(api.post("/v1/clients", {"name": "Delta Corp", "pricing_tier": "preferred"})),
        "Echo Old": made(api.post("/v1/clients", {"name": "Echo Old", "pricing_tier": "vip", "tags": ["Gold"]})),
    }
    made(api.post(f"/v1/clients/{clients['Echo Old']['id']}/archive"))
    segment = made(api.post("/v1/segments", {"name": "Picked", "type": "static"}))
    for name in ("Beta Hall", "Delta Corp"):
        made(api.post(f"/v1/segments/{segment['id']}/members", {"client_id": clients[name]["id"]}))
    return {"clients": clients, "parent": parent["id"], "child": child["id"], "segment": segment["id"]}


@pytest.mark.parametrize("page", [100, 2])  # the export's own pages: one, or several resumed one after another
def test_every_filter_sort_and_chip_exports_the_rows_the_list_answers_in_its_order(api, book, monkeypatch, page):
    monkeypatch.setattr(client_cases, "EXPORT_PAGE", page)
    queries = ["", "status=lead,trial", "status=archived", "status=active,archived", "type=individual,venue",
               "pricing_tier=vip", "risk_level=low", "tag=GOLD", f"category_id={book['parent']}",
               f"category_id={book['child']}", f"segment_id={book['segment']}", "chip=vip", "chip=new",
               "chip=inactive", "chip=high_value", "q=acme", "q=ÖBERG", "sort=-name", "sort=created_at",
               "sort=-created_at", "sort=-health_score", "chip=vip&status=active,archived&sort=-name"]
    compared = {q: ([r["id"] for r in export(api, q)], listed(api, q)) for q in queries}
    assert {q: pair for q, pair in compared.items() if pair[0] != pair[1]} == {}
    assert len(compared[""][0]) == 5 and len(compared[f"category_id={book['parent']}"][0]) == 2


def test_archived_clients_are_left_out_unless_a_status_asks_for_them(api, book):
    names = {r["name"] for r in export(api)}
    assert names == {"Acme Events", "Åsa Öberg", "Beta Hall", "Crème Brûlée Ltd", "Delta Corp"}
    assert [r["name"] for r in export(api, "status=archived")] == ["Echo Old"]


def test_the_file_opens_with_its_accents_the_fixed_columns_and_a_dated_filename(api, book):
    made(api.post("/v1/settings/custom-fields", {"key": "venue_size", "label": "Venue size", "type": "number"}))
    made(api.post("/v1/settings/custom-fields", {"key": "has_dock", "label": "Dock", "type": "boolean"}))
    made(api.patch(f"/v1/clients/{book['clients']['Beta Hall']['id']}", {
        "custom_fields": {"venue_size": 1200, "has_dock": True}, "credit_limit": "5000",
        "addresses": [{"kind": "billing", "line1": "Kade 1", "city": "Zürich", "country": "CH"}]}))
    response = get_export(api, "q=beta")
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    assert response.headers["Content-Disposition"] == f'attachment; filename="clients-{today}.csv"'
    header = next(csv.reader(io.StringIO(response.body.decode("utf-8-sig"))))
    assert header[:5] == ["id", "client_number", "name", "type", "status"]
    defined = [d["key"] for d in api.get("/v1/settings/custom-fields").data["items"]]
    assert sorted(defined) == ["has_dock", "venue_size"]
    assert header == [*EXPORT_COLUMNS, *(f"custom_fields.{key}" for key in defined)]  # as the settings list them
    [beta] = rows(response)
    assert beta["tags"] == "gold|north" and beta["credit_limit"] == "5000.00" and beta["tax_exempt"] == "false"
    assert (beta["billing_line1"], beta["billing_city"], beta["billing_country"]) == ("Kade 1", "Zürich", "CH")
    assert beta["visiting_city"] == "" and beta["archived_at"] == "" and beta["created_at"].endswith("Z")
    assert (beta["custom_fields.venue_size"], beta["custom_fields.has_dock"]) == ("1200", "true")
    assert [r["name"] for r in export(api, "status=lead")] == ["Åsa Öberg"]
    assert "Åsa Öberg".encode() in get_export(api, "status=lead").body  # UTF-8, not a code page


def test_cells_a_spreadsheet_would_run_as_formulas_are_written_with_a_leading_quote(api):
    made(api.post("/v1/clients", {"name": '=HYPERLINK("http://evil.test","open")', "phone": "+31 20 555 0100"}))
    made(api.post("/v1/clients", {"name": "@SUM(A1)", "industry": "-events"}))
    exported = {r["name"]: r for r in export(api)}
    assert set(exported) == {"'=HYPERLINK(\"http://evil.test\",\"open\")", "'@SUM(A1)"}
    assert exported["'@SUM(A1)"]["industry"] == "'-events"
    assert exported["'=HYPERLINK(\"http://evil.test\",\"open\")"]["phone"] == "'+31 20 555 0100"


def test_only_managers_and_admins_export_and_only_their_own_tenant(api, book):
    for role in ("viewer", "agent"):
        refused = get_export(api.as_(roles=(role,)))
        assert (refused.status_code, refused.data["error"]["code"]) == (403, "forbidden")
    assert len(export(api.as_(roles=("manager",)))) == 5
    other = api.as_("t2", roles=("manager",))
    assert export(other) == []
    assert api.call("GET", "/v1/clients/export", headers=PUBLIC).status_code == 401


@pytest.mark.parametrize("query, param", [
    ("status=gold", "status"), ("sort=email", "sort"), ("chip=hot", "chip"), ("limit=10", "limit"),
    ("cursor=abc", "cursor"), ("type=", "type"), (f"category_id={'x' * 129}", "category_id"), ("colour=red", "colour"),
])
def test_a_bad_query_parameter_is_400_naming_it(api, query, param):
    response = get_export(api, query)
    assert (response.status_code, response.data["error"]["code"]) == (400, "bad_request")
    assert [d["field"] for d in response.data["error"]["details"]] == [param]


# --- exports larger than one answer ------------------------------------------------------------------

@pytest.fixture
def small_answers(monkeypatch):
    """Answers may carry at most 300 bytes of CSV, so the book's export goes behind a link."""
    monkeypatch.setenv("EXPORT_INLINE_MAX_BYTES", "300")
    reset_settings()


@pytest.fixture
def local_s3(monkeypatch, tmp_path):
    monkeypatch.setenv("S3_LOCAL_DIR", str(tmp_path / "s3"))
    reset_settings()
    return tmp_path / "s3"


def test_a_large_export_answers_303_with_a_link_that_downloads_the_same_csv_locally(api, book, monkeypatch,
                                                                                  local_s3):
    inline = get_export(api, "sort=-name").body
    monkeypatch.setenv("EXPORT_INLINE_MAX_BYTES", "300")
    reset_settings()
    answer = get_export(api, "sort=-name")
    assert answer.status_code == 303, answer.data
    assert answer.headers["Location"] == answer.data["url"]
    expires = datetime.fromisoformat(answer.data["expires_at"].replace("Z", "+00:00"))
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    [stored] = list((local_s3 / "nexus-attachments" / "exports" / "t1").glob("*.csv"))
    link = urlsplit(answer.headers["Location"])
    assert link.path == f"/v1/exports/{stored.stem}"
    download = api.call("GET", f"{link.path}?{link.query}", headers=PUBLIC)  # no bearer token
    assert download.status_code == 200 and download.body == inline
    assert download.headers["Content-Disposition"].startswith('attachment; filename="clients-')


def test_an_expired_forged_or_foreign_link_is_404(api, book, small_answers, local_s3):
    link = urlsplit(get_export(api).headers["Location"])
    export_id, token = link.path.rsplit("/", 1)[1], parse_qs(link.query)["token"][0]
    past = datetime.now(UTC) - timedelta(seconds=1)
    future = datetime.now(UTC) + timedelta(minutes=5)
    dead = {
        "expired": (export_id, link_token("t1", export_id, past, "clients.csv")),
        "another tenant": (export_id, link_token("t2", export_id, future, "clients.csv")),
        "another export": ("01JABCDEFGHJKMNPQRSTVWXYZ0", token),
        "edited": (export_id, token[:-2] + ("AA" if not token.endswith("AA") else "BB")),
        "not a token": (export_id, "garbage"),
    }
    answers = {why: api.call("GET", f"/v1/exports/{eid}?token={tok}", headers=PUBLIC)
               for why, (eid, tok) in dead.items()}
    assert {why: (r.status_code, r.data["error"]["code"]) for why, r in answers.items()} \
        == dict.fromkeys(dead, (404, "not_found"))
    assert api.call("GET", f"/v1/exports/{export_id}?token={token}", headers=PUBLIC).status_code == 200
    missing = api.call("GET", f"/v1/exports/{export_id}", headers=PUBLIC)
    assert missing.status_code == 400 and missing.data["error"]["details"][0]["field"] == "token"


def test_in_aws_a_large_export_is_stored_in_s3_behind_a_presigned_link(api, book, small_answers):
    s3 = boto3.client("s3", region_name="eu-west-1")
    s3.create_bucket(Bucket="nexus-attachments", CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    answer = get_export(api, "sort=-name")
    assert answer.status_code == 303, answer.data
    url = urlsplit(answer.data["url"])
    assert url.hostname == "nexus-attachments.s3.eu-west-1.amazonaws.com" and url.path.startswith("/exports/t1/")
    query = parse_qs(url.query)
    assert query["X-Amz-Expires"] == ["900"] and query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["response-content-disposition"][0].startswith('attachment; filename="clients-')
    stored = s3.get_object(Bucket="nexus-attachments", Key=url.path.lstrip("/"))
    assert stored["ContentType"] == "text/csv; charset=utf-8"
    text = stored["Body"].read().decode("utf-8-sig")
    assert [r["id"] for r in csv.DictReader(io.StringIO(text, newline=""))] == listed(api, "sort=-name")


@pytest.mark.parametrize("accept", [None, "application/json", "text/html"])
def test_a_caller_that_does_not_accept_csv_is_told_to_before_anything_is_read(api, accept):
    response = api.get("/v1/clients/export", headers={"Accept": accept} if accept else None)
    assert (response.status_code, response.data["error"]["code"]) == (400, "bad_request")
    assert [d["field"] for d in response.data["error"]["details"]] == ["Accept"]
    assert api.get("/v1/clients/export", headers={"Accept": "text/html, */*;q=0.8"}).status_code == 200
