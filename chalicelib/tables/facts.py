"""Fact repository: projects, invoices and feedback in their client's partition, and the client's stored scores."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from pynamodb.exceptions import TransactWriteError
from pynamodb.expressions.condition import Condition
from pynamodb.transactions import TransactWrite

from chalicelib.domain.errors import NotFound, VersionConflict
from chalicelib.domain.feedback import Feedback
from chalicelib.domain.integrations import Invoice, Project
from chalicelib.domain.ports import Position
from chalicelib.domain.scoring import HEALTH, LEAD, ClientRecords, LeadChange, StoredScore
from chalicelib.domain.threads import Thread
from chalicelib.tables import keys
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.clients import from_item as client_from_item
from chalicelib.tables.communications import from_item as comm_from_item
from chalicelib.tables.contacts import from_item as contact_from_item
from chalicelib.tables.errors import reason_codes, storage_errors
from chalicelib.tables.items import ClientItem, CommunicationItem, ContactItem, ContactProjectItem, ThreadItem
from chalicelib.tables.paging import one_page
from chalicelib.tables.records import fields_of, record_from
from chalicelib.tables.transactions import commit
from chalicelib.tables.work_items import FactRefItem, FeedbackItem, InvoiceItem, LeadHistoryItem, ProjectItem, ScoreItem

FactItem = ProjectItem | InvoiceItem
_SCORE_KEYS = {HEALTH: keys.HEALTH_SK, LEAD: keys.LEAD_SK}
_SCORE_NAMES = {sk: name for name, sk in _SCORE_KEYS.items()}


def _project_item(p: Project) -> ProjectItem:
    data = fields_of(p)
    data.update(start_date=p.start_date and p.start_date.isoformat(), end_date=p.end_date and p.end_date.isoformat())
    return ProjectItem(keys.client_pk(p.tenant_id, p.client_id), keys.fact_sk(keys.PROJECT_PREFIX, p.id), **data)


def _invoice_item(i: Invoice) -> InvoiceItem:
    data = fields_of(i)
    data["invoice_kind"] = data.pop("kind")
    data["due_date"] = i.due_date and i.due_date.isoformat()
    return InvoiceItem(keys.client_pk(i.tenant_id, i.client_id), keys.fact_sk(keys.INVOICE_PREFIX, i.id), **data)


def _score(item: ScoreItem) -> StoredScore:
    return StoredScore(data=item.data, calculated_at=item.calculated_at)


def _lead_change(item: LeadHistoryItem) -> LeadChange:
    return LeadChange(score=int(item.score), previous_score=None if item.previous_score is None
                      else int(item.previous_score), change=int(item.change), change_reason=item.change_reason,
                      recorded_at=item.recorded_at)


def invoice_from(item: InvoiceItem) -> Invoice:
    return Invoice.model_validate({**{n: v for n in Invoice.model_fields if n != "kind"
                                      and (v := getattr(item, n)) is not None}, "kind": item.invoice_kind})


class FactRepository:
    def __init__(self, tenant_id: str):
        configure()
        self.tenant_id = tenant_id

    # --- reads -----------------------------------------------------------------------------------
    def _ref(self, what: str, fact_id: str) -> str | None:
        with storage_errors():
            try:
                return FactRefItem.get(keys.fact_ref_pk(self.tenant_id, what, fact_id), keys.UNIQUE_SK,
                                       consistent_read=True).client_id
            except FactRefItem.DoesNotExist:
                return None

    def project(self, project_id: str) -> Project | None:
        client_id = self._ref("project", project_id)
        if client_id is None:
            return None
        with storage_errors():
            return record_from(Project, ProjectItem.get(keys.client_pk(self.tenant_id, client_id),
                                                        keys.fact_sk(keys.PROJECT_PREFIX, project_id),
                                                        consistent_read=True))

    def invoice(self, invoice_id: str) -> Invoice | None:
        client_id = self._ref("invoice", invoice_id)
        if client_id is None:
            return None
        with storage_errors():
            return invoice_from(InvoiceItem.get(keys.client_pk(self.tenant_id, client_id),
                                                keys.fact_sk(keys.INVOICE_PREFIX, invoice_id), consistent_read=True))

    def client_records(self, client_id: str) -> ClientRecords:
        """The client and its contacts, communications, projects, invoices, feedback and scores."""
        found: dict[type, list] = {}
        with storage_errors():
            for item in TableItem.query(keys.client_pk(self.tenant_id, client_id), consistent_read=True,
                                        page_size=500):
                found.setdefault(type(item), []).append(item)
        if not found.get(ClientItem):
            raise NotFound(f"client {client_id} not found")
        return ClientRecords(
            client=client_from_item(found[ClientItem][0]),
            contacts=[contact_from_item(i) for i in found.get(ContactItem, [])],
            communications=[comm_from_item(i) for i in found.get(CommunicationItem, [])],
            projects=[record_from(Project, i) for i in found.get(ProjectItem, [])],
            invoices=[invoice_from(i) for i in found.get(InvoiceItem, [])],
            feedback=[record_from(Feedback, i) for i in found.get(FeedbackItem, [])],
            threads=[record_from(Thread, i) for i in found.get(ThreadItem, [])],
            scores={_SCORE_NAMES[i.sk]: _score(i) for i in found.get(ScoreItem, [])},
        )

    # --- writes ----------------------------------------------------------------------------------
    def save_project(self, old: Project | None, new: Project) -> None:
        """The project, its id reference and its contacts' project links, in one transaction, written only over
        the project as read (else VersionConflict)."""
        def build(tx: TransactWrite) -> None:
            self._put_ref(tx, "project", new.id, new.client_id, old is None)
            self._replace(tx, _project_item(old) if old else None, _project_item(new), ProjectItem)
            for contact_id in set(old.contact_ids if old else []) - set(new.contact_ids):
                tx.delete(ContactProjectItem(keys.contact_projects_pk(self.tenant_id, contact_id), new.id))
            for contact_id in new.contact_ids:
                tx.save(ContactProjectItem(keys.contact_projects_pk(self.tenant_id, contact_id), new.id,
                                           project_id=new.id, status=new.status))

        self._commit(build)

    def save_invoice(self, old: Invoice | None, new: Invoice) -> None:
        """The invoice and its id reference, written only over the invoice as read (else VersionConflict): a
        portal approval made meanwhile is read again, never overwritten."""
        def build(tx: TransactWrite) -> None:
            self._put_ref(tx, "invoice", new.id, new.client_id, old is None)
            self._replace(tx, _invoice_item(old) if old else None, _invoice_item(new), InvoiceItem)

        self._commit(build)

    @staticmethod
    def _replace(tx: TransactWrite, old: FactItem | None, new: FactItem, model: type[FactItem]) -> None:
        """Put `new` where `old` was read; moved to another client, `old` leaves its partition."""
        as_read = model.updated_at == old.updated_at if old is not None else None
        if old is None or old.pk != new.pk:
            tx.save(new, condition=model.pk.does_not_exist())
            if old is not None:
                tx.delete(old, condition=as_read)
        else:
            tx.save(new, condition=as_read)

    def add_feedback(self, feedback: Feedback) -> None:
        with storage_errors():
            FeedbackItem(keys.client_pk(self.tenant_id, feedback.client_id),
                         keys.fact_sk(keys.FEEDBACK_PREFIX, feedback.id), **fields_of(feedback)).save()

    def _put_ref(self, tx: TransactWrite, what: str, fact_id: str, client_id: str, new: bool) -> None:
        ref = FactRefItem(keys.fact_ref_pk(self.tenant_id, what, fact_id), keys.UNIQUE_SK, client_id=client_id)
        tx.save(ref, condition=FactRefItem.pk.does_not_exist() if new else FactRefItem.pk.exists())

    @staticmethod
    def _commit(build) -> None:
        try:
            commit(build)
        except TransactWriteError as exc:  # written, created or moved meanwhile by another upsert of the same id
            if "ConditionalCheckFailed" in reason_codes(exc):
                raise VersionConflict("the fact was written meanwhile") from exc
            raise

    # --- scores ----------------------------------------------------------------------------------
    def score(self, client_id: str, name: str) -> StoredScore | None:
        """The stored `health` or `lead` breakdown of a client."""
        with storage_errors():
            try:
                return _score(ScoreItem.get(keys.client_pk(self.tenant_id, client_id), _SCORE_KEYS[name],
                                            consistent_read=True))
            except ScoreItem.DoesNotExist:
                return None

    def save_scores(self, client_id: str, read: dict[str, StoredScore], health: dict[str, Any],
                    lead: dict[str, Any], history: dict[str, Any] | None, at: datetime) -> None:
        """Store the health and lead breakdowns; each is written only over the state it was computed from,
        so two calculations racing leave one history entry, not two."""
        pk = keys.client_pk(self.tenant_id, client_id)
        writes: list[tuple[TableItem, Condition | None]] = []
        for name, data in ((HEALTH, health), (LEAD, lead)):
            sk, before = _SCORE_KEYS[name], read.get(name)
            if before is None or before.data != data:
                condition = (ScoreItem.calculated_at == before.calculated_at) if before \
                    else ScoreItem.pk.does_not_exist()
                writes.append((ScoreItem(pk, sk, data=data, calculated_at=at), condition))
        if history is not None:
            writes.append((LeadHistoryItem(pk, keys.fact_sk(keys.LEAD_HISTORY_PREFIX, history.pop("id")), **history),
                           None))
        if not writes:
            return

        def build(tx: TransactWrite) -> None:
            for item, condition in writes:
                tx.save(item, condition=condition)

        self._commit(build)

    def lead_history(self, client_id: str, limit: int, after: Position | None
                     ) -> tuple[list[LeadChange], Position | None]:
        """A page of the client's lead score changes, newest first, and where the next page starts."""
        items, position = one_page(LeadHistoryItem.query(
            keys.client_pk(self.tenant_id, client_id), LeadHistoryItem.sk.startswith(keys.LEAD_HISTORY_PREFIX),
            scan_index_forward=False, last_evaluated_key=after, page_size=100), limit)
        return [_lead_change(i) for i in items], position

