"""The client CSV format shared by export and import: columns, cell values, formula-injection quoting, RFC 4180."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from chalicelib.domain.clients import Address, Client
from chalicelib.domain.values import iso, money

BOM = "\ufeff"  # spreadsheets read the file as UTF-8 (accents) only when it starts with one
LIST_SEPARATOR = "|"  # tags and category_ids in one cell: `vip|festival`; a `|` or `\` inside a value is `\`-escaped
CUSTOM_PREFIX = "custom_fields."
ADDRESS_KINDS = ("visiting", "billing", "delivery", "shipping")
ADDRESS_PARTS = ("line1", "line2", "city", "region", "postal_code", "country")
ADDRESS_COLUMNS = tuple(f"{kind}_{part}" for kind in ADDRESS_KINDS for part in ADDRESS_PARTS)  # `billing_city`
PRIMARY_CONTACT_COLUMNS = ("primary_contact_id", "primary_contact_name", "primary_contact_email",
                           "primary_contact_phone")

# Contract §15: the client fields of §3 that are not lists of objects, in §3's order, `id` ... `status` first;
# `primary_contact` (one object) is spread over PRIMARY_CONTACT_COLUMNS, `custom_fields` over `custom_fields.<key>`
# columns at the end; `import_id` (issue 13: the import that created the client) after `created_by`. Addresses (a list
# of objects) follow the fields as one group of columns per kind.
FIELD_COLUMNS = (
    "id", "client_number", "name", "type", "status", "email", "phone", "fax", "website", "industry",
    "registration_number", "vat_number", "pricing_tier", "price_multiplier", "currency", "credit_limit",
    "payment_terms_days", "discount_percent", "tax_exempt", "tax_rate_override", "communication_preference",
    "tags", "category_ids", "pipeline_stage", "node_client_id", "node_url", *PRIMARY_CONTACT_COLUMNS,
    "health_score", "risk_level", "churn_probability", "at_risk", "lead_classification", "lifetime_revenue",
    "outstanding_balance", "projects_count", "last_project_at", "last_contacted_at", "avg_response_time_minutes",
    "version", "created_at", "updated_at", "archived_at", "created_by", "import_id",
)
EXPORT_COLUMNS = FIELD_COLUMNS + ADDRESS_COLUMNS
LIST_COLUMNS = frozenset({"tags", "category_ids"})
# What the service sets, never a CSV: an import reads past these columns (an export imports back as it is).
READ_ONLY_COLUMNS = frozenset({
    "id", "client_number", "node_client_id", "node_url", *PRIMARY_CONTACT_COLUMNS, "health_score", "risk_level",
    "churn_probability", "at_risk", "lead_classification", "lifetime_revenue", "outstanding_balance",
    "projects_count", "last_project_at", "last_contacted_at", "avg_response_time_minutes", "version", "created_at",
    "updated_at", "archived_at", "created_by", "import_id",
})
MONEY_COLUMNS = frozenset({"price_multiplier", "credit_limit", "discount_percent", "tax_rate_override",
                           "lifetime_revenue", "outstanding_balance"})

_TRIGGERS = frozenset("=+-@\t\r")  # a spreadsheet may run a cell starting with one of these as a formula


def columns(custom_field_keys: Iterable[str]) -> list[str]:
    """The header row: EXPORT_COLUMNS, then one `custom_fields.<key>` column per defined custom field."""
    return [*EXPORT_COLUMNS, *(CUSTOM_PREFIX + key for key in custom_field_keys)]


def _escapes_a_trigger(text: str) -> bool:
    """Whether `text` is quotes (none or more) before a trigger character: the cells that are prefixed."""
    return text.lstrip("'")[:1] in _TRIGGERS


def safe_cell(value: str) -> str:
    """The cell as written: a leading `'` before a formula trigger (`=`, `+`, `-`, `@`, tab, CR), also before a
    text that already starts with `'` and a trigger, so unsafe_cell(safe_cell(x)) == x for every text."""
    return "'" + value if value[:1] in _TRIGGERS or (value[:1] == "'" and _escapes_a_trigger(value)) else value


def unsafe_cell(value: str) -> str:
    """The text a cell held before safe_cell: exactly its one added `'` removed (an import calls this)."""
    return value[1:] if value[:1] == "'" and _escapes_a_trigger(value[1:]) else value


def join_list(values: Iterable[str]) -> str:
    """`["vip", "a|b"]` -> `vip|a\\|b`: one cell, split_list reads it back."""
    return LIST_SEPARATOR.join(v.replace("\\", "\\\\").replace(LIST_SEPARATOR, "\\" + LIST_SEPARATOR) for v in values)


def split_list(cell: str) -> list[str]:
    """The values of a list cell (join_list's inverse); empty parts are dropped, spaces around each trimmed."""
    values, current, escaped = [], [], False
    for char in cell:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == LIST_SEPARATOR:
            values.append("".join(current))
            current = []
        else:
            current.append(char)
    if escaped:
        current.append("\\")
    values.append("".join(current))
    return [v.strip() for v in values if v.strip()]


def text_of(value: Any, *, is_money: bool = False) -> str:
    """A value as its cell text: empty for null, `true`/`false`, money with two decimals, timestamps ISO with Z."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return money(value) if is_money else str(value)
    if isinstance(value, (list, tuple)):
        return join_list(str(v) for v in value)
    return str(value)


def values_of(client: Client, custom_field_keys: Iterable[str]) -> list[str]:
    """One client as the texts of its row (before safe_cell), in columns() order."""
    contact = client.primary_contact
    spread = {"primary_contact_id": contact and contact.id, "primary_contact_name": contact and contact.full_name,
              "primary_contact_email": contact and contact.email, "primary_contact_phone": contact and contact.phone,
              "at_risk": client.at_risk}
    row = [text_of(spread[name] if name in spread else getattr(client, name), is_money=name in MONEY_COLUMNS)
           for name in FIELD_COLUMNS]
    first: dict[str, Address] = {}
    for address in client.addresses:  # one address per kind: the first of each
        first.setdefault(address.kind, address)
    row += [text_of(getattr(first[kind], part) if kind in first else None)
            for kind in ADDRESS_KINDS for part in ADDRESS_PARTS]
    row += [text_of(client.custom_fields.get(key)) for key in custom_field_keys]
    return row


class CsvWriter:
    """RFC 4180 (CRLF, quoting where needed) in UTF-8 with a BOM, written to `out` one page of clients at a time."""

    def __init__(self, out: IO[bytes], custom_field_keys: Iterable[str]):
        self.out = out
        self.keys = list(custom_field_keys)
        self.rows = 0
        self._text = io.StringIO()
        self._csv = csv.writer(self._text, lineterminator="\r\n")
        self._csv.writerow(columns(self.keys))
        self._flush(BOM)

    def write(self, clients: Iterable[Client]) -> None:
        for client in clients:
            self._csv.writerow([safe_cell(v) for v in values_of(client, self.keys)])
            self.rows += 1
        self._flush()

    def _flush(self, prefix: str = "") -> None:
        self.out.write((prefix + self._text.getvalue()).encode("utf-8"))
        self._text.seek(0)
        self._text.truncate()
