"""Settings repository: one item per settings resource and one per custom-field definition."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, TypeVar, overload

from pynamodb.exceptions import PutError
from pynamodb.expressions.condition import Condition

from chalicelib.domain.errors import Conflict, NotFound, VersionConflict
from chalicelib.domain.settings import (
    SETTINGS_MODELS,
    ClientSettings,
    CustomFieldDef,
    LeadScoreThresholds,
    PortalSettings,
    Strict,
)
from chalicelib.domain.values import utcnow
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import CustomFieldItem, SettingsItem

T = TypeVar("T")
_FIELDS = "custom-fields"  # the memo's name for the custom-field definitions (never a settings resource's name)


class SettingsRepository:
    def __init__(self, tenant_id: str, memo: bool = False):
        """With `memo`, each settings resource and the custom-field definitions are read once for the life of this
        repository (a stream batch's), and its own writes keep what it remembers right; requests read afresh."""
        configure()
        self.tenant_id = tenant_id
        self._memo: dict[str, Any] | None = {} if memo else None

    @overload
    def get(self, name: Literal["client"]) -> ClientSettings: ...
    @overload
    def get(self, name: Literal["portal"]) -> PortalSettings: ...
    @overload
    def get(self, name: Literal["lead-score-thresholds"]) -> LeadScoreThresholds: ...
    @overload
    def get(self, name: str) -> Strict: ...

    def get(self, name: str) -> Strict:
        """The stored settings, or the defaults of a new tenant."""
        return self._memoized(name, lambda: self._get(name))

    def _get(self, name: str) -> Strict:
        model = SETTINGS_MODELS[name]
        with storage_errors():
            try:
                item = SettingsItem.get(keys.settings_pk(self.tenant_id), keys.settings_sk(name))
            except SettingsItem.DoesNotExist:
                return model()
        return model.model_validate(item.data)

    def _memoized(self, name: str, read: Callable[[], T]) -> T:
        """What `read` answers; with the memo on, only its first answer is read."""
        if self._memo is None:
            return read()
        if name not in self._memo:
            self._memo[name] = read()
        return self._memo[name]

    def _forget(self, name: str) -> None:
        """A write through this repository: its next read reads again."""
        if self._memo is not None:
            self._memo.pop(name, None)

    def read(self, name: str) -> tuple[Strict, datetime | None]:
        """The stored settings (consistent) and when they were written: what a later `put_if_unchanged` expects."""
        model = SETTINGS_MODELS[name]
        with storage_errors():
            try:
                item = SettingsItem.get(keys.settings_pk(self.tenant_id), keys.settings_sk(name),
                                        consistent_read=True)
            except SettingsItem.DoesNotExist:
                return model(), None
        return model.model_validate(item.data), item.updated_at

    def put(self, name: str, value: Strict) -> Strict:
        """Store the settings; the last writer wins."""
        return self._put(name, value, None)

    def put_if_unchanged(self, name: str, value: Strict, written_at: datetime | None) -> Strict:
        """Store the settings only over the state `read` answered (`written_at` None: none stored yet), else
        VersionConflict."""
        condition = SettingsItem.pk.does_not_exist() if written_at is None else SettingsItem.updated_at == written_at
        return self._put(name, value, condition)

    def _put(self, name: str, value: Strict, condition: Condition | None) -> Strict:
        self._forget(name)  # read again after any write, as stored
        with storage_errors():
            try:
                SettingsItem(keys.settings_pk(self.tenant_id), keys.settings_sk(name),
                             data=value.model_dump(mode="json"), updated_at=utcnow()).save(condition=condition)
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise VersionConflict(f"the {name} settings changed meanwhile") from exc
                raise
        return value

    def custom_fields(self) -> list[CustomFieldDef]:
        return list(self._memoized(_FIELDS, self._custom_fields))

    def _custom_fields(self) -> list[CustomFieldDef]:
        with storage_errors():
            items = CustomFieldItem.query(keys.settings_pk(self.tenant_id),
                                          CustomFieldItem.sk.startswith(keys.CUSTOM_FIELD_PREFIX))
            return [CustomFieldDef.model_validate(i.data) for i in items]

    def add_custom_field(self, definition: CustomFieldDef) -> CustomFieldDef:
        self._forget(_FIELDS)
        item = CustomFieldItem(keys.settings_pk(self.tenant_id), keys.custom_field_sk(definition.key),
                               data=definition.model_dump(mode="json"), created_at=utcnow())
        with storage_errors():
            try:
                item.save(condition=CustomFieldItem.sk.does_not_exist())
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise Conflict("custom_field_exists", f"custom field {definition.key} exists") from exc
                raise
        return definition

    def delete_custom_field(self, key: str) -> None:
        self._forget(_FIELDS)
        with storage_errors():
            try:
                item = CustomFieldItem.get(keys.settings_pk(self.tenant_id), keys.custom_field_sk(key))
            except CustomFieldItem.DoesNotExist:
                raise NotFound(f"custom field {key} not found") from None
            item.delete()
