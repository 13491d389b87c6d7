"""Settings routes: client defaults, portal, lead-score thresholds, and custom-field definitions."""
from __future__ import annotations

from chalice import Blueprint, Response
from pydantic import BaseModel

from chalicelib.domain import settings_cases
from chalicelib.domain.settings import SETTINGS_MODELS, CustomFieldDef
from chalicelib.handlers.fields import Model, patch_of
from chalicelib.handlers.routing import Ctx, api

bp = Blueprint(__name__)


def _partial(model: type[BaseModel]) -> type[BaseModel]:
    """The PATCH body of a settings resource: the same fields, all optional, null only where the model takes it."""
    return patch_of(f"{model.__name__}Patch", model)


def _register(name: str, model: type[BaseModel]) -> None:
    path = f"/v1/settings/{name}"
    patch_model = _partial(model)

    @api(bp, "GET", path, summary=f"Read the {name} settings", tag="settings", response=model)
    def read(ctx: Ctx):
        return settings_cases.read_settings(ctx.stores(), name).model_dump(mode="json")

    @api(bp, "PUT", path, summary=f"Replace the {name} settings (fields left out return to defaults)",
         need="admin", tag="settings", body=model, response=model)
    def replace(ctx: Ctx):
        return settings_cases.replace_settings(ctx.stores(), name, ctx.body()).model_dump(mode="json")

    @api(bp, "PATCH", path, summary=f"Change the named {name} settings", need="admin", tag="settings",
         body=patch_model, response=model)
    def patch(ctx: Ctx):
        changes = ctx.body().model_dump(exclude_unset=True, mode="json")
        return settings_cases.patch_settings(ctx.stores(), name, changes).model_dump(mode="json")


class CustomFieldList(Model):
    items: list[CustomFieldDef]


@api(bp, "GET", "/v1/settings/custom-fields", summary="List custom-field definitions", tag="settings",
     response=CustomFieldList)
def list_custom_fields(ctx: Ctx):
    return {"items": [d.model_dump() for d in settings_cases.custom_fields(ctx.stores())]}


@api(bp, "POST", "/v1/settings/custom-fields", summary="Define a custom field", need="admin", tag="settings",
     body=CustomFieldDef, response=CustomFieldDef, status=201, idempotent=True)
def add_custom_field(ctx: Ctx):
    return settings_cases.add_custom_field(ctx.stores(), ctx.body()).model_dump()


@api(bp, "DELETE", "/v1/settings/custom-fields/{key}", summary="Delete a custom-field definition",
     need="admin", tag="settings", status=204)
def delete_custom_field(ctx: Ctx, key: str):
    settings_cases.delete_custom_field(ctx.stores(), key)
    return Response(body="", status_code=204)


for _name, _model in SETTINGS_MODELS.items():
    _register(_name, _model)
