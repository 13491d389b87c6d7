"""Item types of the organising and workspace features: categories, segments, facts, scores, tasks, timeline, portal."""
from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)

from chalicelib.tables.attributes import DecimalAttribute, JSONAttribute
from chalicelib.tables.base import TableItem


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
    """A segment of the tenant; `refresh` is its latest refresh job's progress (JSON; `refresh_after`: older
    versions' resume point)."""

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
    refresh = JSONAttribute(null=True)
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


class RateCounterItem(TableItem, discriminator="rate_counter"):
    """Uses of a rate limit in one window (see keys.rate_counter_pk); the table's TTL removes it after."""

    n = NumberAttribute(default=0)
    expires_at = NumberAttribute()  # epoch seconds; the table's TTL attribute
