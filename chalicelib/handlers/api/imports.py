"""Client import routes: import a CSV file (dry run, in the request or as a job), list and read imports, revert one."""
from __future__ import annotations

import json
from typing import Any, Literal

from chalice import Blueprint, Response
from pydantic import Field, ValidationError

from chalicelib.domain import client_import, import_cases
from chalicelib.handlers import errors
from chalicelib.handlers.api.clients import ClientCreate, ClientOut
from chalicelib.handlers.fields import ListQuery, Model, Query, page_of, read_only_of
from chalicelib.handlers.pagination import decode_cursor, encode_cursor, query_scope
from chalicelib.handlers.routing import Ctx, api, json_response

bp = Blueprint(__name__)

# text/csv first; spreadsheets and browsers also label CSV files these ways.
CLIENT_READ_ONLY = read_only_of(ClientOut, ClientCreate)  # a row's fields named read-only as POST /v1/clients does
CSV_TYPES = ["text/csv", "application/csv", "application/vnd.ms-excel", "text/plain", "application/octet-stream"]


def validate_row(data: dict[str, Any]) -> tuple[dict[str, Any] | None, list[dict]]:
    """A row's create body checked exactly as POST /v1/clients checks its JSON body (strict JSON types)."""
    try:
        body = ClientCreate.model_validate_json(json.dumps(data), strict=True)
    except ValidationError as exc:
        return None, errors.details_of(exc, CLIENT_READ_ONLY)
    return body.model_dump(exclude_none=True), []


import_cases.register(validate_row)


class ImportQuery(Query):
    dry_run: Literal["true", "false"] = "false"


class RowError(Model):
    row: int
    field: str | None
    message: str


class Duplicate(Model):
    row: int
    field: Literal["email", "vat_number"] | None
    value: str | None
    client_id: str | None
    reason: Literal["exists", "earlier_row", "already_imported"]
    earlier_row: int | None = None


class PossibleDuplicate(Model):
    """A row created although live clients (or an earlier row) may be the same: what POST /v1/clients answers 409
    `possible_duplicate` for (exact duplicates by email or VAT number are skipped instead)."""

    row: int
    client_ids: list[str]
    earlier_row: int | None
    reasons: list[Literal["same_name_and_country", "same_email_domain"]]


Status = Literal["queued", "running", "done", "failed"]


class ImportSummary(Model):
    id: str
    status: Status
    rows: int
    processed: int
    created: int
    skipped_duplicates: int
    errors_count: int
    encoding: str | None
    delimiter: str | None
    created_by: str | None
    created_at: str
    finished_at: str | None


class ImportResult(Model):
    id: str | None
    status: Status
    dry_run: bool
    rows: int
    processed: int
    created: int
    skipped_duplicates: int
    errors: list[RowError]
    duplicates: list[Duplicate]
    possible_duplicates: list[PossibleDuplicate] = Field(
        default_factory=list, description="rows created that may duplicate a client (at most 200 kept on a job)")
    encoding: str | None
    delimiter: str | None
    columns: dict[str, str]
    unknown_columns: list[str]
    ignored_columns: list[str]
    errors_dropped: int = 0
    created_by: str | None = None
    error: str | None = None
    created_at: str | None = None
    finished_at: str | None = None


class Kept(Model):
    client_id: str
    reason: str  # "changed since the import", "already archived", "no longer exists"


class Revert(Model):
    id: str
    import_id: str
    status: Status
    archived: int
    kept: list[Kept]
    remaining: int
    created_at: str
    finished_at: str | None


class ImportDetail(ImportResult):
    revert: Revert | None = None


@api(bp, "POST", "/v1/clients/import", summary="Import clients from a CSV file", need="manager", tag="imports",
     query=ImportQuery, response=ImportResult, content_types=CSV_TYPES, max_body=client_import.MAX_BYTES,
     also={202: "A file of more than 1,000 data rows: the import runs as a job (GET /v1/imports/{import_id}).",
           413: "`payload_too_large`: the file is larger than 10 MiB or has more than 10,000 data rows.",
           415: "`unsupported_media_type`: the body is not CSV (send `Content-Type: text/csv`)."},
     also_bodies={202: ImportResult})
def import_clients(ctx: Ctx) -> Response:
    params = ctx.query()
    status, answer = import_cases.import_file(ctx.stores(), ctx.request.raw_body or b"",
                                              dry_run=params.dry_run == "true", validate=validate_row, actor=ctx.actor)
    return json_response(answer, status)


def _summary(view: dict[str, Any]) -> dict[str, Any]:
    return {**{k: view[k] for k in ImportSummary.model_fields if k in view},
            "errors_count": len(view["errors"]) + view["errors_dropped"]}


@api(bp, "GET", "/v1/imports", summary="List imports, newest first", tag="imports", query=ListQuery,
     response=page_of(ImportSummary), list_response=True)
def list_imports(ctx: Ctx) -> dict[str, Any]:
    params = ctx.query()
    scope = query_scope("imports", {})
    after = decode_cursor(params.cursor, ctx.tenant_id, scope, (str,))
    views, next_after = import_cases.list_imports(ctx.stores(), params.limit, after[0] if after else None)
    return {"items": [_summary(v) for v in views],
            "next_cursor": encode_cursor(ctx.tenant_id, scope, [next_after]) if next_after else None}


@api(bp, "GET", "/v1/imports/{import_id}", summary="Get an import: progress, counts, errors, latest revert",
     tag="imports", response=ImportDetail)
def get_import(ctx: Ctx, import_id: str) -> dict[str, Any]:
    return import_cases.get_import(ctx.stores(), import_id)


@api(bp, "POST", "/v1/imports/{import_id}/revert", summary="Revert an import: archive the clients it created "
     "that nobody changed since", need="manager", tag="imports", response=Revert,
     also={202: "The revert goes on as a job (`remaining` clients left); GET /v1/imports/{import_id} shows it."})
def revert_import(ctx: Ctx, import_id: str) -> Response:
    status, answer = import_cases.revert_import(ctx.stores(), import_id, actor=ctx.actor)
    return json_response(answer, status)
