"""The contact person and its rules: numbers, name splitting, badges, flags, portal access and invitations."""
from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from nameparser import HumanName
from pydantic import Field

from chalicelib.domain.clients import generate_number
from chalicelib.domain.errors import Conflict, ValidationFailed
from chalicelib.domain.values import Record, is_key_id

NODE_READ_ONLY = ("full_name", "email", "phone", "job_title")
INVITATION_TTL = timedelta(days=7)


class Contact(Record):
    id: str
    tenant_id: str = Field(exclude=True)
    contact_number: str
    client_id: str
    full_name: str
    first_name: str | None = None
    last_name: str | None = None
    email: str
    phone: str | None = None
    mobile: str | None = None
    job_title: str | None = None
    position: str | None = None
    department: str | None = None
    notes: str | None = None
    is_primary: bool = False
    is_billing_contact: bool = False
    is_technical_contact: bool = False
    portal_access: bool = False
    portal_invited_at: datetime | None = None
    synced_from_node: bool = False
    node_user_id: str | None = None
    last_synced_at: datetime | None = None
    node_updated_at: datetime | None = Field(default=None, exclude=True)
    invitation_hash: str | None = Field(default=None, exclude=True)
    invitation_expires_at: datetime | None = Field(default=None, exclude=True)
    version: int = 0
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = Field(default=None, exclude=True)
    updated_by: str | None = Field(default=None, exclude=True)

    @property
    def badges(self) -> list[str]:
        flags = (("primary", self.is_primary), ("node_user", self.synced_from_node), ("portal", self.portal_access),
                 ("billing", self.is_billing_contact), ("technical", self.is_technical_contact))
        return [name for name, on in flags if on]

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    def public(self) -> dict[str, Any]:
        data = super().public()
        data["badges"] = self.badges
        return data

    def summary(self) -> dict[str, Any]:
        """The client's `primary_contact` view of this contact."""
        return {"id": self.id, "full_name": self.full_name, "email": self.email, "phone": self.phone}


ContactChange = tuple[Contact | None, Contact]  # (as read, or None when new; as it should be stored)


def split_name(full_name: str) -> tuple[str | None, str | None]:
    """First and last name of a full name, with titles, middle names and suffixes understood."""
    name = HumanName(full_name)
    first = name.first or None
    last = " ".join(p for p in (name.last,) if p) or None
    if first and not last and " " not in full_name.strip():
        return first, None
    return first, last


def new_contact(data: dict[str, Any], *, tenant_id: str, contact_id: str, client_id: str, now: datetime,
                first_of_client: bool) -> Contact:
    """A new contact; the first contact of a client becomes its primary."""
    data = dict(data)
    first, last = split_name(data["full_name"])
    data.setdefault("first_name", first)
    data.setdefault("last_name", last)
    if data.get("first_name") is None:
        data["first_name"] = first
    if data.get("last_name") is None:
        data["last_name"] = last
    data["is_primary"] = first_of_client or bool(data.get("is_primary"))
    return Contact(**{k: v for k, v in data.items() if v is not None}, id=contact_id, tenant_id=tenant_id,
                   client_id=client_id, contact_number=generate_number("CON", now), created_at=now, updated_at=now)


NOT_NULL = ("full_name", "email", "is_billing_contact", "is_technical_contact")


def apply_changes(contact: Contact, changes: dict[str, Any], now: datetime) -> Contact:
    """Apply a PATCH's named fields; Node-synced identity fields stay as Node sent them."""
    if contact.synced_from_node:
        locked = [k for k in NODE_READ_ONLY if k in changes and changes[k] != getattr(contact, k)]
        if locked:
            raise Conflict("node_synced_read_only", f"{', '.join(locked)} of a Node-synced contact come from Node",
                           [{"field": k, "message": "is synced from Node"} for k in locked])
    for key in NOT_NULL:
        if key in changes and changes[key] is None:
            raise ValidationFailed.field(key, "may not be null")
    if "is_primary" in changes:
        wanted = changes.pop("is_primary")
        if wanted is False and contact.is_primary:
            raise Conflict("primary_contact", "make another contact primary instead of unflagging the primary")
        if wanted:
            changes["is_primary"] = True  # the use case demotes the previous primary in the same transaction
    if "full_name" in changes and changes["full_name"] != contact.full_name:
        first, last = split_name(changes["full_name"])
        changes.setdefault("first_name", first)
        changes.setdefault("last_name", last)
    return contact.model_copy(update={**changes, "updated_at": now})


def ensure_can_delete(contact: Contact, has_open_project: bool) -> None:
    if contact.is_primary:
        raise Conflict("primary_contact", "the primary contact cannot be deleted; make another contact primary first")
    if has_open_project:
        raise Conflict("contact_on_active_project", "the contact is named on a planned or active project")


def ensure_portal_allowed(contact: Contact, portal_enabled: bool) -> None:
    from email_validator import EmailNotValidError, validate_email

    if not portal_enabled:
        raise Conflict("portal_disabled", "the client portal is turned off in settings/portal")
    if contact.is_deleted:
        raise Conflict("contact_deleted", "the contact is deleted")
    try:
        validate_email(contact.email, check_deliverability=False)
    except EmailNotValidError:
        raise Conflict("invalid_email", "the contact has no valid email address") from None


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def issue_invitation(contact: Contact, now: datetime) -> tuple[Contact, str]:
    """A new single-use link secret; storing only its hash voids every earlier invitation."""
    secret = secrets.token_urlsafe(32)
    updated = contact.model_copy(update={"invitation_hash": hash_secret(secret),
                                         "invitation_expires_at": now + INVITATION_TTL,
                                         "portal_invited_at": now, "updated_at": now})
    return updated, secret


def invitation_token(tenant_id: str, client_id: str, contact_id: str, secret: str) -> str:
    """The link token: where the contact lives, then the secret (only its hash is stored)."""
    where = base64.urlsafe_b64encode(f"{tenant_id}\n{client_id}\n{contact_id}".encode()).decode().rstrip("=")
    return f"{where}.{secret}"


def parse_invitation_token(token: str) -> tuple[str, str, str, str] | None:
    """(tenant, client, contact, secret) of a link token, or None when it is not one. Anyone can send a token, so
    its parts must be ids that can name a stored key (a tenant `a#b` would otherwise reach the key builder)."""
    try:
        where, secret = token.split(".", 1)
        decoded = base64.urlsafe_b64decode(where + "=" * (-len(where) % 4)).decode()
        tenant_id, client_id, contact_id = decoded.split("\n")
    except ValueError:  # bad base64 (binascii.Error), bad UTF-8 (UnicodeDecodeError), or not three parts
        return None
    if not (secret and all(is_key_id(part) for part in (tenant_id, client_id, contact_id))):
        return None
    return tenant_id, client_id, contact_id, secret


def invitation_valid(contact: Contact, secret: str, now: datetime) -> bool:
    """True for the latest, unused, unexpired invitation of a contact who still has portal access."""
    return (contact.portal_access and not contact.is_deleted and contact.invitation_hash is not None
            and secrets.compare_digest(contact.invitation_hash, hash_secret(secret))
            and contact.invitation_expires_at is not None and now < contact.invitation_expires_at)
