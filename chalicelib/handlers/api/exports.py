"""Client export: the filtered list as CSV, in the answer or, when larger than an answer may be, behind a link."""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import tempfile
from datetime import datetime, timedelta
from typing import IO, Annotated

from chalice import Blueprint, Response
from pydantic import Field
from ulid import ULID

from chalicelib import blobs
from chalicelib.config import get_settings
from chalicelib.domain import client_cases
from chalicelib.domain.errors import BadRequest, NotFound
from chalicelib.domain.values import iso, utcnow
from chalicelib.handlers import errors
from chalicelib.handlers.api.clients import ClientFilters
from chalicelib.handlers.fields import Model, Query, Text
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)

CSV = "text/csv; charset=utf-8"
LINK_SECONDS = 15 * 60  # how long an export's link works (S3's presigned URL, or the local run's signed one)


class ExportLink(Model):
    url: str = Field(description="The CSV, downloadable without a bearer token until `expires_at`.")
    expires_at: str = Field(description="ISO 8601 UTC; the link answers 404 (locally) or 403 (S3) after it.")


class ExportDownloadQuery(Query):
    token: Annotated[str, Text(2000, 1)]


def export_key(tenant_id: str, export_id: str) -> str:
    return f"exports/{tenant_id}/{export_id}.csv"  # the bucket's lifecycle rule drops `exports/` after a day


def _disposition(filename: str) -> str:
    return f'attachment; filename="{filename}"'


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _mac(payload: bytes) -> bytes:
    # Its own purpose prefix: no list cursor, signed with the same secret, can ever pass as a link token.
    return hmac.new(get_settings().cursor_secret, b"export-link\n" + payload, hashlib.sha256).digest()


def link_token(tenant_id: str, export_id: str, expires_at: datetime, filename: str) -> str:
    """A tamper-proof token naming one export of one tenant until `expires_at` (the local run's links)."""
    payload = json.dumps({"t": tenant_id, "e": export_id, "x": int(expires_at.timestamp()), "f": filename},
                         separators=(",", ":")).encode()
    return f"{_b64(payload)}.{_b64(_mac(payload))}"


def _read_token(token: str, export_id: str) -> dict:
    """The token's claims when it is this export's, unaltered and unexpired; else 404 (a dead link)."""
    try:
        text, signature = token.split(".")
        payload = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        good = hmac.compare_digest(base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4)), _mac(payload))
        claims = json.loads(payload) if good else None
    except (ValueError, TypeError):
        claims = None
    if not isinstance(claims, dict) or claims.get("e") != export_id or not isinstance(claims.get("x"), int) \
            or not isinstance(claims.get("t"), str) or not isinstance(claims.get("f"), str):
        raise NotFound("no such export: the link is not valid")
    if claims["x"] < utcnow().timestamp():
        raise NotFound("the export's link has expired; export again")
    return claims


def _check_accept(ctx: Ctx) -> None:
    """The CSV travels as bytes, which Chalice and API Gateway answer only to an `Accept` naming a binary type (or
    `*/*`); say so before any work, not after it. `text/csv` is what API Gateway also decodes the bytes for."""
    accept = (ctx.header("accept") or "").lower()
    binary = {t.lower() for t in bp.current_app.api.binary_types}  # app.py's list
    if "*/*" not in accept and not {part.strip() for part in re.split(r"[,;]", accept)} & binary:
        raise BadRequest("an export answers text/csv: send `Accept: text/csv`",
                         [{"field": "Accept", "message": "must name text/csv"}])


def _base_url(ctx: Ctx) -> str:
    host = ctx.header("host")
    return f"{ctx.header('x-forwarded-proto') or 'http'}://{host}" if host else ""


@api(bp, "GET", "/v1/clients/export", summary="Export the filtered client list as CSV", need="manager",
     query=ClientFilters, content_type="text/csv", also_bodies={303: ExportLink},
     also={303: "The CSV is larger than one answer may carry (EXPORT_INLINE_MAX_BYTES, 4 MiB): it was stored and "
                "`Location` (and `url`) link to it for 15 minutes, without a bearer token."})
def export_clients(ctx: Ctx):
    filters = ctx.query().model_dump()
    _check_accept(ctx)
    inline_max = get_settings().export_inline_max_bytes
    filename = f"clients-{utcnow():%Y-%m-%d}.csv"
    # In memory up to the answer's limit, on disk (/tmp) beyond it: a large export never sits in memory whole.
    with tempfile.SpooledTemporaryFile(max_size=max(inline_max, 1)) as out:
        client_cases.export_clients(ctx.stores(), filters, out)
        size = out.tell()
        out.seek(0)
        if size <= inline_max:
            return Response(out.read(), status_code=200,
                            headers={"Content-Type": CSV, "Content-Disposition": _disposition(filename)})
        return _stored(ctx, out, filename)


def _stored(ctx: Ctx, out: IO[bytes], filename: str) -> Response:
    """Store a CSV too large for an answer and link to it (303): S3's presigned URL, or the local run's own."""
    bucket = get_settings().attachments_bucket
    export_id = str(ULID())
    key = export_key(ctx.tenant_id, export_id)
    blobs.put_file(bucket, key, out, CSV)
    expires = (utcnow() + timedelta(seconds=LINK_SECONDS)).replace(microsecond=0)
    if blobs.is_local():
        url = f"{_base_url(ctx)}/v1/exports/{export_id}?token={link_token(ctx.tenant_id, export_id, expires, filename)}"
    else:
        url = blobs.presigned_get(bucket, key, LINK_SECONDS, filename)
    return Response(json.dumps({"url": url, "expires_at": iso(expires)}), status_code=303,
                    headers={"Content-Type": errors.JSON, "Location": url})


@api(bp, "GET", "/v1/exports/{export_id}", summary="Download a large export (the local run's link)",
     need="public", query=ExportDownloadQuery, content_type="text/csv")
def download_export(ctx: Ctx, export_id: str):
    claims = _read_token(ctx.query().token, export_id)
    _check_accept(ctx)
    path = blobs.local_path(get_settings().attachments_bucket, export_key(claims["t"], export_id))
    if path is None or not path.is_file():  # in AWS the link is S3's own; this route serves the local run
        raise NotFound("no such export")
    return Response(path.read_bytes(), status_code=200,
                    headers={"Content-Type": CSV, "Content-Disposition": _disposition(claims["f"])})

