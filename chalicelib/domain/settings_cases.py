"""Settings use cases: read, replace (PUT) or change (PATCH) a settings resource and what follows; custom fields."""
from __future__ import annotations

from typing import Any

from chalicelib.domain.clients import FacetRules
from chalicelib.domain.ports import Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.scoring_cases import reclassify_all
from chalicelib.domain.settings import SETTINGS_MODELS, ClientSettings, CustomFieldDef, Strict
from chalicelib.domain.values import utcnow


def merge(name: str, current: Strict, changes: dict[str, Any]) -> Strict:
    """The named fields over the stored ones; a nested object is merged field by field."""
    data = current.model_dump(mode="json")
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return SETTINGS_MODELS[name].model_validate({k: v for k, v in data.items() if v is not None or k in changes})


def read_settings(stores: Stores, name: str) -> Strict:
    """The stored settings, or the defaults of a new tenant."""
    return stores.settings.get(name)


def replace_settings(stores: Stores, name: str, value: Strict) -> Strict:
    """PUT: the new settings replace the stored ones; of two at once, the last one written wins."""
    old = stores.settings.get(name)
    _claim(stores, old, value)
    stores.settings.put(name, value)
    _follow(stores, name, old, value)
    return value


def patch_settings(stores: Stores, name: str, changes: dict[str, Any]) -> Strict:
    """PATCH: only the named fields change. Written over the state read, so a field another PATCH wrote
    meanwhile is kept (the merge is done again on it)."""
    first, _ = stores.settings.read(name)
    _claim(stores, first, merge(name, first, changes))

    def attempt() -> tuple[Strict, Strict]:
        current, written_at = stores.settings.read(name)
        new = merge(name, current, changes)
        stores.settings.put_if_unchanged(name, new, written_at)
        return current, new

    old, new = retrying(attempt, f"the {name} settings")
    _follow(stores, name, old, new)
    return new


def _claim(stores: Stores, old: Strict, new: Strict) -> None:
    """A new inbound address routes mail to this tenant (409 when another tenant has it)."""
    if isinstance(old, ClientSettings) and isinstance(new, ClientSettings) and new.inbound_address:
        stores.claim_inbound_address(new.inbound_address, old.inbound_address)


def _follow(stores: Stores, name: str, old: Strict, new: Strict) -> None:
    """Clients follow new settings: facets when what counts as high value or new changes, classes when the
    lead-score thresholds do."""
    if isinstance(old, ClientSettings) and isinstance(new, ClientSettings):
        if (old.high_value_threshold, old.new_client_days) != (new.high_value_threshold, new.new_client_days):
            now = utcnow()
            stores.clients.refacet_all(FacetRules.of(old, now), FacetRules.of(new, now))
    elif name == "lead-score-thresholds":
        reclassify_all(stores)


def custom_fields(stores: Stores) -> list[CustomFieldDef]:
    """The tenant's custom-field definitions."""
    return stores.settings.custom_fields()


def add_custom_field(stores: Stores, definition: CustomFieldDef) -> CustomFieldDef:
    """Define a custom field; a key defined already is 409 `custom_field_exists`."""
    return stores.settings.add_custom_field(definition)


def delete_custom_field(stores: Stores, key: str) -> None:
    """Remove a custom-field definition (values stored on clients stay); 404 for an unknown key."""
    stores.settings.delete_custom_field(key)
