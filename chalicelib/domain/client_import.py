"""Reading a client import CSV: encoding, delimiter, header aliases and rows as POST /v1/clients bodies."""
from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import re
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain import client_csv
from chalicelib.domain.client_csv import ADDRESS_KINDS, ADDRESS_PARTS, unsafe_cell
from chalicelib.domain.errors import BadRequest, TooLarge

MAX_ROWS = 10_000
MAX_BYTES = 10 * 1024 * 1024
MAX_CELL = 131_072  # the csv module's field limit: a longer cell makes the file unreadable, not one row

DELIMITERS = (",", ";", "\t")
TRUE_WORDS = frozenset({"true", "yes", "1"})
FALSE_WORDS = frozenset({"false", "no", "0"})


class CsvProblem(BadRequest):
    """The whole file is unusable (nothing is imported); `message` names the problem."""


class TooManyRows(TooLarge, CsvProblem):
    """More data rows than one import takes; `rows` is how many the file has."""

    def __init__(self, rows: int):
        super().__init__(f"the file has {rows:,} rows; one import takes at most {MAX_ROWS:,} "
                         f"(split it into several files)")
        self.rows = rows


class FileTooLarge(TooLarge, CsvProblem):
    """Over MAX_BYTES (the route refuses such a body first; this guards other callers)."""

    def __init__(self, size: int):
        super().__init__(f"the file is {size:,} bytes; an import takes at most {MAX_BYTES:,} (10 MiB)")
        self.size = size


@dataclass(frozen=True)
class RowError:
    row: int             # the file's line number (header = line 1)
    field: str | None    # None: the row as a whole
    message: str

    def public(self) -> dict[str, Any]:
        return {"row": self.row, "field": self.field, "message": self.message}


@dataclass
class ParsedRow:
    line: int                 # the file's line number where this record starts
    data: dict[str, Any]      # a POST /v1/clients body built from the row's non-empty cells
    fingerprint: str          # sha256 of the normalised data: the same row in a re-run has the same one
    errors: list[RowError] = field(default_factory=list)  # problems found while reading: the row creates nothing


@dataclass
class ParsedFile:
    encoding: str
    delimiter: str
    columns: dict[str, str]    # the file's header -> the field it maps to
    unknown_columns: list[str]
    rows: list[ParsedRow]
    ignored_columns: list[str] = field(default_factory=list)  # read-only columns an export writes (id, version...)


# --- header names -------------------------------------------------------------------------------------------

def header_key(name: str) -> str:
    """How header names compare: case, spaces, `_`, `-`, `.`, `/`, `()` and `*` do not count
    ("E-mail", "email" and "EMAIL *" are one name; "billing_city" and "Billing City" too)."""
    return "".join(c for c in name.casefold() if c.isalnum())


# field -> the names a header may use for it, beside the field's own name (compared by header_key)
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "name": ("Company Name", "Company", "Client Name", "Client", "Full Name", "Organisation", "Organization",
             "Organisation Name", "Organization Name", "Account Name", "Business Name"),
    "type": ("Client Type",),
    "status": ("Client Status",),
    "email": ("E-mail", "Email Address", "E-mail Address", "Mail"),
    "phone": ("Telephone", "Tel", "Phone Number", "Telephone Number"),
    "fax": ("Fax Number",),
    "website": ("Web", "Web Site", "URL", "Homepage"),
    "industry": ("Sector",),
    "registration_number": ("Registration No", "Company Number", "Company Registration Number", "KvK",
                            "KvK Number", "Chamber of Commerce Number", "CoC Number"),
    "vat_number": ("VAT", "VAT ID", "VAT No", "VAT Reg No", "VAT Registration Number", "BTW", "BTW Number"),
    "pricing_tier": ("Tier", "Price Tier"),
    "price_multiplier": ("Multiplier",),
    "currency": ("Currency Code",),
    "credit_limit": (),
    "payment_terms_days": ("Payment Terms (days)", "Payment Terms", "Terms (days)"),
    "discount_percent": ("Discount", "Discount %", "Discount (%)"),
    "tax_exempt": ("Tax Exemption",),
    "tax_rate_override": ("Tax Rate", "Tax Rate %"),
    "communication_preference": ("Preferred Communication", "Contact Preference"),
    "tags": ("Tag", "Labels"),
    "category_ids": ("Category IDs", "Category ID"),
    "pipeline_stage": ("Stage",),
}
KIND_ALIASES: dict[str, tuple[str, ...]] = {
    "visiting": ("visiting", "visit"),
    "billing": ("billing", "bill", "invoice", "invoicing"),
    "delivery": ("delivery",),
    "shipping": ("shipping", "ship to"),
}
PART_ALIASES: dict[str, tuple[str, ...]] = {
    "line1": ("line1", "line 1", "street", "street address", "address", "address 1", "address line 1", "street 1"),
    "line2": ("line2", "line 2", "address 2", "address line 2", "street 2"),
    "city": ("city", "town"),
    "region": ("region", "state", "province", "county", "state/province"),
    "postal_code": ("postal_code", "postal code", "postcode", "post code", "zip", "zip code", "zip/postal code"),
    "country": ("country", "country code", "country/region"),
}
# Columns an export writes that a create cannot set (read-only fields, derived figures), and a few more the
# service sets: read past (listed as ignored), never errors, so an export imports back as it is.
READ_ONLY_COLUMNS = client_csv.READ_ONLY_COLUMNS | {
    "primary_contact", "primary_contact_full_name", "files_count", "lead_score", "import_id", "merged_into",
}
_CUSTOM = re.compile(r"^\s*custom[\s_-]*fields?\s*[.:]\s*(?P<key>.+?)\s*$", re.IGNORECASE)


def address_column(kind: str, part: str) -> str:
    return f"{kind}_{part}"


def _alias_table() -> dict[str, str]:
    table: dict[str, str] = {}

    def add(name: str, target: str) -> None:
        key = header_key(name)
        if table.setdefault(key, target) != target:  # pragma: no cover - a table mistake, caught by the tests
            raise AssertionError(f"alias {name!r} maps to both {table[key]} and {target}")

    for target, names in FIELD_ALIASES.items():
        for name in (target, *names):
            add(name, target)
    for kind, kind_names in KIND_ALIASES.items():
        for part, part_names in PART_ALIASES.items():
            column = address_column(kind, part)
            add(column, column)
            for kn in kind_names:
                for pn in part_names:
                    add(f"{kn} {pn}", column)
                    add(f"{kn} address {pn}", column)
    for part, part_names in PART_ALIASES.items():  # a part without a kind: the visiting (the client's own) address
        for pn in part_names:
            add(pn, address_column("visiting", part))
    add("addressline1", address_column("visiting", "line1"))
    return table


ALIASES = _alias_table()
_READ_ONLY_KEYS = frozenset(header_key(c) for c in READ_ONLY_COLUMNS)


def map_header(name: str, custom_field_keys: Collection[str]) -> str | None:
    """The field a header names (`email`, `billing_city`, `custom_fields.size`), "" for a read-only column that is
    ignored, None for an unknown one."""
    m = _CUSTOM.match(name)
    if m:
        key = re.sub(r"[\s-]+", "_", m.group("key").lower())
        return f"custom_fields.{key}" if key in custom_field_keys else None
    key = header_key(name)
    if key in ALIASES:
        return ALIASES[key]
    if key in _READ_ONLY_KEYS:
        return ""
    return None


# --- bytes to text --------------------------------------------------------------------------------------------

_MAGIC = (
    (b"PK\x03\x04", "this looks like an Excel workbook (.xlsx) or another zip archive, not CSV: open it in your "
                    "spreadsheet and save it as CSV (UTF-8)"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "this looks like an Excel 97-2003 workbook (.xls), not CSV: open it in "
                                          "your spreadsheet and save it as CSV (UTF-8)"),
    (b"%PDF", "this is a PDF document, not CSV"),
    (b"\x1f\x8b", "this is a gzip archive, not CSV: unpack it first"),
)
_CP1252 = {i: b.decode("cp1252") for i in range(0x80, 0xA0) if (b := bytes([i])) not in
           {b"\x81", b"\x8d", b"\x8f", b"\x90", b"\x9d"}}  # latin-1 -> windows-1252 for 0x80-0x9F
_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}")


def _line_at(raw: bytes, offset: int) -> int:
    return raw.count(b"\n", 0, offset) + 1


def _utf16_without_bom(raw: bytes) -> str | None:
    """UTF-16 without its byte-order mark: text with NUL bytes at every other position."""
    sample = raw[:4096]
    if len(raw) % 2 or len(sample) < 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    half = len(sample) // 2
    for zeros, other, codec in ((odd, even, "utf-16-le"), (even, odd, "utf-16-be")):
        if zeros >= 0.6 * half and other <= 0.05 * half:
            try:
                return raw.decode(codec)
            except UnicodeDecodeError:
                return None
    return None


def decode(raw: bytes) -> tuple[str, str]:
    """The file's text and the encoding it was read as: UTF-8 (with or without BOM), UTF-16/UTF-32 (by BOM, or
    UTF-16 by its NUL pattern), else Windows-1252 (what Excel's plain "CSV" writes on Windows)."""
    for magic, message in _MAGIC:
        if raw.startswith(magic):
            raise CsvProblem(message)
    for bom, codec, label in ((codecs.BOM_UTF32_LE, "utf-32", "utf-32"), (codecs.BOM_UTF32_BE, "utf-32", "utf-32"),
                              (codecs.BOM_UTF16_LE, "utf-16", "utf-16"), (codecs.BOM_UTF16_BE, "utf-16", "utf-16"),
                              (codecs.BOM_UTF8, "utf-8-sig", "utf-8-sig")):
        if raw.startswith(bom):
            try:
                return raw.decode(codec), label
            except UnicodeDecodeError as exc:
                raise CsvProblem(f"the file is marked as {label.upper().removesuffix('-SIG')} but holds bytes "
                                 f"that are not (near line {_line_at(raw, exc.start)}): save it again as CSV "
                                 f"UTF-8") from None
    if b"\x00" in raw:
        text = _utf16_without_bom(raw)
        if text is not None:
            return text, "utf-16-le" if raw[1] == 0 else "utf-16-be"
        raise CsvProblem(f"the file holds binary data (a NUL byte on line {_line_at(raw, raw.index(0))}), "
                         f"not CSV text")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        first_bad = exc.start
    bad = raw.decode("utf-8", errors="replace").count("\ufffd") - raw.count(b"\xef\xbf\xbd")
    good = len(_UTF8_MULTIBYTE.findall(raw))
    if good > 4 * bad:  # mostly UTF-8 with a few broken bytes: reading it as Windows-1252 would garble every accent
        # (Windows-1252 text forms a valid UTF-8 pair only by chance, e.g. `ß“`: far fewer than its lone accents)
        raise CsvProblem(f"line {_line_at(raw, first_bad)} holds bytes that are not UTF-8 while the rest of the "
                         f"file is UTF-8 (mixed encodings): save the file again as CSV UTF-8")
    return raw.decode("latin-1").translate(_CP1252), "windows-1252"


# --- text to records ------------------------------------------------------------------------------------------

_SEP_LINE = re.compile(r'^"?sep=(?P<d>[,;\t])"?[,;\t]*\r?\n?$', re.IGNORECASE)


def _outside_quotes(line: str) -> dict[str, int]:
    counts = dict.fromkeys(DELIMITERS, 0)
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    return counts


def sniff_delimiter(header_line: str, next_lines: Collection[str] = ()) -> str:
    """The one of `,` `;` tab that the header line uses most outside quotes (`,` when it names one column); a tie
    (`name;Street, nr`) goes to the one the next lines use as often as the header, then to `,` `;` tab."""
    counts = _outside_quotes(header_line)
    top = max(counts.values())
    if not top:
        return ","
    tied = [d for d in DELIMITERS if counts[d] == top]
    if len(tied) == 1:
        return tied[0]
    following = [_outside_quotes(line) for line in next_lines]
    return max(tied, key=lambda d: sum(c[d] == top for c in following))  # max keeps the first of equals


class _Lines:
    """The text's lines (any of CRLF, LF, CR ends one) for the csv reader, remembering where each starts."""

    def __init__(self, text: str):
        self.text = text
        self.starts: list[int] = []

    def __iter__(self) -> Iterator[str]:
        pos = 0
        for line in io.StringIO(self.text, newline=""):
            self.starts.append(pos)
            pos += len(line)
            yield line


def _first_lines(text: str, sample: int = 5) -> tuple[int, str, list[str]]:
    """The first non-blank physical line, its number and the next few non-blank lines."""
    found: tuple[int, str] | None = None
    following: list[str] = []
    for number, line in enumerate(io.StringIO(text, newline=""), start=1):
        if not line.strip(' \t\r\n,;"'):
            continue
        if found is None:
            found = number, line
        elif len(following) < sample:
            following.append(line)
        else:
            break
    if found is None:
        raise CsvProblem("the file is empty: it needs a header row (e.g. name,email,phone) and a row per client")
    return found[0], found[1], following


def _records(text: str, delimiter: str) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of every record, blank ones included."""
    lines = _Lines(text)
    reader = csv.reader(lines, delimiter=delimiter, quotechar='"', doublequote=True, skipinitialspace=True,
                        strict=False)
    previous = 0
    last_start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            if "field larger than field limit" in str(exc):
                raise CsvProblem(f"line {previous + 1}: a cell is longer than {MAX_CELL:,} characters") from None
            raise CsvProblem(f"line {previous + 1}: {exc}") from None  # pragma: no cover - non-strict reads all
        last_start = previous + 1
        yield last_start, cells
        previous = reader.line_num
    if lines.starts:  # an opening quote never closed swallows the rest of the file into one cell
        tail = text[lines.starts[last_start - 1]:] if last_start <= len(lines.starts) else ""
        try:
            for _ in csv.reader(io.StringIO(tail, newline=""), delimiter=delimiter, skipinitialspace=True,
                                strict=True):
                pass
        except csv.Error as exc:
            if "unexpected end of data" in str(exc):
                raise CsvProblem(f'line {last_start}: a quoted cell is never closed (a `"` is missing), so the '
                                 f"rest of the file would be read as one cell") from None


# --- cells to a create body -------------------------------------------------------------------------------------

ENUM_FIELDS = frozenset({"type", "status", "pricing_tier", "communication_preference"})


def clean_cell(value: str) -> str:
    """A cell as the import reads it: without the `'` an export puts before a formula-like start, trimmed."""
    return unsafe_cell(value).strip()


def parse_bool(value: str) -> bool | str:
    word = value.casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return value  # left as text: the model names the field


def _custom_value(value: str, kind: str | None) -> Any:
    if kind == "boolean":
        return parse_bool(value)
    if kind == "number":
        if re.fullmatch(r"[+-]?\d{1,15}", value):
            return int(value)
        if re.fullmatch(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", value):
            number = float(value)
            if number == number and abs(number) != float("inf"):
                return number
    return value


def _split(value: str) -> list[str]:
    if "\\" in value:
        return client_csv.split_list(value)
    return [item.strip() for item in value.split(client_csv.LIST_SEPARATOR) if item.strip()]


def _convert(target: str, value: str) -> Any:
    if target in ENUM_FIELDS:
        return value.lower()
    if target == "tax_exempt":
        return parse_bool(value)
    if target == "payment_terms_days":
        return int(value) if value.isascii() and value.isdigit() and len(value) <= 9 else value  # else the model
        # names the field (a longer number is out of range anyway)
    if target == "tags":  # `|` between tags, as the export writes them (`\|` inside one); a `,` is part of a tag
        return _split(value)
    if target == "category_ids":  # ids hold neither `|` nor `,`: both separate
        return [i.strip() for item in _split(value) for i in item.split(",") if i.strip()]
    return value


def build_body(cells: Mapping[str, str], custom_types: Mapping[str, str | None]) -> dict[str, Any]:
    """A POST /v1/clients body from {field: cell} (cells as in the file): empty cells are left out, addresses and
    custom fields nested, lists split, booleans and whole numbers typed as JSON would carry them."""
    data: dict[str, Any] = {}
    addresses: dict[str, dict[str, str]] = {}
    custom: dict[str, Any] = {}
    for target, cell in cells.items():
        value = clean_cell(cell)
        if not value:
            continue
        if target.startswith("custom_fields."):
            key = target.removeprefix("custom_fields.")
            custom[key] = _custom_value(value, custom_types.get(key))
            continue
        kind, _, part = target.partition("_")
        if kind in ADDRESS_KINDS and part in ADDRESS_PARTS:
            addresses.setdefault(kind, {})[part] = value
            continue
        converted = _convert(target, value)
        if converted != []:
            data[target] = converted
    if data.get("pricing_tier", "standard") != "custom":
        # the tier decides the multiplier; an export writes every client's, which only a custom tier may carry
        data.pop("price_multiplier", None)
    if addresses:
        data["addresses"] = [{"kind": kind, **addresses[kind]} for kind in ADDRESS_KINDS if kind in addresses]
    if custom:
        data["custom_fields"] = custom
    return data


# --- duplicates and fingerprints --------------------------------------------------------------------------------

def normalise_email(value: str) -> str:
    return value.strip().casefold()


def normalise_vat(value: str) -> str:
    """Upper case without spaces, dots, dashes and commas; the country prefix is kept (`nl 8123.45.678 b01` ->
    `NL812345678B01`)."""
    return re.sub(r"[\s.,\-]+", "", value).upper()


def duplicate_keys(data: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The keys a row is a duplicate by: its normalised email and VAT number (those it has)."""
    keys = []
    for name, normalise in (("email", normalise_email), ("vat_number", normalise_vat)):
        value = data.get(name)
        if isinstance(value, str) and normalise(value):
            keys.append((name, normalise(value)))
    return keys


def fingerprint(data: Mapping[str, Any]) -> str:
    """sha256 of the row's data with email and VAT normalised: the same client data gives the same fingerprint
    whatever the file's encoding, delimiter, header spelling or column order."""
    canonical = dict(data)
    for name, normalise in (("email", normalise_email), ("vat_number", normalise_vat)):
        if isinstance(canonical.get(name), str):
            canonical[name] = normalise(canonical[name])
    text = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def field_name(data: Mapping[str, Any], loc: str) -> str:
    """The column an error location of the create body names: `addresses.0.city` -> `billing_city` (by that
    address's kind), `tags.2` -> `tags`; other locations unchanged."""
    parts = loc.split(".")
    if parts[0] == "addresses" and len(parts) >= 3 and parts[1].isdigit():
        addresses = data.get("addresses") or []
        index = int(parts[1])
        if index < len(addresses) and isinstance(addresses[index], dict):
            return address_column(addresses[index].get("kind", "visiting"), parts[2])
    if parts[0] in ("tags", "category_ids") and len(parts) == 2 and parts[1].isdigit():
        return parts[0]
    return loc


# --- the file -----------------------------------------------------------------------------------------------------

def _custom_types(custom_field_keys: Collection[str] | Mapping[str, str]) -> dict[str, str | None]:
    if isinstance(custom_field_keys, Mapping):
        return dict(custom_field_keys.items())
    return dict.fromkeys(custom_field_keys)


def _cells(n: int) -> str:
    return f"{n} cell" if n == 1 else f"{n} cells"


def read_csv(raw: bytes, custom_field_keys: Collection[str] | Mapping[str, str]) -> ParsedFile:
    """Read an import file into create bodies, one per data row. `custom_field_keys` are the tenant's custom-field
    keys (or {key: type}: then boolean and number fields are typed). Raises CsvProblem when the file as a whole
    cannot be read; row problems are the rows' `errors`."""
    if len(raw) > MAX_BYTES:
        raise FileTooLarge(len(raw))
    text, encoding = decode(raw)
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\x00" in text:
        line = text.count("\n", 0, text.index("\x00")) + 1
        raise CsvProblem(f"the file holds binary data (a NUL character on line {line}), not CSV text")
    first_number, first, following = _first_lines(text)
    sep = _SEP_LINE.match(first)  # Excel's `sep=;` hint line
    delimiter = sep.group("d") if sep else sniff_delimiter(first, following)
    types = _custom_types(custom_field_keys)

    records = _records(text, delimiter)
    header: list[str] | None = None
    header_line = 0
    for line, cells in records:
        if not any(c.strip() for c in cells) or (sep and line == first_number):
            continue
        header, header_line = cells, line
        break
    if header is None:
        raise CsvProblem("missing header: the file needs a header row such as name,email,phone")

    columns: dict[str, str] = {}
    unknown: list[str] = []
    ignored: list[str] = []
    wanted: list[tuple[int, str]] = []  # (cell index, field)
    seen: dict[str, str] = {}
    unnamed: list[int] = []
    for index, raw_name in enumerate(header):
        name = raw_name.strip().lstrip("\ufeff").strip()
        if not name:
            unnamed.append(index)
            continue
        target = map_header(name, types)
        if target is None:
            unknown.append(name)
        elif target == "":
            ignored.append(name)
        else:
            if target in seen:
                raise CsvProblem(f'the columns "{seen[target]}" and "{name}" both map to {target}: keep one')
            seen[target] = name
            columns[name] = target
            wanted.append((index, target))
    if not columns and not ignored:
        shown = delimiter.join(c.strip() for c in header)[:80]
        raise CsvProblem(f'missing header: line {header_line} ("{shown}") names no client field; the first row '
                         f"must be a header such as name,email,phone")
    if "name" not in seen:
        raise CsvProblem("no name column: the header needs a name column (or Company Name, Client Name...)")

    width = len(header)
    rows: list[ParsedRow] = []
    count = 0
    unnamed_used: set[int] = set()
    for line, cells in records:
        if not any(c.strip() for c in cells):
            continue  # a blank line, or one of only delimiters: not a row
        count += 1
        if count > MAX_ROWS:
            continue  # only counted, for the message
        errors: list[RowError] = []
        if len(cells) > width and not any(c.strip() for c in cells[width:]):
            cells = cells[:width]  # trailing empty cells hold nothing: a spreadsheet's extra separators
        if len(cells) != width:
            errors.append(RowError(line, None, f"the row has {_cells(len(cells))}, the header {width}"))
        unnamed_used.update(i for i in unnamed if i < len(cells) and cells[i].strip())
        data = build_body({target: cells[i] if i < len(cells) else "" for i, target in wanted}, types)
        rows.append(ParsedRow(line=line, data=data, fingerprint=fingerprint(data), errors=errors))
    if count > MAX_ROWS:
        raise TooManyRows(count)
    unknown.extend(f"column {i + 1} (no header)" for i in sorted(unnamed_used))
    return ParsedFile(encoding=encoding, delimiter=delimiter, columns=columns, unknown_columns=unknown,
                      rows=rows, ignored_columns=ignored)
