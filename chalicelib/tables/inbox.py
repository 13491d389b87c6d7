"""Inbound mail bookkeeping: the inbound-address directory, Message-IDs, and unmatched emails."""
from __future__ import annotations

from pynamodb.exceptions import PutError

from chalicelib.domain.communications import ContactRef, KnownMessage, UnmatchedEmail
from chalicelib.domain.errors import Conflict, NotFound
from chalicelib.domain.ports import Position
from chalicelib.tables import keys
from chalicelib.tables.base import configure
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import ContactItem, InboundAddressItem, MessageIdItem, UnmatchedItem
from chalicelib.tables.paging import one_page
from chalicelib.tables.records import fields_of, record_from


def tenant_of_address(address: str) -> str | None:
    configure()
    with storage_errors():
        try:
            return InboundAddressItem.get(keys.INBOUND_DIRECTORY_PK, address.casefold()).tenant_id
        except InboundAddressItem.DoesNotExist:
            return None


def claim_address(tenant_id: str, address: str, previous: str | None) -> None:
    """Route mail for `address` to the tenant; another tenant's address is a 409."""
    configure()
    with storage_errors():
        try:
            InboundAddressItem(keys.INBOUND_DIRECTORY_PK, address.casefold(), tenant_id=tenant_id).save(
                condition=InboundAddressItem.sk.does_not_exist() | (InboundAddressItem.tenant_id == tenant_id))
        except PutError as exc:
            if exc.cause_response_code == "ConditionalCheckFailedException":
                raise Conflict("inbound_address_taken", f"{address} receives mail for another tenant") from exc
            raise
        if previous and previous.casefold() != address.casefold():
            InboundAddressItem(keys.INBOUND_DIRECTORY_PK, previous.casefold()).delete(
                condition=InboundAddressItem.tenant_id == tenant_id)


class InboxRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    def contacts_with_email(self, email: str) -> list[ContactRef]:
        """The live contacts of the tenant with this address (found by the email index)."""
        with storage_errors():
            return [ContactRef(client_id=c.client_id, contact_id=c.id)
                    for c in ContactItem.gsi1.query(keys.contact_email_pk(self.tenant_id, email))]

    def remember_message_id(self, message_id: str, client_id: str, communication_id: str) -> bool:
        """Record a Message-ID once; False when it was known already (the same message delivered twice)."""
        with storage_errors():
            try:
                MessageIdItem(keys.message_id_pk(self.tenant_id, message_id), keys.UNIQUE_SK, client_id=client_id,
                              communication_id=communication_id).save(condition=MessageIdItem.pk.does_not_exist())
                return True
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    return False
                raise

    def find_message(self, message_id: str) -> KnownMessage | None:
        with storage_errors():
            try:
                item = MessageIdItem.get(keys.message_id_pk(self.tenant_id, message_id), keys.UNIQUE_SK,
                                         consistent_read=True)
            except MessageIdItem.DoesNotExist:
                return None
        return KnownMessage(client_id=item.client_id, communication_id=item.communication_id)

    def add_unmatched(self, email: UnmatchedEmail) -> None:
        with storage_errors():
            UnmatchedItem(keys.unmatched_pk(self.tenant_id), email.id, **fields_of(email)).save()

    def unmatched(self, limit: int, after: Position | None) -> tuple[list[UnmatchedEmail], Position | None]:
        """A page of unmatched emails, newest first, and the position after it."""
        items, position = one_page(UnmatchedItem.query(keys.unmatched_pk(self.tenant_id), scan_index_forward=False,
                                                       last_evaluated_key=after, page_size=limit + 1), limit)
        return [record_from(UnmatchedEmail, i) for i in items], position

    def get_unmatched(self, item_id: str) -> UnmatchedEmail:
        with storage_errors():
            try:
                item = UnmatchedItem.get(keys.unmatched_pk(self.tenant_id), item_id, consistent_read=True)
            except UnmatchedItem.DoesNotExist:
                raise NotFound(f"unmatched email {item_id} not found") from None
        return record_from(UnmatchedEmail, item)

    def remove_unmatched(self, item_id: str) -> None:
        with storage_errors():
            UnmatchedItem(keys.unmatched_pk(self.tenant_id), item_id).delete()
