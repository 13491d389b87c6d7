"""Tenant settings (client defaults, portal, lead-score thresholds) and custom-field definitions."""
from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, EmailStr, Field, WithJsonSchema, field_validator, model_validator

from chalicelib.domain.codes import CURRENCIES, any_case_pattern
from chalicelib.domain.errors import ValidationFailed
from chalicelib.domain.values import Model, MoneyOut


class Strict(Model):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class TierMultipliers(Strict):
    preferred: MoneyOut = Field(default=Decimal("0.95"), gt=0, le=10, max_digits=6, decimal_places=4)
    vip: MoneyOut = Field(default=Decimal("0.90"), gt=0, le=10, max_digits=6, decimal_places=4)


CurrencyCode = Annotated[str, WithJsonSchema({"type": "string", "pattern": any_case_pattern(CURRENCIES)})]


class ClientSettings(Strict):
    default_currency: CurrencyCode = "EUR"
    default_payment_terms_days: int = Field(default=30, ge=0, le=365)
    default_tax_rate: MoneyOut = Field(default=Decimal("0.00"), ge=0, le=100, decimal_places=2)
    tier_multipliers: TierMultipliers = Field(default_factory=TierMultipliers)
    high_value_threshold: MoneyOut = Field(default=Decimal("10000.00"), ge=0, max_digits=14, decimal_places=2)
    new_client_days: int = Field(default=30, ge=1, le=3650)
    sending_address: EmailStr | None = Field(default=None, max_length=254)
    inbound_address: EmailStr | None = Field(default=None, max_length=254)

    @field_validator("default_currency")
    @classmethod
    def _iso_4217(cls, v: str) -> str:
        if v.upper() not in CURRENCIES:
            raise ValueError("is not an ISO 4217 code")
        return v.upper()


class PortalSettings(Strict):
    enabled: bool = False
    show_communications: bool = True
    show_invoices: bool = True
    allow_quote_approval: bool = True


class LeadScoreThresholds(Strict):
    hot: int = Field(default=80, ge=1, le=100)
    warm: int = Field(default=50, ge=0, le=100)

    @model_validator(mode="after")
    def _warm_below_hot(self) -> LeadScoreThresholds:
        if self.warm >= self.hot:
            raise ValueError("warm must be lower than hot")
        return self


SETTINGS_MODELS: dict[str, type[Strict]] = {
    "client": ClientSettings,
    "portal": PortalSettings,
    "lead-score-thresholds": LeadScoreThresholds,
}

ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CUSTOM_FIELD_KEY = re.compile(r"^[a-z][a-z0-9_]{0,49}$")


class CustomFieldDef(Strict):
    key: str = Field(pattern=CUSTOM_FIELD_KEY.pattern, description=(
        "lowercase letters, digits and underscores, starting with a letter, at most 50"))
    label: str = Field(min_length=1, max_length=100)
    type: Literal["text", "number", "date", "boolean", "select"]
    options: list[str] = Field(default_factory=list, max_length=100)
    required: bool = False

    @model_validator(mode="after")
    def _options_for_select(self) -> CustomFieldDef:
        if self.type == "select" and not self.options:
            raise ValueError("a select field needs options")
        if self.type != "select" and self.options:
            raise ValueError("only select fields take options")
        return self


def _check_value(d: CustomFieldDef, value: Any) -> str | None:
    """The problem with one custom-field value, or None when it fits its definition."""
    if value is None:
        return "is required" if d.required else None
    if d.type == "text":
        return None if isinstance(value, str) and len(value) <= 1000 else "must be a string of at most 1000 characters"
    if d.type == "number":
        ok = isinstance(value, (int, float, str)) and not isinstance(value, bool)
        try:
            ok = ok and Decimal(str(value)).is_finite()
        except ArithmeticError:
            ok = False
        return None if ok else "must be a number"
    if d.type == "date":
        try:
            if not (isinstance(value, str) and ISO_DATE.match(value)):
                raise ValueError(value)
            date.fromisoformat(value)
            return None
        except ValueError:
            return "must be a date YYYY-MM-DD"
    if d.type == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    return None if value in d.options else f"must be one of {', '.join(d.options)}"


def validate_custom_fields(values: dict[str, Any], defs: list[CustomFieldDef], *, creating: bool) -> dict[str, Any]:
    """Check `custom_fields` against the tenant's definitions; unknown keys and wrong types are 422s."""
    by_key = {d.key: d for d in defs}
    details = []
    for key, value in values.items():
        d = by_key.get(key)
        if d is None:
            details.append({"field": f"custom_fields.{key}", "message": "is not a defined custom field"})
            continue
        problem = _check_value(d, value)
        if problem:
            details.append({"field": f"custom_fields.{key}", "message": problem})
    if creating:
        for d in defs:
            if d.required and values.get(d.key) is None and d.key not in {x["field"][14:] for x in details}:
                details.append({"field": f"custom_fields.{d.key}", "message": "is required"})
    if details:
        raise ValidationFailed("custom_fields are invalid", details)
    return values
