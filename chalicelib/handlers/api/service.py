"""Service routes without auth: health, the OpenAPI document and the HTML API reference."""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import tables
from chalicelib.domain.errors import Unavailable
from chalicelib.handlers.fields import Health
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)

HTML = "text/html; charset=utf-8"


@api(bp, "GET", "/v1/health", summary="Health check: the database answers", need="public", tag="service",
     response=Health)
def health(ctx: Ctx):
    if not tables.table_reachable():
        raise Unavailable("the database cannot be reached")
    return {"status": "ok"}


@api(bp, "GET", "/v1/openapi.json", summary="This API as an OpenAPI 3.1 document", need="public", tag="service")
def openapi_document(ctx: Ctx):
    from chalicelib.handlers import openapi  # builds every model's schema: imported by the routes that need it

    return openapi.build_openapi()


@api(bp, "GET", "/v1/docs", summary="The API reference as an HTML page", need="public", tag="service",
     content_type="text/html")
def docs_page(ctx: Ctx):
    from chalicelib.handlers import openapi

    return Response(body=openapi.render_docs(), status_code=200, headers={"Content-Type": HTML})
