"""Contact use cases: one primary and one billing contact per client, kept under concurrent calls."""
from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from ulid import ULID

from chalicelib.domain import duplicate_cases, rate_limits
from chalicelib.domain.clients import Client, FacetRules, PrimaryContact
from chalicelib.domain.contacts import (
    Contact,
    ContactChange,
    apply_changes,
    ensure_can_delete,
    ensure_portal_allowed,
    invitation_valid,
    issue_invitation,
    new_contact,
)
from chalicelib.domain.errors import Conflict, NotFound, StaleVersion, Unauthorized
from chalicelib.domain.ports import ContactStore, Position, Stores
from chalicelib.domain.retry import retrying
from chalicelib.domain.values import utcnow

Edit = Callable[[Client, Contact, datetime], Contact]
# send_invitation(contact, link secret, the tenant's sending address or None): emails the invitation link
InvitationSender = Callable[[Contact, str, str | None], object]


def list_contacts(stores: Stores, client_id: str, q: str | None, limit: int, after: Position | None
                  ) -> tuple[list[Contact], Position | None]:
    """One page of a client's live contacts, by creation (404 for a client of another tenant)."""
    stores.clients.get(client_id)
    return stores.contacts.page(client_id, q, limit, after)


def search_contacts(stores: Stores, q: str | None, limit: int, after: Position | None
                    ) -> tuple[list[Contact], Position | None]:
    """One page of the tenant's live contacts, by name."""
    return stores.contacts.page(None, q, limit, after)


def get_contact(stores: Stores, client_id: str, contact_id: str) -> Contact:
    return stores.contacts.get(client_id, contact_id)


def reconcile(client: Client, contacts: ContactStore, old: Contact | None, new: Contact,
              now: datetime) -> tuple[list[ContactChange], Client]:
    """The other writes a contact change implies: demote the previous primary or billing contact and keep the
    client's `primary_contact` summary and billing pointer in step."""
    changes: list[ContactChange] = [(old, new)]
    updates: dict[str, Any] = {}
    current_primary = client.primary_contact.id if client.primary_contact else None
    if new.is_primary and not new.is_deleted:
        if current_primary and current_primary != new.id:
            previous = contacts.get(client.id, current_primary, include_deleted=True)
            changes.append((previous, previous.model_copy(update={"is_primary": False, "updated_at": now})))
        summary = PrimaryContact(**new.summary())
        if client.primary_contact != summary:
            updates["primary_contact"] = summary
    if new.is_billing_contact and not new.is_deleted:
        if client.billing_contact_id and client.billing_contact_id != new.id:
            previous = contacts.get(client.id, client.billing_contact_id, include_deleted=True)
            changes.append((previous, previous.model_copy(update={"is_billing_contact": False, "updated_at": now})))
        if client.billing_contact_id != new.id:
            updates["billing_contact_id"] = new.id
    elif client.billing_contact_id == new.id:
        updates["billing_contact_id"] = None
    return changes, client.model_copy(update={**updates, "updated_at": now}) if updates else client


def commit(contacts: ContactStore, client: Client, changes: list[ContactChange], new_client: Client,
           rules: FacetRules) -> Contact:
    # The client always takes part: written when it changes, else checked unchanged, so two requests that
    # decided on the same client state cannot both commit (no two primaries or billing contacts).
    contacts.commit(changes, (client, new_client, rules))
    old, new = changes[0]
    return new.model_copy(update={"version": (old.version if old else 0) + 1})


def _rules(stores: Stores, now: datetime) -> FacetRules:
    return FacetRules.of(stores.settings.get("client"), now)


def change_once(stores: Stores, client_id: str, contact_id: str, edit: Edit) -> Contact:
    """Read the client and contact, apply `edit`, write it with everything it implies (VersionConflict: lost)."""
    now = utcnow()
    client = stores.clients.get(client_id)
    contact = stores.contacts.get(client_id, contact_id)
    new = edit(client, contact, now)
    if new == contact:
        return contact
    changes, new_client = reconcile(client, stores.contacts, contact, new, now)
    return commit(stores.contacts, client, changes, new_client, _rules(stores, now))


def add_once(stores: Stores, client_id: str, data: dict[str, Any], allow_duplicate: bool = True) -> Contact:
    """Create a contact with what it implies on the client as read now (VersionConflict: lost a race)."""
    now = utcnow()
    client = stores.clients.get(client_id)  # an unknown client is a 404 before any duplicate is looked for
    if not allow_duplicate:
        duplicate_cases.refuse_duplicate_contact(stores, client_id, data.get("email"))
    contact = new_contact(data, tenant_id=stores.tenant_id, contact_id=str(ULID.from_datetime(now)),
                          client_id=client_id, now=now, first_of_client=client.primary_contact is None)
    changes, new_client = reconcile(client, stores.contacts, None, contact, now)
    return commit(stores.contacts, client, changes, new_client, _rules(stores, now))


def change(stores: Stores, client_id: str, contact_id: str, edit: Edit) -> Contact:
    """change_once, read and decided again after every race it loses."""
    return retrying(lambda: change_once(stores, client_id, contact_id, edit), "the client's contacts")


def add_contact(stores: Stores, client_id: str, data: dict[str, Any], *, allow_duplicate: bool = True) -> Contact:
    """Add a contact; `allow_duplicate=False`: 409 `possible_duplicate` when live contacts have its address."""
    return retrying(lambda: add_once(stores, client_id, data, allow_duplicate), "the client's contacts")


def update_contact(stores: Stores, client_id: str, contact_id: str, changes: dict[str, Any],
                   expected_version: int | None) -> Contact:
    def edit(client: Client, contact: Contact, now: datetime) -> Contact:
        if expected_version is not None and expected_version != contact.version:
            raise StaleVersion(f"the contact is at version {contact.version}, not {expected_version}")
        return apply_changes(contact, dict(changes), now)
    return change(stores, client_id, contact_id, edit)


def make_primary(stores: Stores, client_id: str, contact_id: str) -> Contact:
    return change(stores, client_id, contact_id,
                  lambda client, contact, now: contact if contact.is_primary else
                  contact.model_copy(update={"is_primary": True, "updated_at": now}))


def delete_contact(stores: Stores, client_id: str, contact_id: str) -> Contact:
    """Soft delete: the contact leaves lists and searches; project history keeps it."""
    def edit(client: Client, contact: Contact, now: datetime) -> Contact:
        ensure_can_delete(contact, stores.contacts.has_open_project(contact_id))
        return contact.model_copy(update={"deleted_at": now, "is_billing_contact": False, "portal_access": False,
                                          "updated_at": now})
    return change(stores, client_id, contact_id, edit)


def _invitation_limits(contact_id: str) -> list[rate_limits.Limit]:
    # An invitation is an outbound email too: it counts against the tenant's sending rate as well.
    return [rate_limits.invitations(contact_id), rate_limits.outbound_emails()]


def _sending(stores: Stores, spent: list[rate_limits.Spent], write: Callable[[], Contact]) -> Contact:
    """Run the write of an invitation whose uses are spent; when it fails, nothing is sent: give them back."""
    try:
        return write()
    except BaseException:
        rate_limits.give_back(stores.rate_limits, spent)
        raise


def _send(stores: Stores, send_invitation: InvitationSender, contact: Contact, secret: str) -> None:
    send_invitation(contact, secret, stores.settings.get("client").sending_address)


def set_portal_access(stores: Stores, client_id: str, contact_id: str, enabled: bool,
                      send_invitation: InvitationSender) -> Contact:
    """Turn portal access on or off; enabling sends an invitation unless a live one exists."""
    secret: list[str] = []

    def edit(client: Client, contact: Contact, now: datetime) -> Contact:
        if not enabled:  # also voids the invitation: a link from before can never let the contact back in
            return contact.model_copy(update={"portal_access": False, "invitation_hash": None, "updated_at": now}) \
                if contact.portal_access else contact
        if contact.portal_access:
            return contact  # on already: no second invitation (use resend for a new link)
        ensure_portal_allowed(contact, stores.settings.get("portal").enabled)
        updated = contact.model_copy(update={"portal_access": True, "updated_at": now})
        if contact.invitation_hash is None:  # the first enabling, or enabling again after access was off
            updated, token = issue_invitation(updated, now)
            secret[:] = [token]
        return updated

    spent: list[rate_limits.Spent] = []
    if enabled:  # turning access off and on again sends an invitation each time: limited like a resend
        current = stores.contacts.get(client_id, contact_id)
        if not current.portal_access:
            ensure_portal_allowed(current, stores.settings.get("portal").enabled)  # its 409 before a 429
            spent = rate_limits.spend(stores.rate_limits, _invitation_limits(contact_id))
    contact = _sending(stores, spent, lambda: change(stores, client_id, contact_id, edit))
    if secret:
        _send(stores, send_invitation, contact, secret[-1])
    else:
        rate_limits.give_back(stores.rate_limits, spent)  # enabled meanwhile by another request: nothing to send
    return contact


def _ensure_resendable(stores: Stores, contact: Contact) -> None:
    if contact.portal_invited_at is None:
        raise Conflict("no_invitation_sent", "no invitation was sent yet: enable portal access first")
    if not contact.portal_access:
        raise Conflict("portal_access_off", "portal access is off for this contact")
    ensure_portal_allowed(contact, stores.settings.get("portal").enabled)


def resend_invitation(stores: Stores, client_id: str, contact_id: str,
                      send_invitation: InvitationSender) -> Contact:
    """A new link; the older ones stop working. At most INVITATIONS_PER_CONTACT_PER_DAY a day (429 beyond, and
    the older link keeps working)."""
    secret: list[str] = []

    def edit(client: Client, contact: Contact, now: datetime) -> Contact:
        _ensure_resendable(stores, contact)
        updated, token = issue_invitation(contact, now)
        secret[:] = [token]
        return updated

    _ensure_resendable(stores, stores.contacts.get(client_id, contact_id))  # 404 and 409 come before a 429
    spent = rate_limits.spend(stores.rate_limits, _invitation_limits(contact_id))
    contact = _sending(stores, spent, lambda: change(stores, client_id, contact_id, edit))
    _send(stores, send_invitation, contact, secret[-1])
    return contact


def accept_invitation(stores: Stores, client_id: str, contact_id: str, secret: str) -> Contact:
    """Use an invitation link once: the stored hash is cleared in the same write that checks it (else 401)."""
    def edit(client: Client, contact: Contact, now: datetime) -> Contact:
        if not (invitation_valid(contact, secret, now) and stores.settings.get("portal").enabled):
            raise Unauthorized("the invitation is unknown, used, voided or expired")
        return contact.model_copy(update={"invitation_hash": None, "invitation_expires_at": None, "updated_at": now})

    try:
        return change(stores, client_id, contact_id, edit)
    except NotFound:
        raise Unauthorized("the invitation is unknown, used, voided or expired") from None
