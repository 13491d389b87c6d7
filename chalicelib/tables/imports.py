"""Import storage: row fingerprints, the clients each import created, its latest revert and its raw file."""
from __future__ import annotations

from collections.abc import Callable

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError, TransactWriteError
from pynamodb.transactions import TransactWrite

from chalicelib import blobs
from chalicelib.config import get_settings
from chalicelib.domain.clients import Client
from chalicelib.domain.errors import VersionConflict
from chalicelib.domain.import_cases import ImportMember
from chalicelib.domain.values import utcnow
from chalicelib.tables import keys
from chalicelib.tables.base import TableItem, configure
from chalicelib.tables.clients import Mark, batch_get
from chalicelib.tables.errors import reason_codes, storage_errors
from chalicelib.tables.transactions import commit


class ImportRowItem(TableItem, discriminator="import_row"):
    """A row without email and VAT number that some import of the tenant created, by fingerprint: a re-run of the
    file skips it (rows with either are found again by the clients' lookup keys)."""

    client_id = UnicodeAttribute()
    import_id = UnicodeAttribute()
    line = NumberAttribute()


class ImportMemberItem(TableItem, discriminator="import_member"):
    """A client an import created, in the import's partition (sort key: the client id)."""

    client_id = UnicodeAttribute()
    fingerprint = UnicodeAttribute(null=True)  # kept for a row without email and VAT number only
    line = NumberAttribute()
    version = NumberAttribute()  # the client's version as the import wrote it: a later change bumps it
    reverted = UnicodeAttribute(null=True)  # what a revert settled: "archived" | "already archived"
    reverted_at = UTCDateTimeAttribute(null=True)


class ImportRevertItem(TableItem, discriminator="import_revert"):
    """The import's latest revert job: a second revert waits until it has finished."""

    job_id = UnicodeAttribute()


_MODELS = (ImportRowItem, ImportMemberItem, ImportRevertItem)
_BOUND_META = ("table_name", "host", "region", "connect_timeout_seconds", "read_timeout_seconds",
               "max_retry_attempts")


def _bind() -> None:
    """configure() binds the item types it finds; these may be defined after its first run (imported later)."""
    configure()
    shared = TableItem._connection
    for model in _MODELS:
        if model._connection is not shared:
            for name in _BOUND_META:
                if hasattr(TableItem.Meta, name):
                    setattr(model.Meta, name, getattr(TableItem.Meta, name))
            model._connection = shared


def _member(item: ImportMemberItem) -> ImportMember:
    return ImportMember(client_id=item.client_id, fingerprint=item.fingerprint, line=int(item.line),
                        version=int(item.version), reverted=item.reverted)


class ImportRepository:
    def __init__(self, tenant_id: str):
        _bind()
        self.tenant_id = tenant_id

    # --- rows ------------------------------------------------------------------------------------
    def marks(self, import_id: str, rows: dict[str, tuple[str | None, int]]) -> Callable[[Client], list[Mark]]:
        """The items a created client is written with (ClientRepository.create_many): its member item of the
        import and, given a fingerprint, the row's fingerprint item (refused when the row was created before).
        `rows`: client id -> (fingerprint or None, line)."""
        def marks_of(client: Client) -> list[Mark]:
            fingerprint, line = rows[client.id]
            out: list[Mark] = [(ImportMemberItem(keys.import_pk(self.tenant_id, import_id), client.id,
                                                 client_id=client.id, fingerprint=fingerprint, line=line,
                                                 version=client.version), None)]
            if fingerprint:
                out.append((ImportRowItem(keys.import_row_pk(self.tenant_id, fingerprint), keys.UNIQUE_SK,
                                          client_id=client.id, import_id=import_id, line=line),
                            ImportRowItem.pk.does_not_exist()))
            return out
        return marks_of

    def _get(self, wanted: list[dict], attributes: list[str]) -> list[dict]:
        """Raw items of these keys that exist (consistent BatchGetItem, 100 keys a call)."""
        with storage_errors():
            return list(batch_get(wanted, consistent=True, attributes=attributes))

    def imported(self, fingerprints: list[str]) -> dict[str, tuple[str, str, int]]:
        """Which of these row fingerprints an import created already: fingerprint -> (client id, import id,
        line)."""
        wanted = {keys.import_row_pk(self.tenant_id, f): f for f in dict.fromkeys(fingerprints)}
        found = self._get([{"pk": pk, "sk": keys.UNIQUE_SK} for pk in wanted], ["pk", "client_id", "import_id", "line"])
        return {wanted[r["pk"]["S"]]: (r["client_id"]["S"], r["import_id"]["S"], int(r["line"]["N"])) for r in found}

    def members_among(self, import_id: str, client_ids: list[str]) -> dict[str, int]:
        """Which of these clients the import created: client id -> the line of its row."""
        pk = keys.import_pk(self.tenant_id, import_id)
        found = self._get([{"pk": pk, "sk": cid} for cid in dict.fromkeys(client_ids)], ["sk", "line"])
        return {r["sk"]["S"]: int(r["line"]["N"]) for r in found}

    # --- members ---------------------------------------------------------------------------------
    def members(self, import_id: str, after: str | None, limit: int) -> list[ImportMember]:
        """The clients the import created, in client-id order, after `after` (consistent)."""
        condition = ImportMemberItem.sk > after if after else ImportMemberItem.sk >= "0"  # REVERT_SK sorts lower
        with storage_errors():
            return [_member(item) for item in ImportMemberItem.query(
                keys.import_pk(self.tenant_id, import_id), condition, consistent_read=True, limit=limit,
                page_size=limit)]

    def settle(self, import_id: str, member: ImportMember, outcome: str) -> None:
        """Record what a revert did to a member and forget its row's fingerprint, if it has one: the client is
        archived, so a later import of the same row creates it again (an archived client holds no lookup keys
        either). One transaction; doing it twice changes nothing more."""
        def build(tx: TransactWrite, fingerprint: str | None) -> None:
            tx.update(ImportMemberItem(keys.import_pk(self.tenant_id, import_id), member.client_id),
                      actions=[ImportMemberItem.reverted.set(outcome), ImportMemberItem.reverted_at.set(utcnow())],
                      condition=ImportMemberItem.sk.exists())
            if fingerprint:
                tx.delete(ImportRowItem(keys.import_row_pk(self.tenant_id, fingerprint), keys.UNIQUE_SK),
                          condition=ImportRowItem.client_id == member.client_id)  # a later import's row stays

        try:
            commit(lambda tx: build(tx, member.fingerprint))
        except TransactWriteError as exc:
            # Deletes go first in a transaction: [row, member]. The row is gone already, or another client's now.
            if member.fingerprint and reason_codes(exc)[:2] == ["ConditionalCheckFailed", None]:
                commit(lambda tx: build(tx, None))
                return
            raise

    # --- reverts ---------------------------------------------------------------------------------
    def latest_revert(self, import_id: str) -> str | None:
        with storage_errors():
            try:
                return ImportRevertItem.get(keys.import_pk(self.tenant_id, import_id), keys.REVERT_SK,
                                            consistent_read=True).job_id
            except ImportRevertItem.DoesNotExist:
                return None

    def claim_revert(self, import_id: str, job_id: str, previous: str | None) -> None:
        """Make `job_id` the import's revert if the latest is still `previous` (else VersionConflict)."""
        condition = ImportRevertItem.pk.does_not_exist() if previous is None else ImportRevertItem.job_id == previous
        with storage_errors():
            try:
                ImportRevertItem(keys.import_pk(self.tenant_id, import_id), keys.REVERT_SK,
                                 job_id=job_id).save(condition=condition)
            except PutError as exc:
                if exc.cause_response_code == "ConditionalCheckFailedException":
                    raise VersionConflict("another revert of this import started meanwhile") from exc
                raise

    # --- the raw file ----------------------------------------------------------------------------
    def _file_key(self, import_id: str) -> str:
        keys.import_pk(self.tenant_id, import_id)  # checks the tenant id as every key does
        return f"imports/{self.tenant_id}/{import_id}.csv"

    def put_file(self, import_id: str, raw: bytes) -> None:
        blobs.put_object(get_settings().attachments_bucket, self._file_key(import_id), raw, "text/csv")

    def get_file(self, import_id: str) -> bytes:
        return blobs.get_object(get_settings().attachments_bucket, self._file_key(import_id))
