"""The one table: its PynamoDB base model, indexes, item types and lazy connection settings."""
from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    DiscriminatorAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)
from pynamodb.indexes import AllProjection, GlobalSecondaryIndex
from pynamodb.models import Model

from chalicelib.config import get_settings
from chalicelib.tables.attributes import DecimalAttribute, JSONAttribute


class ByName(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_name"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    s_name = UnicodeAttribute(range_key=True)


class ByCreated(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_created"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    s_created = UnicodeAttribute(range_key=True)


class ByHealth(GlobalSecondaryIndex):
    class Meta:
        index_name = "by_health"
        projection = AllProjection()

    pk = UnicodeAttribute(hash_key=True)
    s_health = UnicodeAttribute(range_key=True)


class Gsi1(GlobalSecondaryIndex):
    """General lookup index (emails, message ids, follow-ups...) for later item types."""

    class Meta:
        index_name = "gsi1"
        projection = AllProjection()

    gsi1pk = UnicodeAttribute(hash_key=True)
    gsi1sk = UnicodeAttribute(range_key=True)


class Gsi2(GlobalSecondaryIndex):
    class Meta:
        index_name = "gsi2"
        projection = AllProjection()

    gsi2pk = UnicodeAttribute(hash_key=True)
    gsi2sk = UnicodeAttribute(range_key=True)


class TableItem(Model):
    """Every item of the table: `pk`/`sk` keys and a `kind` discriminator."""

    class Meta:
        table_name = "unset"  # bound on first use by configure()
        billing_mode = "PAY_PER_REQUEST"
        stream_view_type = "NEW_AND_OLD_IMAGES"

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = DiscriminatorAttribute()
    by_name = ByName()
    by_created = ByCreated()
    by_health = ByHealth()
    gsi1 = Gsi1()
    gsi2 = Gsi2()
    gsi1pk = UnicodeAttribute(null=True)
    gsi1sk = UnicodeAttribute(null=True)
    gsi2pk = UnicodeAttribute(null=True)
    gsi2sk = UnicodeAttribute(null=True)


class ClientItem(TableItem, discriminator="client"):
    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    client_number = UnicodeAttribute()
    type = UnicodeAttribute()
    name = UnicodeAttribute()
    status = UnicodeAttribute()
    status_before_archive = UnicodeAttribute(null=True)
    email = UnicodeAttribute(null=True)
    phone = UnicodeAttribute(null=True)
    fax = UnicodeAttribute(null=True)
    website = UnicodeAttribute(null=True)
    industry = UnicodeAttribute(null=True)
    registration_number = UnicodeAttribute(null=True)
    vat_number = UnicodeAttribute(null=True)
    addresses = JSONAttribute(null=True)
    pricing_tier = UnicodeAttribute()
    price_multiplier = DecimalAttribute()
    currency = UnicodeAttribute()
    credit_limit = DecimalAttribute(null=True)
    payment_terms_days = NumberAttribute()
    discount_percent = DecimalAttribute(null=True)
    tax_exempt = BooleanAttribute()
    tax_rate_override = DecimalAttribute(null=True)
    communication_preference = UnicodeAttribute()
    tags = ListAttribute(of=UnicodeAttribute, null=True)
    category_ids = ListAttribute(of=UnicodeAttribute, null=True)
    custom_fields = JSONAttribute(null=True)
    pipeline_stage = UnicodeAttribute(null=True)
    node_client_id = UnicodeAttribute(null=True)
    node_url = UnicodeAttribute(null=True)
    primary_contact = JSONAttribute(null=True)
    billing_contact_id = UnicodeAttribute(null=True)
    health_score = NumberAttribute()
    risk_level = UnicodeAttribute()
    churn_probability = DecimalAttribute()
    lead_classification = UnicodeAttribute(null=True)
    lifetime_revenue = DecimalAttribute()
    outstanding_balance = DecimalAttribute()
    projects_count = NumberAttribute()
    last_project_at = UTCDateTimeAttribute(null=True)
    last_contacted_at = UTCDateTimeAttribute(null=True)
    avg_response_time_minutes = NumberAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    archived_at = UTCDateTimeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    version = NumberAttribute()  # the public version: user-visible changes only (If-Match)
    rev = VersionAttribute()  # every write, derived figures too: what concurrent writers condition on


class ContactItem(TableItem, discriminator="contact"):
    """A contact person, in its client's partition; gsi1 finds it by email, gsi2 across the tenant."""

    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    contact_number = UnicodeAttribute()
    client_id = UnicodeAttribute()
    full_name = UnicodeAttribute()
    first_name = UnicodeAttribute(null=True)
    last_name = UnicodeAttribute(null=True)
    email = UnicodeAttribute()
    phone = UnicodeAttribute(null=True)
    mobile = UnicodeAttribute(null=True)
    job_title = UnicodeAttribute(null=True)
    position = UnicodeAttribute(null=True)
    department = UnicodeAttribute(null=True)
    notes = UnicodeAttribute(null=True)
    is_primary = BooleanAttribute()
    is_billing_contact = BooleanAttribute()
    is_technical_contact = BooleanAttribute()
    portal_access = BooleanAttribute()
    portal_invited_at = UTCDateTimeAttribute(null=True)
    synced_from_node = BooleanAttribute()
    node_user_id = UnicodeAttribute(null=True)
    last_synced_at = UTCDateTimeAttribute(null=True)
    node_updated_at = UTCDateTimeAttribute(null=True)
    invitation_hash = UnicodeAttribute(null=True)
    invitation_expires_at = UTCDateTimeAttribute(null=True)
    search = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    deleted_at = UTCDateTimeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    version = VersionAttribute()


class CommunicationItem(TableItem, discriminator="communication"):
    """A communication in its client's partition, sorted by occurrence (ULID of occurred_at);
    gsi1 lists open follow-ups of the tenant by date."""

    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    type = UnicodeAttribute()
    direction = UnicodeAttribute()
    status = UnicodeAttribute()
    subject = UnicodeAttribute(null=True)
    body = UnicodeAttribute(null=True)
    from_email = UnicodeAttribute(null=True)
    to_email = UnicodeAttribute(null=True)
    cc = JSONAttribute(null=True)
    bcc = JSONAttribute(null=True)
    attachments = JSONAttribute(null=True)
    integration_id = UnicodeAttribute(null=True)
    message_id = UnicodeAttribute(null=True)
    from_phone = UnicodeAttribute(null=True)
    to_phone = UnicodeAttribute(null=True)
    duration_minutes = NumberAttribute(null=True)
    outcome = UnicodeAttribute(null=True)
    requires_followup = BooleanAttribute()
    followup_date = UnicodeAttribute(null=True)
    followup_notes = UnicodeAttribute(null=True)
    meeting_date = UnicodeAttribute(null=True)
    start_time = UnicodeAttribute(null=True)
    end_time = UnicodeAttribute(null=True)
    location_type = UnicodeAttribute(null=True)
    location = UnicodeAttribute(null=True)
    attendees = JSONAttribute(null=True)
    action_items = JSONAttribute(null=True)
    project_id = UnicodeAttribute(null=True)
    client_contact_id = UnicodeAttribute(null=True)
    thread_id = UnicodeAttribute(null=True)
    occurred_at = UTCDateTimeAttribute()
    sent_at = UTCDateTimeAttribute(null=True)
    delivered_at = UTCDateTimeAttribute(null=True)
    read_at = UTCDateTimeAttribute(null=True)
    response_time_minutes = NumberAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    deleted_at = UTCDateTimeAttribute(null=True)
    search = UnicodeAttribute(null=True)


class ThreadItem(TableItem, discriminator="thread"):
    """A conversation thread in its client's partition; its counts are kept by the stream handler."""

    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    subject = UnicodeAttribute()
    type = UnicodeAttribute()
    status = UnicodeAttribute()
    messages_count = NumberAttribute(default=0)
    last_activity_at = UTCDateTimeAttribute(null=True)
    preview = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    created_by_name = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class ContactProjectItem(TableItem, discriminator="contact_project"):
    """A project naming a contact, with the project's status: the contact-deletion rule reads these by key."""

    project_id = UnicodeAttribute()
    status = UnicodeAttribute()


class NodeLinkItem(TableItem, discriminator="node_link"):
    """Which client a Node client id is linked to."""

    client_id = UnicodeAttribute()


class NodeHeldItem(TableItem, discriminator="node_held"):
    """A Node event for a Node client not linked yet, kept until `client.linked` arrives."""

    event = JSONAttribute()
    webhook_id = UnicodeAttribute()


class WebhookSeenItem(TableItem, discriminator="webhook_seen"):
    """A processed webhook id: a redelivery with the same id has no effect."""

    expires_at = NumberAttribute()


class InboundAddressItem(TableItem, discriminator="inbound_address"):
    """Directory entry: which tenant receives mail sent to an inbound address."""

    tenant_id = UnicodeAttribute()


class MessageIdItem(TableItem, discriminator="message_id"):
    """A stored email's Message-ID: replies find the communication (and thread) they answer."""

    client_id = UnicodeAttribute()
    communication_id = UnicodeAttribute()


class UnmatchedItem(TableItem, discriminator="unmatched"):
    """An inbound email from a sender no contact has: kept until staff assign it to a client."""

    id = UnicodeAttribute()
    received_at = UTCDateTimeAttribute()
    from_email = UnicodeAttribute()
    to_email = UnicodeAttribute(null=True)
    subject = UnicodeAttribute(null=True)
    body_preview = UnicodeAttribute(null=True)
    bucket = UnicodeAttribute()
    key = UnicodeAttribute()


class ClientNumberItem(TableItem, discriminator="client_number"):
    """Reserves a client number: a conditional put makes numbers unique under concurrent creates."""

    client_id = UnicodeAttribute()


class FacetEntry(TableItem, discriminator="facet"):
    """One client in one list facet (status=active, tag=vip...), carrying the three sort keys."""

    client_id = UnicodeAttribute()
    live = BooleanAttribute()
    search = UnicodeAttribute()
    created_at = UnicodeAttribute()
    s_name = UnicodeAttribute()
    s_created = UnicodeAttribute()
    s_health = UnicodeAttribute()
    added_at = UTCDateTimeAttribute(null=True)  # segment members only
    added_by = UnicodeAttribute(null=True)
    added_method = UnicodeAttribute(null=True)


class FacetCount(TableItem, discriminator="facet_count"):
    """Number of non-archived clients in a facet, changed in the same transaction as the entries."""

    n = NumberAttribute(default=0)


class CategoryItem(TableItem, discriminator="category"):
    """A category of the tenant's tree, in the tenant's category partition."""

    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    name = UnicodeAttribute()
    slug = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    color = UnicodeAttribute(null=True)
    icon = UnicodeAttribute(null=True)
    parent_id = UnicodeAttribute(null=True)
    is_system = BooleanAttribute()
    is_active = BooleanAttribute()
    is_public = BooleanAttribute()
    sort_order = NumberAttribute()
    clients_count = NumberAttribute(default=0)
    created_by = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    deleted_at = UTCDateTimeAttribute(null=True)


class TreeItem(TableItem, discriminator="tree"):
    """The version of a tenant's category tree; every category write checks and bumps it."""

    v = NumberAttribute(default=0)


class SlugItem(TableItem, discriminator="slug"):
    """A reserved slug of a category or segment."""

    owner_id = UnicodeAttribute()


class SegmentItem(TableItem, discriminator="segment"):
    """A segment of the tenant; `refresh_after` is where an unfinished refresh resumes."""

    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    name = UnicodeAttribute()
    slug = UnicodeAttribute()
    description = UnicodeAttribute(null=True)
    type = UnicodeAttribute()
    criteria = JSONAttribute(null=True)
    color = UnicodeAttribute(null=True)
    icon = UnicodeAttribute(null=True)
    is_system = BooleanAttribute()
    is_active = BooleanAttribute()
    is_public = BooleanAttribute()
    client_count = NumberAttribute(default=0)
    last_refreshed_at = UTCDateTimeAttribute(null=True)
    refresh_frequency = UnicodeAttribute()
    refresh_after = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()
    deleted_at = UTCDateTimeAttribute(null=True)
    version = VersionAttribute()


class SegmentLinkItem(TableItem, discriminator="segment_link"):
    """In the client's partition: this client is a member of the segment (the details are on its facet entry)."""

    segment_id = UnicodeAttribute()


class ProjectItem(TableItem, discriminator="project"):
    """A project pushed by the projects module, in its client's partition."""

    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    contact_ids = ListAttribute(of=UnicodeAttribute, null=True)
    status = UnicodeAttribute()
    start_date = UnicodeAttribute(null=True)
    end_date = UnicodeAttribute(null=True)
    value = DecimalAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class InvoiceItem(TableItem, discriminator="invoice"):
    """An invoice, quote or credit note pushed by the finance module, in its client's partition."""

    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    invoice_kind = UnicodeAttribute()  # the domain's `kind`: that name is the table's discriminator
    amount = DecimalAttribute()
    currency = UnicodeAttribute()
    issued_at = UTCDateTimeAttribute(null=True)
    due_date = UnicodeAttribute(null=True)
    paid_at = UTCDateTimeAttribute(null=True)
    status = UnicodeAttribute()
    approved_at = UTCDateTimeAttribute(null=True)
    approved_by = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class FactRefItem(TableItem, discriminator="fact_ref"):
    """Which client a project or invoice id belongs to: an upsert by id finds the fact by key."""

    client_id = UnicodeAttribute()


class FeedbackItem(TableItem, discriminator="feedback"):
    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    rating = NumberAttribute()
    comment = UnicodeAttribute(null=True)
    project_id = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()


class TaskItem(TableItem, discriminator="task"):
    """A follow-up task, in its client's partition."""

    tenant_id = UnicodeAttribute()
    id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    title = UnicodeAttribute()
    due_date = UnicodeAttribute(null=True)
    assignee_id = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    completed_at = UTCDateTimeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    updated_by = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()
    updated_at = UTCDateTimeAttribute()


class AssociationItem(TableItem, discriminator="association"):
    """One side of a link between two clients; the other side is written in the same transaction."""

    tenant_id = UnicodeAttribute()
    client_id = UnicodeAttribute()
    related_id = UnicodeAttribute()
    role = UnicodeAttribute(null=True)
    created_by = UnicodeAttribute(null=True)
    created_at = UTCDateTimeAttribute()


class ScoreItem(TableItem, discriminator="score"):
    """The latest health or lead score of a client with its breakdown (`A#HEALTH` / `A#LEAD`)."""

    data = JSONAttribute()
    calculated_at = UTCDateTimeAttribute()


class LeadHistoryItem(TableItem, discriminator="lead_history"):
    score = NumberAttribute()
    previous_score = NumberAttribute(null=True)
    change = NumberAttribute()
    change_reason = UnicodeAttribute()
    recorded_at = UTCDateTimeAttribute()


class ActivityItem(TableItem, discriminator="activity"):
    """An audit entry of a client's timeline, written from a stream record (its event id keeps it unique)."""

    id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    actor = UnicodeAttribute(null=True)
    action = UnicodeAttribute()
    entity_type = UnicodeAttribute()
    entity_id = UnicodeAttribute()
    changes = JSONAttribute(null=True)


class PortalLogItem(TableItem, discriminator="portal_log"):
    """One portal sign-in, view or action of a client's contact."""

    id = UnicodeAttribute()
    at = UTCDateTimeAttribute()
    contact_id = UnicodeAttribute()
    contact_name = UnicodeAttribute(null=True)
    action = UnicodeAttribute()
    detail = JSONAttribute(null=True)
    expires_at = NumberAttribute(null=True)


class SettingsItem(TableItem, discriminator="settings"):
    data = JSONAttribute()
    updated_at = UTCDateTimeAttribute()


class CustomFieldItem(TableItem, discriminator="custom_field"):
    data = JSONAttribute()
    created_at = UTCDateTimeAttribute()


class IdempotencyItem(TableItem, discriminator="idempotency"):
    state = UnicodeAttribute()  # "pending" while the first request runs, then "done"
    fingerprint = UnicodeAttribute()
    status_code = NumberAttribute(null=True)
    body = UnicodeAttribute(null=True)
    expires_at = NumberAttribute()  # epoch seconds; also the table's TTL attribute


class TenantItem(TableItem, discriminator="tenant"):
    """A tenant's entry in the directory the schedules walk (the one item not keyed by a tenant)."""

    first_seen_at = UTCDateTimeAttribute()


ITEM_TYPES: tuple[type[TableItem], ...] = (
    TableItem, ClientItem, ContactItem, CommunicationItem, ThreadItem, ContactProjectItem, ClientNumberItem,
    FacetEntry, FacetCount, InboundAddressItem, MessageIdItem, UnmatchedItem, SettingsItem, CustomFieldItem,
    IdempotencyItem, TenantItem, NodeLinkItem, NodeHeldItem, WebhookSeenItem, CategoryItem, TreeItem, SlugItem,
    SegmentItem, SegmentLinkItem, ProjectItem, InvoiceItem, FactRefItem, FeedbackItem, TaskItem, AssociationItem,
    ScoreItem, LeadHistoryItem, ActivityItem, PortalLogItem,
)

_configured_for: tuple | None = None


def configure() -> None:
    """Bind every model to the configured table and endpoint; cheap after the first call."""
    global _configured_for
    s = get_settings()
    target = (s.table_name, s.dynamodb_endpoint, s.region)
    if _configured_for == target:
        return
    for model in ITEM_TYPES:
        model.Meta.table_name = s.table_name
        model.Meta.host = s.dynamodb_endpoint
        model.Meta.region = s.region
        model._connection = None
    _configured_for = target


RESET_HOOKS: list = []  # per-process caches that belong to one table (see tenants.py)


def reset_connections() -> None:
    """Forget bindings, connections and table-bound caches (the environment changed: tests, the runner)."""
    global _configured_for
    _configured_for = None
    for hook in RESET_HOOKS:
        hook()
    for model in ITEM_TYPES:
        model._connection = None
