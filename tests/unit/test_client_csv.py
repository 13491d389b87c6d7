"""The client CSV format: columns, cell texts, formula-injection quoting and its undoing, RFC 4180 with a BOM."""
from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chalicelib.domain import client_csv as cc
from chalicelib.domain.clients import Address, Client, PrimaryContact
from chalicelib.handlers.api.clients import ClientCreate, ClientOut
from chalicelib.handlers.fields import read_only_of

AT = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def client(**fields) -> Client:
    base = {"id": "01JCLIENT", "tenant_id": "t1", "client_number": "CLT-2026-093000abcd", "name": "Acme",
            "created_at": AT, "updated_at": AT, "version": 1}
    return Client(**{**base, **fields})


def written(clients: list[Client], keys=()) -> bytes:
    out = io.BytesIO()
    writer = cc.CsvWriter(out, keys)
    writer.write(clients)
    assert writer.rows == len(clients)
    return out.getvalue()


def parsed(data: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))


# --- columns ---------------------------------------------------------------------------------------

def test_columns_start_with_id_number_name_type_status_and_end_with_the_custom_fields():
    header = cc.columns(["venue_size", "dock"])
    assert header[:5] == ["id", "client_number", "name", "type", "status"]
    assert header[-2:] == ["custom_fields.venue_size", "custom_fields.dock"]
    assert len(header) == len(set(header))


def test_every_public_client_field_that_is_not_a_list_of_objects_is_a_column():
    spread = {"addresses", "primary_contact", "custom_fields"}  # as columns of their own
    assert set(ClientOut.model_fields) - spread <= set(cc.FIELD_COLUMNS)
    assert set(cc.FIELD_COLUMNS) - set(ClientOut.model_fields) == set(cc.PRIMARY_CONTACT_COLUMNS)


def test_address_columns_are_named_by_kind_and_part_as_the_import_reads_them():
    assert {"billing_city", "visiting_line1", "delivery_postal_code", "shipping_country"} <= set(cc.ADDRESS_COLUMNS)
    assert len(cc.ADDRESS_COLUMNS) == 4 * 6


def test_the_read_only_columns_are_exactly_the_fields_a_create_may_not_set():
    writable = set(ClientCreate.model_fields)
    assert cc.READ_ONLY_COLUMNS == {c for c in cc.FIELD_COLUMNS if c not in writable}
    assert read_only_of(ClientOut, ClientCreate) - {"primary_contact"} <= cc.READ_ONLY_COLUMNS


# --- formula injection -----------------------------------------------------------------------------

@pytest.mark.parametrize("prefix", ["=", "+", "-", "@", "\t", "\r"])
def test_a_cell_starting_with_a_formula_trigger_gets_a_leading_quote(prefix):
    assert cc.safe_cell(f"{prefix}SUM(A1)") == f"'{prefix}SUM(A1)"
    assert cc.unsafe_cell(f"'{prefix}SUM(A1)") == f"{prefix}SUM(A1)"


@pytest.mark.parametrize("text", ["Acme", "", "'quoted'", "a=b", " =x", "1+1", "'", "''", "é=1"])
def test_other_cells_are_written_as_they_are(text):
    assert cc.safe_cell(text) == text and cc.unsafe_cell(text) == text


def test_a_text_that_already_looks_quoted_survives_the_round_trip():
    assert cc.safe_cell("'=x") == "''=x" and cc.unsafe_cell("''=x") == "'=x"
    assert cc.unsafe_cell(cc.safe_cell("''-1")) == "''-1"


@given(st.text())
def test_unsafe_cell_undoes_safe_cell_for_every_text(text):
    assert cc.unsafe_cell(cc.safe_cell(text)) == text


@given(st.text())
def test_no_written_cell_starts_with_a_trigger(text):
    assert cc.safe_cell(text)[:1] not in {"=", "+", "-", "@", "\t", "\r"}


def test_a_formula_in_any_field_is_quoted_in_the_file():
    data = written([client(name="=HYPERLINK(\"http://x.test\")", phone="+31 20 555", industry="@risk",
                           tags=["-vip"], custom_fields={"note": "=1+1"})], ["note"])
    [row] = parsed(data)
    assert row["name"] == "'=HYPERLINK(\"http://x.test\")" and row["phone"] == "'+31 20 555"
    assert (row["industry"], row["tags"], row["custom_fields.note"]) == ("'@risk", "'-vip", "'=1+1")


# --- values ----------------------------------------------------------------------------------------

def test_values_are_contract_texts_money_timestamps_booleans_and_empty_for_null():
    [row] = parsed(written([client(credit_limit=Decimal("5000"), discount_percent=Decimal("2.5"),
                                   price_multiplier=Decimal("0.9000"), tax_exempt=True, archived_at=None,
                                   last_contacted_at=datetime(2026, 3, 2, 8, 0, 0, 123000, tzinfo=UTC),
                                   churn_probability=0.35)]))
    assert (row["credit_limit"], row["discount_percent"], row["price_multiplier"]) == ("5000.00", "2.50", "0.9000")
    assert (row["lifetime_revenue"], row["tax_rate_override"]) == ("0.00", "")
    assert (row["tax_exempt"], row["at_risk"]) == ("true", "false")
    assert row["created_at"] == "2026-03-01T09:30:00.000Z" and row["last_contacted_at"] == "2026-03-02T08:00:00.123Z"
    assert (row["archived_at"], row["email"], row["churn_probability"], row["health_score"]) == ("", "", "0.35", "70")


def test_lists_are_one_cell_joined_with_a_bar_that_split_list_reads_back():
    tags = ["vip", "a|b", "back\\slash", "Festival"]
    [row] = parsed(written([client(tags=tags, category_ids=["01A", "01B"])]))
    assert row["category_ids"] == "01A|01B" and row["tags"] == "vip|a\\|b|back\\\\slash|Festival"
    assert cc.split_list(row["tags"]) == tags and cc.split_list("") == [] and cc.split_list(" a | b |") == ["a", "b"]


@given(st.lists(st.text(min_size=1).map(str.strip).filter(bool)))
def test_split_list_reads_back_every_joined_list(values):
    assert cc.split_list(cc.join_list(values)) == values


def test_addresses_become_one_group_of_columns_per_kind_the_first_of_each_kind():
    [row] = parsed(written([client(addresses=[
        Address(kind="billing", line1="Kade 1", city="Zürich", postal_code="8001", country="CH"),
        Address(kind="visiting", city="Basel"), Address(kind="billing", city="Bern")])]))
    assert (row["billing_line1"], row["billing_city"], row["billing_postal_code"], row["billing_country"]) == (
        "Kade 1", "Zürich", "8001", "CH")
    assert (row["visiting_city"], row["visiting_line1"], row["delivery_city"]) == ("Basel", "", "")


def test_the_primary_contact_is_spread_over_its_columns():
    contact = PrimaryContact(id="01JCONTACT", full_name="Pat Primary", email="pat@acme.test")
    [with_one, without] = parsed(written([client(primary_contact=contact), client(id="01JOTHER")]))
    assert (with_one["primary_contact_id"], with_one["primary_contact_name"], with_one["primary_contact_email"],
            with_one["primary_contact_phone"]) == ("01JCONTACT", "Pat Primary", "pat@acme.test", "")
    assert without["primary_contact_name"] == ""


def test_custom_fields_get_a_column_each_empty_where_a_client_has_no_value():
    keys = ["venue_size", "has_dock", "opened", "kind"]
    [full, empty] = parsed(written([
        client(custom_fields={"venue_size": 1200, "has_dock": False, "opened": "2020-05-01", "kind": "arena",
                              "gone": "no longer defined"}),
        client(id="01JOTHER")], keys))
    assert [full[f"custom_fields.{k}"] for k in keys] == ["1200", "false", "2020-05-01", "arena"]
    assert [empty[f"custom_fields.{k}"] for k in keys] == ["", "", "", ""]
    assert "custom_fields.gone" not in full


# --- the file --------------------------------------------------------------------------------------

def test_the_file_is_utf8_with_a_bom_crlf_rows_and_rfc4180_quoting():
    data = written([client(name='Crème "Brûlée", Ltd', industry="line one\nline two")])
    assert data.startswith(b"\xef\xbb\xbfid,client_number,name,type,status,")
    lines = data.split(b"\r\n")
    assert lines[-1] == b"" and len(lines) == 3  # the header, one row (its quoted cell holds a line feed), the end
    assert '"Crème ""Brûlée"", Ltd"'.encode() in data
    [row] = parsed(data)
    assert row["name"] == 'Crème "Brûlée", Ltd' and row["industry"] == "line one\nline two"


def test_accents_read_back_through_the_bom_as_a_spreadsheet_decodes_them():
    data = written([client(name="Åsa Öberg Ñandú Łódź 東京")])
    assert data.decode("utf-8-sig").splitlines()[1].split(",")[2] == "Åsa Öberg Ñandú Łódź 東京"
    assert data[:3] == "\ufeff".encode("utf-8") and data.count("\ufeff".encode("utf-8")) == 1


def test_pages_written_one_after_another_make_one_file_with_one_header():
    out = io.BytesIO()
    writer = cc.CsvWriter(out, [])
    writer.write([client(id="01A", name="A")])
    writer.write([])
    writer.write([client(id="01B", name="B"), client(id="01C", name="C")])
    assert [r["id"] for r in parsed(out.getvalue())] == ["01A", "01B", "01C"] and writer.rows == 3


def test_an_export_with_no_clients_is_the_header_alone():
    data = written([])
    assert data.decode("utf-8-sig") == ",".join(cc.EXPORT_COLUMNS) + "\r\n"
