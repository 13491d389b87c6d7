"""Settings use cases: replace a settings resource (PUT) or change its named fields (PATCH), and what follows."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib.domain.clients import FacetRules
from chalicelib.domain.retry import retrying
from chalicelib.domain.scoring_cases import reclassify_all
from chalicelib.domain.settings import SETTINGS_MODELS, ClientSettings, Strict
from chalicelib.domain.values import utcnow

ClaimAddress = Callable[[str, "str | None"], None]  # (inbound address, the one it replaces): 409 when taken


def merge(name: str, current: Strict, changes: dict[str, Any]) -> Strict:
    """The named fields over the stored ones; a nested object is merged field by field."""
    data = current.model_dump(mode="json")
    for key, value in changes.items():
        data[key] = {**data[key], **value} if isinstance(value, dict) else value
    return SETTINGS_MODELS[name].model_validate({k: v for k, v in data.items() if v is not None or k in changes})


def replace_settings(stores: Any, name: str, value: Strict, claim_address: ClaimAddress) -> Strict:
    """PUT: the new settings replace the stored ones; of two at once, the last one written wins."""
    old = stores.settings.get(name)
    _claim(name, old, value, claim_address)
    stores.settings.put(name, value)
    _follow(stores, name, old, value)
    return value


def patch_settings(stores: Any, name: str, changes: dict[str, Any], claim_address: ClaimAddress) -> Strict:
    """PATCH: only the named fields change. Written over the state read, so a field another PATCH wrote
    meanwhile is kept (the merge is done again on it)."""
    first, _ = stores.settings.read(name)
    _claim(name, first, merge(name, first, changes), claim_address)

    def attempt() -> tuple[Strict, Strict]:
        current, written_at = stores.settings.read(name)
        new = merge(name, current, changes)
        stores.settings.put(name, new, expected=written_at)
        return current, new

    old, new = retrying(attempt, f"the {name} settings")
    _follow(stores, name, old, new)
    return new


def _claim(name: str, old: Strict, new: Strict, claim_address: ClaimAddress) -> None:
    if name == "client" and new.inbound_address:
        claim_address(new.inbound_address, old.inbound_address)


def _follow(stores: Any, name: str, old: Strict, new: Strict) -> None:
    """Clients follow new settings: facets when what counts as high value or new changes, classes when the
    lead-score thresholds do."""
    if name == "client":
        old_c: ClientSettings = old
        if (old_c.high_value_threshold, old_c.new_client_days) != (new.high_value_threshold, new.new_client_days):
            now = utcnow()
            stores.clients.refacet_all(FacetRules.of(old_c, now), FacetRules.of(new, now))
    elif name == "lead-score-thresholds":
        reclassify_all(stores)
