"""Every key string of the single table; the tenant id leads every partition key."""
from __future__ import annotations


def _t(tenant_id: str) -> str:
    if not tenant_id or "#" in tenant_id:
        raise ValueError("tenant id must be non-empty and contain no '#'")
    return f"T#{tenant_id}"


CLIENT_SK = "A#CLIENT"
UNIQUE_SK = "#"
COUNT_SHARDS = 8  # concurrent writers spread over shards instead of conflicting on one counter item


def count_sk(shard: int) -> str:
    return f"#COUNT#{shard}"


def client_pk(tenant_id: str, client_id: str) -> str:
    return f"{_t(tenant_id)}#CLIENT#{client_id}"


def client_number_pk(tenant_id: str, number: str) -> str:
    return f"{_t(tenant_id)}#CLIENTNO#{number}"


FACET_MARK = "#CLIX#"


def facet_pk(tenant_id: str, facet: str, value: str) -> str:
    """Partition of one list facet, e.g. every client with status=active, sorted by the facet GSIs."""
    return f"{_t(tenant_id)}{FACET_MARK}{facet}={value}"


def search_pk(tenant_id: str, what: str, term: str) -> str:
    """Partition of one search-index term (a trigram, or the overflow mark) of clients or contacts."""
    return f"{_t(tenant_id)}#Q#{what}#{term}"


def created_counts_pk(tenant_id: str) -> str:
    """Partition of the per-day creation counters: sort keys `<YYYY-MM-DD>#<shard>`."""
    return f"{_t(tenant_id)}#CREATED"


def day_count_sk(day: str, shard: int) -> str:
    return f"{day}#{shard}"


def settings_pk(tenant_id: str) -> str:
    return f"{_t(tenant_id)}#SETTINGS"


def settings_sk(name: str) -> str:
    return f"S#{name}"


def custom_field_sk(key: str) -> str:
    return f"CF#{key}"


CUSTOM_FIELD_PREFIX = "CF#"


def idempotency_pk(tenant_id: str, key: str) -> str:
    return f"{_t(tenant_id)}#IDEM#{key}"


# Sort keys join their parts with \x01, which sorts below every printable character: "acme" < "acme corp".
SORT_SEP = "\x01"


def name_sort(name_key: str, client_id: str) -> str:
    return f"{name_key}{SORT_SEP}{client_id}"


def created_sort(created_at_iso: str, client_id: str) -> str:
    return f"{created_at_iso}{SORT_SEP}{client_id}"


def health_sort(health_score: int, name_key: str, client_id: str) -> str:
    return f"{health_score:03d}{SORT_SEP}{name_key}{SORT_SEP}{client_id}"


# The directory of tenants that schedules walk: the one partition that no tenant id leads, holding only ids.
TENANT_DIRECTORY_PK = "DIRECTORY#TENANTS"
HEARTBEAT_PK = "DIRECTORY#HEARTBEATS"  # one item per function: sort key its name (e.g. `stream`)


CONTACT_PREFIX = "CONTACT#"


def contact_sk(contact_id: str) -> str:
    return f"{CONTACT_PREFIX}{contact_id}"


def contact_number_pk(tenant_id: str, number: str) -> str:
    return f"{_t(tenant_id)}#CONTACTNO#{number}"


def contact_email_pk(tenant_id: str, email: str) -> str:
    """gsi1: contacts by email address (inbound mail matching)."""
    return f"{_t(tenant_id)}#CEMAIL#{email.casefold()}"


def tenant_contacts_pk(tenant_id: str) -> str:
    """gsi2: every live contact of the tenant, by name (tenant-wide contact search)."""
    return f"{_t(tenant_id)}#CONTACTS"


def contact_projects_pk(tenant_id: str, contact_id: str) -> str:
    return f"{_t(tenant_id)}#CONTACTPROJ#{contact_id}"


def node_link_pk(tenant_id: str, node_client_id: str) -> str:
    return f"{_t(tenant_id)}#NODECLIENT#{node_client_id}"


def node_held_pk(tenant_id: str, node_client_id: str) -> str:
    return f"{_t(tenant_id)}#NODEHOLD#{node_client_id}"


def webhook_seen_pk(tenant_id: str, webhook_id: str) -> str:
    return f"{_t(tenant_id)}#WEBHOOK#{webhook_id}"


def node_user_pk(tenant_id: str, client_id: str, node_user_id: str) -> str:
    """Reserves a Node user for one contact of the client: parallel deliveries cannot create two."""
    return f"{_t(tenant_id)}#NODEUSER#{client_id}#{node_user_id}"


COMM_PREFIX = "COMM#"


def comm_sk(comm_id: str) -> str:
    return f"{COMM_PREFIX}{comm_id}"


def followups_pk(tenant_id: str) -> str:
    """gsi1: the tenant's communications that require a follow-up, by follow-up date."""
    return f"{_t(tenant_id)}#FOLLOWUPS"


THREAD_PREFIX = "THREAD#"


def thread_sk(thread_id: str) -> str:
    return f"{THREAD_PREFIX}{thread_id}"


# Mail to an inbound address must find its tenant before any tenant id is known: a directory like the tenants'.
INBOUND_DIRECTORY_PK = "DIRECTORY#INBOUND"


def message_id_pk(tenant_id: str, message_id: str) -> str:
    return f"{_t(tenant_id)}#MSGID#{message_id.strip().lower()}"


def unmatched_pk(tenant_id: str) -> str:
    return f"{_t(tenant_id)}#UNMATCHED"



def _parse_named(pk: str, marker: str) -> tuple[str, str, str] | None:
    """(tenant id, name, value) of a key `T#<tenant><marker><name>=<value>`, or None for any other key."""
    head, mark, rest = pk.partition(marker)
    if not mark or not head.startswith("T#") or "=" not in rest:
        return None
    name, _, value = rest.partition("=")
    return head[2:], name, value


def parse_facet_pk(pk: str) -> tuple[str, str, str] | None:
    """(tenant id, facet, value) of a facet partition key, or None for any other key."""
    return _parse_named(pk, FACET_MARK)


def categories_pk(tenant_id: str) -> str:
    """Every category of a tenant, and the tree's version item: the tree is read whole, in one Query."""
    return f"{_t(tenant_id)}#CATEGORIES"


CATEGORY_PREFIX = "CAT#"
TREE_SK = "#TREE"  # bumped by every category write, so concurrent parent changes cannot build a cycle


def category_sk(category_id: str) -> str:
    return f"{CATEGORY_PREFIX}{category_id}"


def segments_pk(tenant_id: str) -> str:
    return f"{_t(tenant_id)}#SEGMENTS"


SEGMENT_PREFIX = "SEG#"


def segment_sk(segment_id: str) -> str:
    return f"{SEGMENT_PREFIX}{segment_id}"


def slug_pk(tenant_id: str, what: str, slug: str) -> str:
    """Reserves a slug of a category or segment: unique per tenant under concurrent creates."""
    return f"{_t(tenant_id)}#SLUG#{what}#{slug}"


SEGMENT_LINK_PREFIX = "SEGMENT#"


def segment_link_sk(segment_id: str) -> str:
    """In the client's partition: the segments of a client, read by key."""
    return f"{SEGMENT_LINK_PREFIX}{segment_id}"


PROJECT_PREFIX = "PROJECT#"
INVOICE_PREFIX = "INVOICE#"
FEEDBACK_PREFIX = "FEEDBACK#"
TASK_PREFIX = "TASK#"
ASSOCIATION_PREFIX = "ASSOC#"
HEALTH_SK = "A#HEALTH"
LEAD_SK = "A#LEAD"
LEAD_HISTORY_PREFIX = "LEADHIST#"


def fact_sk(prefix: str, fact_id: str) -> str:
    """In the client's partition: PROJECT#<id>, INVOICE#<id>, FEEDBACK#<id>, TASK#<id>, ASSOC#<client id>..."""
    return f"{prefix}{fact_id}"


def fact_ref_pk(tenant_id: str, what: str, fact_id: str) -> str:
    """Which client a project or invoice id belongs to."""
    return f"{_t(tenant_id)}#REF#{what}#{fact_id}"


def activity_pk(tenant_id: str, client_id: str) -> str:
    """A client's timeline, apart from its partition so reading the client's records never reads the log."""
    return f"{_t(tenant_id)}#ACTIVITY#{client_id}"


def portal_log_pk(tenant_id: str, client_id: str) -> str:
    """The portal activity of a client's contacts, newest last (read backwards)."""
    return f"{_t(tenant_id)}#PORTALLOG#{client_id}"


def jobs_pk(tenant_id: str, kind: str) -> str:
    """The jobs of one kind of a tenant; sort key: the job id (a ULID, so a Query backwards lists newest first)."""
    return f"{_t(tenant_id)}#JOBS#{kind}"


CLIENT_KEY_MARK = "#CLIKEY#"


def client_key_pk(tenant_id: str, name: str, value: str) -> str:
    """Which live clients hold a lookup key (`name` email|vat|name|domain, domain/duplicates.py): read by key, 100
    a call."""
    return f"{_t(tenant_id)}{CLIENT_KEY_MARK}{name}={value}"


def parse_client_key_pk(pk: str) -> tuple[str, str, str] | None:
    """(tenant id, name, value) of a lookup key's partition key, or None for any other key."""
    return _parse_named(pk, CLIENT_KEY_MARK)


def duplicates_pk(tenant_id: str, kind: str) -> str:
    """The lookup keys held by two clients or more (`kind` client|contact), sort key `<name>=<value>`: the tenant's
    possible duplicates, paged without reading every client."""
    return f"{_t(tenant_id)}#DUPS#{kind}"


def dismissed_pk(tenant_id: str, kind: str) -> str:
    """Pairs a person said are not duplicates, sort key `<id>|<id>` (the lower id first)."""
    return f"{_t(tenant_id)}#DUPSNOT#{kind}"


def import_row_pk(tenant_id: str, fingerprint: str) -> str:
    """An import row already created (by any import of the tenant): a re-run of the file skips it."""
    return f"{_t(tenant_id)}#IMPORTROW#{fingerprint}"


def import_pk(tenant_id: str, import_id: str) -> str:
    """An import's partition: one member item per client it created (sort key: the client id), plus REVERT_SK."""
    return f"{_t(tenant_id)}#IMPORT#{import_id}"


REVERT_SK = "#REVERT"  # sorts below every client id: the import's latest revert


def rate_counter_pk(tenant_id: str, subject: str, window_start: int) -> str:
    """One fixed window of a rate limit (`subject` e.g. `emails`, `invitations:<contact id>`; the window's start
    in epoch seconds): a new window is a new item, so nothing ever resets a counter."""
    return f"{_t(tenant_id)}#RATE#{subject}#{window_start}"
