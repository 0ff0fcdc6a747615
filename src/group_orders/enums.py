"""The service's vocabularies, shared by the database, the domain and the schema."""

from __future__ import annotations

from enum import Enum


class GroupOrderStatus(Enum):
    pending = "pending"
    processing = "processing"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


class ApplicationSlug(Enum):
    planoauth = "planoauth"
    planoorder = "planoorder"
    planox2 = "planox2"


class Role(Enum):
    client = "client"
    liaison = "liaison"
    employee = "employee"


class GroupOrderView(Enum):
    # The seed's spelling is kept: clients already send it.
    inital_upload = "inital_upload"
    online_order_group_order_status = "online_order_group_order_status"
    planoworker_processing_view = "planoworker_processing_view"
    default = "default"


class SessionView(Enum):
    default = "default"
    minimal = "minimal"


class GroupOrderOutcome(Enum):
    all_accepted = "all_accepted"
    partial = "partial"
    all_rejected = "all_rejected"


class NotificationStatus(Enum):
    pending = "pending"
    retrying = "retrying"
    sent = "sent"
    failed = "failed"
    skipped = "skipped"
