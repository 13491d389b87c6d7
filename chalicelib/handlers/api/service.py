"""Service routes without auth: health, the OpenAPI document and the HTML API reference."""
from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import tables
from chalicelib.config import get_settings
from chalicelib.domain.errors import Unavailable
from chalicelib.domain.values import utcnow
from chalicelib.handlers.auth import authorize, verify_token
from chalicelib.handlers.fields import Health, HealthQuery
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)

HTML = "text/html; charset=utf-8"


@api(bp, "GET", "/v1/health", summary="Health check: the database answers; the build; deep: stream lag, schedules",
     need="public", tag="service", query=HealthQuery, response=Health,
     also={401: "`?deep=true` without a valid token", 403: "`?deep=true` with a token below admin"})
def health(ctx: Ctx):
    deep = ctx.query().deep
    if deep:  # the public check says only "up"; what the service is doing is for admins
        authorize(verify_token(ctx.header("authorization")), "admin")
    if not tables.table_reachable():
        raise Unavailable("the database cannot be reached")
    settings = get_settings()
    answer: dict = {"status": "ok", "build": {"version": settings.build_version, "stage": settings.stage}}
    if deep:
        from chalicelib.domain import health_cases
        from chalicelib.domain.schedule_cases import SYSTEM_TENANT
        from chalicelib.tables.stores import Directory, Stores

        answer.update(health_cases.deep_status(Directory(), Stores(SYSTEM_TENANT), utcnow()))
    return answer


@api(bp, "GET", "/v1/openapi.json", summary="This API as an OpenAPI 3.1 document", need="public", tag="service")
def openapi_document(ctx: Ctx):
    from chalicelib.handlers import openapi  # builds every model's schema: imported by the routes that need it

    return openapi.build_openapi()


@api(bp, "GET", "/v1/docs", summary="The API reference as an HTML page", need="public", tag="service",
     content_type="text/html")
def docs_page(ctx: Ctx):
    from chalicelib.handlers import openapi

    return Response(body=openapi.render_docs(), status_code=200, headers={"Content-Type": HTML})
