"""Reading a client import CSV: encodings, delimiters, header aliases, cells, row problems, fingerprints."""
from __future__ import annotations

import codecs
import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chalicelib.domain import client_csv
from chalicelib.domain import client_import as ci
from chalicelib.domain import clients as dc
from chalicelib.domain.clients import PrimaryContact
from chalicelib.domain.settings import ClientSettings, CustomFieldDef
from chalicelib.handlers.api.clients import ClientCreate
from chalicelib.handlers.errors import status_of

NOW = datetime(2026, 2, 3, 10, 0, tzinfo=UTC)
SIMPLE = "name,email,phone\nAcme BV,info@acme.test,+31 20 123 4567\nÉvénements Müller,hallo@muller.test,\n"


def read(text: str | bytes, keys=()) -> ci.ParsedFile:
    return ci.read_csv(text.encode("utf-8") if isinstance(text, str) else text, set(keys) if not
                       isinstance(keys, dict) else keys)


def problem(raw: str | bytes, keys=()) -> str:
    with pytest.raises(ci.CsvProblem) as exc:
        read(raw, keys)
    return exc.value.message


def create_body(data: dict) -> ClientCreate:
    """Validated as POST /v1/clients validates its JSON body."""
    return ClientCreate.model_validate_json(json.dumps(data), strict=True)


def model_fields_in_error(data: dict) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        create_body(data)
    return [ci.field_name(data, ".".join(str(p) for p in e["loc"])) for e in exc.value.errors()]


# --- encodings ---------------------------------------------------------------------------------------------------

def test_utf8_with_and_without_bom_read_the_same_rows():
    plain, marked = read(SIMPLE), read(codecs.BOM_UTF8 + SIMPLE.encode("utf-8"))
    assert (plain.encoding, marked.encoding) == ("utf-8", "utf-8-sig")
    assert [r.data for r in marked.rows] == [r.data for r in plain.rows]
    assert marked.columns == {"name": "name", "email": "email", "phone": "phone"}  # no BOM glued to "name"
    assert plain.rows[1].data["name"] == "Événements Müller"


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be"])
def test_utf16_with_a_bom_is_detected_and_converted(codec):
    raw = SIMPLE.encode(codec) if codec == "utf-16" else codecs.BOM_UTF16_LE + SIMPLE.encode(codec) \
        if codec.endswith("le") else codecs.BOM_UTF16_BE + SIMPLE.encode(codec)
    parsed = read(raw)
    assert parsed.encoding == "utf-16"
    assert [r.data for r in parsed.rows] == [r.data for r in read(SIMPLE).rows]


@pytest.mark.parametrize("codec", ["utf-16-le", "utf-16-be"])
def test_utf16_without_a_bom_is_recognised_by_its_zero_bytes(codec):
    parsed = read(SIMPLE.encode(codec))
    assert parsed.encoding == codec
    assert parsed.rows[1].data["name"] == "Événements Müller"


def test_bytes_that_are_not_utf8_are_read_as_windows_1252():
    raw = "name;notes_ignored\n“Café” Müller – 5 €;x\n".encode("cp1252")
    parsed = read(raw)
    assert parsed.encoding == "windows-1252"
    assert parsed.rows[0].data["name"] == "“Café” Müller – 5 €"


def test_windows_1252_pairs_that_look_like_utf8_do_not_make_it_mixed():
    raw = "name\n„Fuß“ Café Müller\n".encode("cp1252")  # `ß“` is a valid UTF-8 pair; the rest is not UTF-8
    assert read(raw).rows[0].data["name"] == "„Fuß“ Café Müller"


def test_a_mostly_utf8_file_with_broken_bytes_is_refused_naming_the_line():
    raw = "name\nÉvénements à Genève\nMüller\nCafé\n".encode() + "Zoë\n".encode("cp1252")
    message = problem(raw)
    assert "line 5" in message and "UTF-8" in message


def test_a_utf8_bom_followed_by_other_bytes_is_refused():
    assert "UTF-8" in problem(codecs.BOM_UTF8 + "name\nCafé\n".encode("cp1252"))


@pytest.mark.parametrize("raw, words", [
    (b"PK\x03\x04\x14\x00\x06\x00rest of a workbook", "Excel workbook"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1\x00\x00", "Excel 97-2003"),
    (b"%PDF-1.7\n", "PDF"),
    (b"name\nAcme\x00\x01\x02\x03\xff\n", "binary"),
    ("name\nAcme\x00\n".encode("utf-16"), "binary"),
])
def test_a_workbook_or_binary_file_is_refused_naming_what_it_is(raw, words):
    message = problem(raw)
    assert words in message
    if words == "Excel workbook":
        assert "save it as CSV" in message


# --- delimiters ----------------------------------------------------------------------------------------------------

def test_a_semicolon_file_reads_like_the_comma_file():
    comma = 'name,email,credit_limit,tags\n"Acme, Inc.",a@acme.test,1250.00,vip|eu\nBeta;Co,b@beta.test,,\n'
    semi = 'name;email;credit_limit;tags\nAcme, Inc.;a@acme.test;1250.00;vip|eu\n"Beta;Co";b@beta.test;;\n'
    a, b = read(comma), read(semi)
    assert (a.delimiter, b.delimiter) == (",", ";")
    assert [r.data for r in a.rows] == [r.data for r in b.rows]
    assert [r.fingerprint for r in a.rows] == [r.fingerprint for r in b.rows]
    assert a.rows[0].data == {"name": "Acme, Inc.", "email": "a@acme.test", "credit_limit": "1250.00",
                              "tags": ["vip", "eu"]}


def test_a_tab_separated_file_is_read():
    parsed = read("name\temail\nAcme, Inc.\ta@acme.test\n")
    assert parsed.delimiter == "\t"
    assert parsed.rows[0].data == {"name": "Acme, Inc.", "email": "a@acme.test"}


def test_delimiters_inside_quoted_header_names_do_not_count():
    parsed = read('"name";"Payment Terms (days), net";email\nAcme;14;a@acme.test\n')
    assert parsed.delimiter == ";"
    assert parsed.unknown_columns == ["Payment Terms (days), net"]


@pytest.mark.parametrize("text, delimiter", [
    ("name;Street, nr\nAcme;Dam 1\nBeta;Kade 2\n", ";"),
    ("name\tcity, state\nAcme\tUtrecht\n", "\t"),
    ("name,Street; nr\nAcme,Dam 1\n", ","),
])
def test_a_tie_on_the_header_goes_to_the_delimiter_the_rows_use(text, delimiter):
    parsed = read(text)
    assert parsed.delimiter == delimiter
    assert parsed.rows[0].errors == []


def test_excels_sep_line_sets_the_delimiter_and_keeps_line_numbers():
    parsed = read("sep=;\nname;email\nAcme;a@acme.test\nBeta;x;y\n")
    assert parsed.delimiter == ";"
    assert [r.line for r in parsed.rows] == [3, 4]
    assert parsed.rows[1].errors == [ci.RowError(4, None, "the row has 3 cells, the header 2")]


def test_a_one_column_file_needs_no_delimiter():
    parsed = read("Company Name\nAcme BV\nBeta\n")
    assert [r.data for r in parsed.rows] == [{"name": "Acme BV"}, {"name": "Beta"}]


# --- header ----------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [b"", b"\n\n  \r\n", codecs.BOM_UTF8, b";;;\n,,\n"])
def test_an_empty_file_is_refused(raw):
    assert "the file is empty" in problem(raw)


def test_a_file_without_a_header_row_is_refused_as_missing_header():
    message = problem("Acme BV,info@acme.test,+31 20 123\nBeta,b@beta.test,\n")
    assert message.startswith("missing header") and "line 1" in message


def test_a_header_without_a_name_column_is_refused():
    assert "no name column" in problem("email,phone\na@acme.test,123\n")


@pytest.mark.parametrize("header, field", [
    ("name", "name"), ("Company Name", "name"), ("company", "name"), ("Client Name", "name"), ("  NAME ", "name"),
    ("E-mail", "email"), ("Email Address", "email"), ("EMAIL", "email"),
    ("VAT", "vat_number"), ("VAT Number", "vat_number"), ("VAT ID", "vat_number"), ("vat_number", "vat_number"),
    ("Phone", "phone"), ("Telephone", "phone"), ("Website", "website"), ("Web", "website"),
    ("Type", "type"), ("Status", "status"), ("Tags", "tags"), ("Category IDs", "category_ids"),
    ("Pricing Tier", "pricing_tier"), ("Currency", "currency"), ("Payment Terms (days)", "payment_terms_days"),
    ("payment_terms_days", "payment_terms_days"), ("Credit Limit", "credit_limit"),
    ("Registration Number", "registration_number"), ("Company Number", "registration_number"),
    ("KvK", "registration_number"), ("Tax Exempt", "tax_exempt"), ("Discount %", "discount_percent"),
    ("billing_city", "billing_city"), ("Billing City", "billing_city"), ("Billing Street", "billing_line1"),
    ("Billing Zip", "billing_postal_code"), ("visiting_postal_code", "visiting_postal_code"),
    ("Shipping Address Line 2", "shipping_line2"), ("Delivery Country", "delivery_country"),
    ("Billing State/Province", "billing_region"), ("City", "visiting_city"), ("Postcode", "visiting_postal_code"),
])
def test_header_names_and_aliases_map_to_client_fields(header, field):
    parsed = read(f"{header},name\nx,y\n" if field != "name" else f"{header}\nx\n")
    assert parsed.columns[header.strip()] == field


def test_address_columns_build_one_address_per_kind():
    parsed = read("name,Billing Street,billing_city,Billing Zip,billing_country,visiting_city,shipping_line2\n"
                  "Acme,Main St 1,Utrecht,3511 AA,nl,Amsterdam,\n")
    assert parsed.rows[0].data["addresses"] == [
        {"kind": "visiting", "city": "Amsterdam"},
        {"kind": "billing", "line1": "Main St 1", "city": "Utrecht", "postal_code": "3511 AA", "country": "nl"},
    ]
    assert create_body(parsed.rows[0].data).addresses[1].country == "NL"


def test_custom_field_columns_map_only_defined_keys():
    parsed = read("name,custom_fields.venue_size,Custom Fields.Shoe Size,custom_fields.secret\nAcme,120,44,x\n",
                  {"venue_size", "shoe_size"})
    assert parsed.columns == {"name": "name", "custom_fields.venue_size": "custom_fields.venue_size",
                              "Custom Fields.Shoe Size": "custom_fields.shoe_size"}
    assert parsed.unknown_columns == ["custom_fields.secret"]
    assert parsed.rows[0].data["custom_fields"] == {"venue_size": "120", "shoe_size": "44"}


def test_custom_field_types_given_type_booleans_and_numbers():
    parsed = read("name,custom_fields.newsletter,custom_fields.budget,custom_fields.code,custom_fields.size\n"
                  "Acme,Yes,1250.5,007,big\n",
                  {"newsletter": "boolean", "budget": "number", "code": "text", "size": "number"})
    assert parsed.rows[0].data["custom_fields"] == {"newsletter": True, "budget": 1250.5, "code": "007",
                                                    "size": "big"}


def test_unknown_columns_are_listed_and_not_fatal():
    parsed = read("name,Favourite Colour,email,\nAcme,blue,a@acme.test,\nBeta,,b@beta.test,oops\n")
    assert parsed.unknown_columns == ["Favourite Colour", "column 4 (no header)"]
    assert parsed.rows[0].data == {"name": "Acme", "email": "a@acme.test"}
    assert all(not r.errors for r in parsed.rows)


def test_an_empty_header_cell_over_empty_cells_is_not_listed():
    assert read("name,email,,\nAcme,a@acme.test,,\n").unknown_columns == []


@pytest.mark.parametrize("header, named", [
    ("name,Email,E-mail", ('"Email"', '"E-mail"')),
    ("Company Name,Client Name", ('"Company Name"', '"Client Name"')),
    ("name,billing_city,Billing City", ('"billing_city"', '"Billing City"')),
    ("name,email,email", ('"email"', '"email"')),
])
def test_two_columns_for_one_field_are_refused_naming_both(header, named):
    message = problem(header + "\nAcme,a,b\n")
    assert all(n in message for n in named)


def test_read_only_export_columns_are_ignored_not_unknown():
    parsed = read("id,client_number,name,health_score,created_at,lifetime_revenue,Version\n"
                  "01J,CLT-2026-1,Acme,70,2026-01-01T00:00:00Z,0.00,3\n")
    assert parsed.ignored_columns == ["id", "client_number", "health_score", "created_at", "lifetime_revenue",
                                      "Version"]
    assert parsed.unknown_columns == [] and parsed.rows[0].data == {"name": "Acme"}


def test_every_export_column_maps_back_to_a_field_or_is_ignored():
    keys = {"venue_size"}
    for column in client_csv.columns(sorted(keys)):
        target = ci.map_header(column, keys)
        assert target is not None, column
        assert target in ("", column), (column, target)
        assert (target == "") == (column in client_csv.READ_ONLY_COLUMNS), column


def test_no_two_aliases_collide():
    fields = set(ClientCreate.model_fields) - {"addresses", "custom_fields"}
    addresses = {f"{k}_{p}" for k in ci.ADDRESS_KINDS for p in ci.ADDRESS_PARTS}
    assert set(ci.ALIASES.values()) == fields | addresses  # every writable field has a column, nothing else


# --- an export imports back ----------------------------------------------------------------------------------------

DEFS = [CustomFieldDef(key="venue_size", label="Venue size", type="number"),
        CustomFieldDef(key="newsletter", label="Newsletter", type="boolean"),
        CustomFieldDef(key="notes", label="Notes", type="text")]


def exported(clients: list[dc.Client]) -> bytes:
    out = io.BytesIO()
    writer = client_csv.CsvWriter(out, [d.key for d in DEFS])
    writer.write(clients)
    return out.getvalue()


def made(body: dict, client_id: str = "01JAAAAAAAAAAAAAAAAAAAAAAA") -> dc.Client:
    return dc.new_client(body, tenant_id="t1", client_id=client_id, settings=ClientSettings(), custom_fields=DEFS,
                         actor="u1", now=NOW)


WRITABLE = list(ClientCreate.model_fields)
FULL = {
    "type": "venue", "name": "=HYPERLINK(\"http://evil\")", "status": "lead", "email": "Bookings@Arena.test",
    "phone": "+31 20 555 0101", "fax": "-12", "website": "https://arena.test", "industry": "@events",
    "registration_number": "KvK 1234", "vat_number": "NL 8123.45.678 B01",
    "addresses": [{"kind": "billing", "line1": "Dam 1", "city": "Amsterdam", "postal_code": "1012 JS",
                   "country": "NL"}, {"kind": "visiting", "line1": "Arena Blvd\n(gate 4)", "city": "Åmsterdam"}],
    "pricing_tier": "custom", "price_multiplier": Decimal("1.2500"), "currency": "GBP",
    "credit_limit": Decimal("15000.00"), "payment_terms_days": 45, "discount_percent": Decimal("2.50"),
    "tax_exempt": True, "tax_rate_override": Decimal("9.00"), "communication_preference": "sms",
    "tags": ["vip", "rock, pop", "a|b", "back\\slash"], "category_ids": ["01JCAT1", "01JCAT2"],
    "custom_fields": {"venue_size": 1200, "newsletter": False, "notes": "'+quoted"}, "pipeline_stage": "proposal",
}


def writable(client: dc.Client) -> dict:
    data = client.model_dump(include=set(WRITABLE))
    data["addresses"].sort(key=lambda a: ci.ADDRESS_KINDS.index(a["kind"]))  # written and read in kind order
    if client.pricing_tier != "custom":
        data.pop("price_multiplier")  # the tier implies it
    return data


@pytest.mark.parametrize("body", [FULL, {"name": "Plain Co"},
                                  {"name": "Préféré", "pricing_tier": "preferred", "tags": ["-x"]}])
def test_an_export_imports_back_unchanged(body):
    original = made(create_body(json.loads(json.dumps(body, default=str))).model_dump(exclude_none=True))
    original = original.model_copy(update={
        "primary_contact": PrimaryContact(id="01JCON", full_name="Ann", email="ann@arena.test"),
        "health_score": 41, "lifetime_revenue": Decimal("999.00"), "version": 7})
    parsed = ci.read_csv(exported([original]), {d.key: d.type for d in DEFS})
    assert parsed.unknown_columns == []
    assert set(parsed.ignored_columns) == client_csv.READ_ONLY_COLUMNS
    [row] = parsed.rows
    assert row.errors == [] and row.line == 2
    again = made(create_body(row.data).model_dump(exclude_none=True), client_id="01JBBBBBBBBBBBBBBBBBBBBBBB")
    assert writable(again) == writable(original)


def test_the_formula_guard_quote_is_stripped_only_where_the_export_put_it():
    parsed = read("name,industry,phone,pipeline_stage\n'=1+2,'@home,'+31 20,'quoted\n")
    assert parsed.rows[0].data == {"name": "=1+2", "industry": "@home", "phone": "+31 20",
                                   "pipeline_stage": "'quoted"}


# --- rows and cells --------------------------------------------------------------------------------------------------

def test_rows_with_too_many_or_too_few_cells_are_row_errors():
    parsed = read("name,email,phone\nAcme,a@acme.test,1\nBeta,b@beta.test\nGamma,g@g.test,3,extra,more\nDelta\n")
    assert [r.errors for r in parsed.rows] == [
        [], [ci.RowError(3, None, "the row has 2 cells, the header 3")],
        [ci.RowError(4, None, "the row has 5 cells, the header 3")],
        [ci.RowError(5, None, "the row has 1 cell, the header 3")],
    ]


def test_trailing_empty_cells_beyond_the_header_are_no_error():
    parsed = read("name,email\nAcme,a@acme.test,,\n")
    assert parsed.rows[0].errors == [] and parsed.rows[0].data == {"name": "Acme", "email": "a@acme.test"}


def test_blank_lines_are_skipped_and_line_numbers_stay_the_files():
    parsed = read('\r\nname,notes_x\r\n\r\nAcme,x\r\n"Multi\r\nline\r\nname",y\r\n,\r\n   \r\nLast,z')
    assert [(r.line, r.data["name"]) for r in parsed.rows] == [(4, "Acme"), (5, "Multi\r\nline\r\nname"),
                                                               (10, "Last")]


def test_old_mac_line_endings_are_lines_too():
    assert [r.line for r in read("name\rAcme\rBeta\r").rows] == [2, 3]


def test_an_unclosed_quote_is_refused_naming_its_line():
    message = problem('name,email\nAcme,a@acme.test\n"Beta,b@beta.test\nGamma,g@g.test\n')
    assert "line 3" in message and "never closed" in message


def test_a_cell_longer_than_the_reader_takes_is_refused():
    assert "longer than" in problem("name\n" + "x" * (ci.MAX_CELL + 10) + "\n")


def test_up_to_max_rows_are_read_and_one_more_is_refused_with_the_count():
    body = "name\n" + "".join(f"Client {i}\n\n" for i in range(ci.MAX_ROWS))
    assert len(read(body).rows) == ci.MAX_ROWS
    with pytest.raises(ci.TooManyRows) as exc:
        read(body + "One too many\n")
    assert exc.value.rows == ci.MAX_ROWS + 1 and "10,001 rows" in exc.value.message
    assert isinstance(exc.value, ci.CsvProblem)


def test_a_file_over_the_byte_limit_is_refused():
    with pytest.raises(ci.FileTooLarge) as exc:
        ci.read_csv(b"name\n" + b"x" * ci.MAX_BYTES, set())
    assert status_of(exc.value) == 413 and "10 MiB" in exc.value.message


def test_cells_are_trimmed_and_empty_cells_left_out():
    parsed = read("name,email,phone,website\n  Acme BV \t,  ,\u00a0,\n")
    assert parsed.rows[0].data == {"name": "Acme BV"}


def test_lists_split_on_the_pipe_and_category_ids_also_on_commas():
    parsed = read('name,tags,category_ids\nAcme," vip | rock, pop ||a\\|b","01JA, 01JB|01JC"\n')
    assert parsed.rows[0].data["tags"] == ["vip", "rock, pop", "a|b"]
    assert parsed.rows[0].data["category_ids"] == ["01JA", "01JB", "01JC"]
    assert "tags" not in read("name,tags\nAcme, | \n").rows[0].data


@pytest.mark.parametrize("cell, value", [("true", True), ("Yes", True), ("1", True), ("FALSE", False),
                                         ("no", False), ("0", False)])
def test_tax_exempt_reads_true_false_yes_no_one_zero(cell, value):
    data = read(f"name,tax_exempt\nAcme,{cell}\n").rows[0].data
    assert data["tax_exempt"] is value and create_body(data).tax_exempt is value


def test_values_the_create_refuses_are_left_for_it_to_name_the_field():
    data = read("name,tax_exempt,payment_terms_days,credit_limit,Billing Country,currency\n"
                "Acme,maybe,thirty,12.345,Netherlands,euro\n").rows[0].data
    assert data["payment_terms_days"] == "thirty" and data["tax_exempt"] == "maybe"
    assert sorted(model_fields_in_error(data)) == ["billing_country", "credit_limit", "currency",
                                                   "payment_terms_days", "tax_exempt"]
    huge = read("name,payment_terms_days\nAcme," + "9" * 5000 + "\n").rows[0].data
    assert model_fields_in_error(huge) == ["payment_terms_days"]


def test_whole_days_become_a_number_and_choices_ignore_case():
    data = read("name,payment_terms_days,Type,Status,Pricing Tier,communication_preference\n"
                "Acme, 14 ,Company,Active,VIP,Phone\n").rows[0].data
    assert data == {"name": "Acme", "payment_terms_days": 14, "type": "company", "status": "active",
                    "pricing_tier": "vip", "communication_preference": "phone"}
    assert create_body(data).payment_terms_days == 14


def test_the_price_multiplier_is_read_for_the_custom_tier_only():
    parsed = read("name,pricing_tier,price_multiplier\nA,custom,1.25\nB,standard,1.00\nC,,1.00\nD,vip,1.50\n")
    assert [r.data.get("price_multiplier") for r in parsed.rows] == ["1.25", None, None, None]


# --- duplicates and fingerprints -------------------------------------------------------------------------------------

def test_email_and_vat_normalise_for_duplicate_detection():
    assert ci.normalise_email("  Info@ACME.test ") == "info@acme.test"
    assert ci.normalise_vat(" nl 8123.45.678-b01 ") == "NL812345678B01"
    assert ci.normalise_vat("DE 123,456,789") == "DE123456789"
    assert ci.duplicate_keys({"name": "x", "email": "A@B.test", "vat_number": "be 0123.456.789"}) == [
        ("email", "a@b.test"), ("vat_number", "BE0123456789")]
    assert ci.duplicate_keys({"name": "x", "vat_number": " - "}) == []


def test_the_same_data_has_the_same_fingerprint_whatever_the_files_form():
    one = read("name,email,billing_city,tags\nAcme,Info@Acme.test,Utrecht,a|b\n")
    other_bytes = ("Billing City;Tags;E-mail;Company Name\r\nUtrecht;a|b;info@acme.test;Acme\r\n").encode("utf-16")
    other = ci.read_csv(other_bytes, set())
    assert one.rows[0].fingerprint == other.rows[0].fingerprint
    changed = read("name,email,billing_city,tags\nAcme,info@acme.test,Utrecht,b|a\n")
    assert changed.rows[0].fingerprint != one.rows[0].fingerprint


def test_field_name_names_address_errors_by_their_column():
    data = {"addresses": [{"kind": "visiting"}, {"kind": "billing", "country": "XX"}]}
    assert ci.field_name(data, "addresses.1.country") == "billing_country"
    assert ci.field_name(data, "tags.3") == "tags"
    assert ci.field_name(data, "custom_fields.size") == "custom_fields.size"


# --- properties ------------------------------------------------------------------------------------------------------

TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufeff"), max_size=30) | \
    st.text(st.sampled_from("ab ,;\t\"'=+-@|\r\n"), max_size=12)
# Windows-1252 letters at 0xC0-0xFF only: with its 0x80-0xBF punctuation a text can be valid UTF-8 by chance
CP1252_TEXT = st.text(st.sampled_from("aZ09 ,;\"'éèüßÆÀÖñçøÿ"), max_size=20)


def _write(rows: list[list[str]], delimiter: str) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter, lineterminator="\r\n").writerows(rows)
    return out.getvalue()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(name=TEXT.filter(lambda v: v.strip()), industry=TEXT, notes=TEXT, delimiter=st.sampled_from(ci.DELIMITERS),
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
def test_any_row_of_text_round_trips_through_csv_writing(name, industry, notes, delimiter, encoding):
    header = ["name", "industry", "custom_fields.notes"]
    text = _write([header, [client_csv.safe_cell(v) for v in (name, industry, notes)]], delimiter)
    parsed = ci.read_csv(text.encode(encoding), {"notes"})
    assert parsed.delimiter == delimiter and parsed.encoding == encoding
    [row] = parsed.rows
    expected = {"name": name.strip()}
    if industry.strip():
        expected["industry"] = industry.strip()
    if notes.strip():
        expected["custom_fields"] = {"notes": notes.strip()}
    assert row.data == expected and row.errors == []


@settings(max_examples=100)
@given(cells=st.lists(CP1252_TEXT, min_size=2, max_size=2), delimiter=st.sampled_from(ci.DELIMITERS))
def test_windows_1252_text_reads_as_its_utf8_twin(cells, delimiter):
    rows = [["name", "industry"], ["Acme " + cells[0], cells[1]]]
    text = _write(rows, delimiter)
    assert [r.data for r in ci.read_csv(text.encode("cp1252"), set()).rows] == \
        [r.data for r in ci.read_csv(text.encode("utf-8"), set()).rows]


@settings(max_examples=100)
@given(order=st.permutations(["Company Name", "E-mail", "Billing Zip", "Tags", "VAT"]),
       delimiter=st.sampled_from(ci.DELIMITERS))
def test_columns_in_any_order_and_any_delimiter_read_the_same_row(order, delimiter):
    values = {"Company Name": "Acme; Inc, Ltd", "E-mail": "a@acme.test", "Billing Zip": "1012 JS",
              "Tags": "vip|eu", "VAT": "NL123"}
    parsed = ci.read_csv(_write([order, [values[h] for h in order]], delimiter).encode(), set())
    assert parsed.rows[0].data == {"name": "Acme; Inc, Ltd", "email": "a@acme.test", "tags": ["vip", "eu"],
                                   "vat_number": "NL123", "addresses": [{"kind": "billing",
                                                                         "postal_code": "1012 JS"}]}
    assert parsed.rows[0].fingerprint == read("name,email,billing_postal_code,tags,vat_number\n"
                                              '"Acme; Inc, Ltd",a@acme.test,1012 JS,vip|eu,NL123\n').rows[0].fingerprint
