"""Settings routes: client defaults, portal, lead-score thresholds, and custom-field definitions."""
from __future__ import annotations

from chalice import Blueprint, Response
from pydantic import BaseModel, create_model

from chalicelib.domain.settings import SETTINGS_MODELS, CustomFieldDef
from chalicelib.domain.client_cases import change_client_settings
from chalicelib.domain.scoring_cases import reclassify_all
from chalicelib.handlers.routing import Ctx, api
from chalicelib.tables.clients import ClientRepository
from chalicelib.tables.inbox import claim_address
from chalicelib.tables.settings import SettingsRepository

bp = Blueprint(__name__)


def _partial(model: type[BaseModel]) -> type[BaseModel]:
    """The PATCH body of a settings resource: the same fields, all optional."""
    return create_model(f"{model.__name__}Patch", __config__=model.model_config,
                        **{n: (f.annotation | None, None) for n, f in model.model_fields.items()})


def _store(ctx: Ctx, name: str, value: BaseModel) -> dict:
    repo = SettingsRepository(ctx.tenant_id)
    if name == "client":  # clients may move between the high-value and new facets
        previous = repo.get("client").inbound_address
        if value.inbound_address:
            claim_address(ctx.tenant_id, value.inbound_address, previous)
        stored = change_client_settings(ClientRepository(ctx.tenant_id, ctx.actor), repo, value)
    else:
        stored = repo.put(name, value)
    if name == "lead-score-thresholds":  # every client's class follows the new thresholds
        reclassify_all(ctx.stores())
    return stored.model_dump(mode="json")


def _register(name: str, model: type[BaseModel]) -> None:
    path = f"/v1/settings/{name}"
    patch_model = _partial(model)

    @api(bp, "GET", path, summary=f"Read the {name} settings", tag="settings", response=model)
    def read(ctx: Ctx):
        return SettingsRepository(ctx.tenant_id).get(name).model_dump(mode="json")

    @api(bp, "PUT", path, summary=f"Replace the {name} settings (fields left out return to defaults)",
         need="admin", tag="settings", body=model, response=model)
    def replace(ctx: Ctx):
        return _store(ctx, name, ctx.body())

    @api(bp, "PATCH", path, summary=f"Change the named {name} settings", need="admin", tag="settings",
         body=patch_model, response=model)
    def patch(ctx: Ctx):
        changes = ctx.body().model_dump(exclude_unset=True, mode="json")
        current = SettingsRepository(ctx.tenant_id).get(name).model_dump(mode="json")
        for key, value in changes.items():
            current[key] = {**current[key], **value} if isinstance(value, dict) else value
        merged = model.model_validate({k: v for k, v in current.items() if v is not None or k in changes})
        return _store(ctx, name, merged)


class CustomFieldList(BaseModel):
    items: list[CustomFieldDef]


@api(bp, "GET", "/v1/settings/custom-fields", summary="List custom-field definitions", tag="settings",
     response=CustomFieldList)
def list_custom_fields(ctx: Ctx):
    return {"items": [d.model_dump() for d in SettingsRepository(ctx.tenant_id).custom_fields()]}


@api(bp, "POST", "/v1/settings/custom-fields", summary="Define a custom field", need="admin", tag="settings",
     body=CustomFieldDef, response=CustomFieldDef, status=201, idempotent=True)
def add_custom_field(ctx: Ctx):
    return SettingsRepository(ctx.tenant_id).add_custom_field(ctx.body()).model_dump()


@api(bp, "DELETE", "/v1/settings/custom-fields/{key}", summary="Delete a custom-field definition",
     need="admin", tag="settings", status=204)
def delete_custom_field(ctx: Ctx, key: str):
    SettingsRepository(ctx.tenant_id).delete_custom_field(key)
    return Response(body="", status_code=204)


for _name, _model in SETTINGS_MODELS.items():
    _register(_name, _model)
