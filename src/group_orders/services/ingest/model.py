"""The shapes shared by the reader, the validator, the writers and the job."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

CANONICAL_COLUMNS: tuple[str, ...] = (
    "external_order_id",
    "order_date",
    "recipient_name",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "region",
    "postal_code",
    "country",
    "sku",
    "quantity",
    "notes",
)

REQUIRED_COLUMNS: tuple[str, ...] = (
    "external_order_id",
    "recipient_name",
    "address_line1",
    "city",
    "postal_code",
    "country",
    "sku",
    "quantity",
)


class RowStatus(Enum):
    accepted = "accepted"
    rejected = "rejected"


class RowErrorCode(Enum):
    missing_value = "missing-value"
    invalid_email = "invalid-email"
    invalid_phone = "invalid-phone"
    invalid_country = "invalid-country"
    invalid_postal_code = "invalid-postal-code"
    invalid_date = "invalid-date"
    invalid_quantity = "invalid-quantity"
    unknown_sku = "unknown-sku"
    duplicate_in_file = "duplicate-in-file"
    duplicate_order = "duplicate-order"
    value_too_long = "value-too-long"
    # The row itself could not be read: an unterminated quote, a stray quote.
    malformed_row = "malformed-row"


class FileError(Exception):
    """The whole file is unusable; the message says what to fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True, slots=True)
class SourceFile:
    """What was learnt about a file before its rows are read."""

    encoding: str  # a Python codec name: "utf-8-sig", "utf-16", "cp1252", ...
    delimiter: str
    header: tuple[str, ...]  # the header cells as uploaded
    # canonical column -> index of the header cell it was read from
    columns: dict[str, int]
    unknown_columns: tuple[str, ...]  # header cells matching no canonical column


@dataclass(frozen=True, slots=True)
class SourceRow:
    """One data row. ``source_row`` counts like a spreadsheet: the header is row 1."""

    source_row: int
    cells: tuple[str, ...]  # as uploaded, in the file's column order
    values: dict[str, str]  # canonical column -> raw text ("" when the cell is empty)
    # Set when the row could not be read cleanly (for example an unterminated quote).
    read_error: str | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    code: RowErrorCode
    field: str  # a canonical column name, or "row" for malformed rows
    value: str  # the rejected value as uploaded
    message: str


@dataclass(slots=True)
class RowResult:
    source_row: int
    status: RowStatus
    cells: tuple[str, ...]
    # canonical column -> normalized value (str; quantity as int; None when empty)
    normalized: dict[str, str | int | None]
    errors: list[RowError] = field(default_factory=list)
