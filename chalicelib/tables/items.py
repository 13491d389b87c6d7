"""Item types of clients and what hangs off them: contacts, communications, threads, facets, settings, plumbing."""
from __future__ import annotations

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
    UTCDateTimeAttribute,
    VersionAttribute,
)

from chalicelib.tables.attributes import DecimalAttribute, JSONAttribute
from chalicelib.tables.base import TableItem


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
    import_id = UnicodeAttribute(null=True)
    version = NumberAttribute()  # the public version: user-visible changes only (If-Match)
    rev = VersionAttribute()  # every write, derived figures too: what concurrent writers condition on


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


class SearchEntry(TableItem, discriminator="search"):
    """A client (sk: its id) or contact (sk: `<client id>#<contact id>`) under one search-index term: keys only,
    written with the record; a search reads the rarest term's partition and checks each candidate exactly."""


class DayCount(TableItem, discriminator="day_count"):
    """Non-archived clients created on one UTC day (one shard of it), changed in the clients' own transactions."""

    n = NumberAttribute(default=0)


class ClientKeyItem(TableItem, discriminator="client_key"):
    """The live clients holding one normalised email or VAT number, changed in the clients' own transactions: an
    import finds duplicates by key, 100 values a call."""

    client_ids = UnicodeSetAttribute(null=True)  # DynamoDB drops an emptied set: absent means nobody


class FacetCount(TableItem, discriminator="facet_count"):
    """Number of non-archived clients in a facet, changed in the same transaction as the entries."""

    n = NumberAttribute(default=0)


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


class ContactProjectItem(TableItem, discriminator="contact_project"):
    """A project naming a contact, with the project's status: the contact-deletion rule reads these by key."""

    project_id = UnicodeAttribute()
    status = UnicodeAttribute()


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


class InboundAddressItem(TableItem, discriminator="inbound_address"):
    """Directory entry: which tenant receives mail sent to an inbound address."""

    tenant_id = UnicodeAttribute()


class NodeLinkItem(TableItem, discriminator="node_link"):
    """Which client a Node client id is linked to."""

    client_id = UnicodeAttribute()


class NodeHeldItem(TableItem, discriminator="node_held"):
    """A Node event for a Node client not linked yet, kept until `client.linked` arrives."""

    event = JSONAttribute()
    webhook_id = UnicodeAttribute()


class NodeUserItem(TableItem, discriminator="node_user"):
    """Reserves a Node user for one contact of a client, written in the contact's transaction."""

    contact_id = UnicodeAttribute()


class WebhookSeenItem(TableItem, discriminator="webhook_seen"):
    """A webhook id claimed by the delivery applying it, then processed: a redelivery has no effect."""

    expires_at = NumberAttribute()
    state = UnicodeAttribute(null=True)  # "pending" while a delivery applies it; "done" (or absent) once processed
    lease_until = NumberAttribute(null=True)  # epoch seconds: a pending claim older than this was left by a crash


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
    owner = UnicodeAttribute(null=True)  # the claiming request's token; its transactions write only while it holds
    lease_until = NumberAttribute(null=True)  # epoch seconds: a pending claim lapses then (its Lambda is gone)
    wrote = BooleanAttribute(null=True)  # set in the claiming request's own transactions: its writes landed


class DuplicateEntry(TableItem, discriminator="duplicate"):
    """A lookup key that two live clients or more hold (kept by the stream from the key's item): sort key
    `<name>=<value>`, the holders beside it."""

    holders = UnicodeSetAttribute()


class DismissedPair(TableItem, discriminator="dismissed_pair"):
    """Two clients someone said are not the same: never proposed as duplicates again."""

    at = UTCDateTimeAttribute()
    by = UnicodeAttribute(null=True)


class HeartbeatItem(TableItem, discriminator="heartbeat"):
    """When a function last did its work (the stream's last batch and its lag), for the deep health check: in the
    system directory partition, kept out of the stream function by the template's filter."""

    at = UTCDateTimeAttribute()
    lag_seconds = NumberAttribute(null=True)
    records = NumberAttribute(null=True)


class TenantItem(TableItem, discriminator="tenant"):
    """A tenant's entry in the directory the schedules walk (the one item not keyed by a tenant)."""

    first_seen_at = UTCDateTimeAttribute()
