"""Contact repository: contacts live in their client's partition and change together with it."""
from __future__ import annotations

from pynamodb.transactions import TransactWrite

from chalicelib.domain import search
from chalicelib.domain.clients import Client, FacetRules, name_key
from chalicelib.domain.contacts import Contact, ContactChange
from chalicelib.domain.errors import NotFound
from chalicelib.domain.integrations import OPEN_PROJECT
from chalicelib.domain.ports import Position
from chalicelib.tables import keys, search_index
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.clients import ClientRepository, same_rev
from chalicelib.tables.errors import storage_errors
from chalicelib.tables.items import ClientItem, ClientNumberItem, ContactItem, ContactProjectItem, NodeUserItem
from chalicelib.tables.paging import one_page
from chalicelib.tables.records import fields_of, record_from
from chalicelib.tables.transactions import commit_versioned

_POSITION = ("pk", "sk", "gsi2pk", "gsi2sk")  # where a page of the tenant's contacts ends, in the name index
WALK_BUDGET = 2000  # contacts one page of a search may read when no term is rare; then it answers short
WALK_PAGE = 200


def to_item(contact: Contact) -> ContactItem:
    data = fields_of(contact)
    if not contact.version:
        del data["version"]
    item = ContactItem(keys.client_pk(contact.tenant_id, contact.client_id), keys.contact_sk(contact.id), **data)
    if not contact.is_deleted:  # deleted contacts leave the email and tenant-search indexes
        item.gsi1pk = keys.contact_email_pk(contact.tenant_id, contact.email)
        item.gsi1sk = f"{contact.client_id}#{contact.id}"
        item.gsi2pk = keys.tenant_contacts_pk(contact.tenant_id)
        item.gsi2sk = keys.name_sort(name_key(contact.full_name), contact.id)
        item.search = contact_text(contact)
    return item


def contact_text(contact: Contact) -> str:
    """What a contact's `q` matches: name, email and job title, case and accents folded."""
    return search.search_text([contact.full_name, contact.email, contact.job_title])


def _indexed(contact: Contact | None) -> str | None:
    """The search text a contact is indexed under: none once deleted."""
    return contact_text(contact) if contact is not None and not contact.is_deleted else None


def _record(contact: Contact) -> str:
    return f"{contact.client_id}#{contact.id}"


def from_item(item: ContactItem) -> Contact:
    return record_from(Contact, item)


class ContactRepository:
    def __init__(self, tenant_id: str, actor: str | None = None, clients: ClientRepository | None = None):
        configure()
        self.tenant_id = tenant_id
        self.actor = actor
        self._clients = clients  # the client repository a contact's transaction writes its client through

    @property
    def clients(self) -> ClientRepository:
        if self._clients is None:
            self._clients = ClientRepository(self.tenant_id, self.actor)
        return self._clients

    def get(self, client_id: str, contact_id: str, *, include_deleted: bool = False) -> Contact:
        with storage_errors():
            try:
                item = ContactItem.get(keys.client_pk(self.tenant_id, client_id), keys.contact_sk(contact_id),
                                       consistent_read=True)
            except ContactItem.DoesNotExist:
                item = None
        if item is None or (item.deleted_at is not None and not include_deleted):
            raise NotFound(f"contact {contact_id} not found")
        return from_item(item)

    def of_client(self, client_id: str) -> list[Contact]:
        """Every live contact of a client (a client has tens, not thousands)."""
        with storage_errors():
            items = ContactItem.query(keys.client_pk(self.tenant_id, client_id),
                                      ContactItem.sk.startswith(keys.CONTACT_PREFIX),
                                      filter_condition=ContactItem.deleted_at.does_not_exist(), consistent_read=True)
            return [from_item(i) for i in items]

    def page(self, client_id: str | None, q: str | None, limit: int, after: Position | None
             ) -> tuple[list[Contact], Position | None]:
        """One page of a client's contacts (by creation), or of the tenant's (by name) when client_id is None."""
        if client_id is None:
            return self._search(q, limit, after)
        live = ContactItem.deleted_at.does_not_exist()  # a client has tens of contacts: filtered in its partition
        condition = live & ContactItem.search.contains(search.fold(q)) if q else live
        source = ContactItem.query(keys.client_pk(self.tenant_id, client_id),
                                   ContactItem.sk.startswith(keys.CONTACT_PREFIX), filter_condition=condition,
                                   last_evaluated_key=after, page_size=100)
        items, position = one_page(source, limit)
        return [from_item(i) for i in items], position

    def _search(self, q: str | None, limit: int, after: Position | None) -> tuple[list[Contact], Position | None]:
        """The tenant's contacts by name: with `q`, the search index's candidates checked exactly and sorted in
        memory, or (no rare term) the name index walked, at most WALK_BUDGET contacts a page."""
        found = search_index.candidates(self.tenant_id, "contact", q) if q else None
        if found is None:
            source = ContactItem.gsi2.query(keys.tenant_contacts_pk(self.tenant_id), last_evaluated_key=after,
                                            page_size=WALK_PAGE if q else limit + 1)
            items, position = one_page(source, limit, _POSITION, keep=(lambda i: search.matches(i.search, q))
                                       if q else None, budget=WALK_BUDGET)
            return [from_item(i) for i in items], position
        wanted = [(keys.client_pk(self.tenant_id, cid), keys.contact_sk(ctid))
                  for cid, ctid in (record.split("#", 1) for record in sorted(found))]
        with storage_errors():
            rows = [i for start in range(0, len(wanted), 100) for i in ContactItem.batch_get(wanted[start:start + 100])
                    if i.deleted_at is None and i.gsi2sk and search.matches(i.search, q)]
        rows.sort(key=lambda i: i.gsi2sk)
        if after:
            rows = [i for i in rows if i.gsi2sk > after["gsi2sk"]["S"]]
        items, position = one_page(rows, limit, _POSITION)
        return [from_item(i) for i in items], position

    def has_open_project(self, contact_id: str) -> bool:
        with storage_errors():
            return any(link.status in OPEN_PROJECT for link in ContactProjectItem.query(
                keys.contact_projects_pk(self.tenant_id, contact_id), consistent_read=True))

    def load_items(self, contacts: list[Contact]) -> list[TableItem]:
        """Every item creating these contacts writes (their clients' primary summaries aside), for a bulk loader
        (`make bench`) to put in batches: the same items `commit` writes for a new contact."""
        out: list[TableItem] = []
        for contact in contacts:
            out.append(to_item(contact))
            out.extend(search_index.entries(self.tenant_id, "contact", _record(contact), _indexed(contact)))
            out.append(ClientNumberItem(keys.contact_number_pk(self.tenant_id, contact.contact_number),
                                        keys.UNIQUE_SK, client_id=contact.client_id))
        return out

    def commit(self, changes: list[ContactChange], client: tuple[Client, Client, FacetRules] | None = None) -> None:
        """Write contact changes (and the client, when it changes with them) in one transaction.

        Every contact is written on the version it was read at; any conflict is a VersionConflict to retry.
        """
        def ops(tx: TransactWrite) -> None:
            for old, new in changes:
                new = new.model_copy(update={"updated_by": self.actor}) if self.actor else new
                item = to_item(new.model_copy(update={"version": old.version if old else 0}))
                if old is None:
                    tx.save(item, condition=ContactItem.pk.does_not_exist())
                    tx.save(ClientNumberItem(keys.contact_number_pk(self.tenant_id, new.contact_number),
                                             keys.UNIQUE_SK, client_id=new.client_id),
                            condition=ClientNumberItem.pk.does_not_exist())
                else:
                    tx.save(item)
                self._reserve_node_user(tx, old, new)
                search_index.write(tx, self.tenant_id, "contact", _record(new), _indexed(old), _indexed(new))

        if client is not None and client[1] is not client[0]:
            old_client, new_client, rules = client
            self.clients.save(old_client, new_client, rules, extra=ops)
            return

        def checked(tx: TransactWrite) -> None:
            ops(tx)
            if client is not None:  # the flags were decided on this client state: it must still hold
                tx.condition_check(ClientItem, keys.client_pk(self.tenant_id, client[0].id), keys.CLIENT_SK,
                                   condition=same_rev(client[0]))

        commit_versioned(checked, "a contact changed meanwhile; read it again")

    def _reserve_node_user(self, tx: TransactWrite, old: Contact | None, new: Contact) -> None:
        """A live contact holds its Node user's reservation; another contact claiming it is a VersionConflict."""
        had = old.node_user_id if old is not None and not old.is_deleted else None
        has = None if new.is_deleted else new.node_user_id
        if had == has:
            return
        if had:
            tx.delete(NodeUserItem(keys.node_user_pk(self.tenant_id, new.client_id, had), keys.UNIQUE_SK))
        if has:
            tx.save(NodeUserItem(keys.node_user_pk(self.tenant_id, new.client_id, has), keys.UNIQUE_SK,
                                 contact_id=new.id), condition=NodeUserItem.pk.does_not_exist())
